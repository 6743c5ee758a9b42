//! `kdhost plugin test FILE.wasm --command '/name opt:value'`: the plugin author's debugger.
//! Runs the component in the real sandbox against in-process Discord and Kaltura stand-ins
//! and prints the response and every host call it made (capability, arguments, result).

use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arc_swap::ArcSwap;
use serde_json::{Value, json};
use testkit::{DiscordStandIn, KalturaOptions, KalturaStandIn, StandInOptions};

use crate::app::plugins::{PluginWiring, plugins};
use crate::config::guild::GuildConfigs;
use crate::config::secret::Secret;
use crate::delivery::Outbox;
use crate::discord::commands::option_type;
use crate::discord::guilds::GuildDirectory;
use crate::discord::model::Interaction;
use crate::discord::response::{self, Answering};
use crate::discord::rest::DiscordRest;
use crate::kaltura::Kaltura;
use crate::plugins::bindings::types::{CommandDef, OptionDef, OptionKind};
use crate::plugins::caps::{Capabilities, DiscordCap};
use crate::plugins::grants::GrantsConfig;
use crate::plugins::trace::{HostCall, HostCallRecorder};
use crate::plugins::{Call, CallScope, LoadedPlugin};
use crate::store::Stores;
use crate::store::memory::MemoryTokens;
use crate::store::tokens::InteractionTokens;

static RECORDER: OnceLock<HostCallRecorder> = OnceLock::new();

/// Logging for this command: host calls into the recorder, everything else at `warn`.
pub fn init_tracing() {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let recorder = RECORDER.get_or_init(HostCallRecorder::default).clone();
    let calls = Targets::new().with_target("kdhost::plugins::bindings", LevelFilter::TRACE);
    // A global filter too: without it every TRACE callsite (cranelift's included) would be
    // asked each time, and compiling a large component would take minutes.
    let global = calls.clone().with_default(LevelFilter::WARN);
    let subscriber = tracing_subscriber::registry()
        .with(global)
        .with(recorder.with_filter(calls))
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(LevelFilter::WARN),
        );
    // Not `try_init`: that would also route the `log` crate (cranelift logs at TRACE while
    // compiling) through this subscriber, and compiling a large component took a minute.
    let _ = tracing::subscriber::set_global_default(subscriber);
}

pub struct TestArgs<'a> {
    pub file: &'a Path,
    pub command: &'a str,
    pub guild: &'a str,
    pub user: &'a str,
    pub http_hosts: &'a [String],
    pub json: bool,
}

fn option_value(def: &OptionDef, raw: &str) -> Result<Value> {
    let bad = |what: &str| anyhow::anyhow!("option `{}` wants {what}, not `{raw}`", def.name);
    Ok(match def.kind {
        OptionKind::Integer => json!(raw.parse::<i64>().map_err(|_| bad("a whole number"))?),
        OptionKind::Number => json!(raw.parse::<f64>().map_err(|_| bad("a number"))?),
        OptionKind::Boolean => match raw {
            "true" | "yes" => json!(true),
            "false" | "no" => json!(false),
            _ => return Err(bad("true or false")),
        },
        _ => json!(raw),
    })
}

