//! The delivery outbox: every message the host sends to a Discord channel on its own (not
//! as an interaction reply) is a row here first. Rows leave `pending` only as `sent` (with
//! Discord's message id) or `dead` (with the last error).

use anyhow::Result;
use rusqlite::{OptionalExtension, Transaction, params};
use serde::Serialize;
use serde_json::Value;

use super::{Store, now_ms};

pub const SCHEMA: &str = "
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

/// A message to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub guild_id: String,
    /// A channel id, or a name (`#news`) resolved at delivery.
    pub channel: String,
    /// Discord's message body (content, embeds, components, allowed_mentions).
    pub body: Value,
    /// Who produced it: `notification:entry_ready`, `rule:global/x.rhai`, `plugin:name`.
    pub source: String,
}

impl NewMessage {
    /// Messages to one channel of one guild are delivered in order.
    pub fn lane(guild_id: &str, channel: &str) -> String {
        format!("{guild_id}/{channel}")
    }
}

/// A queued message and its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub guild_id: String,
    pub channel: String,
    #[serde(skip)]
    pub lane: String,
    pub body: Value,
    pub source: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending), Unix milliseconds.
    pub next_at: i64,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub done_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    pub pending: i64,
    pub dead: i64,
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

/// Inserts messages inside a caller's transaction (the inbox completes events this way).
/// Queues messages; a guild that already has `quota` messages waiting gets the rest
/// recorded as dead letters at once (listed with the reason, never sent), so one guild's
/// rules cannot fill the outbox for everyone.
pub(crate) fn push_in(
    tx: &Transaction<'_>,
    messages: &[NewMessage],
    quota: u64,
) -> Result<Vec<i64>> {
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
    let mut ids = Vec::with_capacity(messages.len());
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
        if *n >= quota {
            let why = format!(
                "not sent: guild {} already has {quota} messages waiting (KD_DELIVERY_GUILD_QUOTA)",
                m.guild_id
            );
            refuse.execute(params![
                m.guild_id, m.channel, lane, body, m.source, now, why
            ])?;
            crate::telemetry::METRICS
                .deliveries
                .with_label_values(&["over_quota"])
                .inc();
        } else {
            insert.execute(params![m.guild_id, m.channel, lane, body, m.source, now])?;
            *n += 1;
        }
        ids.push(tx.last_insert_rowid());
    }
    Ok(ids)
}

