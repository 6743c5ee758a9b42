//! The set of loaded plugins, swapped atomically: calls in flight keep the `Arc` of the
//! version they started on; new calls see the new set.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio::sync::{Mutex, Notify};

use super::bindings::kaltura_discord::plugin::host::PluginInfo;
use super::bindings::types::CommandKind;
use super::caps::Catalog;
use super::grants::GrantsConfig;
use super::loader::{self, LoadedPlugin, Source};
use super::runtime::Runtime;
use crate::telemetry::METRICS;

/// An immutable snapshot of what is loaded.
#[derive(Default, Clone)]
pub struct PluginSet {
    pub plugins: BTreeMap<String, Arc<LoadedPlugin>>,
    /// (command name, kind) → plugin name.
    commands: HashMap<(String, u8), String>,
}

impl PluginSet {
    /// The plugin that owns a slash command (or user/message command of that name).
    pub fn command_owner(&self, name: &str, kind: u8) -> Option<&Arc<LoadedPlugin>> {
        self.commands
            .get(&(name.to_string(), kind))
            .and_then(|p| self.plugins.get(p))
    }

    pub fn get(&self, plugin: &str) -> Option<&Arc<LoadedPlugin>> {
        self.plugins.get(plugin)
    }

    /// Adds (or replaces) a plugin; refuses a command that another plugin already owns.
    fn insert(&mut self, p: Arc<LoadedPlugin>) -> Result<(), String> {
        for c in &p.manifest.commands {
            let key = (c.name.clone(), kind_code(c.kind));
            if let Some(owner) = self.commands.get(&key)
                && **owner != *p.name
            {
                return Err(format!(
                    "command /{} is already provided by plugin `{owner}`; rename it or remove that plugin",
                    c.name
                ));
            }
        }
        self.remove(&p.name.clone());
        for c in &p.manifest.commands {
            self.commands
                .insert((c.name.clone(), kind_code(c.kind)), p.name.to_string());
        }
        self.plugins.insert(p.name.to_string(), p);
        Ok(())
    }

    fn remove(&mut self, name: &str) -> Option<Arc<LoadedPlugin>> {
        self.commands.retain(|_, owner| owner != name);
        self.plugins.remove(name)
    }

    /// What `host.info` and `host.command-notes` report.
    pub fn catalog(&self) -> Catalog {
        let deprecations = self
            .plugins
            .values()
            .flat_map(|p| {
                p.deprecations
                    .iter()
                    .map(|d| (p.name.to_string(), d.clone()))
            })
            .collect();
        Catalog {
            plugins: self.infos(),
            deprecations,
        }
    }

    pub fn infos(&self) -> Vec<PluginInfo> {
        self.plugins
            .values()
            .map(|p| PluginInfo {
                name: p.name.to_string(),
                version: p.manifest.version.clone(),
                description: p.manifest.description.clone(),
                contract: p.contract.clone(),
                source: match &p.source {
                    Source::Builtin => "built-in".into(),
                    Source::File(f) => f.file_name().unwrap_or_default().to_string_lossy().into(),
                },
                commands: p.manifest.commands.clone(),
            })
            .collect()
    }
}

/// Discord's numeric command type.
pub fn kind_code(k: CommandKind) -> u8 {
    match k {
        CommandKind::ChatInput => 1,
        CommandKind::User => 2,
        CommandKind::Message => 3,
    }
}

/// A plugin file that could not be loaded, and why.
#[derive(Debug, Clone)]
pub struct LoadFailure {
    pub source: String,
    /// The kind of refusal ([`loader::Refused::kind`]).
    pub kind: &'static str,
    pub reason: String,
}

impl std::fmt::Display for LoadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

pub struct Registry {
    pub runtime: Arc<Runtime>,
    set: ArcSwap<PluginSet>,
    /// The operator's grants (shared with the guild rules, which read the `rules` entry).
    grants: Arc<ArcSwap<GrantsConfig>>,
    /// What the `host` capability reports about the loaded plugins.
    catalog: Arc<ArcSwap<Catalog>>,
    /// Built-in plugins by name, to fall back to when a folder override is removed.
    builtins: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    /// Which file provides which plugin.
    files: Mutex<HashMap<PathBuf, String>>,
    cache: Option<PathBuf>,
    /// Serialises read-modify-publish of `set` (readers never wait).
    writer: Mutex<()>,
    /// Signalled whenever the set of commands may have changed.
    pub commands_changed: Notify,
}