/// `/name [group] [sub] opt:value opt:"two words"` → the command's name and Discord's
/// option JSON, typed by the manifest.
pub fn parse_command(line: &str, commands: &[CommandDef]) -> Result<(String, Value)> {
    let words = shlex::split(line.trim())
        .with_context(|| format!("cannot split `{line}` (an unclosed quote?)"))?;
    let mut words = words.into_iter();
    let name = words
        .next()
        .map(|w| w.trim_start_matches('/').to_string())
        .filter(|w| !w.is_empty())
        .context("--command needs a command, e.g. '/poll question:\"Lunch?\"'")?;
    let def = commands.iter().find(|c| c.name == name).with_context(|| {
        let names: Vec<String> = commands.iter().map(|c| format!("/{}", c.name)).collect();
        format!("the plugin has no /{name}; it has {}", names.join(", "))
    })?;
    let rest: Vec<String> = words.collect();
    let (path, pairs): (Vec<&String>, Vec<&String>) = rest.iter().partition(|w| !w.contains(':'));
    let defs = match path.as_slice() {
        [] => &def.options,
        [sub] | [_, sub] => {
            &def.subcommands
                .iter()
                .find(|s| &s.name == *sub)
                .with_context(|| format!("/{name} has no sub-command `{sub}`"))?
                .options
        }
        _ => bail!("too many words without `:` in `{line}`"),
    };
    let mut options = Vec::new();
    for pair in pairs {
        let (k, v) = pair.split_once(':').expect("partitioned on ':'");
        let d = defs.iter().find(|d| d.name == k).with_context(|| {
            let names: Vec<&str> = defs.iter().map(|d| d.name.as_str()).collect();
            format!(
                "/{name} has no option `{k}` (options: {})",
                names.join(", ")
            )
        })?;
        options.push(json!({"name": k, "type": option_type(d.kind), "value": option_value(d, v)?}));
    }
    if let Some(missing) = defs
        .iter()
        .find(|d| d.required && !options.iter().any(|o| o["name"] == d.name.as_str()))
    {
        bail!("/{name} needs the option `{}`", missing.name);
    }
    let mut options = Value::Array(options);
    for (i, word) in path.iter().rev().enumerate() {
        // The innermost word is a sub-command (type 1), an outer one its group (type 2).
        let kind = if i == 0 { 1 } else { 2 };
        options = json!([{"name": word, "type": kind, "options": options}]);
    }
    Ok((name, options))
}

