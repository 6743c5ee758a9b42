//! The instances sharing a database: each registers at start and keeps a heartbeat on the
//! database's clock; one whose heartbeat is older than [`ALIVE`] is gone. Instances can
//! only share the bot's limits through Redis, so a second live instance is refused unless
//! every instance has Redis.

use anyhow::{Result, bail};

use super::{NOW_MS, PostgresStore};

/// How recent a heartbeat must be for its instance to count as alive (ms).
pub const ALIVE_MS: i64 = 30_000;

/// One registered instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    pub id: String,
    pub host: String,
    pub pid: i32,
    pub redis: bool,
    /// Takes a share of the gateway shards (`DISCORD_SHARDS=auto`).
    pub shares_shards: bool,
    /// How long ago its last heartbeat was (ms).
    pub silent_ms: i64,
}

/// Serialises registrations (two instances starting at once see each other).
const LOCK_KEY: i64 = 0x6b64_696e_7374;

impl PostgresStore {
    /// Registers instance `id`; refused when another live instance exists and either of
    /// them shares its state without Redis.
    pub async fn register(
        &self,
        id: &str,
        host: &str,
        redis: bool,
        shares_shards: bool,
    ) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
            .await?;
        tx.execute(
            &format!("DELETE FROM instances WHERE heartbeat_at < {NOW_MS} - $1"),
            &[&ALIVE_MS],
        )
        .await?;
        let others = live(&tx, id).await?;
        if let Some(other) = others.iter().find(|o| !(redis && o.redis)) {
            bail!(
                "another instance ({} on {}, pid {}, heartbeat {} s ago) shares this database{}: instances share the bot's Discord limits (50 requests/s for the one token), command allowances and interaction tokens only through Redis. Set KD_REDIS_URL on every instance, or run one instance",
                other.id,
                other.host,
                other.pid,
                other.silent_ms / 1000,
                if redis { " without Redis" } else { "" }
            );
        }
        tx.execute(
            &format!(
                "INSERT INTO instances (id, host, pid, started_at, heartbeat_at, redis, shares_shards)
                 VALUES ($1, $2, $3, {NOW_MS}, {NOW_MS}, $4, $5)"
            ),
            &[
                &id,
                &host,
                &(std::process::id() as i32),
                &redis,
                &shares_shards,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Renews `id`'s heartbeat; `false` if it was no longer registered (it had been
    /// silent past [`ALIVE_MS`] and another instance cleared it).
    pub async fn heartbeat(&self, id: &str) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                &format!("UPDATE instances SET heartbeat_at = {NOW_MS} WHERE id = $1"),
                &[&id],
            )
            .await?;
        Ok(n == 1)
    }

    /// Removes `id` (a clean stop: the others need not wait for its heartbeat to age).
    pub async fn deregister(&self, id: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute("DELETE FROM instances WHERE id = $1", &[&id])
            .await?;
        Ok(())
    }

    /// The live instances, this one included.
    pub async fn instances(&self) -> Result<Vec<Instance>> {
        let c = self.client().await?;
        live(&c, "").await
    }
}

/// Live instances other than `except`.
async fn live(c: &impl deadpool_postgres::GenericClient, except: &str) -> Result<Vec<Instance>> {
    let rows = c
        .query(
            &format!(
                "SELECT id, host, pid, redis, {NOW_MS} - heartbeat_at, shares_shards FROM instances
                 WHERE id <> $1 AND heartbeat_at >= {NOW_MS} - $2 ORDER BY started_at"
            ),
            &[&except, &ALIVE_MS],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Instance {
            id: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            redis: r.get(3),
            silent_ms: r.get(4),
            shares_shards: r.get(5),
        })
        .collect())
}
