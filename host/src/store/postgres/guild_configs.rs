//! Guild config overrides in PostgreSQL: one row per guild with its version (from one
//! sequence) and content digest. A change is written with its audit entry in one
//! transaction, and a change notice (sent on commit) tells every instance to catch up.

use anyhow::Result;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::PostgresStore;
use crate::store::audit::NewAuditEntry;
use crate::store::now_ms;

/// A guild's override at a version (`None`: removed).
#[derive(Debug, Clone, PartialEq)]
pub struct GuildConfigRow {
    pub guild_id: String,
    pub body: Option<Value>,
    pub version: i64,
}

impl PostgresStore {
    /// Stores a guild's override (`None` removes it) and its audit entry, atomically; the
    /// other instances are told. Returns the new version.
    pub async fn put_guild_config(
        &self,
        guild_id: &str,
        body: Option<&Value>,
        audit: NewAuditEntry,
    ) -> Result<i64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let digest = body.map(|b| hex::encode(Sha256::digest(b.to_string().as_bytes())));
        let version: i64 = tx
            .query_one(
                "INSERT INTO guild_configs (guild_id, body, digest, version, updated_at)
                 VALUES ($1, $2, $3, nextval('config_versions'), $4)
                 ON CONFLICT (guild_id) DO UPDATE SET body = EXCLUDED.body,
                     digest = EXCLUDED.digest, version = EXCLUDED.version,
                     updated_at = EXCLUDED.updated_at
                 RETURNING version",
                &[&guild_id, &body, &digest, &now_ms()],
            )
            .await?
            .get(0);
        super::audit::insert(&tx, &audit).await?;
        super::changes::announce(&tx, "guild_config").await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Puts a guild's override from the operator's files (`kdhost config import`), audited
    /// as theirs.
    pub async fn import_guild_config(&self, guild_id: &str, body: &Value) -> Result<i64> {
        let entry = NewAuditEntry::by_operator(guild_id, "config.import", "$", Some(body.clone()));
        self.put_guild_config(guild_id, Some(body), entry).await
    }

    /// Every override changed after `version`, oldest first.
    pub async fn guild_configs_since(&self, version: i64) -> Result<Vec<GuildConfigRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT guild_id, body, version FROM guild_configs WHERE version > $1
                 ORDER BY version",
                &[&version],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| GuildConfigRow {
                guild_id: r.get(0),
                body: r.get(1),
                version: r.get(2),
            })
            .collect())
    }
}