pub async fn run(args: TestArgs<'_>) -> Result<ExitCode> {
    let bytes =
        std::fs::read(args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let discord = DiscordStandIn::start("127.0.0.1:0".parse()?, StandInOptions::default()).await?;
    let kaltura = KalturaStandIn::start("127.0.0.1:0".parse()?, KalturaOptions::default()).await?;
    let tokens = Arc::new(MemoryTokens::default());
    let caps = stand_in_capabilities(&discord, &kaltura, tokens.clone())?;
    // Everything the plugin requests is granted here; http only to the hosts given.
    let registry = plugins(PluginWiring {
        caps: Arc::new(caps),
        grants: Arc::new(ArcSwap::from_pointee(GrantsConfig::everything(
            args.http_hosts,
        ))),
        memory_mib: None,
        cache: None,
    })?;
    let plugin = registry
        .try_load(bytes, args.file)
        .await
        .map_err(|why| anyhow::anyhow!("{}: refused: {why}", args.file.display()))?;
    let (name, options) = parse_command(args.command, &plugin.manifest.commands)?;
    let payload = discord.command(&name, options, args.guild, args.user, &[]);
    let ix: Interaction = serde_json::from_value(payload)?;
    let input = ix.command_input().map_err(anyhow::Error::msg)?;
    tokens.insert(&ix.id, &ix.token, &plugin.name).await;
    let recorder = RECORDER.get_or_init(HostCallRecorder::default).clone();
    recorder.calls.lock().unwrap().clear();
    let started = Instant::now();
    let out = plugin
        .call(
            &registry.runtime,
            CallScope::from(&ix),
            Call::Command(input),
        )
        .await;
    let report = Report {
        plugin: &plugin,
        command: args.command,
        elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
        calls: recorder.calls.lock().unwrap().clone(),
        rendered: response::render(&plugin.name, Answering::Command, out),
    };
    report.print(args.json)?;
    Ok(if report.rendered.problem.is_none() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The capabilities a plugin gets under test: Discord and Kaltura are the stand-ins,
/// storage is in memory, channel messages go through an outbox as in the host.
fn stand_in_capabilities(
    discord: &DiscordStandIn,
    kaltura: &KalturaStandIn,
    tokens: Arc<MemoryTokens>,
) -> Result<Capabilities> {
    let rest = Arc::new(DiscordRest::new(
        &discord.base_url,
        discord.application_id(),
        Some(Secret::new("standin-bot-token")),
    ));
    let defaults: Value = serde_json::from_str(include_str!("../../../../config/default.json"))?;
    let stores = Stores::in_memory()?;
    let guilds = Arc::new(GuildConfigs::with_default(defaults));
    let directory = Arc::new(GuildDirectory::new(Some(rest.clone())));
    let outbox = Outbox::new(
        stores.outbox.clone(),
        "plugin-test",
        "plugintest".into(),
        Some(rest.clone()),
        directory.clone(),
        guilds.clone(),
        Default::default(),
    );
    outbox.start();
    let discord_cap = DiscordCap {
        rest: Some(rest),
        tokens,
        directory,
        guilds: guilds.clone(),
        outbox,
    };
    let kaltura = Kaltura::new(crate::cli::standin::kaltura_settings(kaltura)?);
    Ok(Capabilities::new(
        stores.kv,
        guilds,
        discord_cap,
        Some(Arc::new(kaltura)),
        Default::default(),
    ))
}

/// What one test call did: its host calls, its answer, how long it took.
struct Report<'a> {
    plugin: &'a LoadedPlugin,
    command: &'a str,
    elapsed_ms: f64,
    calls: Vec<HostCall>,
    rendered: response::Rendered,
}

impl Report<'_> {
    fn print(&self, as_json: bool) -> Result<()> {
        let (p, elapsed_ms) = (self.plugin, self.elapsed_ms);
        let response = self.rendered.callback.to_json();
        let problem = &self.rendered.problem;
        if as_json {
            println!(
                "{}",
                json!({"plugin": &*p.name, "version": p.manifest.version, "contract": p.contract,
                       "command": self.command, "ok": problem.is_none(), "problem": problem, "elapsed_ms": elapsed_ms,
                       "host_calls": self.calls, "response": response})
            );
            return Ok(());
        }
        println!(
            "{} {} (contract {}) ← {}",
            p.name, p.manifest.version, p.contract, self.command
        );
        println!("host calls ({}):", self.calls.len());
        for (i, c) in self.calls.iter().enumerate() {
            println!(
                "  {}. {}.{}({}) → {}",
                i + 1,
                c.capability,
                c.function,
                cut(&c.args),
                cut(&c.result)
            );
        }
        if let Some(p) = problem {
            println!("problem: {p}");
        }
        println!("response after {elapsed_ms:.1} ms:");
        println!("{}", serde_json::to_string_pretty(&response)?);
        Ok(())
    }
}

fn cut(s: &str) -> String {
    const MAX: usize = 300;
    match s.chars().count() {
        n if n <= MAX => s.to_string(),
        n => format!(
            "{} ({n} chars)",
            crate::events::template::truncate(s, MAX + 1)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::types::{CommandKind, SubcommandDef};

    use crate::plugins::manifest::test_option as opt;

    #[test]
    fn command_lines_are_typed_by_the_manifest() {
        let poll = CommandDef {
            name: "poll".into(),
            description: "d".into(),
            kind: CommandKind::ChatInput,
            options: vec![
                opt("question", OptionKind::Text, true),
                opt("hours", OptionKind::Integer, false),
            ],
            subcommands: vec![SubcommandDef {
                name: "close".into(),
                description: "d".into(),
                group: None,
                options: vec![opt("id", OptionKind::Text, true)],
            }],
            default_member_permissions: None,
            dm: false,
            nsfw: false,
        };
        let defs = [poll];
        let (name, o) = parse_command("/poll question:\"Lunch at 12?\" hours:2", &defs).unwrap();
        assert_eq!(name, "poll");
        assert_eq!(
            o,
            json!([{"name": "question", "type": 3, "value": "Lunch at 12?"}, {"name": "hours", "type": 4, "value": 2}])
        );
        let (_, o) = parse_command("/poll close id:7", &defs).unwrap();
        assert_eq!(o[0]["type"], 1);
        assert_eq!(o[0]["options"][0]["value"], "7");
        let e = parse_command("/poll hours:two question:x", &defs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("`hours` wants a whole number"), "{e}");
        let e = parse_command("/poll", &defs).unwrap_err().to_string();
        assert!(e.contains("needs the option `question`"), "{e}");
        let e = parse_command("/nope", &defs).unwrap_err().to_string();
        assert!(e.contains("has no /nope; it has /poll"), "{e}");
    }
}
