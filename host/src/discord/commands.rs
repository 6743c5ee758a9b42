//! The command registry: every plugin's commands as Discord's JSON, synced with a bulk
//! overwrite only when the set changed since the last successful sync (Discord allows 200
//! creates per day per guild). The last synced list is persisted to diff against.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::command_versions;
use super::host_commands::{ExtraCommands, extra_commands};
use super::rest::{DiscordRest, RestError};
use crate::plugins::bindings::types::{CommandDef, CommandKind, OptionDef, OptionKind};
use crate::plugins::registry::{PluginSet, Registry};
use crate::scripts::Rules;
use crate::store::Meta;
use crate::telemetry::METRICS;

/// Quiet time after a change before syncing (reloads often come in bursts).
pub const DEBOUNCE: Duration = Duration::from_secs(2);

/// The Activity's entry-point command; a global overwrite must keep it.
pub fn entry_point_command() -> Value {
    json!({
        "name": "launch", "description": "Launch Watch Together", "type": 4, "handler": 2,
        "integration_types": [0, 1], "contexts": [0, 1, 2]
    })
}

/// Discord's option type number of a manifest option kind.
pub fn option_type(k: OptionKind) -> u8 {
    match k {
        OptionKind::Text => 3,
        OptionKind::Integer => 4,
        OptionKind::Boolean => 5,
        OptionKind::User => 6,
        OptionKind::Channel => 7,
        OptionKind::Role => 8,
        OptionKind::Mentionable => 9,
        OptionKind::Number => 10,
        OptionKind::Attachment => 11,
    }
}

fn option_json(o: &OptionDef) -> Value {
    let mut v = json!({"type": option_type(o.kind), "name": o.name, "description": o.description, "required": o.required});
    if !o.choices.is_empty() {
        v["choices"] = o
            .choices
            .iter()
            .map(|c| {
                let value = match &c.value {
                    crate::plugins::bindings::types::ChoiceValue::Text(s) => json!(s),
                    crate::plugins::bindings::types::ChoiceValue::Integer(i) => json!(i),
                    crate::plugins::bindings::types::ChoiceValue::Number(n) => json!(n),
                };
                json!({"name": c.name, "value": value})
            })
            .collect();
    }
    if o.autocomplete {
        v["autocomplete"] = json!(true);
    }
    for (key, val) in [("min_value", o.min_value), ("max_value", o.max_value)] {
        if let Some(x) = val {
            v[key] = json!(x);
        }
    }
    for (key, val) in [("min_length", o.min_length), ("max_length", o.max_length)] {
        if let Some(x) = val {
            v[key] = json!(x);
        }
    }
    v
}

/// One command as Discord's JSON.
pub fn command_json(c: &CommandDef) -> Value {
    let kind = crate::plugins::registry::kind_code(c.kind);
    let mut v = json!({
        "type": kind,
        "name": c.name,
        "description": if c.kind == CommandKind::ChatInput { c.description.as_str() } else { "" },
        "default_member_permissions": c.default_member_permissions,
        "contexts": if c.dm { json!([0, 1, 2]) } else { json!([0]) },
        "integration_types": [0],
        "nsfw": c.nsfw,
    });
    let mut options: Vec<Value> = c.options.iter().map(option_json).collect();
    // Sub-commands without a group first, then each group with its sub-commands.
    let mut groups: Vec<(String, Vec<Value>)> = Vec::new();
    for s in &c.subcommands {
        let sub = json!({"type": 1, "name": s.name, "description": s.description,
            "options": s.options.iter().map(option_json).collect::<Vec<_>>()});
        match &s.group {
            None => options.push(sub),
            Some(g) => match groups.iter_mut().find(|(n, _)| n == g) {
                Some((_, subs)) => subs.push(sub),
                None => groups.push((g.clone(), vec![sub])),
            },
        }
    }
    for (g, subs) in groups {
        options.push(json!({"type": 2, "name": g, "description": g, "options": subs}));
    }
    if !options.is_empty() {
        v["options"] = Value::Array(options);
    }
    v
}

/// Every loaded command as registered today plus `extra`, sorted by (type, name) so the
/// hash is stable. An extra command whose name a plugin already uses is left out (the
/// plugin answers it).
/// Retired commands and options are left out, deprecated ones say so
/// ([`command_versions::registered`]).
pub fn desired_commands(set: &PluginSet, extra: &[Value], with_entry_point: bool) -> Vec<Value> {
    let today = command_versions::today();
    let mut list: Vec<Value> = set
        .plugins
        .values()
        .flat_map(|p| {
            p.manifest.commands.iter().filter_map(|c| {
                command_versions::registered(command_json(c), &p.deprecations, today)
            })
        })
        .collect();
    for e in extra {
        let taken = list
            .iter()
            .any(|c| c["name"] == e["name"] && c["type"] == e["type"]);
        if taken {
            tracing::warn!(command = %e["name"], "a rule's command has the name of a plugin command; the plugin keeps it");
        } else {
            list.push(e.clone());
        }
    }
    if with_entry_point {
        list.push(entry_point_command());
    }
    list.sort_by(|a, b| {
        (a["type"].as_u64(), a["name"].as_str()).cmp(&(b["type"].as_u64(), b["name"].as_str()))
    });
    list
}

