//! Commands the host answers itself, not a plugin: the guild configuration commands
//! (`/kaltura-config-view|update|reset`, guild admins only) and the commands guild rules
//! declare (run in the rule sandbox; their `reply` is the answer, their `notify` goes to
//! the outbox).

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::command_versions;
use super::model::Interaction;
use super::response::{Callback, EPHEMERAL};
use crate::config::admin::{ChangeError, ConfigAdmin, SECTIONS};
use crate::config::policy::Policy;
use crate::delivery::Outbox;
use crate::scripts::Rules;
use crate::scripts::effects::Effect;
use crate::scripts::run::CommandDecl;

/// The host's answer (an interaction callback body), possibly after a while.
pub type HostCall = std::pin::Pin<Box<dyn Future<Output = Callback> + Send>>;

pub struct HostCommands {
    pub admin: Arc<ConfigAdmin>,
    pub rules: Arc<Rules>,
    pub outbox: Arc<Outbox>,
    /// `/kaltura-privacy` and `/kaltura-privacy-member`.
    pub privacy: Arc<crate::privacy::Privacy>,
    /// `/kaltura-notify`.
    pub notify: crate::notify::commands::NotifyCommand,
}

fn section_choices(with_all: bool) -> Value {
    let mut list: Vec<Value> = SECTIONS
        .iter()
        .map(|s| json!({"name": s, "value": s}))
        .collect();
    if with_all {
        list.push(json!({"name": "all", "value": "all"}));
    }
    Value::Array(list)
}

/// The config commands as Discord's JSON (registered with the plugins' commands).
pub fn definitions() -> Vec<Value> {
    // Discord shows the config commands to server managers by default (the host checks
    // again, with the configured roles, on every use); permissions are a decimal string.
    let managers = super::permissions::MANAGE_GUILD.to_string();
    let base = |name: &str, description: &str, options: Value| {
        json!({"type": 1, "name": name, "description": description,
            "default_member_permissions": managers, "contexts": [0],
            "integration_types": [0], "nsfw": false, "options": options})
    };
    let mut defs = vec![
        base(
            "kaltura-config-view",
            "Show this server's kaltura-discord configuration",
            json!([{"type": 3, "name": "section", "description": "Only this section", "required": false, "choices": section_choices(false)}]),
        ),
        base(
            "kaltura-config-update",
            "Change one setting of this server's configuration",
            json!([
                {"type": 3, "name": "section", "description": "The section", "required": true, "choices": section_choices(false)},
                {"type": 3, "name": "key", "description": "The setting, e.g. channel or types.live_started", "required": true},
                {"type": 3, "name": "value", "description": "The new value (JSON for lists and maps)", "required": true}
            ]),
        ),
        base(
            "kaltura-config-reset",
            "Reset a section (or everything) to the defaults",
            json!([
                {"type": 3, "name": "section", "description": "The section, or all", "required": true, "choices": section_choices(true)},
                {"type": 5, "name": "confirm", "description": "Really reset", "required": true}
            ]),
        ),
    ];
    defs.extend(crate::privacy::commands::definitions());
    defs.push(crate::notify::commands::definition());
    defs
}

/// A rule's command as Discord's JSON.
pub fn rule_command_json(c: &CommandDecl) -> Value {
    let option_type = |k: &str| match k {
        "integer" => 4,
        "boolean" => 5,
        "user" => 6,
        "channel" => 7,
        "role" => 8,
        "number" => 10,
        _ => 3,
    };
    let mut options: Vec<Value> = c
        .options
        .iter()
        .map(|o| json!({"type": option_type(&o.kind), "name": o.name, "description": o.description, "required": o.required}))
        .collect();
    // Discord wants required options first.
    options.sort_by_key(|o| !o["required"].as_bool().unwrap_or(false));
    let mut v = json!({"type": 1, "name": c.name, "description": c.description,
        "default_member_permissions": null, "contexts": [0], "integration_types": [0], "nsfw": false});
    if !options.is_empty() {
        v["options"] = Value::Array(options);
    }
    v
}

