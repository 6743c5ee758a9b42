//! The inbox: events accepted from outside (Kaltura webhooks), persisted before they are
//! acknowledged, deduplicated by key, and marked processed in the same transaction that
//! queues their messages. A crash between the two re-processes the event, never half of it.

use anyhow::Result;
use rusqlite::{OptionalExtension, params};

use super::outbox::{NewMessage, push_in};
use super::{Store, now_ms};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL UNIQUE,
    received_at  INTEGER NOT NULL,
    event        TEXT NOT NULL,
    processed_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS inbox_unprocessed ON inbox (seq) WHERE processed_at IS NULL;
";

/// An accepted event waiting to be processed.
#[derive(Debug, Clone)]
pub struct InboxRow {
    pub seq: i64,
    pub source: String,
    pub event: String,
    pub received_at: i64,
}

impl Store {
    /// Records an event unless its key was seen before. `Some(seq)` when new, `None` for a
    /// redelivery.
    pub fn inbox_insert(&self, source: &str, key: &str, event: &str) -> Result<Option<i64>> {
        let conn = self.conn();
        let n = conn.execute(
            "INSERT INTO inbox (source, dedupe_key, received_at, event) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (dedupe_key) DO NOTHING",
            params![source, key, now_ms(), event],
        )?;
        Ok((n == 1).then(|| conn.last_insert_rowid()))
    }

    /// Whether an event with this dedupe key was accepted (and not yet pruned).
    pub fn inbox_contains(&self, key: &str) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM inbox WHERE dedupe_key = ?1",
                params![key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The oldest events not yet processed.
    pub fn inbox_unprocessed(&self, limit: usize) -> Result<Vec<InboxRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, source, event, received_at FROM inbox WHERE processed_at IS NULL
             ORDER BY seq LIMIT ?1",
        )?;
        let rows = stmt
            .query_map(params![limit as i64], |r| {
                Ok(InboxRow {
                    seq: r.get(0)?,
                    source: r.get(1)?,
                    event: r.get(2)?,
                    received_at: r.get(3)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Counts one more processing attempt of an event and returns the count. Counted
    /// before the work, so an event whose processing never finishes (a crash, a hang) is
    /// recognised at the next start instead of being retried forever.
    pub fn inbox_attempt(&self, seq: i64) -> Result<u32> {
        Ok(self.conn().query_row(
            "UPDATE inbox SET attempts = attempts + 1 WHERE seq = ?1 RETURNING attempts",
            params![seq],
            |r| r.get::<_, u32>(0),
        )?)
    }

    /// Queues an event's messages and marks it processed, atomically. Returns the new outbox
    /// ids (none if the event had already been processed).
    pub fn inbox_complete(&self, seq: i64, messages: &[NewMessage]) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let open: Option<i64> = tx
            .query_row(
                "SELECT seq FROM inbox WHERE seq = ?1 AND processed_at IS NULL",
                params![seq],
                |r| r.get(0),
            )
            .optional()?;
        if open.is_none() {
            return Ok(Vec::new());
        }
        let ids = push_in(&tx, messages, self.guild_quota())?;
        tx.execute(
            "UPDATE inbox SET processed_at = ?2 WHERE seq = ?1",
            params![seq, now_ms()],
        )?;
        tx.commit()?;
        Ok(ids)
    }

    /// Forgets processed events older than `age_ms` (their keys no longer dedupe).
    pub fn inbox_prune(&self, age_ms: i64) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM inbox WHERE processed_at IS NOT NULL AND received_at < ?1",
            params![now_ms() - age_ms],
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicates_are_recognised_and_completion_is_once() {
        let s = Store::in_memory().unwrap();
        let seq = s.inbox_insert("kaltura", "job:1", "{}").unwrap().unwrap();
        assert_eq!(s.inbox_insert("kaltura", "job:1", "{}").unwrap(), None);
        assert_eq!(s.inbox_unprocessed(10).unwrap().len(), 1);
        let msg = NewMessage {
            guild_id: "1".into(),
            channel: "2".into(),
            body: json!({"content": "x"}),
            source: "test".into(),
        };
        assert_eq!(
            s.inbox_complete(seq, std::slice::from_ref(&msg))
                .unwrap()
                .len(),
            1
        );
        assert!(s.inbox_complete(seq, &[msg]).unwrap().is_empty());
        assert!(s.inbox_unprocessed(10).unwrap().is_empty());
        assert_eq!(s.outbox_counts().unwrap().pending, 1);
        // Processed keys are forgotten after their age (then they dedupe no more).
        assert_eq!(s.inbox_prune(60_000).unwrap(), 0);
        assert_eq!(s.inbox_prune(-60_000).unwrap(), 1);
        assert!(!s.inbox_contains("job:1").unwrap());
    }

    #[test]
    fn attempts_are_counted_per_event() {
        let s = Store::in_memory().unwrap();
        let seq = s.inbox_insert("kaltura", "job:2", "{}").unwrap().unwrap();
        assert_eq!(s.inbox_attempt(seq).unwrap(), 1);
        assert_eq!(s.inbox_attempt(seq).unwrap(), 2);
    }
}
