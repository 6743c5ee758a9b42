//! Guild rules from the shared database, compiled and swapped in as a file change would be.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use super::Followed;
use crate::scripts::Rules;
use crate::store::postgres::PostgresStore;

pub struct RuleChanges {
    pub store: Arc<PostgresStore>,
    pub rules: Arc<Rules>,
}

#[async_trait]
impl Followed for RuleChanges {
    async fn apply_since(&self, seen: i64) -> Result<i64> {
        let rows = self.store.rules_since(seen).await?;
        if rows.is_empty() {
            return Ok(seen);
        }
        let changes: Vec<_> = rows
            .iter()
            .map(|r| (r.name.clone(), r.guild_id.clone(), r.source.clone()))
            .collect();
        // Compiling runs a rule's top level: off the async workers.
        let rules = self.rules.clone();
        tokio::task::spawn_blocking(move || rules.apply_sources(changes)).await?;
        Ok(rows.last().map_or(seen, |r| r.version))
    }
}
