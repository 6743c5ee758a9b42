//! The functions a rule can call. Each one reaches only the current run (its guild, its
//! config, its storage): there is no argument that names another guild.
//!
//! - `notify(channel, text_or_map)`: post to a channel (id or `#name`), at most
//!   `messages_per_run` per run.
//! - `reply(text_or_map)`, `reply(text_or_map, private)`: answer the command (on_command).
//! - `kv_get(key)`, `kv_set(key, value)`: the guild's rule storage.
//! - `template(text, map)`: `{{name}}` filled from the map.
//! - `config(path)`: the guild's configuration at a dotted path (`()` when unset), as
//!   written (operator placeholders unfilled).
//! - `kaltura_entry(id)`, `kaltura_search(query)`, `kaltura_search(query, limit)`,
//!   `kaltura_latest(limit)`: Kaltura reads as the guild's rules identity.
//! - `subscriptions(user_id)`: what a member subscribed to by DM in this guild
//!   (`[#{what, name}]`), read only.
//! - top level only: `command(name, description)`, `command(name, description, options)`,
//!   `schedule(cron)`.

use std::str::FromStr;

use rhai::{Array, Dynamic, Engine, EvalAltResult, Map};
use serde_json::Value;

use super::effects::{Effect, message_from};
use super::run::{CommandDecl, OptionDecl, Run, current};
use crate::discord::command_versions::Deprecation;
use crate::events::template::render_limited;
use crate::kaltura::KalturaError;

type Res<T> = Result<T, Box<EvalAltResult>>;

/// The plugin-kv namespace the rules of every guild share; the scope is always the run's
/// guild.
pub const KV_NAMESPACE: &str = "rules";

pub fn to_json(v: &Dynamic) -> Result<Value, String> {
    rhai::serde::from_dynamic::<Value>(v).map_err(|e| format!("cannot convert the value: {e}"))
}

pub fn to_dynamic(v: &Value) -> Dynamic {
    rhai::serde::to_dynamic(v).unwrap_or(Dynamic::UNIT)
}

fn no_effects_while_declaring(run: &Run, what: &str) -> Result<(), String> {
    if run.declaring.is_some() {
        return Err(format!(
            "{what}() can only be called inside a hook (fn on_kaltura_event(ev) {{ ... }}), not at the top level"
        ));
    }
    Ok(())
}

fn notify(channel: &str, msg: Dynamic) -> Res<()> {
    current(|run| {
        no_effects_while_declaring(run, "notify")?;
        let channel = channel.trim();
        if channel.is_empty() {
            return Err("notify(): the channel is empty (an id or #name)".into());
        }
        let sent = run
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Notify { .. }))
            .count();
        if sent >= run.limits.messages_per_run {
            return Err(format!(
                "notify(): message limit reached ({} per run)",
                run.limits.messages_per_run
            ));
        }
        let message = message_from(&to_json(&msg)?).map_err(|e| format!("notify(): {e}"))?;
        run.effects.push(Effect::Notify {
            channel: channel.to_string(),
            message,
        });
        Ok(())
    })
}

fn reply_with(msg: Dynamic, ephemeral: bool) -> Res<()> {
    current(|run| {
        no_effects_while_declaring(run, "reply")?;
        if !run.can_reply {
            return Err("reply() only works in on_command(ctx); use notify() elsewhere".into());
        }
        if run
            .effects
            .iter()
            .any(|e| matches!(e, Effect::Reply { .. }))
        {
            return Err("reply(): a command is answered once".into());
        }
        let message = message_from(&to_json(&msg)?).map_err(|e| format!("reply(): {e}"))?;
        run.effects.push(Effect::Reply { message, ephemeral });
        Ok(())
    })
}

fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > 200 {
        return Err("a key is 1 to 200 characters".into());
    }
    Ok(())
}

fn kv_get(key: &str) -> Res<Dynamic> {
    current(|run| {
        check_key(key)?;
        if let Some(v) = run.kv_pending.get(key) {
            return Ok(to_dynamic(v));
        }
        let Some(kv) = run.kv.clone() else {
            return Ok(Dynamic::UNIT);
        };
        run.host_call("kv_get")?;
        let raw = run
            .wait("kv_get", kv.get(KV_NAMESPACE, &run.guild_id, key))?
            .map_err(|e| format!("kv_get(): {e}"))?;
        Ok(raw
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .map(|v| to_dynamic(&v))
            .unwrap_or(Dynamic::UNIT))
    })
}

fn kv_set(key: &str, value: Dynamic) -> Res<()> {
    current(|run| {
        no_effects_while_declaring(run, "kv_set")?;
        check_key(key)?;
        let v = to_json(&value)?;
        if v.to_string().len() > 64 * 1024 {
            return Err("kv_set(): a value is at most 64 KiB as JSON".into());
        }
        run.kv_pending.insert(key.to_string(), v.clone());
        run.effects
            .retain(|e| !matches!(e, Effect::KvSet { key: k, .. } if k == key));
        run.effects.push(Effect::KvSet {
            key: key.to_string(),
            value: v,
        });
        Ok(())
    })
}

