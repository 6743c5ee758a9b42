//! The outbox in SQLite: the messages, a partial index per lane on the pending rows, and
//! one row per lane for its lease (one process here, but the same rules as PostgreSQL's).

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use super::SqliteStore;
use crate::store::now_ms;
use crate::store::outbox::{
    Delivery, LaneLease, NewMessage, OutboxCounts, OutboxStore, Queued, Recorded, over_quota,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    guild_id   TEXT NOT NULL,
    channel    TEXT NOT NULL,
    lane       TEXT NOT NULL,
    body       TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    state      TEXT NOT NULL DEFAULT 'pending',
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at    INTEGER NOT NULL,
    last_error TEXT,
    message_id TEXT,
    done_at    INTEGER
);
CREATE INDEX IF NOT EXISTS outbox_lane ON outbox (lane, id) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS outbox_guild ON outbox (guild_id, id);
CREATE INDEX IF NOT EXISTS outbox_guild_pending ON outbox (guild_id) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS outbox_lanes (
    lane       TEXT PRIMARY KEY,
    owner      TEXT,
    epoch      INTEGER NOT NULL DEFAULT 0,
    expires_at INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
";

/// A database from before lane leases: its pending lanes get their rows.
pub(super) fn lanes_once(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "INSERT OR IGNORE INTO outbox_lanes (lane)
             SELECT DISTINCT lane FROM outbox WHERE state = 'pending';",
    )
}

/// Runs an update of message `id` only while `lease` holds its lane: one statement, so the
/// check and the write cannot be split by a takeover.
fn fenced<T>(
    conn: &Connection,
    set: &str,
    returning: &str,
    id: i64,
    lease: &LaneLease,
    extra: &[&dyn rusqlite::ToSql],
    read: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Recorded<T>> {
    let sql = format!(
        "UPDATE outbox SET {set} WHERE id = ?1 AND lane = ?2 AND EXISTS
         (SELECT 1 FROM outbox_lanes WHERE lane = ?2 AND owner = ?3 AND epoch = ?4)
         RETURNING {returning}"
    );
    let mut params: Vec<&dyn rusqlite::ToSql> = vec![&id, &lease.lane, &lease.owner, &lease.epoch];
    params.extend_from_slice(extra);
    let mut stmt = conn.prepare_cached(&sql)?;
    Ok(match stmt.query_row(params.as_slice(), read).optional()? {
        Some(v) => Recorded::Done(v),
        None => Recorded::LeaseLost,
    })
}

const COLUMNS: &str = "id, guild_id, channel, lane, body, source, created_at, state, attempts, next_at, last_error, message_id, done_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Delivery> {
    let body: String = r.get(4)?;
    Ok(Delivery {
        id: r.get(0)?,
        guild_id: r.get(1)?,
        channel: r.get(2)?,
        lane: r.get(3)?,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        source: r.get(5)?,
        created_at: r.get(6)?,
        state: r.get(7)?,
        attempts: r.get(8)?,
        next_at: r.get(9)?,
        last_error: r.get(10)?,
        message_id: r.get(11)?,
        done_at: r.get(12)?,
    })
}

