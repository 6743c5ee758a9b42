//! Redis for the runtime state instances share (`KD_REDIS_URL`): the Discord limits of the
//! one bot token, command allowances, interaction tokens, pending Activity launches,
//! voice states, Activity room claims and snapshots, and the relay between instances.
//! Redis is coordination, not the truth: each kind keeps working when Redis
//! is away, in the way that is safe for it (see each file), and uses Redis again as soon
//! as it answers (the connection manager reconnects by itself).
//!
//! Every key starts with `kd:`; every time a script compares is Redis's own (`TIME`), so
//! instances whose clocks disagree still share one clock.

use std::time::Duration;

use anyhow::{Context, Result};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

mod discord_limits;
mod launches;
mod rates;
mod rooms;
mod tokens;
mod voice;

pub use discord_limits::RedisDiscordLimits;
pub use launches::RedisLaunches;
pub use rates::RedisCommandRates;
pub use rooms::RedisRoomClaims;
pub use tokens::RedisTokens;
pub use voice::RedisVoice;

/// A call that takes longer than this counts as Redis being away.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// One multiplexed connection, shared (cheap to clone).
#[derive(Clone)]
pub struct Redis {
    conn: ConnectionManager,
    /// For connections of their own (pub/sub).
    client: redis::Client,
    target: String,
}

impl Redis {
    /// Connects to `url` (`redis://[:password@]host:port[/db]`); fails if it does not answer.
    pub async fn connect(url: &str) -> Result<Self> {
        let target = super::postgres::redact(url);
        let client = redis::Client::open(url)
            .with_context(|| format!("KD_REDIS_URL ({target}) is not a Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            // Reconnect attempts never give up for good; each call fails fast meanwhile.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .with_context(|| format!("Redis at {target} is not reachable"))?;
        Ok(Self {
            conn,
            client,
            target,
        })
    }

    /// `redis://host:port` (never a password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// A handle for one call (the connection is multiplexed).
    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// One round trip.
    pub async fn ping(&self) -> Result<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }
}

/// Logs a failed Redis call once per kind and per 10 s at most (an outage would otherwise
/// log every call), and counts it.
fn unavailable(kind: &'static str, e: &redis::RedisError) {
    use std::sync::Mutex;
    use std::time::Instant;
    static LAST: Mutex<Vec<(&'static str, Instant)>> = Mutex::new(Vec::new());
    crate::telemetry::METRICS
        .redis_errors
        .with_label_values(&[kind])
        .inc();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    match last.iter_mut().find(|(k, _)| *k == kind) {
        Some((_, t)) if now.duration_since(*t) < Duration::from_secs(10) => return,
        Some((_, t)) => *t = now,
        None => last.push((kind, now)),
    }
    tracing::warn!(kind, error = %e, "Redis is not answering; this instance falls back for now");
}
