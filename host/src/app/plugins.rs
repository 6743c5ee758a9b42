//! Step 4, plugins: capabilities → runtime → registry with the operator's grants. One
//! wiring for `serve`, `commands sync`, `plugin check` and `plugin test`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;

use super::connections::Connections;
use super::storage::Storage;
use crate::cluster::changes::PluginChanges;
use crate::config::settings::{ServeOptions, Settings};
use crate::plugins::caps::{Capabilities, DiscordCap};
use crate::plugins::grants::GrantsConfig;
use crate::plugins::registry::LoadFailure;
use crate::plugins::registry::wasm_files;
use crate::plugins::{Registry, Runtime, builtin};
use crate::store::backend::Durable;

/// What a registry is made of.
pub struct PluginWiring {
    pub caps: Arc<Capabilities>,
    pub grants: Arc<ArcSwap<GrantsConfig>>,
    /// A guest's memory budget (MiB); the default when unset.
    pub memory_mib: Option<u32>,
    /// Where compiled components are kept between starts.
    pub cache: Option<PathBuf>,
}

/// The runtime and an empty registry over it.
pub fn plugins(w: PluginWiring) -> Result<Arc<Registry>> {
    let memory = w
        .memory_mib
        .unwrap_or(crate::plugins::admission::DEFAULT_MEMORY_MIB);
    let catalog = w.caps.host.catalog.clone();
    let runtime = Arc::new(Runtime::new(w.caps)?.with_memory_budget(memory));
    Ok(Arc::new(Registry::new(runtime, w.grants, catalog, w.cache)))
}

/// The serving host's plugins: the built-ins and every file in the plugins folder (on a
/// shared database: every plugin published there).
pub struct Served {
    pub caps: Arc<Capabilities>,
    pub registry: Arc<Registry>,
    pub load_failures: Vec<LoadFailure>,
}

pub async fn serve(
    opts: &ServeOptions,
    settings: &Settings,
    storage: &Storage,
    conn: &Connections,
) -> Result<Served> {
    let discord = DiscordCap {
        rest: conn.rest.clone(),
        tokens: storage.shared.tokens.clone(),
        directory: conn.directory.clone(),
        guilds: storage.guilds.clone(),
        outbox: conn.outbox.clone(),
    };
    let caps = Arc::new(Capabilities::new(
        storage.stores.kv.clone(),
        storage.guilds.clone(),
        discord,
        conn.kaltura.clone(),
        Default::default(),
    ));
    let registry = plugins(PluginWiring {
        caps: caps.clone(),
        grants: storage.grants.clone(),
        memory_mib: settings.plugin_memory_mib,
        cache: Some(opts.data.join("cache")),
    })?;
    std::fs::create_dir_all(&opts.plugins)
        .with_context(|| format!("creating the plugins folder {}", opts.plugins.display()))?;
    let load_failures = match (&storage.durable, &storage.follower) {
        // On a shared database the published plugins are rows there, followed by every
        // instance (failures are logged as they are loaded).
        (Durable::Postgres(pg), Some(follower)) => {
            let files = wasm_files(&opts.plugins).len();
            if files > 0 {
                tracing::warn!(
                    folder = %opts.plugins.display(),
                    files,
                    "on PostgreSQL the plugins come from the database, not this folder: `kdhost plugin publish FILE.wasm` puts one there"
                );
            }
            let mut failures = registry.load_all(builtin::all(), None).await;
            let changes = Arc::new(PluginChanges::new(
                pg.clone(),
                registry.clone(),
                opts.data.join("published"),
            ));
            follower
                .follow(changes.clone())
                .await
                .context("reading the published plugins from the database")?;
            failures.extend(changes.take_failures());
            failures
        }
        _ => registry.load_all(builtin::all(), Some(&opts.plugins)).await,
    };
    Ok(Served {
        caps,
        registry,
        load_failures,
    })
}
