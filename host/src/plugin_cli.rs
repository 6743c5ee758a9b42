//! `kdhost plugin new|check` and `kdhost commands sync`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;

use crate::config::guild::GuildConfigs;
use crate::config::settings::{DiscordSettings, ServeOptions};
use crate::discord::commands::{self, SyncOutcome, SyncTarget};
use crate::discord::rest::DiscordRest;
use crate::plugin_build::Lang;
use crate::plugins::grants::{CapabilityName, GrantsConfig};
use crate::plugins::services::Services;
use crate::plugins::{Registry, Runtime, Source, builtin, loader};
use crate::store::Store;

/// Where the guest SDK lives: `KD_PLUGIN_API`, else a `plugin-api/` above the working
/// directory, else the one this binary was built from.
fn sdk_path() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("KD_PLUGIN_API") {
        return Some(PathBuf::from(p));
    }
    let cwd = std::env::current_dir().ok()?;
    let found = cwd
        .ancestors()
        .map(|d| d.join("plugin-api"))
        .find(|p| p.join("Cargo.toml").exists());
    found.or_else(|| {
        let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
        built
            .join("Cargo.toml")
            .exists()
            .then(|| built.canonicalize().unwrap_or(built))
    })
}

/// Scaffolds a plugin project in Rust, JavaScript or Python.
pub fn new(name: &str, dir: Option<PathBuf>, lang: Lang) -> Result<ExitCode> {
    if !regex::Regex::new(r"^[a-z][a-z0-9_-]{0,31}$")
        .unwrap()
        .is_match(name)
    {
        bail!(
            "plugin name `{name}` must be 1-32 lowercase letters, digits, `-` or `_`, starting with a letter"
        );
    }
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir)?.next().is_some() {
        bail!("{} already exists and is not empty", dir.display());
    }
    if lang != Lang::Rust {
        let files = match lang {
            Lang::Js => crate::plugin_templates::js(name),
            _ => crate::plugin_templates::python(name),
        };
        write_files(&dir, files.iter().map(|(p, t)| (p.as_str(), t.as_str())))?;
        crate::plugin_build::write_contract(&dir)?;
        let (language, setup) = match lang {
            Lang::Js => ("JavaScript", "npm install"),
            _ => ("Python", "pip install -r requirements.txt"),
        };
        println!(
            "Created the {language} plugin `{name}` in {}",
            dir.display()
        );
        println!("  set up: cd {} && {setup}", dir.display());
        println!("  build:  kdhost plugin build {}", dir.display());
        println!(
            "  try it: kdhost plugin test {}/{}.wasm --command '/{name}'",
            dir.display(),
            crate::plugin_templates::world_name(name)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let sdk = sdk_path()
        .context("cannot find the plugin SDK (plugin-api/): set KD_PLUGIN_API to its folder")?;
    let sdk = sdk.canonicalize().unwrap_or(sdk);
    let files = scaffold(name, &sdk);
    write_files(&dir, files.iter().map(|(p, t)| (*p, t.as_str())))?;
    println!("Created plugin `{name}` in {}", dir.display());
    println!("  build:  cd {} && cargo build --release", dir.display());
    println!(
        "  output: target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!(
        "  check:  kdhost plugin check target/wasm32-wasip2/release/{}.wasm",
        name.replace('-', "_")
    );
    println!("  run:    copy the .wasm into the host's plugins folder; it loads within a second");
    Ok(ExitCode::SUCCESS)
}

fn write_files<'a>(dir: &Path, files: impl Iterator<Item = (&'a str, &'a str)>) -> Result<()> {
    for (rel, text) in files {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap())?;
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The files of a new plugin crate.
pub fn scaffold(name: &str, sdk: &Path) -> Vec<(&'static str, String)> {
    let cmd = name.replace('_', "-");
    vec![
        (
            "Cargo.toml",
            format!(
                r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
kd-plugin = {{ path = {sdk:?} }}

[profile.release]
opt-level = "s"
strip = true

# A plugin is its own workspace, wherever it is created.
[workspace]
"#,
                sdk = sdk.display().to_string()
            ),
        ),
        (
            ".cargo/config.toml",
            "[build]\ntarget = \"wasm32-wasip2\"\n".into(),
        ),
        (".gitignore", "target/\n".into()),
        (
            "src/lib.rs",
            format!(
                r#"//! The `{name}` kaltura-discord plugin.

use kd_plugin::prelude::*;

struct Plugin_;

impl Plugin for Plugin_ {{
    fn manifest() -> Manifest {{
        ManifestBuilder::new("{name}", env!("CARGO_PKG_VERSION"), "Describe your plugin")
            .command(CommandBuilder::new("{cmd}", "Say hello").option(OptionBuilder::text("name", "Who to greet")))
            .build()
    }}

    fn on_command(cmd: CommandInput) -> Result<Response, String> {{
        let who = cmd.text("name").unwrap_or("world").to_string();
        let embed = EmbedBuilder::new().title(format!("Hello, {{who}}!")).color(0x5865F2).build();
        Ok(MessageBuilder::new()
            .embed(embed)
            .button(ButtonBuilder::primary("again", "Again"))
            .into_response())
    }}

    fn on_component(input: ComponentInput) -> Result<Response, String> {{
        match input.custom_id.as_str() {{
            "again" => Ok(reply_ephemeral("Hello again!")),
            other => Err(format!("unknown button {{other}}")),
        }}
    }}
}}

export_plugin!(Plugin_);
"#
            ),
        ),
        (
            "README.md",
            format!(
                "# {name}\n\nA kaltura-discord plugin.\n\n```sh\ncargo build --release\nkdhost plugin check target/wasm32-wasip2/release/{file}.wasm\ncp target/wasm32-wasip2/release/{file}.wasm /path/to/host/plugins/\n```\n\n\
                 Needs the wasm32-wasip2 target once: `rustup target add wasm32-wasip2`.\n\
                 Ask the operator to grant the capabilities your manifest requests (config/plugins.json).\n",
                file = name.replace('-', "_")
            ),
        ),
    ]
}

/// Loads and validates one component, then prints what it is.
pub async fn check(file: &Path, as_json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let runtime = Runtime::new(Arc::new(Services::offline()))?;
    // What the operator will grant is theirs to decide: checking assumes everything.
    let grants = GrantsConfig::everything(&[]);
    let p = match loader::load(&runtime, bytes, Source::File(file.into()), &grants, None).await {
        Ok(p) => p,
        Err(reason) => {
            if as_json {
                println!(
                    "{}",
                    json!({"ok": false, "file": file.display().to_string(), "error": reason})
                );
            } else {
                eprintln!("{}: refused: {reason}", file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let caps: Vec<&str> = p
        .manifest
        .capabilities
        .iter()
        .map(|c| CapabilityName::from(*c).as_str())
        .collect();
    if as_json {
        let commands: Vec<_> = p
            .manifest
            .commands
            .iter()
            .map(commands::command_json)
            .collect();
        let out = json!({
            "ok": true, "file": file.display().to_string(), "name": p.name.as_ref(),
            "version": p.manifest.version, "description": p.manifest.description,
            "contract": format!("kaltura-discord:plugin@{}", p.contract),
            "commands": commands, "events": p.manifest.events, "capabilities": caps, "sha256": p.hash,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} {} — {}",
            p.name, p.manifest.version, p.manifest.description
        );
        println!("  contract:     kaltura-discord:plugin@{}", p.contract);
        println!(
            "  capabilities: {}",
            if caps.is_empty() {
                "none".into()
            } else {
                caps.join(", ")
            }
        );
        if !p.manifest.events.is_empty() {
            println!("  events:       {}", p.manifest.events.join(", "));
        }
        println!("  commands:");
        for c in &p.manifest.commands {
            println!("    /{} — {}", c.name, c.description);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the plugins as `serve` would, then syncs (or, with `dry_run`, only diffs).
pub async fn commands_sync(
    opts: &ServeOptions,
    discord: DiscordSettings,
    dry_run: bool,
) -> Result<ExitCode> {
    let store = Arc::new(Store::open(&opts.data)?);
    let services = Arc::new(Services::new(
        store.clone(),
        None,
        Arc::new(GuildConfigs::load(&opts.config)?),
    ));
    let runtime = Arc::new(Runtime::new(services)?);
    let registry = Registry::new(
        runtime,
        GrantsConfig::load(&opts.config.join("plugins.json"))?,
        Some(opts.data.join("cache")),
    );
    for f in registry
        .load_all(
            builtin::all(),
            opts.plugins.is_dir().then_some(opts.plugins.as_path()),
        )
        .await
    {
        eprintln!("refused {f}");
    }
    let target = SyncTarget {
        dev_guild: discord.dev_guild.clone(),
        activities: discord.activities,
    };
    let set = registry.snapshot();
    let rules = crate::scripts::Rules::new(&opts.scripts, Default::default(), None, None);
    for problem in rules.load_all() {
        eprintln!("rule not loaded: {problem}");
    }
    let extra = crate::discord::host_commands::extra_commands(Some(&rules));
    let desired = target.desired(&set, &extra);
    let changes = commands::diff(&target.last_synced(&store), &desired);
    let scope = target
        .dev_guild
        .as_ref()
        .map(|g| format!("guild {g}"))
        .unwrap_or_else(|| "global".into());
    if changes.is_empty() {
        println!(
            "{} commands ({scope}): unchanged since the last sync",
            desired.len()
        );
    } else {
        println!(
            "{} commands ({scope}), changes since the last sync:",
            desired.len()
        );
        for line in &changes {
            println!("  {line}");
        }
    }
    if dry_run {
        return Ok(ExitCode::SUCCESS);
    }
    let (Some(app), Some(token)) = (&discord.application_id, &discord.bot_token) else {
        bail!("syncing needs DISCORD_APPLICATION_ID and DISCORD_BOT_TOKEN (or use --dry-run)");
    };
    let rest = DiscordRest::new(&discord.api_base, app, Some(token.clone()));
    match commands::sync(&rest, &store, &target, &set, &extra).await? {
        SyncOutcome::Unchanged => println!("nothing sent: Discord already has these commands"),
        SyncOutcome::Synced { commands } => println!("synced {commands} commands"),
    }
    Ok(ExitCode::SUCCESS)
}
