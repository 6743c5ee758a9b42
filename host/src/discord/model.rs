//! Incoming interactions as Discord sends them (HTTP body or gateway INTERACTION_CREATE),
//! and their conversion into the contract's input records.

use serde::Deserialize;
use serde_json::Value;

use crate::plugins::bindings::types::{
    CommandInput, ComponentInput, Context, ModalInput, OptionInput, OptionValue, User as WitUser,
};

/// Whether `id` looks like a Discord id (a snowflake: 1 to 20 digits).
pub fn is_snowflake(id: &str) -> bool {
    (1..=20).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
}

pub const PING: u8 = 1;
pub const APPLICATION_COMMAND: u8 = 2;
pub const MESSAGE_COMPONENT: u8 = 3;
pub const AUTOCOMPLETE: u8 = 4;
pub const MODAL_SUBMIT: u8 = 5;

#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub username: String,
    pub global_name: Option<String>,
    pub avatar: Option<String>,
}

/// The `member` object of an interaction, as Discord sends it.
#[derive(Debug, Clone, Deserialize)]
pub struct InteractionMember {
    pub user: Option<User>,
    #[serde(default)]
    pub roles: Vec<String>,
    pub permissions: Option<String>,
}

/// A member as the host knows them: who, in which guild, with which roles and
/// permissions (from an interaction, Discord's member list, or a service account).
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub user_id: String,
    pub display_name: String,
    pub guild_id: Option<String>,
    pub roles: Vec<String>,
    /// Discord's permission bitset (decimal string), as the interaction carried it.
    pub permissions: Option<String>,
}

