//! Step 1, storage: the durable stores, the guild configuration, the operator's grants and
//! the runtime state instances share.

use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;

use crate::config::guild::GuildConfigs;
use crate::config::settings::{ServeOptions, Settings};
use crate::plugins::grants::GrantsConfig;
use crate::store::backend::Durable;
use crate::store::{SharedState, Stores};

pub struct Storage {
    pub stores: Stores,
    /// Which backend holds them.
    pub durable: Durable,
    pub guilds: Arc<GuildConfigs>,
    /// `config/plugins.json`, hot-reloaded.
    pub grants: Arc<ArcSwap<GrantsConfig>>,
    pub shared: SharedState,
}

pub async fn storage(opts: &ServeOptions, settings: &Settings) -> Result<Storage> {
    let (durable, stores) = Durable::open(&opts.data, opts.database_url.as_deref()).await?;
    let guilds = Arc::new(
        GuildConfigs::load(&opts.config)
            .with_context(|| format!("guild configuration in {}", opts.config.display()))?,
    );
    let grants = GrantsConfig::load(&opts.config.join("plugins.json"))?;
    let shared = SharedState::in_memory(grants.rate_limits(), settings.delivery.global_rate);
    Ok(Storage {
        stores,
        durable,
        guilds,
        grants: Arc::new(ArcSwap::from_pointee(grants)),
        shared,
    })
}
