//! Host metadata in PostgreSQL: one row per key.

use anyhow::Result;
use async_trait::async_trait;

use super::PostgresStore;
use crate::store::meta::Meta;

#[async_trait]
impl Meta for PostgresStore {
    async fn get(&self, key: &str) -> Result<Option<String>> {
        let c = self.client().await?;
        let row = c
            .query_opt("SELECT value FROM meta WHERE key = $1", &[&key])
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn set(&self, key: &str, value: &str) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "INSERT INTO meta (key, value) VALUES ($1, $2)
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[&key, &value],
        )
        .await?;
        Ok(())
    }

    async fn get_or_insert(&self, key: &str, value: &str) -> Result<String> {
        let c = self.client().await?;
        // The no-op update makes RETURNING give the stored row when the key exists.
        let row = c
            .query_one(
                "INSERT INTO meta (key, value) VALUES ($1, $2)
                 ON CONFLICT (key) DO UPDATE SET value = meta.value RETURNING value",
                &[&key, &value],
            )
            .await?;
        Ok(row.get(0))
    }
}
