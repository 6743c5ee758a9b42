//! Everything the host persists, behind one narrow trait per kind of state: plugin kv,
//! the webhook inbox, the delivery outbox, the audit log and small host metadata. Consumers
//! take only the trait they use. The traits are async so a networked backend can serve
//! them without blocking the runtime; `sqlite/` is the embedded default (its blocking calls
//! run on the blocking pool, never on a runtime worker).

use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

pub mod audit;
pub mod backend;
#[cfg(test)]
pub(crate) mod conformance;
pub mod discord_limits;
pub mod inbox;
pub mod kv;
pub mod launches;
pub mod memory;
pub mod meta;
pub mod outbox;
pub mod postgres;
pub mod preferences;
pub mod rates;
pub mod redis;
pub mod retention;
pub mod rooms;
pub mod sqlite;
pub mod tokens;
pub mod voice;

pub use audit::{AuditEntry, AuditLog, NewAuditEntry};
pub use inbox::{Inbox, InboxRow, Processed};
pub use kv::{KvError, KvRow, KvStore};
pub use meta::Meta;
pub use outbox::{Delivery, LaneLease, NewMessage, OutboxCounts, OutboxStore, Queued, Recorded};
pub use preferences::Preferences;

/// Milliseconds since the Unix epoch (the stored timestamps). The host's one wall clock.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch (Kaltura sessions, Discord's signature timestamps, JWTs).
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// The runtime state a cluster must share between instances: interaction tokens for
/// follow-ups, pending Activity launches, who is in voice, the command allowances, the
/// bot's Discord limits and who owns each Activity room. In this process alone, or in
/// Redis (`KD_REDIS_URL`).
#[derive(Clone)]
pub struct SharedState {
    pub tokens: Arc<dyn tokens::InteractionTokens>,
    pub launches: Arc<dyn launches::Launches>,
    pub voice: Arc<dyn voice::VoiceStates>,
    pub rates: Arc<dyn rates::CommandRates>,
    pub discord_limits: Arc<dyn discord_limits::DiscordLimits>,
    pub rooms: Arc<dyn rooms::RoomClaims>,
    /// This process's name where instances share state (room owners, leases).
    pub instance_id: String,
}

impl SharedState {
    /// Everything in this process: command allowances from the operator's `rate_limits`,
    /// bot-authenticated Discord calls paced at `discord_per_second`.
    pub fn in_memory(limits: crate::plugins::grants::RateLimits, discord_per_second: u32) -> Self {
        Self {
            tokens: Arc::new(memory::MemoryTokens::default()),
            launches: Arc::new(memory::MemoryLaunches::default()),
            voice: Arc::new(memory::MemoryVoice::default()),
            rates: Arc::new(memory::MemoryCommandRates::new(
                limits.per_user_per_minute,
                limits.per_guild_per_minute,
            )),
            discord_limits: Arc::new(memory::MemoryDiscordLimits::new(discord_per_second)),
            rooms: Arc::new(memory::MemoryRoomClaims::default()),
            instance_id: uuid::Uuid::new_v4().to_string(),
        }
    }

    /// Shared through Redis: what [`Self::in_memory`] keeps, every instance sees.
    pub fn in_redis(
        redis: redis::Redis,
        limits: crate::plugins::grants::RateLimits,
        discord_per_second: u32,
    ) -> Self {
        Self {
            tokens: Arc::new(redis::RedisTokens::new(redis.clone())),
            launches: Arc::new(redis::RedisLaunches::new(redis.clone())),
            voice: Arc::new(redis::RedisVoice::new(redis.clone())),
            rates: Arc::new(redis::RedisCommandRates::new(
                redis.clone(),
                limits.per_user_per_minute,
                limits.per_guild_per_minute,
            )),
            discord_limits: Arc::new(redis::RedisDiscordLimits::new(
                redis.clone(),
                discord_per_second,
            )),
            rooms: Arc::new(redis::RedisRoomClaims::new(redis)),
            instance_id: uuid::Uuid::new_v4().to_string(),
        }
    }
}

/// One handle per kind of durable state, each possibly from a different backend.
#[derive(Clone)]
pub struct Stores {
    pub kv: Arc<dyn KvStore>,
    pub inbox: Arc<dyn Inbox>,
    pub outbox: Arc<dyn OutboxStore>,
    pub audit: Arc<dyn AuditLog>,
    pub meta: Arc<dyn Meta>,
    /// Personal notification preferences.
    pub preferences: Arc<dyn Preferences>,
}

impl Stores {
    /// SQLite in `DIR/kdhost.sqlite3` (created if missing).
    pub fn sqlite(dir: &Path) -> Result<Self> {
        Ok(Self::all_in(Arc::new(sqlite::SqliteStore::open(dir)?)))
    }

    /// A private in-memory SQLite database (tests, `plugin check`, `plugin test`).
    pub fn in_memory() -> Result<Self> {
        Ok(Self::all_in(Arc::new(sqlite::SqliteStore::in_memory()?)))
    }

    /// Every kind of state from one backend.
    pub fn all_in<B>(backend: Arc<B>) -> Self
    where
        B: KvStore + Inbox + OutboxStore + AuditLog + Meta + Preferences + 'static,
    {
        Self {
            kv: backend.clone(),
            inbox: backend.clone(),
            outbox: backend.clone(),
            audit: backend.clone(),
            meta: backend.clone(),
            preferences: backend,
        }
    }
}
