//! The inbox in SQLite: dedupe by a UNIQUE key; completion and the event's messages in one
//! transaction.

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::outbox::push_in;
use crate::store::inbox::{Inbox, InboxRow};
use crate::store::now_ms;
use crate::store::outbox::{NewMessage, Queued};

pub(super) const SCHEMA: &str = "
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

fn unprocessed(conn: &Connection, limit: usize) -> Result<Vec<InboxRow>> {
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

fn complete(
    conn: &mut Connection,
    seq: i64,
    messages: &[NewMessage],
    guild_quota: u64,
) -> Result<Vec<Queued>> {
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
    let queued = push_in(&tx, messages, guild_quota)?;
    tx.execute(
        "UPDATE inbox SET processed_at = ?2 WHERE seq = ?1",
        params![seq, now_ms()],
    )?;
    tx.commit()?;
    Ok(queued)
}

#[async_trait]
impl Inbox for SqliteStore {
    async fn insert(&self, source: &str, key: &str, event: &str) -> Result<Option<i64>> {
        let (source, key, event) = (source.to_owned(), key.to_owned(), event.to_owned());
        self.call(move |c| {
            let n = c.execute(
                "INSERT INTO inbox (source, dedupe_key, received_at, event) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (dedupe_key) DO NOTHING",
                params![source, key, now_ms(), event],
            )?;
            Ok((n == 1).then(|| c.last_insert_rowid()))
        })
        .await
    }

    async fn contains(&self, key: &str) -> Result<bool> {
        let key = key.to_owned();
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT 1 FROM inbox WHERE dedupe_key = ?1",
                params![key],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
        .await
    }

    async fn unprocessed(&self, limit: usize) -> Result<Vec<InboxRow>> {
        self.call(move |c| unprocessed(c, limit)).await
    }

    async fn attempt(&self, seq: i64) -> Result<u32> {
        self.call(move |c| {
            Ok(c.query_row(
                "UPDATE inbox SET attempts = attempts + 1 WHERE seq = ?1 RETURNING attempts",
                params![seq],
                |r| r.get::<_, u32>(0),
            )?)
        })
        .await
    }

    async fn complete(
        &self,
        seq: i64,
        messages: &[NewMessage],
        guild_quota: u64,
    ) -> Result<Vec<Queued>> {
        let messages = messages.to_vec();
        self.call(move |c| complete(c, seq, &messages, guild_quota))
            .await
    }

    async fn prune(&self, age_ms: i64) -> Result<usize> {
        self.call(move |c| {
            Ok(c.execute(
                "DELETE FROM inbox WHERE processed_at IS NOT NULL AND received_at < ?1",
                params![now_ms() - age_ms],
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn duplicates_are_recognised_and_completion_is_once() {
        let s = crate::store::sqlite::tests::stores();
        let seq = s
            .inbox
            .insert("kaltura", "job:1", "{}")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            s.inbox.insert("kaltura", "job:1", "{}").await.unwrap(),
            None
        );
        assert_eq!(s.inbox.unprocessed(10).await.unwrap().len(), 1);
        let msg = NewMessage {
            guild_id: "1".into(),
            channel: "2".into(),
            body: json!({"content": "x"}),
            source: "test".into(),
        };
        assert_eq!(
            s.inbox
                .complete(seq, std::slice::from_ref(&msg), 1000)
                .await
                .unwrap()
                .len(),
            1
        );
        assert!(
            s.inbox
                .complete(seq, &[msg], 1000)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(s.inbox.unprocessed(10).await.unwrap().is_empty());
        assert_eq!(s.outbox.counts().await.unwrap().pending, 1);
        // Processed keys are forgotten after their age (then they dedupe no more).
        assert_eq!(s.inbox.prune(60_000).await.unwrap(), 0);
        assert_eq!(s.inbox.prune(-60_000).await.unwrap(), 1);
        assert!(!s.inbox.contains("job:1").await.unwrap());
    }

    #[tokio::test]
    async fn attempts_are_counted_per_event() {
        let s = crate::store::sqlite::tests::stores();
        let seq = s
            .inbox
            .insert("kaltura", "job:2", "{}")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.inbox.attempt(seq).await.unwrap(), 1);
        assert_eq!(s.inbox.attempt(seq).await.unwrap(), 2);
    }
}
