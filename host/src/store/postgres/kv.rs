//! Plugin kv in PostgreSQL. Every change is one statement on the row (an increment is a
//! single upsert, so concurrent increments from any number of instances add up exactly);
//! a trigger moves the running total in the same transaction, and the quota check reads
//! that total before the transaction commits.

use async_trait::async_trait;
use tokio_postgres::error::SqlState;

use super::PostgresStore;
use crate::store::kv::{KvError, KvRow, KvStore, UserScopes, quota_scope};
use crate::store::now_ms;

/// The rows of a person's scopes (`$1` exact, or ending in `$2`).
const USER_ROWS: &str =
    "scope = $1 OR ($2::text IS NOT NULL AND right(scope, length($2::text)) = $2::text)";

fn backend(e: impl Into<anyhow::Error>) -> KvError {
    KvError::Backend(e.into())
}

/// Checks the (plugin, scope) total after a write in `tx`: over `quota`, the write is
/// refused (the transaction is dropped, so nothing changed).
async fn within_quota(
    tx: &deadpool_postgres::Transaction<'_>,
    plugin: &str,
    scope: &str,
    quota: u64,
) -> Result<(), KvError> {
    let row = tx
        .query_one(
            "SELECT bytes, last_delta FROM kv_usage WHERE plugin = $1 AND scope = $2",
            &[&plugin, &quota_scope(scope)],
        )
        .await
        .map_err(backend)?;
    let (bytes, delta): (i64, i64) = (row.get(0), row.get(1));
    if bytes.max(0) as u64 > quota {
        return Err(KvError::Quota {
            used: (bytes - delta).max(0) as u64,
            quota,
            needed: delta.max(0) as u64,
        });
    }
    Ok(())
}

#[async_trait]
impl KvStore for PostgresStore {
    async fn get(&self, plugin: &str, scope: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let c = self.client().await.map_err(KvError::Backend)?;
        let row = c
            .query_opt(
                "SELECT value FROM kv WHERE plugin = $1 AND scope = $2 AND key = $3",
                &[&plugin, &scope, &key],
            )
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), KvError> {
        let mut c = self.client().await.map_err(KvError::Backend)?;
        let tx = c.transaction().await.map_err(backend)?;
        tx.execute(
            "INSERT INTO kv (plugin, scope, key, value, updated_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (plugin, scope, key) DO UPDATE
                 SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at",
            &[&plugin, &scope, &key, &value, &now_ms()],
        )
        .await
        .map_err(backend)?;
        within_quota(&tx, plugin, scope, quota).await?;
        tx.commit().await.map_err(backend)
    }

    async fn increment(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        delta: i64,
        quota: u64,
    ) -> Result<i64, KvError> {
        let mut c = self.client().await.map_err(KvError::Backend)?;
        let tx = c.transaction().await.map_err(backend)?;
        let new = tx
            .query_one(
                "INSERT INTO kv AS k (plugin, scope, key, value, updated_at)
                 VALUES ($1, $2, $3, convert_to($4::bigint::text, 'UTF8'), $5)
                 ON CONFLICT (plugin, scope, key) DO UPDATE SET value =
                     convert_to((convert_from(k.value, 'UTF8')::bigint + $4::bigint)::text, 'UTF8'),
                     updated_at = EXCLUDED.updated_at
                 RETURNING convert_from(k.value, 'UTF8')::bigint",
                &[&plugin, &scope, &key, &delta, &now_ms()],
            )
            .await
            .map_err(|e| match e.code() {
                Some(c) if *c == SqlState::NUMERIC_VALUE_OUT_OF_RANGE => {
                    KvError::NotACounter(format!("`{key}` would overflow a 64-bit integer"))
                }
                Some(c) if c.code().starts_with("22") => KvError::NotACounter(format!(
                    "`{key}` holds a value that is not a decimal integer"
                )),
                _ => backend(e),
            })?
            .get(0);
        within_quota(&tx, plugin, scope, quota).await?;
        tx.commit().await.map_err(backend)?;
        Ok(new)
    }

    async fn delete(&self, plugin: &str, scope: &str, key: &str) -> Result<bool, KvError> {
        let c = self.client().await.map_err(KvError::Backend)?;
        let n = c
            .execute(
                "DELETE FROM kv WHERE plugin = $1 AND scope = $2 AND key = $3",
                &[&plugin, &scope, &key],
            )
            .await
            .map_err(backend)?;
        Ok(n > 0)
    }

    async fn used(&self, plugin: &str, scope: &str) -> Result<u64, KvError> {
        let c = self.client().await.map_err(KvError::Backend)?;
        let row = c
            .query_opt(
                "SELECT bytes FROM kv_usage WHERE plugin = $1 AND scope = $2",
                &[&plugin, &quota_scope(scope)],
            )
            .await
            .map_err(backend)?;
        Ok(row.map(|r| r.get::<_, i64>(0)).unwrap_or(0).max(0) as u64)
    }

    async fn list(
        &self,
        plugin: &str,
        scope: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, KvError> {
        let c = self.client().await.map_err(KvError::Backend)?;
        // Keys sort bytewise (COLLATE "C"): the lower bound walks the index from the prefix.
        let rows = c
            .query(
                "SELECT key FROM kv WHERE plugin = $1 AND scope = $2 AND key >= $3
                 AND starts_with(key, $3) ORDER BY key LIMIT $4",
                &[&plugin, &scope, &prefix, &(limit as i64)],
            )
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn user_rows(&self, user: &str, guild: Option<&str>) -> Result<Vec<KvRow>, KvError> {
        let who = UserScopes::of(user, guild);
        let c = self.client().await.map_err(KvError::Backend)?;
        let rows = c
            .query(
                &format!(
                    "SELECT plugin, scope, key, value, updated_at FROM kv WHERE {USER_ROWS}
                     ORDER BY plugin, scope, key"
                ),
                &[&who.exact, &who.suffix],
            )
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|r| KvRow {
                plugin: r.get(0),
                scope: r.get(1),
                key: r.get(2),
                value: r.get(3),
                updated_at: r.get(4),
            })
            .collect())
    }

    async fn erase_user(&self, user: &str, guild: Option<&str>) -> Result<usize, KvError> {
        let who = UserScopes::of(user, guild);
        let c = self.client().await.map_err(KvError::Backend)?;
        // One statement: the trigger moves the totals in its transaction.
        let n = c
            .execute(
                &format!("DELETE FROM kv WHERE {USER_ROWS}"),
                &[&who.exact, &who.suffix],
            )
            .await
            .map_err(backend)?;
        Ok(n as usize)
    }

    async fn prune_personal(&self, age_ms: i64) -> Result<usize, KvError> {
        let c = self.client().await.map_err(KvError::Backend)?;
        let n = c
            .execute(
                "DELETE FROM kv WHERE updated_at < $1
                 AND (starts_with(scope, 'dm:') OR strpos(scope, '/u/') > 0)",
                &[&now_ms().saturating_sub(age_ms)],
            )
            .await
            .map_err(backend)?;
        Ok(n as usize)
    }
}
