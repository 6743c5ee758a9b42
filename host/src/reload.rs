//! Hot reload: one `notify` watcher for everything reloadable. Each reloadable thing (the
//! plugins folder, the operator's grants, the guild config files, the rules) says which
//! folders it needs watched and which changed paths are its own, and applies its own
//! changes. Changes are gathered over a short quiet period (editors write in bursts); a bad
//! file is reported by the thing itself and its previous version keeps serving.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Events for one file within this window are handled once.
const QUIET: Duration = Duration::from_millis(150);

/// A folder to watch, and whether its subfolders count.
pub struct Watch {
    pub dir: PathBuf,
    pub recursive: bool,
}

impl Watch {
    /// The folder and everything below it.
    pub fn tree(dir: &Path) -> Vec<Watch> {
        vec![Watch {
            dir: dir.to_path_buf(),
            recursive: true,
        }]
    }

    /// The folder's own files only.
    pub fn folder(dir: &Path) -> Vec<Watch> {
        vec![Watch {
            dir: dir.to_path_buf(),
            recursive: false,
        }]
    }
}

#[async_trait]
pub trait Reloadable: Send + Sync {
    /// The folders whose changes may concern it (a missing one is not watched).
    fn watches(&self) -> Vec<Watch>;
    /// Whether a changed path (its folder canonicalized) is one of its files.
    fn claims(&self, path: &Path) -> bool;
    /// Applies a batch of its changed paths (removed files included).
    async fn apply(&self, paths: Vec<PathBuf>);
}

/// Keeps the OS watcher alive; dropping it stops hot reload.
pub struct HotReload {
    _watcher: notify::RecommendedWatcher,
}

/// Watches every folder the things name and hands each change to the first thing that
/// claims it.
pub fn start(things: Vec<Arc<dyn Reloadable>>) -> anyhow::Result<HotReload> {
    let (tx, mut rx) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(ev) = res {
            for p in ev.paths {
                let _ = tx.send(p);
            }
        }
    })?;
    let mut watched = BTreeSet::new();
    for w in things.iter().flat_map(|t| t.watches()) {
        if !w.dir.is_dir() || !watched.insert((w.dir.clone(), w.recursive)) {
            continue;
        }
        let mode = if w.recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher.watch(&w.dir, mode)?;
    }
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = HashSet::from([first]);
            // Gather the rest of the burst.
            while let Ok(Some(p)) = tokio::time::timeout(QUIET, rx.recv()).await {
                batch.insert(p);
            }
            let mut mine: Vec<Vec<PathBuf>> = vec![Vec::new(); things.len()];
            for path in batch.into_iter().filter_map(|p| canonical(&p)) {
                if let Some(i) = things.iter().position(|t| t.claims(&path)) {
                    mine[i].push(path);
                }
            }
            for (thing, paths) in things.iter().zip(mine) {
                if !paths.is_empty() {
                    thing.apply(paths).await;
                }
            }
        }
    });
    Ok(HotReload { _watcher: watcher })
}

/// The path with its folder canonicalized (the file itself may be gone), so things
/// compare it with their own canonical folders.
fn canonical(path: &Path) -> Option<PathBuf> {
    let dir = path.parent()?.canonicalize().ok()?;
    Some(dir.join(path.file_name()?))
}

/// A folder as given, canonicalized when it exists (watch events name canonical paths).
pub fn canonical_dir(dir: &Path) -> PathBuf {
    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf())
}
