//! Guild config overrides from the shared database, checked and swapped in as a file
//! change would be.

use std::sync::Arc;

use anyhow::Result;
use async_trait::async_trait;

use super::Followed;
use crate::config::guild::GuildConfigs;
use crate::store::postgres::PostgresStore;
use crate::telemetry::METRICS;

pub struct GuildConfigChanges {
    pub store: Arc<PostgresStore>,
    pub guilds: Arc<GuildConfigs>,
}

#[async_trait]
impl Followed for GuildConfigChanges {
    async fn apply_since(&self, seen: i64) -> Result<i64> {
        let rows = self.store.guild_configs_since(seen).await?;
        for row in &rows {
            let applied = self
                .guilds
                .check_override(&row.guild_id, row.body.clone())
                .and_then(|checked| self.guilds.set_override(checked));
            match applied {
                Ok(()) => {
                    METRICS.config_reloads.with_label_values(&["ok"]).inc();
                    tracing::info!(
                        guild = row.guild_id,
                        version = row.version,
                        "guild configuration changed"
                    );
                }
                Err(e) => {
                    METRICS.config_reloads.with_label_values(&["invalid"]).inc();
                    tracing::error!(guild = row.guild_id, version = row.version, error = %e, "a guild configuration from the database does not apply here; its last good version stays");
                }
            }
        }
        Ok(rows.last().map_or(seen, |r| r.version))
    }
}
