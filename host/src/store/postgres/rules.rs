//! Guild rules in PostgreSQL: one row per rule name with its source, digest and version
//! (from the sequence guild configs use). A change is written with its audit entry and a
//! change notice in one transaction; a removal keeps the row without a source.

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::PostgresStore;
use crate::store::audit::NewAuditEntry;
use crate::store::now_ms;

/// A rule at a version (`source: None`: removed).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRow {
    /// `global/x.rhai` or `guilds/<id>/x.rhai`.
    pub name: String,
    pub guild_id: Option<String>,
    pub source: Option<String>,
    pub version: i64,
}

impl PostgresStore {
    /// Stores a rule (`None` removes it) with its audit entry, atomically; the other
    /// instances are told. Returns the new version.
    pub async fn put_rule(
        &self,
        name: &str,
        guild_id: Option<&str>,
        source: Option<&str>,
        audit: NewAuditEntry,
    ) -> Result<i64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let digest = source.map(|s| hex::encode(Sha256::digest(s.as_bytes())));
        let version: i64 = tx
            .query_one(
                "INSERT INTO rules (name, guild_id, source, digest, version, updated_at)
                 VALUES ($1, $2, $3, $4, nextval('config_versions'), $5)
                 ON CONFLICT (name) DO UPDATE SET source = EXCLUDED.source,
                     digest = EXCLUDED.digest, version = EXCLUDED.version,
                     updated_at = EXCLUDED.updated_at
                 RETURNING version",
                &[&name, &guild_id, &source, &digest, &now_ms()],
            )
            .await?
            .get(0);
        super::audit::insert(&tx, &audit).await?;
        super::changes::announce(&tx, "rule").await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Every rule changed after `version`, oldest first.
    pub async fn rules_since(&self, version: i64) -> Result<Vec<RuleRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT name, guild_id, source, version FROM rules WHERE version > $1
                 ORDER BY version",
                &[&version],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| RuleRow {
                name: r.get(0),
                guild_id: r.get(1),
                source: r.get(2),
                version: r.get(3),
            })
            .collect())
    }
}