impl Registry {
    /// `cache`: where compiled components are kept (by content hash) between starts.
    pub fn new(
        runtime: Arc<Runtime>,
        grants: Arc<ArcSwap<GrantsConfig>>,
        catalog: Arc<ArcSwap<Catalog>>,
        cache: Option<PathBuf>,
    ) -> Self {
        Self {
            runtime,
            set: ArcSwap::from_pointee(PluginSet::default()),
            grants,
            catalog,
            builtins: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            cache,
            writer: Mutex::new(()),
            commands_changed: Notify::new(),
        }
    }

    /// The current snapshot (lock-free).
    pub fn snapshot(&self) -> Arc<PluginSet> {
        self.set.load_full()
    }

    pub fn grants(&self) -> Arc<GrantsConfig> {
        self.grants.load_full()
    }

    /// Loads the built-ins, then every `.wasm` in `dir` (sorted by name).
    pub async fn load_all(
        &self,
        builtins: &[(&str, &[u8])],
        dir: Option<&Path>,
    ) -> Vec<LoadFailure> {
        let mut failures = Vec::new();
        for (file, bytes) in builtins {
            match self.load(bytes.to_vec(), Source::Builtin).await {
                Ok(p) => {
                    self.builtins
                        .lock()
                        .await
                        .insert(p.name.to_string(), p.clone());
                    if let Err(reason) = self.apply(|set| set.insert(p.clone())).await {
                        let refused = loader::Refused::Conflict(reason);
                        failures.push(self.fail(format!("built-in {file}"), refused));
                    }
                }
                Err(reason) => failures.push(self.fail(format!("built-in {file}"), reason)),
            }
        }
        if let Some(dir) = dir {
            for path in wasm_files(dir) {
                if let Err(f) = self.load_file(&path).await {
                    failures.push(f);
                }
            }
        }
        failures
    }

    fn fail(&self, source: String, refused: loader::Refused) -> LoadFailure {
        METRICS.plugin_loads.with_label_values(&["refused"]).inc();
        let (kind, reason) = (refused.kind(), refused.to_string());
        tracing::error!(plugin_file = %source, kind, %reason, "plugin refused");
        LoadFailure {
            source,
            kind,
            reason,
        }
    }

    async fn load(
        &self,
        bytes: Vec<u8>,
        source: Source,
    ) -> Result<Arc<LoadedPlugin>, loader::Refused> {
        let grants = self.grants.load_full();
        loader::load(&self.runtime, bytes, source, &grants, self.cache.clone())
            .await
            .map(Arc::new)
    }

    /// Loads a component (the bytes of file `path`) as [`Registry::load_file`] would,
    /// with the same runtime, grants and checks, without serving it: what `plugin check`
    /// and `plugin test` look at.
    pub async fn try_load(
        &self,
        bytes: Vec<u8>,
        path: &Path,
    ) -> Result<Arc<LoadedPlugin>, loader::Refused> {
        self.load(bytes, Source::File(path.to_path_buf())).await
    }

