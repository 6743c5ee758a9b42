//! The inbox in SQLite: dedupe by a UNIQUE key; completion and the event's messages in one
//! transaction.

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use super::outbox::push_in;
use crate::store::inbox::{Inbox, InboxRow, Processed};
use crate::store::now_ms;
use crate::store::outbox::Queued;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS inbox (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    source       TEXT NOT NULL,
    dedupe_key   TEXT NOT NULL UNIQUE,
    received_at  INTEGER NOT NULL,
    event        TEXT NOT NULL,
    processed_at INTEGER,
    attempts     INTEGER NOT NULL DEFAULT 0,
    claimed_by   TEXT,
    claimed_until INTEGER
);
CREATE INDEX IF NOT EXISTS inbox_unprocessed ON inbox (seq) WHERE processed_at IS NULL;
";

fn claim(conn: &Connection, owner: &str, limit: usize, claim_ms: i64) -> Result<Vec<InboxRow>> {
    let now = now_ms();
    let mut stmt = conn.prepare_cached(
        "UPDATE inbox SET attempts = attempts + 1, claimed_by = ?1, claimed_until = ?2 + ?3
         WHERE seq IN (SELECT seq FROM inbox WHERE processed_at IS NULL
                       AND (claimed_by IS NULL OR claimed_by = ?1 OR claimed_until < ?2)
                       ORDER BY seq LIMIT ?4)
         RETURNING seq, source, event, received_at, attempts",
    )?;
    let mut rows = stmt
        .query_map(params![owner, now, claim_ms, limit as i64], |r| {
            Ok(InboxRow {
                seq: r.get(0)?,
                source: r.get(1)?,
                event: r.get(2)?,
                received_at: r.get(3)?,
                attempts: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.sort_by_key(|r| r.seq);
    Ok(rows)
}

fn complete_all(
    conn: &mut Connection,
    done: &[Processed],
    guild_quota: u64,
) -> Result<Vec<Option<Vec<Queued>>>> {
    let tx = conn.transaction()?;
    let mut answers = Vec::with_capacity(done.len());
    for d in done {
        let open = tx
            .prepare_cached("SELECT 1 FROM inbox WHERE seq = ?1 AND processed_at IS NULL")?
            .exists(params![d.seq])?;
        if !open {
            answers.push(None);
            continue;
        }
        let queued = push_in(&tx, &d.messages, guild_quota)?;
        tx.prepare_cached("UPDATE inbox SET processed_at = ?2 WHERE seq = ?1")?
            .execute(params![d.seq, now_ms()])?;
        answers.push(Some(queued));
    }
    tx.commit()?;
    Ok(answers)
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

    async fn claim(&self, owner: &str, limit: usize, claim_ms: i64) -> Result<Vec<InboxRow>> {
        let owner = owner.to_owned();
        self.call(move |c| claim(c, &owner, limit, claim_ms)).await
    }

    async fn release_claims(&self, owner: &str) -> Result<usize> {
        let owner = owner.to_owned();
        self.call(move |c| {
            Ok(c.execute(
                "UPDATE inbox SET claimed_by = NULL, claimed_until = NULL
                 WHERE claimed_by = ?1 AND processed_at IS NULL",
                params![owner],
            )?)
        })
        .await
    }

    async fn pending(&self) -> Result<bool> {
        self.call(|c| {
            Ok(
                c.prepare_cached("SELECT 1 FROM inbox WHERE processed_at IS NULL LIMIT 1")?
                    .exists([])?,
            )
        })
        .await
    }

    async fn complete_all(
        &self,
        done: &[Processed],
        guild_quota: u64,
    ) -> Result<Vec<Option<Vec<Queued>>>> {
        let done = done.to_vec();
        self.call(move |c| complete_all(c, &done, guild_quota))
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