/// Commands besides the plugins': the host's own and those guild rules declare.
#[derive(Debug, Clone, Default)]
pub struct ExtraCommands {
    /// Registered with the plugins' commands (globally, or in the dev guild).
    pub global: Vec<Value>,
    /// Per guild: the commands of that guild's own rules.
    pub guilds: BTreeMap<String, Vec<Value>>,
}

/// The host's config commands and the global rules' commands (registered with the
/// plugins'), and each guild's own rules' commands.
pub fn extra_commands(rules: Option<&Rules>) -> ExtraCommands {
    let mut extra = ExtraCommands {
        global: definitions(),
        ..Default::default()
    };
    if let Some(r) = rules {
        // As registered today: retired ones left out, deprecated ones marked.
        let today = command_versions::today();
        let registered = |c: &CommandDecl| {
            command_versions::registered(rule_command_json(c), &c.deprecations, today)
        };
        extra
            .global
            .extend(r.commands(None).iter().filter_map(registered));
        for g in r.guild_ids() {
            let list: Vec<Value> = r.commands(Some(&g)).iter().filter_map(registered).collect();
            if !list.is_empty() {
                extra.guilds.insert(g, list);
            }
        }
    }
    extra
}

fn reply(text: &str) -> Callback {
    Callback::ephemeral(text)
}

fn option<'a>(ix: &'a Interaction, name: &str) -> Option<&'a Value> {
    ix.data["options"]
        .as_array()?
        .iter()
        .find(|o| o["name"] == name)
        .map(|o| &o["value"])
}

impl HostCommands {
    /// Whether the host answers this command in this guild (plugins come first).
    pub fn owns(&self, guild: Option<&str>, name: &str) -> bool {
        crate::privacy::commands::owns(name)
            || name == crate::notify::commands::COMMAND
            || name.starts_with("kaltura-config-")
                && definitions().iter().any(|d| d["name"] == name)
            || guild.is_some_and(|g| self.rules.command_owner(g, name).is_some())
    }

    /// The answer to a host command. Guild policy (`commands.<name>`) applies as for
    /// plugin commands; rate limits are the dispatcher's.
    pub fn run(self: &Arc<Self>, ix: Interaction) -> HostCall {
        let me = self.clone();
        Box::pin(async move {
            let name = ix.command_name().unwrap_or_default();
            if crate::privacy::commands::owns(name) {
                return me.privacy.command(&ix, &me.admin).await;
            }
            let Some(guild) = ix.guild_id.clone() else {
                return reply("This command works in a server, not in direct messages.");
            };
            let name = ix.command_name().unwrap_or_default().to_string();
            let cfg = me.admin.guilds.guild(Some(&guild));
            // `plugins.rules` / `plugins.host` switch these off like a plugin's commands.
            let owner = if name.starts_with("kaltura-config-")
                || name == crate::notify::commands::COMMAND
            {
                "host"
            } else {
                "rules"
            };
            if let Err(denied) = Policy::of(&cfg.typed).may_run(owner, Some(&name), ix.roles()) {
                return reply(&denied.to_string());
            }
            if name == crate::notify::commands::COMMAND {
                me.notify.run(&ix).await
            } else if name.starts_with("kaltura-config-") {
                me.config_command(&guild, &name, &ix).await
            } else {
                me.rule_command(&guild, &name, &ix).await
            }
        })
    }

