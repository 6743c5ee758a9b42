//! `kdhost script check FILE` and `kdhost script test FILE --event EVENT.json`: a rule
//! compiled and run in the real sandbox, offline. A test is a dry run: it prints the effects
//! the rule would produce as JSON and sends nothing, stores nothing.
//!
//! The event file is a Kaltura notification body as Kaltura sends it (JSON), or names a hook:
//! `{"hook": "on_kaltura_event", "event": {...}}`, `{"hook": "on_member_join", "member":
//! {...}}`, `{"hook": "on_scheduled_event", "event": {...}}`, `{"hook": "on_schedule"}`,
//! `{"hook": "on_command", "command": "latest", "options": {...}, "user": {...}}`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::config::guild::GuildConfigs;
use crate::kaltura::notification::{classify, decode};
use crate::kaltura::{Kaltura, KalturaSettings};
use crate::scripts::Rules;
use crate::scripts::rules::{HOOKS, Rule};
use crate::scripts::sandbox::Limits;

/// The rule's name as the host would call it: `global/x.rhai` or `guilds/<id>/x.rhai` by
/// where the file is, else `global/<file>`.
fn rule_name(file: &Path) -> (String, Option<String>) {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "rule.rhai".into());
    let parent = file
        .parent()
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned());
    let grand = file
        .parent()
        .and_then(|p| p.parent())
        .and_then(|p| p.file_name())
        .map(|p| p.to_string_lossy().into_owned());
    match (grand.as_deref(), parent) {
        (Some("guilds"), Some(g)) if g.chars().all(|c| c.is_ascii_digit()) => {
            (format!("guilds/{g}/{name}"), Some(g))
        }
        _ => (format!("global/{name}"), None),
    }
}

fn compile(rules: &Rules, file: &Path) -> Result<std::result::Result<Rule, String>> {
    let source =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let (name, guild) = rule_name(file);
    Ok(rules.compile(&name, guild, &source))
}

