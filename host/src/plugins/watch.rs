//! Hot reload: `notify` watches the plugins folder, the config folder and the rules folder. Changed files are
//! handled after a short quiet period; a bad file is reported and the old version serves on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::grants::GrantsConfig;
use super::registry::{Registry, is_wasm};
use crate::scripts::Rules;

/// Events for one file within this window are handled once (editors write in bursts).
const QUIET: Duration = Duration::from_millis(150);

/// Keeps the OS watcher alive; dropping it stops hot reload.
pub struct HotReload {
    _watcher: notify::RecommendedWatcher,
}

pub fn start(
    registry: Arc<Registry>,
    guilds: Arc<crate::config::guild::GuildConfigs>,
    kaltura: Option<Arc<crate::kaltura::Kaltura>>,
    plugins_dir: &Path,
    config_dir: &Path,
    rules: Option<Arc<Rules>>,
) -> anyhow::Result<HotReload> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })?;
    watcher.watch(plugins_dir, RecursiveMode::NonRecursive)?;
    if config_dir.is_dir() {
        watcher.watch(config_dir, RecursiveMode::Recursive)?;
    }
    // The rules folder is created if missing, so rules added later are seen.
    let scripts_dir = match &rules {
        Some(r) => {
            std::fs::create_dir_all(r.dir())?;
            watcher.watch(r.dir(), RecursiveMode::Recursive)?;
            Some(
                r.dir()
                    .canonicalize()
                    .unwrap_or_else(|_| r.dir().to_path_buf()),
            )
        }
        None => None,
    };
    let plugins_dir = plugins_dir
        .canonicalize()
        .unwrap_or_else(|_| plugins_dir.to_path_buf());
    let config_dir = config_dir
        .canonicalize()
        .unwrap_or_else(|_| config_dir.to_path_buf());
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = HashSet::from([first]);
            // Gather the rest of the burst.
            while let Ok(Some(p)) = tokio::time::timeout(QUIET, rx.recv()).await {
                batch.insert(p);
            }
            let mut guild_files = Vec::new();
            let mut rule_files = Vec::new();
            for path in batch {
                let canon_parent = path.parent().and_then(|d| d.canonicalize().ok());
                if is_wasm(&path) && canon_parent.as_deref() == Some(plugins_dir.as_path()) {
                    let path = plugins_dir.join(path.file_name().unwrap());
                    if path.exists() {
                        // Failures are logged and counted by the registry; the old version stays.
                        let _ = registry.load_file(&path).await;
                    } else {
                        registry.remove_file(&path).await;
                    }
                } else if let Some(sd) = &scripts_dir
                    && path.extension().is_some_and(|e| e == "rhai")
                    && let Some(parent) = &canon_parent
                    && parent.starts_with(sd)
                {
                    rule_files.push(parent.join(path.file_name().unwrap()));
                } else if path.starts_with(&config_dir)
                    || canon_parent
                        .as_deref()
                        .is_some_and(|d| d.starts_with(&config_dir))
                {
                    if path.file_name().is_some_and(|n| n == "plugins.json") {
                        match GrantsConfig::load(&path) {
                            Ok(g) => {
                                if let Some(k) = &kaltura {
                                    k.set_operator(g.kaltura().clone());
                                }
                                registry.set_grants(g).await
                            }
                            Err(e) => {
                                tracing::error!(file = %path.display(), error = format!("{e:#}"), "plugin grants not reloaded; the previous ones stay")
                            }
                        }
                    } else if path.extension().is_some_and(|e| e == "json")
                        && let (Some(dir), Some(name)) = (canon_parent, path.file_name())
                    {
                        guild_files.push(dir.join(name));
                    }
                }
            }
            if let (Some(r), false) = (&rules, rule_files.is_empty()) {
                // Compiling is CPU work: off the async runtime. Problems are logged there.
                let r = r.clone();
                let _ = tokio::task::spawn_blocking(move || r.apply_changes(&rule_files)).await;
            }
            if !guild_files.is_empty() {
                // Problems are logged and counted there; each bad file keeps its last good version.
                let guilds = guilds.clone();
                let dir = config_dir.clone();
                let _ =
                    tokio::task::spawn_blocking(move || guilds.apply_changes(&dir, &guild_files))
                        .await;
            }
        }
    });
    Ok(HotReload { _watcher: watcher })
}