/// Fills the template, stopping at the run's string limit (a few KB of template repeating
/// a large value must not allocate gigabytes before any check).
fn template(text: &str, vars: Map) -> Res<String> {
    let v = to_json(&Dynamic::from_map(vars)).map_err(|e| Box::new(EvalAltResult::from(e)))?;
    let max = current(|run| Ok(run.limits.max_string_size))?;
    render_limited(text, &v, max)
        .map_err(|_| format!("template(): the result is larger than allowed ({max} bytes)").into())
}

/// The guild's config as written: `{{PLACEHOLDER}}`s stay unfilled, so a value only the
/// operator may know cannot be moved (by a guild admin) to where a rule reads it.
fn config(path: &str) -> Res<Dynamic> {
    current(|run| {
        let mut node = &run.config.raw;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            node = match node {
                Value::Array(a) => part
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| a.get(i))
                    .unwrap_or(&Value::Null),
                other => other.get(part).unwrap_or(&Value::Null),
            };
        }
        Ok(to_dynamic(node))
    })
}

/// Runs a Kaltura read for the current run: one host call, bounded by what is left of the
/// run's deadline ([`super::run::Run::wait`]).
fn kaltura_read<T, F>(what: &str, f: impl FnOnce(&super::run::KalturaAccess) -> F) -> Res<Option<T>>
where
    F: Future<Output = Result<T, KalturaError>>,
{
    current(|run| {
        let k = run
            .kaltura
            .clone()
            .map_err(|why| format!("{what}(): {why}"))?;
        run.host_call(what)?;
        let out = run.wait(what, f(&k))?;
        match out {
            Ok(v) => Ok(Some(v)),
            Err(KalturaError::NotFound(_)) => Ok(None),
            Err(e) if e.is_transient() => {
                Err(format!("{what}(): {}", crate::kaltura::error::TRY_AGAIN))
            }
            Err(e) => Err(format!("{what}(): {e}")),
        }
    })
}

/// What a member of this guild subscribed to by DM (`/kaltura-notify`): `[#{what, name}]`,
/// read only, this guild only.
fn subscriptions(user_id: &str) -> Res<Array> {
    current(|run| {
        let Some(p) = run.preferences.clone() else {
            return Ok(Array::new());
        };
        run.host_call("subscriptions")?;
        let subs = run
            .wait("subscriptions", p.list(&run.guild_id, user_id))?
            .map_err(|e| format!("subscriptions(): {e}"))?;
        Ok(subs
            .iter()
            .map(|s| to_dynamic(&serde_json::json!({"what": s.topic.key(), "name": s.value})))
            .collect())
    })
}

fn kaltura_entry(id: &str) -> Res<Dynamic> {
    let id = id.to_string();
    let v = kaltura_read("kaltura_entry", |k| {
        let (kaltura, caller) = (k.kaltura.clone(), k.caller.clone());
        async move { kaltura.entry(&caller, &id).await }
    })?;
    Ok(
        v.map(|v| to_dynamic(&serde_json::to_value(v).unwrap_or_default()))
            .unwrap_or(Dynamic::UNIT),
    )
}

