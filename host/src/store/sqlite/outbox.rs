//! The outbox in SQLite: one table, a partial index per lane on the pending rows.

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use serde_json::Value;

use super::SqliteStore;
use crate::store::now_ms;
use crate::store::outbox::{Delivery, NewMessage, OutboxCounts, OutboxStore, Queued, over_quota};

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
";

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
        let refused = if *n >= quota {
            let why = over_quota(&m.guild_id, quota);
            refuse.execute(params![
                m.guild_id, m.channel, lane, body, m.source, now, why
            ])?;
            crate::telemetry::METRICS
                .deliveries
                .with_label_values(&["over_quota"])
                .inc();
            Some(why)
        } else {
            insert.execute(params![m.guild_id, m.channel, lane, body, m.source, now])?;
            *n += 1;
            None
        };
        queued.push(Queued {
            id: tx.last_insert_rowid(),
            refused,
        });
    }
    Ok(queued)
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

    async fn lanes(&self) -> Result<Vec<String>> {
        self.call(|c| {
            let mut stmt =
                c.prepare_cached("SELECT DISTINCT lane FROM outbox WHERE state = 'pending'")?;
            let lanes = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(lanes)
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

    async fn sent(&self, id: i64, message_id: &str) -> Result<()> {
        let message_id = message_id.to_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, message_id = ?2,
                 done_at = ?3, last_error = NULL WHERE id = ?1",
                params![id, message_id, now_ms()],
            )?;
            Ok(())
        })
        .await
    }

    async fn retry(&self, id: i64, error: &str, next_at: i64, counted: bool) -> Result<i64> {
        let error = error.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                "UPDATE outbox SET attempts = attempts + ?4, last_error = ?2, next_at = ?3
                 WHERE id = ?1 RETURNING attempts",
                params![id, error, next_at, i64::from(counted)],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn dead(&self, id: i64, error: &str) -> Result<()> {
        let error = error.to_owned();
        self.call(move |c| {
            c.execute(
                "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2,
                 done_at = ?3 WHERE id = ?1",
                params![id, error, now_ms()],
            )?;
            Ok(())
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
            Ok(sent + dead)
        })
        .await
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn a_guild_over_its_quota_gets_dead_letters_and_others_are_unaffected() {
        let s = crate::store::sqlite::tests::stores();
        let msg = |g: &str| NewMessage {
            guild_id: g.into(),
            channel: "9".into(),
            body: serde_json::json!({"content": "x"}),
            source: "test".into(),
        };
        let queued = s
            .outbox
            .push(&[msg("1"), msg("1"), msg("1"), msg("2")], 2)
            .await
            .unwrap();
        assert!(queued[2].refused.is_some() && queued[3].refused.is_none());
        let ids: Vec<i64> = queued.iter().map(|q| q.id).collect();
        let third = s.outbox.get(ids[2]).await.unwrap().unwrap();
        assert_eq!(third.state, "dead");
        assert!(
            third
                .last_error
                .unwrap()
                .contains("already has 2 messages waiting")
        );
        assert_eq!(
            s.outbox.get(ids[3]).await.unwrap().unwrap().state,
            "pending"
        );
        assert_eq!(
            s.outbox.counts().await.unwrap(),
            OutboxCounts {
                pending: 3,
                dead: 1
            }
        );
        // Dead letters are kept for their retention, then forgotten.
        assert_eq!(s.outbox.prune(60_000, 60_000).await.unwrap(), 0);
        assert_eq!(s.outbox.prune(60_000, -60_000).await.unwrap(), 1);
        let entry = crate::store::NewAuditEntry {
            guild_id: "1".into(),
            outcome: "ok".into(),
            ..Default::default()
        };
        s.audit.add(entry).await.unwrap();
        assert_eq!(s.audit.prune(60_000).await.unwrap(), 0);
        assert_eq!(s.audit.prune(-60_000).await.unwrap(), 1);
    }

    use super::*;
    use serde_json::json;

    fn msg(channel: &str, n: u32) -> NewMessage {
        NewMessage {
            guild_id: "1".into(),
            channel: channel.into(),
            body: json!({"content": n.to_string()}),
            source: "test".into(),
        }
    }

    #[tokio::test]
    async fn lanes_hand_out_their_oldest_message() {
        let s = crate::store::sqlite::tests::stores();
        let queued = s
            .outbox
            .push(&[msg("a", 1), msg("b", 2), msg("a", 3)], 1000)
            .await
            .unwrap();
        let ids: Vec<i64> = queued.iter().map(|q| q.id).collect();
        let mut lanes = s.outbox.lanes().await.unwrap();
        lanes.sort();
        assert_eq!(lanes, vec!["1/a", "1/b"]);
        assert_eq!(s.outbox.head("1/a").await.unwrap().unwrap().id, ids[0]);
        assert_eq!(s.outbox.retry(ids[0], "503", 0, true).await.unwrap(), 1);
        assert_eq!(s.outbox.head("1/a").await.unwrap().unwrap().id, ids[0]);
        s.outbox.sent(ids[0], "999").await.unwrap();
        assert_eq!(s.outbox.head("1/a").await.unwrap().unwrap().id, ids[2]);
        s.outbox.dead(ids[2], "403 Missing Access").await.unwrap();
        assert!(s.outbox.head("1/a").await.unwrap().is_none());
        assert_eq!(
            s.outbox.counts().await.unwrap(),
            OutboxCounts {
                pending: 1,
                dead: 1
            }
        );
        let dead = s.outbox.list("1", Some("dead"), 10, None).await.unwrap();
        assert_eq!(dead[0].last_error.as_deref(), Some("403 Missing Access"));
        let sent = s.outbox.get(ids[0]).await.unwrap().unwrap();
        assert_eq!((sent.state.as_str(), sent.attempts), ("sent", 2));
        let prefix = crate::delivery::nonce_prefix(s.meta.as_ref())
            .await
            .unwrap();
        assert_eq!(
            prefix,
            crate::delivery::nonce_prefix(s.meta.as_ref())
                .await
                .unwrap()
        );
        // Pruning forgets sent messages only; a fresh one is kept.
        assert_eq!(s.outbox.prune(60_000, 60_000).await.unwrap(), 0);
        assert_eq!(s.outbox.prune(-60_000, 60_000).await.unwrap(), 1);
        assert!(s.outbox.get(ids[0]).await.unwrap().is_none());
        assert_eq!(s.outbox.counts().await.unwrap().dead, 1);
    }
}