    async fn config_command(&self, guild: &str, name: &str, ix: &Interaction) -> Callback {
        let who = ix.acting_member();
        let section = option(ix, "section")
            .and_then(Value::as_str)
            .map(String::from);
        let action = name.trim_start_matches("kaltura-").replace('-', ".");
        let target = section.clone().unwrap_or_else(|| "all".into());
        if let Err(e) = self.admin.authorize(guild, &who, &action, &target).await {
            return reply(&e.to_string());
        }
        let show = |e: ChangeError| reply(&format!("❌ {e}"));
        match name {
            "kaltura-config-view" => match self.admin.view(guild, section.as_deref()) {
                Ok(v) => {
                    let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                    let title = section.as_deref().unwrap_or("configuration");
                    if text.len() > 1800 {
                        let cut: String = text.chars().take(1700).collect();
                        reply(&format!(
                            "**{title}** (first part; the whole of it: `GET /api/v1/guilds/{guild}/config`)\n```json\n{cut}\n```"
                        ))
                    } else {
                        reply(&format!("**{title}**\n```json\n{text}\n```"))
                    }
                }
                Err(e) => show(e),
            },
            "kaltura-config-update" => {
                let key = option(ix, "key")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let value = option(ix, "value")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let section = section.unwrap_or_default();
                match self.admin.update(guild, &who, &section, key, value).await {
                    Ok((before, after)) => reply(&format!(
                        "✅ `{section}.{key}` is now `{after}` (was `{before}`). It applies now."
                    )),
                    Err(e) => show(e),
                }
            }
            "kaltura-config-reset" => {
                if option(ix, "confirm").and_then(Value::as_bool) != Some(true) {
                    return reply("Nothing changed: run it again with `confirm: true` to reset.");
                }
                let s = section.as_deref().filter(|s| *s != "all");
                match self.admin.reset(guild, &who, s).await {
                    Ok(_) => reply(&format!(
                        "✅ {} back to the defaults.",
                        s.map(|s| format!("`{s}` is"))
                            .unwrap_or_else(|| "Everything is".into())
                    )),
                    Err(e) => show(e),
                }
            }
            _ => reply("Unknown configuration command."),
        }
    }

    async fn rule_command(&self, guild: &str, name: &str, ix: &Interaction) -> Callback {
        let Some((rule, decl)) = self.rules.command_owner(guild, name) else {
            return reply(&format!(
                "/{name} is not available right now: its rule is gone."
            ));
        };
        let met = command_versions::met(&decl.deprecations, name, &ix.data);
        match command_versions::verdict(&met, command_versions::today()) {
            Err(retired) => reply(&retired),
            Ok(notices) => {
                let answer = self.run_rule_command(rule, guild, name, ix).await;
                command_versions::with_notices(answer, &notices)
            }
        }
    }

    async fn run_rule_command(
        &self,
        rule: Arc<crate::scripts::rules::Rule>,
        guild: &str,
        name: &str,
        ix: &Interaction,
    ) -> Callback {
        let cfg = self.admin.guilds.guild(Some(guild));
        if !Policy::of(&cfg.typed).rule_runs(&rule.name) {
            return reply(&format!("/{name} is turned off on this server."));
        }
        let mut options = serde_json::Map::new();
        for o in ix.data["options"].as_array().into_iter().flatten() {
            if let Some(n) = o["name"].as_str() {
                options.insert(n.to_string(), o["value"].clone());
            }
        }
        let who = ix.acting_member();
        let ctx = json!({
            "command": name,
            "options": options,
            "user": {"id": who.user_id, "name": who.display_name, "roles": who.roles},
            "channel_id": ix.channel_id,
            "guild_id": guild,
        });
        let (rules, g) = (self.rules.clone(), guild.to_string());
        let outcome = tokio::task::spawn_blocking(move || {
            rules.run_one(&rule, &g, &cfg, "on_command", Some(&ctx))
        })
        .await;
        let Ok(outcome) = outcome else {
            return reply(&format!("/{name} failed."));
        };
        let messages = self.rules.apply(guild, &outcome).await;
        if !messages.is_empty()
            && let Err(e) = self.outbox.enqueue(&messages).await
        {
            tracing::error!(error = %e, "rule messages could not be queued");
        }
        match &outcome.result {
            Err(e) => reply(&format!("/{name} failed: {}", e.message)),
            Ok(effects) => effects
                .iter()
                .find_map(|e| match e {
                    Effect::Reply { message, ephemeral } => {
                        let mut data = message.clone();
                        data["allowed_mentions"] = json!({"parse": []});
                        if *ephemeral {
                            data["flags"] = json!(EPHEMERAL);
                        }
                        Some(Callback::Message(data))
                    }
                    _ => None,
                })
                .unwrap_or_else(|| reply("Done.")),
        }
    }
}
