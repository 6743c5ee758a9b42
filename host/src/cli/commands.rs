//! `kdhost commands sync [--dry-run]`: register the loaded plugins' and rules' commands with
//! Discord when they changed since the last sync.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Result, bail};
use arc_swap::ArcSwap;

use crate::app::plugins::{PluginWiring, plugins};
use crate::config::guild::GuildConfigs;
use crate::config::settings::{DiscordSettings, ServeOptions};
use crate::discord::commands::{self, SyncOutcome, SyncTarget};
use crate::discord::rest::DiscordRest;
use crate::plugins::builtin;
use crate::plugins::caps::Capabilities;
use crate::plugins::grants::GrantsConfig;
use crate::store::backend::Durable;

/// Loads the plugins as `serve` would, then syncs (or, with `dry_run`, only diffs).
pub async fn sync(
    opts: &ServeOptions,
    discord: DiscordSettings,
    dry_run: bool,
) -> Result<ExitCode> {
    let (_, stores) = Durable::open(&opts.data, opts.database_url.as_deref()).await?;
    // The guild files are checked as `serve` would; a manifest reaches no capability.
    GuildConfigs::load(&opts.config)?;
    let grants = GrantsConfig::load(&opts.config.join("plugins.json"))?;
    let registry = plugins(PluginWiring {
        caps: Capabilities::offline(),
        grants: Arc::new(ArcSwap::from_pointee(grants)),
        memory_mib: None,
        cache: Some(opts.data.join("cache")),
    })?;
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
    let changes = commands::diff(&target.last_synced(stores.meta.as_ref()).await, &desired);
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
    match commands::sync(&rest, stores.meta.as_ref(), &target, &set, &extra).await? {
        SyncOutcome::Unchanged => println!("nothing sent: Discord already has these commands"),
        SyncOutcome::Synced { commands } => println!("synced {commands} commands"),
    }
    Ok(ExitCode::SUCCESS)
}