pub fn hash(list: &[Value]) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(list).expect("json values serialize"),
    ))
}

/// Human-readable differences, one line per command: `+ /new`, `- /gone`, `~ /changed`.
pub fn diff(old: &[Value], new: &[Value]) -> Vec<String> {
    let key = |v: &Value| format!("{}:{}", v["type"], v["name"].as_str().unwrap_or_default());
    let label = |v: &Value| match v["type"].as_u64() {
        Some(1) => format!("/{}", v["name"].as_str().unwrap_or_default()),
        Some(4) => format!("{} (entry point)", v["name"].as_str().unwrap_or_default()),
        _ => format!("{} (context menu)", v["name"].as_str().unwrap_or_default()),
    };
    let mut lines = Vec::new();
    for n in new {
        match old.iter().find(|o| key(o) == key(n)) {
            None => lines.push(format!("+ {}", label(n))),
            Some(o) if o != n => lines.push(format!("~ {}", label(n))),
            Some(_) => {}
        }
    }
    for o in old {
        if !new.iter().any(|n| key(n) == key(o)) {
            lines.push(format!("- {}", label(o)));
        }
    }
    lines
}

/// Where commands are registered.
#[derive(Debug, Clone)]
pub struct SyncTarget {
    /// `DISCORD_DEV_GUILD_ID`: register in one guild (instant) instead of globally.
    pub dev_guild: Option<String>,
    /// The app has Activities: global syncs must include the entry-point command.
    pub activities: bool,
}

impl SyncTarget {
    fn scope(&self) -> String {
        match &self.dev_guild {
            Some(g) => format!("guild:{g}"),
            None => "global".into(),
        }
    }

    pub fn desired(&self, set: &PluginSet, extra: &ExtraCommands) -> Vec<Value> {
        let mut more = extra.global.clone();
        if let Some(g) = &self.dev_guild {
            more.extend(extra.guilds.get(g).cloned().unwrap_or_default());
        }
        desired_commands(set, &more, self.activities && self.dev_guild.is_none())
    }

    /// The list last synced successfully (empty if never).
    pub async fn last_synced(&self, meta: &dyn Meta) -> Vec<Value> {
        read_json(meta, &format!("commands:{}", self.scope())).await
    }
}

/// A JSON value kept in the meta store; absent or unreadable reads as the default.
async fn read_json<T: serde::de::DeserializeOwned + Default>(meta: &dyn Meta, key: &str) -> T {
    meta.get(key)
        .await
        .ok()
        .flatten()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or_default()
}

#[derive(Debug, PartialEq)]
pub enum SyncOutcome {
    Unchanged,
    Synced { commands: usize },
}

/// Bulk-overwrites the commands if they differ from the last successful sync: the main
/// list (global or dev guild), then each guild whose own rules declare commands (or did at
/// the last sync, so removed ones go away).
pub async fn sync(
    rest: &DiscordRest,
    meta: &dyn Meta,
    target: &SyncTarget,
    set: &PluginSet,
    extra: &ExtraCommands,
) -> Result<SyncOutcome, RestError> {
    let outcome = sync_scope(
        rest,
        meta,
        &target.scope(),
        target.dev_guild.as_deref(),
        target.desired(set, extra),
    )
    .await?;
    let known: Vec<String> = read_json(meta, "commands_rule_guilds").await;
    let mut guilds: Vec<String> = extra.guilds.keys().cloned().collect();
    guilds.extend(known.into_iter().filter(|g| !extra.guilds.contains_key(g)));
    // One guild's refused PUT is that guild's problem: the others are synced anyway, and
    // the failed one stays listed so the next pass tries it again.
    let mut failed = Vec::new();
    for g in &guilds {
        if target.dev_guild.as_deref() == Some(g) {
            continue;
        }
        let mut list = extra.guilds.get(g).cloned().unwrap_or_default();
        list.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        if let Err(e) = sync_scope(rest, meta, &format!("guild:{g}"), Some(g), list).await {
            tracing::warn!(guild = %g, error = %e, "the guild's rule commands were not synced; the other guilds were");
            failed.push(g.clone());
        }
    }
    let mut now: Vec<&String> = extra.guilds.keys().collect();
    now.extend(failed.iter().filter(|g| !extra.guilds.contains_key(*g)));
    let _ = meta
        .set(
            "commands_rule_guilds",
            &serde_json::to_string(&now).expect("json"),
        )
        .await;
    // A count of finished passes: `commands sync` and tests can see a pass happened even
    // when it changed nothing.
    let passes: u64 = read_json(meta, SYNC_PASSES).await;
    let _ = meta.set(SYNC_PASSES, &(passes + 1).to_string()).await;
    match failed.is_empty() {
        true => Ok(outcome),
        false => Err(RestError::Api {
            status: 0,
            code: 0,
            message: format!(
                "rule commands of guild(s) {} were refused; retrying",
                failed.join(", ")
            ),
        }),
    }
}

