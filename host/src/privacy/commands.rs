//! The privacy commands the host answers itself: `/kaltura-privacy export|delete` (anyone,
//! in servers and in DMs with the bot; every answer is ephemeral) and
//! `/kaltura-privacy-member erase` (a server's admins: one member's data in that server).
//! Guild policy cannot switch `/kaltura-privacy` off: a person's rights do not depend on
//! a server's settings.

use serde_json::{Value, json};

use super::{Privacy, Requester};
use crate::config::admin::ConfigAdmin;
use crate::discord::model::Interaction;
use crate::discord::response::Callback;
use crate::discord::rest::Upload;

pub const COMMAND: &str = "kaltura-privacy";
pub const MEMBER_COMMAND: &str = "kaltura-privacy-member";

/// Both commands as Discord's JSON.
pub fn definitions() -> Vec<Value> {
    let managers = crate::discord::permissions::MANAGE_GUILD.to_string();
    vec![
        json!({"type": 1, "name": COMMAND,
        "description": "Your data in this bot: get a copy, or delete it",
        "contexts": [0, 1, 2], "integration_types": [0], "nsfw": false,
        "options": [
            {"type": 1, "name": "export", "description": "Get everything this bot keeps about you, as a JSON file (only you see it)"},
            {"type": 1, "name": "delete", "description": "Delete everything this bot keeps about you, in every server",
             "options": [{"type": 5, "name": "confirm", "description": "Really delete it", "required": true}]}
        ]}),
        json!({"type": 1, "name": MEMBER_COMMAND,
        "description": "Erase a member's data in this server (server admins)",
        "default_member_permissions": managers, "contexts": [0], "integration_types": [0], "nsfw": false,
        "options": [
            {"type": 1, "name": "erase", "description": "Erase what this bot keeps about a member in this server",
             "options": [
                {"type": 6, "name": "member", "description": "Whose data", "required": true},
                {"type": 5, "name": "confirm", "description": "Really erase it", "required": true}
             ]}
        ]}),
    ]
}

pub fn owns(name: &str) -> bool {
    name == COMMAND || name == MEMBER_COMMAND
}

/// The subcommand and its options by name.
fn subcommand(ix: &Interaction) -> (&str, Vec<(&str, &Value)>) {
    let Some(sub) = ix.data["options"].as_array().and_then(|o| o.first()) else {
        return ("", Vec::new());
    };
    let options = sub["options"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o["name"].as_str()?, &o["value"])))
        .collect();
    (sub["name"].as_str().unwrap_or_default(), options)
}

fn reply(text: &str) -> Callback {
    Callback::ephemeral(text)
}

fn confirmed(options: &[(&str, &Value)]) -> bool {
    options
        .iter()
        .any(|(n, v)| *n == "confirm" && v.as_bool() == Some(true))
}

/// Discord's largest upload to a server without boosts.
const MAX_FILE: usize = 10 * 1024 * 1024;

impl Privacy {
    /// The answer to a privacy command.
    pub async fn command(&self, ix: &Interaction, admin: &ConfigAdmin) -> Callback {
        let Some(user) = ix.invoker().map(|u| u.id.clone()) else {
            return reply("Discord did not say who you are.");
        };
        let name = ix.command_name().unwrap_or_default();
        let (sub, options) = subcommand(ix);
        match (name, sub) {
            (COMMAND, "export") => self.export_file(&user).await,
            (COMMAND, "delete") => {
                if !confirmed(&options) {
                    return reply("Nothing was deleted: run it again with `confirm: True`.");
                }
                match self.erase(&user, None, Requester::Themselves).await {
                    Ok(e) => reply(&format!(
                        "🗑️ Deleted: {} value(s) plugins kept for you, in every server and in DMs; {} notification subscription(s) and mute(s); your name is gone from {} change(s) in server audit logs (the changes stay, without you); {}. Anything you do from now on is kept again, as before.",
                        e.plugin_values,
                        e.preferences,
                        e.audit_entries,
                        if e.plugins_told {
                            "the plugins were told to drop what they keep elsewhere"
                        } else {
                            "the plugins could not be told yet: ask the operator"
                        }
                    )),
                    Err(e) => {
                        tracing::error!(error = %e, "an erasure failed");
                        reply(
                            "Your data could not be deleted right now (a storage error); nothing was half-deleted that a second try will not finish. Please try again.",
                        )
                    }
                }
            }
            (MEMBER_COMMAND, "erase") => self.erase_member(ix, admin, &options).await,
            _ => reply("Unknown privacy command."),
        }
    }

    async fn export_file(&self, user: &str) -> Callback {
        let export = match self.export(user).await {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "an export failed");
                return reply("Your data could not be read right now; please try again.");
            }
        };
        let bytes = serde_json::to_vec_pretty(&export).expect("exports serialize");
        if bytes.len() > MAX_FILE {
            return reply(&format!(
                "Your data is {} bytes, over what Discord takes as a file: get it from the API instead (`GET /api/v1/me/data`, see docs/privacy.md).",
                bytes.len()
            ));
        }
        let text = format!(
            "📦 Everything this bot keeps about you: {} value(s) from plugins, {} notification subscription(s), {} change(s) you made in server audit logs{}. `not_stored` in the file lists what it holds only briefly.",
            export.plugin_data.len(),
            export.notification_preferences.subscriptions.len(),
            export.audit.len(),
            if export.kaltura_user.is_some() {
                ", and your user in the Kaltura account"
            } else {
                ""
            }
        );
        Callback::Files {
            data: crate::discord::response::ephemeral_message(&text),
            files: vec![Upload {
                filename: format!("kdhost-data-{user}.json"),
                content_type: "application/json".into(),
                bytes,
            }],
        }
    }

    async fn erase_member(
        &self,
        ix: &Interaction,
        admin: &ConfigAdmin,
        options: &[(&str, &Value)],
    ) -> Callback {
        let Some(guild) = ix.guild_id.as_deref() else {
            return reply("This command works in a server.");
        };
        let Some(member) = options
            .iter()
            .find(|(n, _)| *n == "member")
            .and_then(|(_, v)| v.as_str())
        else {
            return reply("Name the member whose data to erase.");
        };
        let who = ix.acting_member();
        if let Err(e) = admin
            .authorize(guild, &who, "privacy.erase", "a member's data")
            .await
        {
            return reply(&e.to_string());
        }
        if !confirmed(options) {
            return reply("Nothing was erased: run it again with `confirm: True`.");
        }
        match self
            .erase(member, Some(guild), Requester::GuildAdmin(&who.user_id))
            .await
        {
            Ok(e) => reply(&format!(
                "🗑️ Erased in this server: {} value(s) plugins kept for <@{member}>, {} notification subscription(s) and mute(s), their name in {} audit entr(ies). Their data in other servers is theirs to delete (`/kaltura-privacy delete`).",
                e.plugin_values, e.preferences, e.audit_entries
            )),
            Err(e) => {
                tracing::error!(error = %e, "a member's erasure failed");
                reply("The member's data could not be erased right now; please try again.")
            }
        }
    }
}
