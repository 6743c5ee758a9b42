//! Plugin components in PostgreSQL: the bytes stored once per content digest, and one row
//! per plugin name saying which digest it serves, versioned from the sequence guild configs
//! use. Publishing writes both with an audit entry and a change notice in one transaction.

use anyhow::Result;
use sha2::{Digest, Sha256};

use super::PostgresStore;
use crate::store::audit::NewAuditEntry;
use crate::store::now_ms;

/// A plugin at a version (`digest: None`: unpublished).
#[derive(Debug, Clone, PartialEq)]
pub struct PluginRow {
    pub name: String,
    pub digest: Option<String>,
    pub version: i64,
}

/// The digest components are stored under: SHA-256, hex.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl PostgresStore {
    /// Publishes a plugin's component (`None` unpublishes the name) with its audit entry,
    /// atomically; the other instances are told. Returns the new version.
    pub async fn put_plugin(
        &self,
        name: &str,
        component: Option<&[u8]>,
        audit: NewAuditEntry,
    ) -> Result<i64> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now = now_ms();
        let digest = component.map(digest);
        if let (Some(bytes), Some(d)) = (component, &digest) {
            tx.execute(
                "INSERT INTO plugin_blobs (digest, bytes, created_at) VALUES ($1, $2, $3)
                 ON CONFLICT (digest) DO NOTHING",
                &[d, &bytes, &now],
            )
            .await?;
        }
        let version: i64 = tx
            .query_one(
                "INSERT INTO plugins (name, digest, version, updated_at)
                 VALUES ($1, $2, nextval('config_versions'), $3)
                 ON CONFLICT (name) DO UPDATE SET digest = EXCLUDED.digest,
                     version = EXCLUDED.version, updated_at = EXCLUDED.updated_at
                 RETURNING version",
                &[&name, &digest, &now],
            )
            .await?
            .get(0);
        super::audit::insert(&tx, &audit).await?;
        super::changes::announce(&tx, "plugin").await?;
        tx.commit().await?;
        Ok(version)
    }

    /// Every plugin changed after `version`, oldest first.
    pub async fn plugins_since(&self, version: i64) -> Result<Vec<PluginRow>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT name, digest, version FROM plugins WHERE version > $1 ORDER BY version",
                &[&version],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| PluginRow {
                name: r.get(0),
                digest: r.get(1),
                version: r.get(2),
            })
            .collect())
    }

    /// A component's bytes by digest.
    pub async fn plugin_blob(&self, digest: &str) -> Result<Option<Vec<u8>>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT bytes FROM plugin_blobs WHERE digest = $1",
                &[&digest],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }
}
