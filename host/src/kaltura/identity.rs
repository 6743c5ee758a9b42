//! Who a Discord user is to Kaltura: the user id `discord_<id>`, and the Kaltura role the
//! guild's `roles.mapping` gives their Discord roles. Computed by the host from Discord's
//! data (the interaction's member and the guild's roles), never from what a client claims.
//!
//! `roles.mapping` lists Discord roles (by id or case-insensitive name) per Kaltura role:
//! `{"admin": ["Staff"], "moderator": ["Mods", "1234567890"]}`; everyone else is a viewer.
//! Discord's Administrator and Manage Server permissions make a guild admin.

use std::collections::HashMap;

use serde_json::Value;

use crate::discord::model::Member;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum KalturaRole {
    Viewer,
    Moderator,
    Admin,
}

impl KalturaRole {
    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "viewer" => Some(Self::Viewer),
            "moderator" => Some(Self::Moderator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }
}

/// `discord_<id>` for Discord users, `kdservice_<name>` for API service accounts
/// (`service:<name>`).
pub fn kaltura_user_id(subject: &str) -> String {
    match subject.strip_prefix("service:") {
        Some(name) => format!("kdservice_{name}"),
        None => format!("discord_{subject}"),
    }
}

/// The inverse of [`kaltura_user_id`]; None for users this host did not name.
pub fn subject_of(kaltura_user_id: &str) -> Option<String> {
    if let Some(id) = kaltura_user_id.strip_prefix("discord_") {
        return Some(id.to_string());
    }
    kaltura_user_id
        .strip_prefix("kdservice_")
        .map(|n| format!("service:{n}"))
}

/// The role a member gets from the guild config, given the guild's role names by id.
pub fn role_for(cfg: &Value, member: &Member, names: &HashMap<String, String>) -> KalturaRole {
    let mut best = KalturaRole::Viewer;
    let Some(mapping) = cfg["roles"]["mapping"].as_object() else {
        return best;
    };
    for (kaltura_role, discord_roles) in mapping {
        let Some(role) = KalturaRole::parse(kaltura_role) else {
            continue;
        };
        let listed = discord_roles.as_array().cloned().unwrap_or_default();
        let holds = listed.iter().filter_map(Value::as_str).any(|wanted| {
            member.roles.iter().any(|id| {
                id == wanted
                    || names
                        .get(id)
                        .is_some_and(|name| name.eq_ignore_ascii_case(wanted))
            })
        });
        if holds && role > best {
            best = role;
        }
    }
    best
}

/// Whether the mapping names any role by name (then the guild's role names are needed).
pub fn mapping_uses_names(cfg: &Value) -> bool {
    cfg["roles"]["mapping"].as_object().is_some_and(|m| {
        m.values()
            .filter_map(Value::as_array)
            .flatten()
            .filter_map(Value::as_str)
            .any(|r| !r.chars().all(|c| c.is_ascii_digit()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn mapping_by_id_or_case_insensitive_name_highest_wins() {
        let cfg = json!({"roles": {"mapping": {"moderator": ["mods"], "admin": ["42"]}}});
        let names: HashMap<String, String> = [("7".to_string(), "Mods".to_string())]
            .into_iter()
            .collect();
        let m = |roles: &[&str]| Member {
            roles: roles.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        assert_eq!(role_for(&cfg, &m(&[]), &names), KalturaRole::Viewer);
        assert_eq!(role_for(&cfg, &m(&["7"]), &names), KalturaRole::Moderator);
        assert_eq!(role_for(&cfg, &m(&["7", "42"]), &names), KalturaRole::Admin);
        assert!(mapping_uses_names(&cfg));
        assert!(!mapping_uses_names(
            &json!({"roles": {"mapping": {"admin": ["42"]}}})
        ));
    }
}