impl Member {
    pub fn has_admin_permission(&self) -> bool {
        use super::permissions::{may_manage_guild, parse};
        may_manage_guild(parse(self.permissions.as_deref()))
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Interaction {
    pub id: String,
    #[serde(default)]
    pub application_id: String,
    #[serde(rename = "type")]
    pub kind: u8,
    #[serde(default)]
    pub data: Value,
    pub guild_id: Option<String>,
    pub channel_id: Option<String>,
    pub member: Option<InteractionMember>,
    pub user: Option<User>,
    #[serde(default)]
    pub token: String,
    pub locale: Option<String>,
    pub message: Option<Value>,
}

impl Interaction {
    /// The invoker's display name (global name, else user name).
    pub fn display_name(&self) -> String {
        self.invoker()
            .map(|u| u.global_name.clone().unwrap_or_else(|| u.username.clone()))
            .unwrap_or_default()
    }

    /// The invoker as a member of the interaction's guild.
    pub fn acting_member(&self) -> Member {
        Member {
            user_id: self.invoker().map(|u| u.id.clone()).unwrap_or_default(),
            display_name: self.display_name(),
            guild_id: self.guild_id.clone(),
            roles: self.roles().to_vec(),
            permissions: self.permissions().map(String::from),
        }
    }

    /// The invoker's permission bitset, as Discord sent it (guilds only).
    pub fn permissions(&self) -> Option<&str> {
        self.member.as_ref().and_then(|m| m.permissions.as_deref())
    }

    /// The invoking user: `member.user` in guilds, `user` in DMs.
    pub fn invoker(&self) -> Option<&User> {
        self.member
            .as_ref()
            .and_then(|m| m.user.as_ref())
            .or(self.user.as_ref())
    }

    pub fn roles(&self) -> &[String] {
        self.member
            .as_ref()
            .map(|m| m.roles.as_slice())
            .unwrap_or_default()
    }

    /// The command name of command and autocomplete interactions.
    pub fn command_name(&self) -> Option<&str> {
        self.data["name"].as_str()
    }

    /// Discord's command type (1 chat input, 2 user, 3 message).
    pub fn command_kind(&self) -> u8 {
        self.data["type"].as_u64().unwrap_or(1) as u8
    }

    pub fn custom_id(&self) -> Option<&str> {
        self.data["custom_id"].as_str()
    }

    pub fn context(&self) -> Result<Context, String> {
        let u = self.invoker().ok_or("the interaction has no user")?;
        Ok(Context {
            interaction_id: self.id.clone(),
            guild_id: self.guild_id.clone(),
            channel_id: self.channel_id.clone(),
            user: WitUser {
                id: u.id.clone(),
                username: u.username.clone(),
                global_name: u.global_name.clone(),
                avatar: u.avatar.clone(),
            },
            roles: self.roles().to_vec(),
            permissions: self.member.as_ref().and_then(|m| m.permissions.clone()),
            locale: self.locale.clone(),
        })
    }

    /// Command or autocomplete input: sub-command groups flattened into `path`.
    pub fn command_input(&self) -> Result<CommandInput, String> {
        let name = self
            .command_name()
            .ok_or("the command has no name")?
            .to_string();
        let mut path = Vec::new();
        let mut options = self.data["options"].as_array().cloned().unwrap_or_default();
        // Descend through a sub-command group (type 2) and a sub-command (type 1).
        while let Some(first) = options.first().cloned() {
            match first["type"].as_u64() {
                Some(1 | 2) => {
                    path.push(first["name"].as_str().unwrap_or_default().to_string());
                    options = first["options"].as_array().cloned().unwrap_or_default();
                }
                _ => break,
            }
        }
        let options = options
            .iter()
            .map(option_input)
            .collect::<Result<Vec<_>, _>>()?;
        // User and message commands carry their target as an option.
        let mut options = options;
        if let Some(target) = self.data["target_id"].as_str() {
            options.push(OptionInput {
                name: "target".into(),
                value: OptionValue::Id(target.into()),
                focused: false,
            });
        }
        Ok(CommandInput {
            name,
            path,
            options,
            context: self.context()?,
        })
    }

    pub fn component_input(&self, plugin_custom_id: &str) -> Result<ComponentInput, String> {
        Ok(ComponentInput {
            custom_id: plugin_custom_id.to_string(),
            component_type: self.data["component_type"].as_u64().unwrap_or(0) as u8,
            values: self.data["values"]
                .as_array()
                .map(|v| {
                    v.iter()
                        .filter_map(|s| s.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            message_id: self
                .message
                .as_ref()
                .and_then(|m| m["id"].as_str().map(String::from)),
            context: self.context()?,
        })
    }

    pub fn modal_input(&self, plugin_custom_id: &str) -> Result<ModalInput, String> {
        let mut fields = Vec::new();
        for row in self.data["components"].as_array().into_iter().flatten() {
            for c in row["components"].as_array().into_iter().flatten() {
                if let (Some(id), Some(v)) = (c["custom_id"].as_str(), c["value"].as_str()) {
                    fields.push((id.to_string(), v.to_string()));
                }
            }
        }
        Ok(ModalInput {
            custom_id: plugin_custom_id.to_string(),
            fields,
            context: self.context()?,
        })
    }
}

fn option_input(o: &Value) -> Result<OptionInput, String> {
    let name = o["name"]
        .as_str()
        .ok_or("an option has no name")?
        .to_string();
    let v = &o["value"];
    let value = match (o["type"].as_u64(), v) {
        // While typing (autocomplete) numbers arrive as the partial text.
        (_, Value::String(s)) if matches!(o["type"].as_u64(), Some(3 | 4 | 10)) => {
            OptionValue::Text(s.clone())
        }
        (Some(4), Value::Number(n)) => {
            OptionValue::Integer(n.as_i64().ok_or(format!("option {name}: not an integer"))?)
        }
        (Some(10), Value::Number(n)) => OptionValue::Number(n.as_f64().unwrap_or_default()),
        (Some(5), Value::Bool(b)) => OptionValue::Boolean(*b),
        (Some(6..=9 | 11), Value::String(s)) => OptionValue::Id(s.clone()),
        (t, _) => {
            return Err(format!(
                "option {name}: unexpected type {t:?} with value {v}"
            ));
        }
    };
    Ok(OptionInput {
        name,
        value,
        focused: o["focused"].as_bool().unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrator_or_manage_server_is_a_guild_admin() {
        let m = |p: &str| Member {
            permissions: Some(p.into()),
            ..Default::default()
        };
        assert!(m("8").has_admin_permission());
        assert!(m("32").has_admin_permission());
        assert!(!m("2048").has_admin_permission());
    }
    use serde_json::json;

    fn ix(data: Value) -> Interaction {
        serde_json::from_value(json!({
            "id": "1", "application_id": "2", "type": 2, "token": "t", "guild_id": "3",
            "member": {"user": {"id": "4", "username": "ann"}, "roles": ["5"], "permissions": "8"},
            "data": data
        }))
        .unwrap()
    }

    #[test]
    fn subcommand_groups_flatten_into_a_path() {
        let i = ix(
            json!({"name": "poll", "options": [{"name": "admin", "type": 2, "options": [
            {"name": "close", "type": 1, "options": [{"name": "id", "type": 4, "value": 7}]}]}]}),
        );
        let c = i.command_input().unwrap();
        assert_eq!(c.path, vec!["admin", "close"]);
        assert!(matches!(c.options[0].value, OptionValue::Integer(7)));
        assert_eq!(c.context.user.id, "4");
        assert_eq!(c.context.roles, vec!["5"]);
    }

    #[test]
    fn option_types_map_to_values() {
        let i = ix(json!({"name": "x", "options": [
            {"name": "s", "type": 3, "value": "hi"}, {"name": "b", "type": 5, "value": true},
            {"name": "n", "type": 10, "value": 1.5}, {"name": "u", "type": 6, "value": "99"},
            {"name": "partial", "type": 4, "value": "1", "focused": true}]}));
        let c = i.command_input().unwrap();
        assert!(matches!(&c.options[0].value, OptionValue::Text(s) if s == "hi"));
        assert!(matches!(c.options[1].value, OptionValue::Boolean(true)));
        assert!(matches!(c.options[2].value, OptionValue::Number(n) if n == 1.5));
        assert!(matches!(&c.options[3].value, OptionValue::Id(s) if s == "99"));
        assert!(c.options[4].focused);
    }
}