impl Store {
    /// Queues messages (one transaction).
    pub fn outbox_push(&self, messages: &[NewMessage]) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let ids = push_in(&tx, messages, self.guild_quota())?;
        tx.commit()?;
        Ok(ids)
    }

    /// Lanes (guild/channel) with pending messages.
    pub fn outbox_lanes(&self) -> Result<Vec<String>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT DISTINCT lane FROM outbox WHERE state = 'pending'")?;
        let lanes = stmt
            .query_map([], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(lanes)
    }

    /// The oldest pending message of a lane: the only one that may be sent next.
    pub fn outbox_head(&self, lane: &str) -> Result<Option<Delivery>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE lane = ?1 AND state = 'pending' ORDER BY id LIMIT 1"
        ))?;
        Ok(stmt.query_row(params![lane], row).optional()?)
    }

    pub fn outbox_get(&self, id: i64) -> Result<Option<Delivery>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?1"))?;
        Ok(stmt.query_row(params![id], row).optional()?)
    }

    pub fn outbox_sent(&self, id: i64, message_id: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET state = 'sent', attempts = attempts + 1, message_id = ?2,
             done_at = ?3, last_error = NULL WHERE id = ?1",
            params![id, message_id, now_ms()],
        )?;
        Ok(())
    }

    /// Records a failed attempt (counted unless it was a rate limit) and when to try
    /// again; returns the counted attempts so far.
    pub fn outbox_retry(&self, id: i64, error: &str, next_at: i64, counted: bool) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "UPDATE outbox SET attempts = attempts + ?4, last_error = ?2, next_at = ?3 WHERE id = ?1",
            params![id, error, next_at, i64::from(counted)],
        )?;
        Ok(conn.query_row(
            "SELECT attempts FROM outbox WHERE id = ?1",
            params![id],
            |r| r.get(0),
        )?)
    }

    /// A message that will not be delivered: kept, visible, counted.
    pub fn outbox_dead(&self, id: i64, error: &str) -> Result<()> {
        self.conn().execute(
            "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ?2,
             done_at = ?3 WHERE id = ?1",
            params![id, error, now_ms()],
        )?;
        Ok(())
    }

    /// A guild's deliveries, newest first; `state` filters (`pending`, `sent`, `dead`).
    pub fn outbox_list(
        &self,
        guild_id: &str,
        state: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<Delivery>> {
        let conn = self.conn();
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

    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(SUM(state = 'pending'), 0), COALESCE(SUM(state = 'dead'), 0) FROM outbox",
            [],
            |r| {
                Ok(OutboxCounts {
                    pending: r.get(0)?,
                    dead: r.get(1)?,
                })
            },
        )?)
    }

    /// Forgets sent messages older than `age_ms` (dead letters stay until someone looks).
    /// Forgets finished messages: sent ones older than `sent_ms`, dead letters older than
    /// `dead_ms`.
    pub fn outbox_prune(&self, sent_ms: i64, dead_ms: i64) -> Result<usize> {
        let conn = self.conn();
        let sent = conn.execute(
            "DELETE FROM outbox WHERE state = 'sent' AND done_at < ?1",
            params![now_ms() - sent_ms],
        )?;
        let dead = conn.execute(
            "DELETE FROM outbox WHERE state = 'dead' AND done_at < ?1",
            params![now_ms() - dead_ms],
        )?;
        Ok(sent + dead)
    }

    /// A random prefix for this database's message nonces, made once: nonces stay unique
    /// even if another database (or a wiped one) reuses outbox ids.
    pub fn nonce_prefix(&self) -> Result<String> {
        if let Some(p) = self.meta_get("outbox.nonce_prefix")? {
            return Ok(p);
        }
        let p: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
        self.meta_set("outbox.nonce_prefix", &p)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_guild_over_its_quota_gets_dead_letters_and_others_are_unaffected() {
        let s = Store::in_memory().unwrap();
        s.set_guild_quota(2);
        let msg = |g: &str| NewMessage {
            guild_id: g.into(),
            channel: "9".into(),
            body: serde_json::json!({"content": "x"}),
            source: "test".into(),
        };
        let ids = s
            .outbox_push(&[msg("1"), msg("1"), msg("1"), msg("2")])
            .unwrap();
        let third = s.outbox_get(ids[2]).unwrap().unwrap();
        assert_eq!(third.state, "dead");
        assert!(
            third
                .last_error
                .unwrap()
                .contains("already has 2 messages waiting")
        );
        assert_eq!(s.outbox_get(ids[3]).unwrap().unwrap().state, "pending");
        assert_eq!(
            s.outbox_counts().unwrap(),
            OutboxCounts {
                pending: 3,
                dead: 1
            }
        );
        // Dead letters are kept for their retention, then forgotten.
        assert_eq!(s.outbox_prune(60_000, 60_000).unwrap(), 0);
        assert_eq!(s.outbox_prune(60_000, -60_000).unwrap(), 1);
        s.audit_add("1", "a", "x", "y", None, None, "ok").unwrap();
        assert_eq!(s.audit_prune(60_000).unwrap(), 0);
        assert_eq!(s.audit_prune(-60_000).unwrap(), 1);
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

    #[test]
    fn lanes_hand_out_their_oldest_message() {
        let s = Store::in_memory().unwrap();
        let ids = s
            .outbox_push(&[msg("a", 1), msg("b", 2), msg("a", 3)])
            .unwrap();
        let mut lanes = s.outbox_lanes().unwrap();
        lanes.sort();
        assert_eq!(lanes, vec!["1/a", "1/b"]);
        assert_eq!(s.outbox_head("1/a").unwrap().unwrap().id, ids[0]);
        assert_eq!(s.outbox_retry(ids[0], "503", 0, true).unwrap(), 1);
        assert_eq!(s.outbox_head("1/a").unwrap().unwrap().id, ids[0]);
        s.outbox_sent(ids[0], "999").unwrap();
        assert_eq!(s.outbox_head("1/a").unwrap().unwrap().id, ids[2]);
        s.outbox_dead(ids[2], "403 Missing Access").unwrap();
        assert!(s.outbox_head("1/a").unwrap().is_none());
        assert_eq!(
            s.outbox_counts().unwrap(),
            OutboxCounts {
                pending: 1,
                dead: 1
            }
        );
        let dead = s.outbox_list("1", Some("dead"), 10, None).unwrap();
        assert_eq!(dead[0].last_error.as_deref(), Some("403 Missing Access"));
        let sent = s.outbox_get(ids[0]).unwrap().unwrap();
        assert_eq!((sent.state.as_str(), sent.attempts), ("sent", 2));
        assert_eq!(s.nonce_prefix().unwrap(), s.nonce_prefix().unwrap());
        // Pruning forgets sent messages only; a fresh one is kept.
        assert_eq!(s.outbox_prune(60_000, 60_000).unwrap(), 0);
        assert_eq!(s.outbox_prune(-60_000, 60_000).unwrap(), 1);
        assert!(s.outbox_get(ids[0]).unwrap().is_none());
        assert_eq!(s.outbox_counts().unwrap().dead, 1);
    }
}
