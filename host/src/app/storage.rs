//! Step 1, storage: the durable stores, the guild configuration, the operator's grants and
//! the runtime state instances share.

use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;

use crate::app::stopping::Stopping;
use crate::cluster::changes::{ChangeFollower, GuildConfigChanges};
use crate::cluster::{Leadership, Membership};
use crate::config::guild::GuildConfigs;
use crate::config::settings::{ServeOptions, Settings};
use crate::plugins::grants::GrantsConfig;
use crate::store::backend::Durable;
use crate::store::redis::Redis;
use crate::store::{SharedState, Stores};

pub struct Storage {
    pub stores: Stores,
    /// Which backend holds them.
    pub durable: Durable,
    pub guilds: Arc<GuildConfigs>,
    /// `config/plugins.json`, hot-reloaded.
    pub grants: Arc<ArcSwap<GrantsConfig>>,
    pub shared: SharedState,
    /// `KD_REDIS_URL`'s connection, when set.
    pub redis: Option<Redis>,
    /// This instance's registration on a shared database (PostgreSQL only).
    pub membership: Option<Membership>,
    /// Whether this instance runs what happens once per cluster.
    pub leadership: Leadership,
    /// Set when the host stops; what holds a lease watches `stopping`.
    pub stop: super::stopping::StopSignal,
    pub stopping: Stopping,
    /// Changes other instances make to what they share (guild configs, rules, plugins),
    /// applied here (PostgreSQL only).
    pub follower: Option<Arc<ChangeFollower>>,
}

pub async fn storage(opts: &ServeOptions, settings: &Settings) -> Result<Storage> {
    let (stop, stopping) = Stopping::new();
    let (durable, stores) = Durable::open(&opts.data, opts.database_url.as_deref()).await?;
    // On a shared database the guild overrides are rows there, followed by every instance.
    let load = match &durable {
        Durable::Postgres(_) => GuildConfigs::load_default_only(&opts.config),
        Durable::Sqlite { .. } => GuildConfigs::load(&opts.config),
    };
    let guilds = Arc::new(
        load.with_context(|| format!("guild configuration in {}", opts.config.display()))?,
    );
    let follower = match &durable {
        Durable::Postgres(pg) => {
            let follower = ChangeFollower::new();
            let configs = GuildConfigChanges {
                store: pg.clone(),
                guilds: guilds.clone(),
            };
            follower
                .follow(Arc::new(configs))
                .await
                .context("reading the guild configuration from the database")?;
            follower.start(pg.clone());
            Some(follower)
        }
        Durable::Sqlite { .. } => None,
    };
    let grants = GrantsConfig::load(&opts.config.join("plugins.json"))?;
    let redis = match opts
        .redis_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        Some(url) => Some(Redis::connect(url).await?),
        None => None,
    };
    let (limits, per_second) = (grants.rate_limits(), settings.delivery.global_rate);
    let shared = match &redis {
        Some(r) => SharedState::in_redis(r.clone(), limits, per_second),
        None => SharedState::in_memory(limits, per_second),
    };
    let (membership, leadership) = match &durable {
        Durable::Postgres(pg) => (
            Some(
                Membership::join(
                    pg.clone(),
                    &shared.instance_id,
                    redis.is_some(),
                    matches!(
                        settings.discord.shards,
                        crate::discord::shards::ShardPlan::Auto { .. }
                    ),
                )
                .await?,
            ),
            Leadership::elect(pg.clone(), &shared.instance_id, stopping.clone()),
        ),
        Durable::Sqlite { .. } => (None, Leadership::Alone),
    };
    Ok(Storage {
        stores,
        durable,
        guilds,
        grants: Arc::new(ArcSwap::from_pointee(grants)),
        shared,
        redis,
        membership,
        leadership,
        follower,
        stop,
        stopping,
    })
}