/// Meta key: how many command sync passes have finished on this data folder.
pub const SYNC_PASSES: &str = "commands_sync_passes";

async fn sync_scope(
    rest: &DiscordRest,
    meta: &dyn Meta,
    scope: &str,
    guild: Option<&str>,
    desired: Vec<Value>,
) -> Result<SyncOutcome, RestError> {
    let h = hash(&desired);
    if meta
        .get(&format!("commands_hash:{scope}"))
        .await
        .ok()
        .flatten()
        .as_deref()
        == Some(h.as_str())
    {
        METRICS
            .command_syncs
            .with_label_values(&["unchanged"])
            .inc();
        return Ok(SyncOutcome::Unchanged);
    }
    let last: Vec<Value> = read_json(meta, &format!("commands:{scope}")).await;
    let changes = diff(&last, &desired);
    let res = rest
        .put_commands(guild, &Value::Array(desired.clone()))
        .await;
    if let Err(e) = res {
        METRICS.command_syncs.with_label_values(&["failed"]).inc();
        return Err(e);
    }
    METRICS.command_syncs.with_label_values(&["synced"]).inc();
    let record = serde_json::to_string(&desired).expect("json");
    let saved = match meta.set(&format!("commands:{scope}"), &record).await {
        Ok(()) => meta.set(&format!("commands_hash:{scope}"), &h).await,
        Err(e) => Err(e),
    };
    if let Err(e) = saved {
        tracing::error!(error = %e, "commands synced but the sync record could not be saved; the next start will sync again");
    }
    tracing::info!(scope, commands = desired.len(), changes = %changes.join(", "), "commands synced with Discord");
    Ok(SyncOutcome::Synced {
        commands: desired.len(),
    })
}

/// How long until the next UTC day begins (when sunsets take effect).
fn until_next_day() -> Duration {
    let now = chrono::Utc::now();
    let next = (now.date_naive() + chrono::Days::new(1))
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
        .and_utc();
    (next - now).to_std().unwrap_or(Duration::from_secs(1))
}

/// Keeps Discord's commands in line with the loaded plugins and rules: syncs at start,
/// then after each change (debounced) and when a new UTC day begins. Failures are retried
/// with backoff.
pub async fn run_sync_loop(
    registry: Arc<Registry>,
    rest: Arc<DiscordRest>,
    meta: Arc<dyn Meta>,
    target: SyncTarget,
    rules: Option<Arc<Rules>>,
    leadership: crate::cluster::Leadership,
) {
    let mut backoff = Duration::from_secs(5);
    let rules_changed = || async {
        match &rules {
            Some(r) => r.changed.notified().await,
            None => std::future::pending().await,
        }
    };
    loop {
        // Once per cluster: the leader syncs (every instance loads the same commands).
        leadership.until_leader().await;
        let extra = extra_commands(rules.as_deref());
        match sync(&rest, meta.as_ref(), &target, &registry.snapshot(), &extra).await {
            Ok(_) => {
                backoff = Duration::from_secs(5);
                tokio::select! {
                    _ = registry.commands_changed.notified() => {}
                    _ = rules_changed() => {}
                    // A sunset may pass: the list is computed again (and synced only if it
                    // changed).
                    _ = tokio::time::sleep(until_next_day()) => {}
                }
                // Let a burst of reloads settle.
                tokio::time::sleep(DEBOUNCE).await;
            }
            Err(e) => {
                tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), "command sync failed");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = registry.commands_changed.notified() => {}
                    _ = rules_changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(300));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_added_removed_and_changed() {
        let a = vec![
            json!({"type": 1, "name": "x", "description": "1"}),
            json!({"type": 1, "name": "y", "description": "1"}),
        ];
        let b = vec![
            json!({"type": 1, "name": "x", "description": "2"}),
            json!({"type": 1, "name": "z", "description": "1"}),
        ];
        assert_eq!(diff(&a, &b), vec!["~ /x", "+ /z", "- /y"]);
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn entry_point_only_in_global_syncs() {
        let set = PluginSet::default();
        let global = SyncTarget {
            dev_guild: None,
            activities: true,
        };
        let guild = SyncTarget {
            dev_guild: Some("1".into()),
            activities: true,
        };
        let none = ExtraCommands::default();
        assert_eq!(global.desired(&set, &none), vec![entry_point_command()]);
        assert!(guild.desired(&set, &none).is_empty());
    }
}
