//! Plugin components from the shared database: each published plugin is written (once per
//! digest) into a folder of this instance's own and loaded from there exactly as a file
//! dropped into the plugins folder would be; an unpublished one is unloaded.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use async_trait::async_trait;

use super::Followed;
use crate::config::guild::write_atomically_bytes;
use crate::plugins::Registry;
use crate::plugins::registry::LoadFailure;
use crate::store::postgres::PostgresStore;
use crate::store::postgres::plugins::digest;

pub struct PluginChanges {
    store: Arc<PostgresStore>,
    registry: Arc<Registry>,
    /// Where published components are kept on this instance (`<data>/published`).
    dir: PathBuf,
    /// Refusals not yet reported (the startup report takes the first ones).
    failures: Mutex<Vec<LoadFailure>>,
}

impl PluginChanges {
    pub fn new(store: Arc<PostgresStore>, registry: Arc<Registry>, dir: PathBuf) -> Self {
        Self {
            store,
            registry,
            dir,
            failures: Mutex::new(Vec::new()),
        }
    }

    /// The refusals since the last call.
    pub fn take_failures(&self) -> Vec<LoadFailure> {
        std::mem::take(&mut self.failures.lock().unwrap())
    }
}

#[async_trait]
impl Followed for PluginChanges {
    async fn apply_since(&self, seen: i64) -> Result<i64> {
        let rows = self.store.plugins_since(seen).await?;
        for row in &rows {
            if !crate::plugins::manifest::valid_plugin_name(&row.name) {
                tracing::error!(
                    plugin = row.name,
                    "a published plugin with an invalid name is skipped"
                );
                continue;
            }
            let path = self.dir.join(format!("{}.wasm", row.name));
            let Some(want) = &row.digest else {
                let _ = std::fs::remove_file(&path);
                self.registry.remove_file(&path).await;
                continue;
            };
            let have = std::fs::read(&path).ok().map(|b| digest(&b));
            if have.as_ref() != Some(want) {
                let Some(bytes) = self.store.plugin_blob(want).await? else {
                    tracing::error!(
                        plugin = row.name,
                        digest = want,
                        "a published plugin's component is missing from the database"
                    );
                    continue;
                };
                write_atomically_bytes(&path, &bytes)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            // Refusals are logged and counted by the registry; the last good version stays.
            if let Err(f) = self.registry.load_file(&path).await {
                let mut failures = self.failures.lock().unwrap();
                failures.push(f);
                // Only the startup report reads them; later ones are in the log.
                failures.truncate(100);
            }
        }
        Ok(rows.last().map_or(seen, |r| r.version))
    }
}
