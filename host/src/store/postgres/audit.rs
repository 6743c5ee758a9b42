//! The audit log in PostgreSQL: one row per entry, indexed by guild.

use anyhow::Result;
use async_trait::async_trait;

use super::PostgresStore;
use crate::store::audit::{AuditEntry, AuditLog, NewAuditEntry};
use crate::store::now_ms;

/// Records an entry on `c` (a connection, or the transaction of the change it audits);
/// returns its id.
pub(super) async fn insert(
    c: &impl deadpool_postgres::GenericClient,
    e: &NewAuditEntry,
) -> Result<i64> {
    let row = c
        .query_one(
            "INSERT INTO audit (at, guild_id, actor, action, target, before, after, outcome)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &now_ms(),
                &e.guild_id,
                &e.actor,
                &e.action,
                &e.target,
                &e.before,
                &e.after,
                &e.outcome,
            ],
        )
        .await?;
    Ok(row.get(0))
}

fn entry(r: &tokio_postgres::Row) -> AuditEntry {
    AuditEntry {
        id: r.get(0),
        at: r.get(1),
        guild_id: r.get(2),
        actor: r.get(3),
        action: r.get(4),
        target: r.get(5),
        before: r.get(6),
        after: r.get(7),
        outcome: r.get(8),
    }
}

/// An actor's entries, in one guild (`$2`) or everywhere (`$2` NULL).
const BY_ACTOR: &str = "actor = $1 AND ($2::text IS NULL OR guild_id = $2::text)";

#[async_trait]
impl AuditLog for PostgresStore {
    async fn add(&self, e: NewAuditEntry) -> Result<i64> {
        insert(&self.client().await?, &e).await
    }

    async fn list(
        &self,
        guild_id: &str,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, at, guild_id, actor, action, target, before, after, outcome FROM audit
                 WHERE guild_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                &[&guild_id, &before_id.unwrap_or(i64::MAX), &(limit as i64)],
            )
            .await?;
        Ok(rows.iter().map(entry).collect())
    }

    async fn prune(&self, age_ms: i64) -> Result<usize> {
        let c = self.client().await?;
        let n = c
            .execute("DELETE FROM audit WHERE at < $1", &[&(now_ms() - age_ms)])
            .await?;
        Ok(n as usize)
    }

    async fn by_actor(&self, actor: &str, guild: Option<&str>) -> Result<Vec<AuditEntry>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT id, at, guild_id, actor, action, target, before, after, outcome
                     FROM audit WHERE {BY_ACTOR} ORDER BY id"
                ),
                &[&actor, &guild],
            )
            .await?;
        Ok(rows.iter().map(entry).collect())
    }

    async fn tombstone_actor(
        &self,
        actor: &str,
        guild: Option<&str>,
        tombstone: &str,
    ) -> Result<usize> {
        let c = self.client().await?;
        let n = c
            .execute(
                &format!("UPDATE audit SET actor = $3 WHERE {BY_ACTOR}"),
                &[&actor, &guild, &tombstone],
            )
            .await?;
        Ok(n as usize)
    }
}
