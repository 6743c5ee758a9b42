//! Who decides what a Kaltura session may do. The partner's secret signs every session, so
//! privileges are the operator's: `config/plugins.json` → `kaltura` names them (for every
//! guild and per guild). A guild's own config may only *narrow* its sessions, with
//! `privacycontext:<a context the operator bound to the guild>` and `enableentitlement`;
//! anything else there is refused with the file and JSON path named.
//!
//! ```json
//! { "kaltura": {
//!     "privileges": { "default": "", "video": "", "meeting": "" },
//!     "guilds": { "123": { "privileges": { "default": "privacycontext:club" },
//!                          "privacy_contexts": ["club"] } },
//!     "partner_events": ["123"],
//!     "meeting_backends": ["scheduled_events", "virtual_events"] } }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::meetings::BackendName;

/// The privilege lists a session is built from (comma lists, as Kaltura writes them).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivilegeLists {
    /// Every session for the guild.
    pub default: String,
    /// Added to playback sessions.
    pub video: String,
    /// Added to meeting join sessions.
    pub meeting: String,
}

/// What the operator decides for one guild.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GuildSessions {
    /// Added to the operator's lists for every guild.
    pub privileges: PrivilegeLists,
    /// Privacy contexts the guild's own config may narrow its sessions to.
    pub privacy_contexts: Vec<String>,
    /// Meeting backends this guild may choose besides the ones every guild may.
    pub meeting_backends: Vec<BackendName>,
}

/// `kaltura` in `config/plugins.json`: the operator's side of Kaltura sessions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OperatorKaltura {
    /// Privileges of every guild's sessions.
    pub privileges: PrivilegeLists,
    /// Per guild id: more privileges and the privacy contexts bound to it.
    pub guilds: BTreeMap<String, GuildSessions>,
    /// Guilds that hear about partner-wide Kaltura events (entries are partner-wide: a
    /// guild not listed gets none of them); `"*"` for every guild with a config file or
    /// rules (one community on one partner).
    pub partner_events: Vec<String>,
    /// The Kaltura products guilds may host meetings on (`kaltura.meetings` in a guild's
    /// config picks among them); default `["scheduled_events"]`, the one every Kaltura
    /// account with meetings has. Virtual events and rooms need those modules on the
    /// partner, so the operator turns them on.
    pub meeting_backends: Vec<BackendName>,
}

impl Default for OperatorKaltura {
    fn default() -> Self {
        Self {
            privileges: PrivilegeLists::default(),
            guilds: BTreeMap::new(),
            partner_events: Vec::new(),
            meeting_backends: vec![BackendName::ScheduledEvents],
        }
    }
}

impl OperatorKaltura {
    /// Checks what the operator wrote (`kaltura` in `file`): every item a valid privilege.
    pub fn check(&self, file: &str) -> Result<(), String> {
        let lists = std::iter::once(("kaltura.privileges".to_string(), &self.privileges)).chain(
            self.guilds
                .iter()
                .map(|(g, s)| (format!("kaltura.guilds.{g}.privileges"), &s.privileges)),
        );
        for (path, l) in lists {
            for (name, list) in [
                ("default", &l.default),
                ("video", &l.video),
                ("meeting", &l.meeting),
            ] {
                for item in items(list) {
                    if !well_formed(item) {
                        return Err(format!(
                            "{file}: {path}.{name}: `{item}` is not a privilege (name or name:value, letters, digits, _ - * and :)"
                        ));
                    }
                }
            }
        }
        if let Some(bad) = self
            .partner_events
            .iter()
            .find(|g| *g != "*" && (g.is_empty() || !g.chars().all(|c| c.is_ascii_digit())))
        {
            return Err(format!(
                "{file}: kaltura.partner_events: `{bad}` is not a guild id (digits) or \"*\""
            ));
        }
        for (g, s) in &self.guilds {
            if !g.chars().all(|c| c.is_ascii_digit()) || g.is_empty() {
                return Err(format!("{file}: kaltura.guilds.{g}: a guild id is digits"));
            }
            if let Some(bad) = s.privacy_contexts.iter().find(|c| !context_name(c)) {
                return Err(format!(
                    "{file}: kaltura.guilds.{g}.privacy_contexts: `{bad}` is not a privacy context (letters, digits, _ and -)"
                ));
            }
        }
        Ok(())
    }

