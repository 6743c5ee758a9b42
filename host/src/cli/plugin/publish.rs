//! `kdhost plugin publish FILE.wasm` and `kdhost plugin unpublish NAME`: plugins for
//! instances that share a database. A component is checked as the host loads it before it
//! is stored (by content digest, audited as the operator's); every instance loads it, or
//! unloads it, within a second.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;

use super::check::load_checked;
use crate::plugins::loader::Refused;
use crate::plugins::manifest::valid_plugin_name;
use crate::store::audit::{NewAuditEntry, OPERATOR_WIDE};
use crate::store::postgres::PostgresStore;
use crate::store::postgres::plugins::digest;

pub async fn publish(file: &Path, database_url: Option<String>) -> Result<ExitCode> {
    let url = crate::cli::db::required_url(database_url)?;
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let store = PostgresStore::connect(&url).await?;
    match publish_component(&store, bytes, file).await? {
        Ok(p) => {
            println!(
                "published {} {} ({} bytes, sha256 {}) as version {} in {}; instances load it at once",
                p.name,
                p.version,
                p.bytes,
                p.sha256,
                p.published_as,
                store.target()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            eprintln!("{}: refused, not published: {reason}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// What was published.
#[derive(Debug, Clone)]
pub struct Published {
    pub name: String,
    /// The plugin's own version (its manifest).
    pub version: String,
    pub sha256: String,
    pub bytes: usize,
    /// The row's version in the database.
    pub published_as: i64,
}

/// Checks a component (the bytes of `file`) as the host loads it and, if it passes,
/// publishes it under its plugin name; a refusal stores nothing.
pub async fn publish_component(
    store: &PostgresStore,
    bytes: Vec<u8>,
    file: &Path,
) -> Result<std::result::Result<Published, Refused>> {
    let p = match load_checked(bytes.clone(), file).await? {
        Ok(p) => p,
        Err(reason) => return Ok(Err(reason)),
    };
    let sha256 = digest(&bytes);
    let entry = NewAuditEntry::by_operator(
        OPERATOR_WIDE,
        "plugin.publish",
        &p.name,
        Some(json!({"version": p.manifest.version, "sha256": sha256, "bytes": bytes.len()})),
    );
    let published_as = store.put_plugin(&p.name, Some(&bytes), entry).await?;
    Ok(Ok(Published {
        name: p.name.to_string(),
        version: p.manifest.version.clone(),
        sha256,
        bytes: bytes.len(),
        published_as,
    }))
}

pub async fn unpublish(name: &str, database_url: Option<String>) -> Result<ExitCode> {
    let url = crate::cli::db::required_url(database_url)?;
    if !valid_plugin_name(name) {
        anyhow::bail!("`{name}` is not a plugin name (1-32 of a-z 0-9 - _)");
    }
    let store = PostgresStore::connect(&url).await?;
    let published = store.plugins_since(0).await?;
    if !published
        .iter()
        .any(|r| r.name == name && r.digest.is_some())
    {
        anyhow::bail!(
            "no plugin named `{name}` is published in {}",
            store.target()
        );
    }
    let entry = NewAuditEntry::by_operator(OPERATOR_WIDE, "plugin.unpublish", name, None);
    let version = store.put_plugin(name, None, entry).await?;
    println!(
        "unpublished {name} (version {version}) in {}; instances unload it at once",
        store.target()
    );
    Ok(ExitCode::SUCCESS)
}