    /// Loads or reloads a plugin file. On failure the previous version keeps serving.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<LoadedPlugin>, LoadFailure> {
        let shown = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| {
            self.fail(
                shown.clone(),
                loader::Refused::Io(format!("cannot read: {e}")),
            )
        })?;
        let p = self
            .load(bytes, Source::File(path.to_path_buf()))
            .await
            .map_err(|r| self.fail(shown.clone(), r))?;
        let mut files = self.files.lock().await;
        // Another file already provides this plugin name: refuse the newcomer.
        if let Some((other, _)) = files
            .iter()
            .find(|(f, n)| **n == *p.name && f.as_path() != path)
        {
            let reason = format!(
                "plugin `{}` is already loaded from {}",
                p.name,
                other.display()
            );
            return Err(self.fail(shown, loader::Refused::Conflict(reason)));
        }
        let previous = files.get(path).cloned();
        let res = self
            .apply(|set| {
                if let Some(prev) = previous.as_deref().filter(|prev| *prev != &*p.name) {
                    set.remove(prev);
                }
                set.insert(p.clone())
            })
            .await;
        res.map_err(|r| self.fail(shown.clone(), loader::Refused::Conflict(r)))?;
        if let Some(prev) = previous.filter(|prev| *prev != *p.name) {
            self.restore_builtin(&prev).await;
        }
        files.insert(path.to_path_buf(), p.name.to_string());
        METRICS.plugin_loads.with_label_values(&["loaded"]).inc();
        tracing::info!(plugin = %p.name, version = %p.manifest.version, file = %shown, commands = p.manifest.commands.len(), "plugin loaded");
        Ok(p)
    }

    /// A plugin file was deleted: unload its plugin (a built-in of that name comes back).
    pub async fn remove_file(&self, path: &Path) {
        let Some(name) = self.files.lock().await.remove(path) else {
            return;
        };
        let _ = self
            .apply(|set| {
                set.remove(&name);
                Ok(())
            })
            .await;
        tracing::info!(plugin = %name, file = %path.display(), "plugin unloaded: its file was removed");
        self.restore_builtin(&name).await;
    }

    async fn restore_builtin(&self, name: &str) {
        if let Some(b) = self.builtins.lock().await.get(name).cloned() {
            if let Err(e) = self.apply(|set| set.insert(b.clone())).await {
                tracing::error!(plugin = %name, error = %e, "built-in plugin could not be restored");
            } else {
                tracing::info!(plugin = %name, "built-in plugin restored");
            }
        }
    }

    /// Applies a change to a copy of the set and publishes it if the change succeeded.
    async fn apply(
        &self,
        change: impl FnOnce(&mut PluginSet) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut next = (*self.set.load_full()).clone();
        change(&mut next)?;
        METRICS.plugins_loaded.set(next.plugins.len() as i64);
        for name in next.plugins.keys() {
            METRICS.prime_plugin(name);
        }
        self.catalog.store(Arc::new(next.catalog()));
        self.set.store(Arc::new(next));
        self.commands_changed.notify_one();
        Ok(())
    }

    /// New operator grants: re-apply them to every loaded plugin.
    pub async fn set_grants(&self, grants: GrantsConfig) {
        let _files = self.files.lock().await; // no concurrent file loads while we rebuild
        let _writer = self.writer.lock().await;
        let mut next = (*self.set.load_full()).clone();
        for p in next.plugins.values_mut() {
            let mut q = (**p).clone();
            q.grants =
                Arc::new(grants.for_loaded(&q.name, q.source == Source::Builtin, &q.requested));
            *p = Arc::new(q);
        }
        self.grants.store(Arc::new(grants));
        self.set.store(Arc::new(next));
        tracing::info!("plugin grants reloaded");
    }
}

/// The `.wasm` files of a folder, sorted.
pub fn wasm_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_wasm(p))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn is_wasm(p: &Path) -> bool {
    p.extension().is_some_and(|e| e == "wasm")
}

/// The plugins folder, hot-reloaded: a `.wasm` written there is loaded (or reloaded), one
/// removed is unloaded (a built-in of that name comes back).
pub struct PluginFolder {
    registry: Arc<Registry>,
    dir: PathBuf,
}

impl PluginFolder {
    pub fn new(registry: Arc<Registry>, dir: &Path) -> Self {
        Self {
            registry,
            dir: crate::reload::canonical_dir(dir),
        }
    }
}

#[async_trait::async_trait]
impl crate::reload::Reloadable for PluginFolder {
    fn watches(&self) -> Vec<crate::reload::Watch> {
        crate::reload::Watch::folder(&self.dir)
    }

    fn claims(&self, path: &Path) -> bool {
        is_wasm(path) && path.parent() == Some(self.dir.as_path())
    }

    async fn apply(&self, paths: Vec<PathBuf>) {
        for path in paths {
            if path.exists() {
                // Failures are logged and counted by the registry; the old version stays.
                let _ = self.registry.load_file(&path).await;
            } else {
                self.registry.remove_file(&path).await;
            }
        }
    }
}