    /// The operator's lists for a guild: the ones for every guild, then its own.
    pub fn lists_for(&self, guild_id: Option<&str>) -> PrivilegeLists {
        let own = guild_id.and_then(|g| self.guilds.get(g));
        let both = |f: fn(&PrivilegeLists) -> &String| {
            join(&[
                f(&self.privileges),
                own.map(|o| f(&o.privileges).as_str()).unwrap_or(""),
            ])
        };
        PrivilegeLists {
            default: both(|l| &l.default),
            video: both(|l| &l.video),
            meeting: both(|l| &l.meeting),
        }
    }

    /// Whether the operator bound `context` to the guild.
    pub fn context_bound(&self, guild_id: Option<&str>, context: &str) -> bool {
        guild_id
            .and_then(|g| self.guilds.get(g))
            .is_some_and(|s| s.privacy_contexts.iter().any(|c| c == context))
    }

    /// Whether a guild may host meetings on `backend`.
    pub fn allows_backend(&self, guild_id: Option<&str>, backend: BackendName) -> bool {
        self.meeting_backends.contains(&backend)
            || guild_id
                .and_then(|g| self.guilds.get(g))
                .is_some_and(|s| s.meeting_backends.contains(&backend))
    }

    /// Whether partner-wide Kaltura events reach this guild.
    pub fn hears_partner_events(&self, guild_id: &str) -> bool {
        self.partner_events
            .iter()
            .any(|g| g == "*" || g == guild_id)
    }
}

/// Joins privilege lists, skipping empty parts.
pub fn join(parts: &[&str]) -> String {
    parts
        .iter()
        .flat_map(|p| items(p))
        .collect::<Vec<_>>()
        .join(",")
}

/// The items of a comma list, trimmed, empty ones skipped.
pub fn items(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|i| !i.is_empty())
}

fn well_formed(item: &str) -> bool {
    item.len() <= 256
        && item
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '*' | ':' | '.'))
}

fn context_name(c: &str) -> bool {
    (1..=64).contains(&c.len())
        && c.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why a privilege item may not come from a guild's config (`None`: it may).
pub fn refused_in_guild(item: &str) -> Option<String> {
    let (name, value) = item.split_once(':').unwrap_or((item, ""));
    let name_lc = name.to_ascii_lowercase();
    let why = match name_lc.as_str() {
        "privacycontext" if context_name(value) => return None,
        "privacycontext" => "needs a context name (letters, digits, _ and -)",
        "enableentitlement" if value.is_empty() => return None,
        "*" => "would allow everything",
        "disableentitlement" | "disableentitlementforentry" => {
            "would switch entitlement off and show every private entry"
        }
        "setrole" => "would give the session another role",
        n if n.starts_with('_') => "is reserved for Kaltura",
        n if n.starts_with("sview") || n.starts_with("view") => {
            "would let the session view entries the guild does not own"
        }
        n if n.starts_with("edit") => "would let the session change entries",
        n if n.starts_with("list") => "would let the session list the whole account",
        n if n.starts_with("download") => "would let the session download entries",
        _ => "is not one a guild may set",
    };
    Some(format!(
        "`{item}` is refused: it {why}. A server's config may only narrow its sessions (privacycontext:<a context the operator bound to the server>, enableentitlement); the operator sets privileges in config/plugins.json (`kaltura.privileges`)"
    ))
}

/// One refused item in a guild's config.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// `kaltura.session.privileges.default`
    pub path: String,
    pub reason: String,
}

const LISTS: [&str; 3] = ["default", "video", "meeting"];

/// Every privilege item a guild's config (merged with placeholders filled) may not carry.
pub fn refusals(cfg: &Value) -> Vec<Refusal> {
    let mut out = Vec::new();
    for name in LISTS {
        let Some(list) = cfg["kaltura"]["session"]["privileges"][name].as_str() else {
            continue;
        };
        for item in items(list) {
            if let Some(reason) = refused_in_guild(item) {
                out.push(Refusal {
                    path: format!("$.kaltura.session.privileges.{name}"),
                    reason,
                });
            }
        }
    }
    out
}

