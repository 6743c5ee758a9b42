//! Step 1, storage: the durable stores, the guild configuration, the operator's grants and
//! the runtime state instances share.

use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;

use crate::config::guild::GuildConfigs;
use crate::config::settings::{ServeOptions, Settings};
use crate::plugins::grants::GrantsConfig;
use crate::store::{SharedState, Stores};

pub struct Storage {
    pub stores: Stores,
    pub guilds: Arc<GuildConfigs>,
    /// `config/plugins.json`, hot-reloaded.
    pub grants: Arc<ArcSwap<GrantsConfig>>,
    pub shared: SharedState,
}

pub fn storage(opts: &ServeOptions, settings: &Settings) -> Result<Storage> {
    let stores = Stores::sqlite(&opts.data)?;
    let guilds = Arc::new(
        GuildConfigs::load(&opts.config)
            .with_context(|| format!("guild configuration in {}", opts.config.display()))?,
    );
    let grants = GrantsConfig::load(&opts.config.join("plugins.json"))?;
    let shared = SharedState::in_memory(grants.rate_limits(), settings.delivery.global_rate);
    Ok(Storage {
        stores,
        guilds,
        grants: Arc::new(ArcSwap::from_pointee(grants)),
        shared,
    })
}