fn search(query: &str, limit: i64) -> Res<Array> {
    let q = query.to_string();
    let limit = limit.clamp(1, 50) as u32;
    let found = kaltura_read("kaltura_search", |k| {
        let (kaltura, caller) = (k.kaltura.clone(), k.caller.clone());
        async move { kaltura.search(&caller, &q, limit, 1).await }
    })?;
    Ok(found
        .map(|r| {
            r.videos
                .iter()
                .map(|v| to_dynamic(&serde_json::to_value(v).unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default())
}

fn declaring(f: impl FnOnce(&mut super::run::Declarations) -> Result<(), String>) -> Res<()> {
    current(|run| match run.declaring.as_mut() {
        Some(d) => f(d),
        None => {
            Err("command() and schedule() belong at the top level of a rule, not in a hook".into())
        }
    })
}

fn valid_command_name(name: &str) -> bool {
    (1..=32).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Discord's limits on one command's options.
const MAX_OPTIONS: usize = 25;

/// `deprecated: #{replacement: "/vote", sunset: "2027-03-01"}` of a command or an option.
fn deprecation(
    m: &Value,
    command: &str,
    option: Option<&str>,
    at: &str,
) -> Result<Option<Deprecation>, String> {
    if m.is_null() {
        return Ok(None);
    }
    if !m.is_object() {
        return Err(format!(
            "{at}: `deprecated` is a map like #{{replacement: \"/vote\", sunset: \"2027-03-01\"}}"
        ));
    }
    let field = |k: &str| m[k].as_str().unwrap_or_default();
    Deprecation::new(command, option, field("replacement"), field("sunset"), at).map(Some)
}

fn command(name: &str, description: &str, options: Array) -> Res<()> {
    declare_command(name, description, options, Dynamic::UNIT)
}

/// `command(name, description, options, #{replacement, sunset})`: with `deprecated`, a
/// command on its way out (`()` for one that is not).
fn declare_command(name: &str, description: &str, options: Array, deprecated: Dynamic) -> Res<()> {
    let command_name = name;
    let mut deprecations = Vec::new();
    let whole = to_json(&deprecated).map_err(|e| Box::new(EvalAltResult::from(e)))?;
    deprecations.extend(deprecation(
        &whole,
        name,
        None,
        &format!("command(): /{name}"),
    )?);
    if options.len() > MAX_OPTIONS {
        return Err(format!(
            "command(): {} options; Discord allows {MAX_OPTIONS}",
            options.len()
        )
        .into());
    }
    let mut opts: Vec<OptionDecl> = Vec::new();
    for (i, o) in options.iter().enumerate() {
        let m = to_json(o).map_err(|e| Box::new(EvalAltResult::from(e)))?;
        let field = |k: &str| m[k].as_str().unwrap_or_default().to_string();
        let kind = if m["type"].is_null() {
            "string".to_string()
        } else {
            field("type")
        };
        if !matches!(
            kind.as_str(),
            "string" | "integer" | "number" | "boolean" | "user" | "channel" | "role"
        ) {
            return Err(format!("command(): option {} has type `{kind}` (string, integer, number, boolean, user, channel, role)", i + 1).into());
        }
        let name = field("name");
        if !valid_command_name(&name) {
            return Err(format!(
                "command(): option {} needs a lower-case `name` of 1-32 letters, digits, - or _",
                i + 1
            )
            .into());
        }
        if opts.iter().any(|o| o.name == name) {
            return Err(format!("command(): option `{name}` is declared twice").into());
        }
        let required = m["required"].as_bool().unwrap_or(false);
        if required && opts.iter().any(|o| !o.required) {
            return Err(format!(
                "command(): required option `{name}` comes after an optional one (Discord wants required options first)"
            )
            .into());
        }
        deprecations.extend(deprecation(
            &m["deprecated"],
            command_name,
            Some(&name),
            &format!("command(): option `{name}`"),
        )?);
        let description = field("description");
        if description.chars().count() > 100 {
            return Err(
                format!("command(): option `{name}`'s description is over 100 characters").into(),
            );
        }
        opts.push(OptionDecl {
            description: if description.is_empty() {
                name.clone()
            } else {
                description
            },
            name,
            kind,
            required,
        });
    }
    let (name, description) = (name.to_string(), description.to_string());
    declaring(|d| {
        if !valid_command_name(&name) {
            return Err(format!(
                "command(): `{name}` is not a command name (1-32 lower-case letters, digits, - or _)"
            ));
        }
        if !(1..=100).contains(&description.chars().count()) {
            return Err("command(): the description is 1 to 100 characters".into());
        }
        if d.commands.iter().any(|c| c.name == name) {
            return Err(format!("command(): /{name} is declared twice"));
        }
        d.commands.push(CommandDecl {
            name,
            description,
            options: opts,
            deprecations,
        });
        Ok(())
    })
}

fn schedule(expr: &str) -> Res<()> {
    let expr = expr.trim().to_string();
    declaring(|d| {
        if expr.split_whitespace().count() != 5 {
            return Err(format!(
                "schedule(): `{expr}` needs 5 fields: minute hour day-of-month month day-of-week (UTC)"
            ));
        }
        let cron =
            croner::Cron::from_str(&expr).map_err(|e| format!("schedule(): `{expr}`: {e}"))?;
        d.schedules.push((expr, cron));
        Ok(())
    })
}

pub fn register(e: &mut Engine) {
    e.register_fn("notify", notify);
    e.register_fn("reply", |m: Dynamic| reply_with(m, false));
    e.register_fn("reply", reply_with);
    e.register_fn("kv_get", kv_get);
    e.register_fn("kv_set", kv_set);
    e.register_fn("template", template);
    e.register_fn("config", config);
    e.register_fn("kaltura_entry", kaltura_entry);
    e.register_fn("subscriptions", subscriptions);
    e.register_fn("kaltura_search", |q: &str| search(q, 5));
    e.register_fn("kaltura_search", search);
    e.register_fn("kaltura_latest", |n: i64| search("", n));
    e.register_fn("command", |n: &str, d: &str| command(n, d, Array::new()));
    e.register_fn("command", command);
    e.register_fn("command", declare_command);
    e.register_fn("schedule", schedule);
}