/// Drops the refused items from a file's content, as written (`raw`) and with placeholders
/// filled (`resolved`). A list whose placeholders hide a refused item is dropped whole
/// (so what the environment holds is never shown).
pub fn strip(raw: &mut Value, resolved: &mut Value) {
    for name in LISTS {
        let Some(list) = resolved["kaltura"]["session"]["privileges"][name].as_str() else {
            continue;
        };
        let kept: Vec<&str> = items(list)
            .filter(|i| refused_in_guild(i).is_none())
            .collect();
        if kept.len() == items(list).count() {
            continue;
        }
        let kept = kept.join(",");
        let as_written = raw["kaltura"]["session"]["privileges"][name].as_str() == Some(list);
        let raw_value = if as_written {
            kept.clone()
        } else {
            String::new()
        };
        resolved["kaltura"]["session"]["privileges"][name] = Value::String(kept);
        raw["kaltura"]["session"]["privileges"][name] = Value::String(raw_value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn guilds_may_only_narrow() {
        for bad in [
            "*",
            "sview:*",
            "sview:0_abc",
            "edit:*",
            "editadmintags:x",
            "list:*",
            "download:0_x",
            "setrole:5",
            "disableentitlement",
            "DisableEntitlement",
            "_internal",
            "privacycontext:",
            "privacycontext:a,b",
            "enableentitlement:0",
            "actionslimit:1",
        ] {
            assert!(refused_in_guild(bad).is_some(), "{bad} was allowed");
        }
        for good in ["privacycontext:club-1", "enableentitlement"] {
            assert_eq!(refused_in_guild(good), None, "{good}");
        }
    }

    #[test]
    fn refused_items_are_named_and_stripped() {
        let mut resolved = json!({"kaltura": {"session": {"privileges": {
            "default": "privacycontext:c, disableentitlement,sview:*",
            "video": "edit:*", "meeting": "enableentitlement"}}}});
        let found = refusals(&resolved);
        assert_eq!(found.len(), 3);
        assert_eq!(found[0].path, "$.kaltura.session.privileges.default");
        assert!(found[0].reason.contains("disableentitlement"), "{found:?}");
        let mut raw = resolved.clone();
        raw["kaltura"]["session"]["privileges"]["video"] = json!("{{SECRET_LIST}}");
        strip(&mut raw, &mut resolved);
        let p = &resolved["kaltura"]["session"]["privileges"];
        assert_eq!(p["default"], "privacycontext:c");
        assert_eq!(p["video"], "");
        assert_eq!(p["meeting"], "enableentitlement");
        assert_eq!(
            raw["kaltura"]["session"]["privileges"]["default"],
            "privacycontext:c"
        );
        assert_eq!(raw["kaltura"]["session"]["privileges"]["video"], "");
        assert!(refusals(&resolved).is_empty());
    }

    #[test]
    fn operator_lists_combine_and_are_checked() {
        let op: OperatorKaltura = serde_json::from_value(json!({
            "privileges": {"default": "a:1", "video": "v:1"},
            "guilds": {"7": {"privileges": {"default": "b:2"}, "privacy_contexts": ["club"]}}
        }))
        .unwrap();
        op.check("plugins.json").unwrap();
        assert_eq!(op.lists_for(Some("7")).default, "a:1,b:2");
        assert_eq!(op.lists_for(Some("8")).default, "a:1");
        assert_eq!(op.lists_for(None).video, "v:1");
        assert!(op.context_bound(Some("7"), "club"));
        assert!(!op.context_bound(Some("8"), "club"));
        let bad: OperatorKaltura = serde_json::from_value(json!({"guilds": {"x": {}}})).unwrap();
        assert!(
            bad.check("plugins.json")
                .unwrap_err()
                .contains("kaltura.guilds.x")
        );
        let bad: OperatorKaltura =
            serde_json::from_value(json!({"privileges": {"default": "a b"}})).unwrap();
        assert!(
            bad.check("plugins.json")
                .unwrap_err()
                .contains("kaltura.privileges.default")
        );
    }
}
