//! The inbox in PostgreSQL: dedupe by a unique key (`ON CONFLICT DO NOTHING`: only the
//! inserter processes), claims taken with `FOR UPDATE SKIP LOCKED` so instances never wait
//! on each other's events, completion and the event's messages in one transaction.

use std::collections::HashSet;

use anyhow::Result;
use async_trait::async_trait;

use super::outbox::push_in;
use super::{NOW_MS, PostgresStore};
use crate::store::inbox::{Inbox, InboxRow, Processed};
use crate::store::now_ms;
use crate::store::outbox::{NewMessage, Queued};

#[async_trait]
impl Inbox for PostgresStore {
    async fn insert(&self, source: &str, key: &str, event: &str) -> Result<Option<i64>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "INSERT INTO inbox (source, dedupe_key, received_at, event) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (dedupe_key) DO NOTHING RETURNING seq",
                &[&source, &key, &now_ms(), &event],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn contains(&self, key: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(
            c.query_opt("SELECT 1 FROM inbox WHERE dedupe_key = $1", &[&key])
                .await?
                .is_some(),
        )
    }

    async fn claim(&self, owner: &str, limit: usize, claim_ms: i64) -> Result<Vec<InboxRow>> {
        let c = self.client().await?;
        let sql = format!(
            "UPDATE inbox SET attempts = attempts + 1, claimed_by = $1,
                 claimed_until = {NOW_MS} + $2
             WHERE seq IN (SELECT seq FROM inbox WHERE processed_at IS NULL
                           AND (claimed_by IS NULL OR claimed_by = $1 OR claimed_until < {NOW_MS})
                           ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING seq, source, event, received_at, attempts"
        );
        let rows = c.query(&sql, &[&owner, &claim_ms, &(limit as i64)]).await?;
        let mut rows: Vec<InboxRow> = rows
            .iter()
            .map(|r| InboxRow {
                seq: r.get(0),
                source: r.get(1),
                event: r.get(2),
                received_at: r.get(3),
                attempts: r.get::<_, i32>(4).max(0) as u32,
            })
            .collect();
        rows.sort_by_key(|r| r.seq);
        Ok(rows)
    }

    async fn release_claims(&self, owner: &str) -> Result<usize> {
        let c = self.client().await?;
        let n = c
            .execute(
                "UPDATE inbox SET claimed_by = NULL, claimed_until = NULL
                 WHERE claimed_by = $1 AND processed_at IS NULL",
                &[&owner],
            )
            .await?;
        Ok(n as usize)
    }

    async fn pending(&self) -> Result<bool> {
        let c = self.client().await?;
        Ok(c.query_opt(
            "SELECT 1 FROM inbox WHERE processed_at IS NULL LIMIT 1",
            &[],
        )
        .await?
        .is_some())
    }

    async fn complete_all(
        &self,
        done: &[Processed],
        guild_quota: u64,
    ) -> Result<Vec<Option<Vec<Queued>>>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let seqs: Vec<i64> = done.iter().map(|d| d.seq).collect();
        let open: HashSet<i64> = tx
            .query(
                "UPDATE inbox SET processed_at = $2, claimed_by = NULL, claimed_until = NULL
                 WHERE seq = ANY($1) AND processed_at IS NULL RETURNING seq",
                &[&seqs, &now_ms()],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        // One push for the whole batch (one lock and count per guild), split back by event.
        let messages: Vec<NewMessage> = done
            .iter()
            .filter(|d| open.contains(&d.seq))
            .flat_map(|d| d.messages.iter().cloned())
            .collect();
        let mut queued = push_in(&tx, &messages, guild_quota).await?.into_iter();
        tx.commit().await?;
        Ok(done
            .iter()
            .map(|d| {
                open.contains(&d.seq)
                    .then(|| queued.by_ref().take(d.messages.len()).collect())
            })
            .collect())
    }

    async fn prune(&self, age_ms: i64) -> Result<usize> {
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM inbox WHERE processed_at IS NOT NULL AND received_at < $1",
                &[&(now_ms() - age_ms)],
            )
            .await?;
        Ok(n as usize)
    }
}