/// Queues messages inside a caller's transaction (the inbox completes events this way);
/// see [`OutboxStore::push`] for the quota.
pub(super) fn push_in(
    tx: &Transaction<'_>,
    messages: &[NewMessage],
    quota: u64,
) -> Result<Vec<Queued>> {
    let now = now_ms();
    let mut insert = tx.prepare_cached(
        "INSERT INTO outbox (guild_id, channel, lane, body, source, created_at, next_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
    )?;
    let mut refuse = tx.prepare_cached(
        "INSERT INTO outbox (guild_id, channel, lane, body, source, created_at, next_at, state, last_error, done_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, 'dead', ?7, ?6)",
    )?;
    let mut waiting: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
    let mut queued = Vec::with_capacity(messages.len());
    for m in messages {
        let n = match waiting.get_mut(m.guild_id.as_str()) {
            Some(n) => n,
            None => {
                let count: i64 = tx.query_row(
                    "SELECT COUNT(*) FROM outbox WHERE guild_id = ?1 AND state = 'pending'",
                    params![m.guild_id],
                    |r| r.get(0),
                )?;
                waiting.entry(m.guild_id.as_str()).or_insert(count as u64)
            }
        };
        let lane = NewMessage::lane(&m.guild_id, &m.channel);
        let body = m.body.to_string();
        let (id, refused) = if *n >= quota {
            let why = over_quota(&m.guild_id, quota);
            let id = refuse.insert(params![
                m.guild_id, m.channel, lane, body, m.source, now, why
            ])?;
            crate::telemetry::METRICS
                .deliveries
                .with_label_values(&["over_quota"])
                .inc();
            (id, Some(why))
        } else {
            let id = insert.insert(params![m.guild_id, m.channel, lane, body, m.source, now])?;
            tx.prepare_cached("INSERT OR IGNORE INTO outbox_lanes (lane) VALUES (?1)")?
                .execute(params![lane])?;
            *n += 1;
            (id, None)
        };
        queued.push(Queued { id, refused });
    }
    Ok(queued)
}

fn lease(r: &rusqlite::Row<'_>) -> rusqlite::Result<LaneLease> {
    Ok(LaneLease {
        lane: r.get(0)?,
        owner: r.get(1)?,
        epoch: r.get(2)?,
    })
}

fn one(conn: &Connection, sql_where: &str, id: &dyn rusqlite::ToSql) -> Result<Option<Delivery>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE {sql_where}"))?;
    Ok(stmt.query_row([id], row).optional()?)
}