/// Compiles a rule and prints what it declares; exit code 1 with `file:line:col` if it
/// does not compile.
pub fn check(file: &Path) -> Result<ExitCode> {
    let rules = Rules::new(Path::new("."), Limits::default(), None, None);
    match compile(&rules, file)? {
        Ok(rule) => {
            println!("ok {}", rule.name);
            println!(
                "  hooks: {}",
                rule.hooks.iter().copied().collect::<Vec<_>>().join(", ")
            );
            for c in &rule.declarations.commands {
                let opts: Vec<String> = c
                    .options
                    .iter()
                    .map(|o| format!("{}:{}{}", o.name, o.kind, if o.required { "" } else { "?" }))
                    .collect();
                println!(
                    "  command: /{} {} — {}",
                    c.name,
                    opts.join(" "),
                    c.description
                );
            }
            for (expr, _) in &rule.declarations.schedules {
                println!("  schedule: {expr} (UTC)");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The hook and its argument for an event file.
fn hook_and_arg(
    event: &Value,
    kaltura: Option<&KalturaSettings>,
    guild: &str,
) -> Result<(&'static str, Option<Value>)> {
    let hook = event["hook"].as_str().unwrap_or("on_kaltura_event");
    let Some((hook, _)) = HOOKS.iter().find(|(h, _)| *h == hook) else {
        anyhow::bail!(
            "`hook` is `{hook}`; the hooks are {}",
            HOOKS.iter().map(|(h, _)| *h).collect::<Vec<_>>().join(", ")
        );
    };
    let arg = match *hook {
        "on_kaltura_event" => {
            let body = if event["hook"].is_null() {
                event
            } else {
                &event["event"]
            };
            let raw = body.to_string();
            let n = decode("application/json", raw.as_bytes()).map_err(anyhow::Error::msg)?;
            let ev = classify(&n, raw.as_bytes()).context(
                "the event is not a Kaltura notification this host handles (see docs/rules.md)",
            )?;
            Some(ev.vars(kaltura))
        }
        "on_member_join" => {
            let mut m = event["member"].clone();
            m["guild_id"] = json!(guild);
            Some(m)
        }
        "on_scheduled_event" => Some(event["event"].clone()),
        "on_command" => Some(json!({
            "command": event["command"],
            "options": if event["options"].is_object() { event["options"].clone() } else { json!({}) },
            "user": event["user"],
            "channel_id": event["channel_id"],
            "guild_id": guild,
        })),
        _ => None,
    };
    Ok((hook, arg))
}

/// Runs one hook of a rule for an event and prints the effects as JSON.
pub async fn test(
    file: &Path,
    event_file: &Path,
    guild: &str,
    config_dir: &Path,
) -> Result<ExitCode> {
    let text = std::fs::read_to_string(event_file)
        .with_context(|| format!("reading {}", event_file.display()))?;
    let event: Value = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: line {}, column {}: {e}",
            event_file.display(),
            e.line(),
            e.column()
        )
    })?;
    let settings = KalturaSettings::from_env().map_err(anyhow::Error::msg)?;
    let kaltura = settings.clone().map(|s| Arc::new(Kaltura::new(s)));
    let kv = crate::store::Stores::in_memory()?.kv;
    // A dry run reads Kaltura as a rule would (the operator's grants are not consulted).
    let kaltura = kaltura.map(|account| crate::scripts::rules::RulesKaltura {
        account,
        grants: Default::default(),
    });
    let rules = Rules::new(Path::new("."), Limits::default(), Some(kv), kaltura);
    let rule = match compile(&rules, file)? {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let guilds = if config_dir.is_dir() {
        GuildConfigs::load(config_dir)?
    } else {
        GuildConfigs::default()
    };
    let cfg = guilds.guild(Some(guild));
    let (hook, arg) = hook_and_arg(&event, settings.as_ref(), guild)?;
    if !rule.hooks.contains(hook) {
        anyhow::bail!("{} has no fn {hook}", rule.name);
    }
    let (rule_name, g) = (rule.name.clone(), guild.to_string());
    let rules = Arc::new(rules);
    let outcome =
        tokio::task::spawn_blocking(move || rules.run_one(&rule, &g, &cfg, hook, arg.as_ref()))
            .await?;
    let (effects, error) = match &outcome.result {
        Ok(e) => (serde_json::to_value(e)?, Value::Null),
        Err(e) => (json!([]), json!(e.message)),
    };
    let report = json!({
        "rule": rule_name,
        "guild": guild,
        "hook": hook,
        "effects": effects,
        "printed": outcome.printed,
        "error": error,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(if outcome.result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `kdhost script import [DIR]`: every rule under `DIR/global` and `DIR/guilds/<id>`,
/// compiled and checked as the host loads them, put into the shared database (audited as
/// the operator's); every instance runs them within a second. Nothing is stored unless
/// every rule is valid; rules already in the database and not in `DIR` stay.
pub async fn import(dir: &Path, database_url: Option<String>) -> Result<ExitCode> {
    use crate::store::postgres::PostgresStore;
    let url = super::db::required_url(database_url)?;
    if !dir.is_dir() {
        anyhow::bail!("{}: no such folder", dir.display());
    }
    let store = PostgresStore::connect(&url).await?;
    let imported = import_rules(&store, dir).await?;
    for (name, version) in &imported {
        println!("imported {name} (version {version})");
    }
    println!(
        "{} rule(s) in {}; instances run them at once",
        imported.len(),
        store.target()
    );
    Ok(ExitCode::SUCCESS)
}

/// Puts the rules of a rules folder into the shared database if every one is valid;
/// returns each rule's name and new version.
pub async fn import_rules(
    store: &crate::store::postgres::PostgresStore,
    dir: &Path,
) -> Result<Vec<(String, i64)>> {
    use crate::store::audit::{NewAuditEntry, OPERATOR_WIDE};
    let rules = Rules::new(dir, Limits::default(), None, None);
    let problems = rules.load_all();
    if !problems.is_empty() {
        anyhow::bail!(
            "{}: not imported: {} rule(s) invalid:\n{}",
            dir.display(),
            problems.len(),
            problems.join("\n")
        );
    }
    let mut imported = Vec::new();
    for rule in rules.all() {
        let guild = rule.guild.as_deref().unwrap_or(OPERATOR_WIDE);
        let entry = NewAuditEntry::by_operator(
            guild,
            "script.import",
            &rule.name,
            Some(Value::String(rule.source.clone())),
        );
        let version = store
            .put_rule(&rule.name, rule.guild.as_deref(), Some(&rule.source), entry)
            .await?;
        imported.push((rule.name.clone(), version));
    }
    Ok(imported)
}