fn list(
    conn: &Connection,
    guild_id: &str,
    state: Option<&str>,
    limit: usize,
    before_id: Option<i64>,
) -> Result<Vec<Delivery>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM outbox WHERE guild_id = ?1 AND id < ?2
         AND (?3 IS NULL OR state = ?3) ORDER BY id DESC LIMIT ?4"
    ))?;
    let rows = stmt
        .query_map(
            params![guild_id, before_id.unwrap_or(i64::MAX), state, limit as i64],
            row,
        )?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn push(&self, messages: &[NewMessage], guild_quota: u64) -> Result<Vec<Queued>> {
        let messages = messages.to_vec();
        self.call(move |c| {
            let tx = c.transaction()?;
            let queued = push_in(&tx, &messages, guild_quota)?;
            tx.commit()?;
            Ok(queued)
        })
        .await
    }

    async fn claim_lanes(
        &self,
        owner: &str,
        lease_ms: i64,
        limit: usize,
    ) -> Result<Vec<LaneLease>> {
        let owner = owner.to_owned();
        self.call(move |c| {
            // A lane changes hands with a new epoch; its holder keeps its own.
            let mut stmt = c.prepare_cached(
                "UPDATE outbox_lanes
                 SET epoch = CASE WHEN owner = ?1 THEN epoch ELSE epoch + 1 END,
                     owner = ?1, expires_at = ?2 + ?3
                 WHERE lane IN (SELECT l.lane FROM outbox_lanes l
                                WHERE (l.owner IS NULL OR l.owner = ?1 OR l.expires_at < ?2)
                                AND EXISTS (SELECT 1 FROM outbox o
                                            WHERE o.lane = l.lane AND o.state = 'pending')
                                LIMIT ?4)
                 RETURNING lane, owner, epoch",
            )?;
            let leases = stmt
                .query_map(params![owner, now_ms(), lease_ms, limit as i64], lease)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(leases)
        })
        .await
    }

    async fn renew(&self, owner: &str, lease_ms: i64) -> Result<Vec<LaneLease>> {
        let owner = owner.to_owned();
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "UPDATE outbox_lanes SET expires_at = ?2 + ?3 WHERE owner = ?1
                 RETURNING lane, owner, epoch",
            )?;
            let leases = stmt
                .query_map(params![owner, now_ms(), lease_ms], lease)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(leases)
        })
        .await
    }

    async fn release(&self, lease: &LaneLease) -> Result<()> {
        let lease = lease.clone();
        self.call(move |c| {
            c.execute(
                "UPDATE outbox_lanes SET owner = NULL, expires_at = 0
                 WHERE lane = ?1 AND owner = ?2 AND epoch = ?3",
                params![lease.lane, lease.owner, lease.epoch],
            )?;
            Ok(())
        })
        .await
    }

    async fn head(&self, lane: &str) -> Result<Option<Delivery>> {
        let lane = lane.to_owned();
        self.call(move |c| {
            one(
                c,
                "lane = ?1 AND state = 'pending' ORDER BY id LIMIT 1",
                &lane,
            )
        })
        .await
    }

    async fn get(&self, id: i64) -> Result<Option<Delivery>> {
        self.call(move |c| one(c, "id = ?1", &id)).await
    }

    async fn sent(&self, id: i64, message_id: &str, lease: &LaneLease) -> Result<Recorded<()>> {
        let (message_id, lease) = (message_id.to_owned(), lease.clone());
        self.call(move |c| {
            fenced(
                c,
                "state = 'sent', attempts = attempts + 1, message_id = ?5, done_at = ?6,
                 last_error = NULL",
                "id",
                id,
                &lease,
                &[&message_id, &now_ms()],
                |_| Ok(()),
            )
        })
        .await
    }

    async fn retry(
        &self,
        id: i64,
        error: &str,
        next_at: i64,
        counted: bool,
        lease: &LaneLease,
    ) -> Result<Recorded<i64>> {
        let (error, lease) = (error.to_owned(), lease.clone());
        self.call(move |c| {
            fenced(
                c,
                "attempts = attempts + ?7, last_error = ?5, next_at = ?6",
                "attempts",
                id,
                &lease,
                &[&error, &next_at, &i64::from(counted)],
                |r| r.get(0),
            )
        })
        .await
    }

    async fn dead(&self, id: i64, error: &str, lease: &LaneLease) -> Result<Recorded<()>> {
        let (error, lease) = (error.to_owned(), lease.clone());
        self.call(move |c| {
            fenced(
                c,
                "state = 'dead', attempts = attempts + 1, last_error = ?5, done_at = ?6",
                "id",
                id,
                &lease,
                &[&error, &now_ms()],
                |_| Ok(()),
            )
        })
        .await
    }

    async fn list(
        &self,
        guild_id: &str,
        state: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<Delivery>> {
        let (guild_id, state) = (guild_id.to_owned(), state.map(str::to_owned));
        self.call(move |c| list(c, &guild_id, state.as_deref(), limit, before_id))
            .await
    }

    async fn counts(&self) -> Result<OutboxCounts> {
        self.call(|c| {
            Ok(c.query_row(
                "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'dead'), 0) FROM outbox",
                [],
                |r| {
                    Ok(OutboxCounts {
                        pending: r.get(0)?,
                        dead: r.get(1)?,
                    })
                },
            )?)
        })
        .await
    }

    async fn prune(&self, sent_ms: i64, dead_ms: i64) -> Result<usize> {
        self.call(move |c| {
            let sent = c.execute(
                "DELETE FROM outbox WHERE state = 'sent' AND done_at < ?1",
                params![now_ms() - sent_ms],
            )?;
            let dead = c.execute(
                "DELETE FROM outbox WHERE state = 'dead' AND done_at < ?1",
                params![now_ms() - dead_ms],
            )?;
            c.execute(
                "DELETE FROM outbox_lanes WHERE owner IS NULL AND NOT EXISTS
                 (SELECT 1 FROM outbox o WHERE o.lane = outbox_lanes.lane AND o.state = 'pending')",
                [],
            )?;
            Ok(sent + dead)
        })
        .await
    }
}
