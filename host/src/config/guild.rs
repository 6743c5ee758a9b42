//! Guild configuration: `config/default.json` deep-merged with `config/guilds/<id>.json`,
//! `{{ENV_VAR}}` placeholders filled, validated against the schema of [`super::schema`].
//!
//! The parts the host enforces before any guest runs:
//! `plugins.<name>.enabled`, `plugins.<name>.allowed_roles`, `plugins.<name>.settings`,
//! `commands.<name>.enabled`, `commands.<name>.allowed_roles`.
//! Reads are lock-free (`ArcSwap`). Each file is validated on its own: an invalid file keeps
//! its last good version and the error names the file, the JSON path and the reason.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::Value;

use super::placeholders;
use super::schema::{self, GuildConfig};
use crate::kaltura::privileges;
use crate::telemetry::METRICS;

/// One guild's effective configuration.
#[derive(Debug, Default)]
pub struct GuildEntry {
    /// Merged, placeholders filled: what the host and guests read.
    pub value: Value,
    /// Merged as written (placeholders not filled): what admins see, so no environment
    /// value is shown.
    pub raw: Value,
    pub typed: GuildConfig,
}

impl std::ops::Deref for GuildEntry {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// A valid file: as written and with placeholders filled.
#[derive(Clone)]
struct FileContent {
    raw: Value,
    resolved: Value,
}

/// A guild's new override (or its removal), checked against the schema, the operator's
/// privileges and the default: ready to be kept (file or database), then applied.
#[derive(Clone)]
pub struct CheckedOverride {
    guild_id: String,
    content: Option<FileContent>,
}

impl CheckedOverride {
    /// The override as written (`None`: removed, back to the defaults).
    pub fn raw(&self) -> Option<&Value> {
        self.content.as_ref().map(|c| &c.raw)
    }
}

/// All guild configs, swapped whole on reload.
#[derive(Default)]
pub struct GuildConfigs {
    current: ArcSwap<Snapshot>,
    /// Files whose current content is invalid (the last good version is in use), by path.
    problems: Mutex<BTreeMap<PathBuf, String>>,
    /// Serializes writers (reloads and updates); readers never wait.
    writer: Mutex<()>,
    /// Serializes file writes with their application (the file and memory agree).
    persist: Mutex<()>,
    /// Guild overrides come from the shared database, not from `guilds/*.json` (only
    /// `default.json` is read from files).
    overrides_elsewhere: std::sync::atomic::AtomicBool,
}

#[derive(Default, Clone)]
struct Snapshot {
    /// Valid file contents by guild id; `""` is default.json.
    files: BTreeMap<String, FileContent>,
    /// Merged config per guild id; `""` is the default for guilds without a file.
    merged: HashMap<String, Arc<GuildEntry>>,
}

impl Snapshot {
    fn rebuild(files: BTreeMap<String, FileContent>) -> Result<Self, String> {
        let empty = FileContent {
            raw: Value::Object(Default::default()),
            resolved: Value::Object(Default::default()),
        };
        let default = files.get("").unwrap_or(&empty).clone();
        let mut merged = HashMap::new();
        for (id, f) in files
            .iter()
            .chain(std::iter::once((&String::new(), &empty)))
        {
            let (mut raw, mut value) = (default.raw.clone(), default.resolved.clone());
            if !id.is_empty() {
                deep_merge(&mut raw, &f.raw);
                deep_merge(&mut value, &f.resolved);
            }
            let typed = schema::typed(&value).map_err(|e| format!("guild {id}: {e}"))?;
            merged.insert(id.clone(), Arc::new(GuildEntry { value, raw, typed }));
        }
        Ok(Self { files, merged })
    }
}

/// Deep merge: objects merge key by key, everything else (arrays too) replaces.
pub fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                deep_merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// Which guild a file configures: `""` for default.json, the id for guilds/<id>.json.
fn guild_key(dir: &Path, path: &Path) -> Option<String> {
    if path == dir.join("default.json") {
        return Some(String::new());
    }
    if path.parent()? != dir.join("guilds") || path.extension()? != "json" {
        return None;
    }
    Some(path.file_stem()?.to_string_lossy().into_owned())
}

/// Parses, fills placeholders and validates one file's text. Errors name the file, the
/// JSON path (or line and column) and the reason; privileges a guild may not set are
/// errors too.
pub fn check_text(file: &str, text: &str) -> Result<(Value, Value), String> {
    check_value(file, parse(file, text)?)
}

/// A file's JSON, or where it is broken (line and column).
fn parse(file: &str, text: &str) -> Result<Value, String> {
    serde_json::from_str(text)
        .map_err(|e| format!("{file}: line {}, column {}: {e}", e.line(), e.column()))
}

/// Validates a new file content: anything a guild may not set is refused.
fn check_value(file: &str, raw: Value) -> Result<(Value, Value), String> {
    let (raw, resolved) = check_schema(file, raw)?;
    let refused = privileges::refusals(&resolved);
    if !refused.is_empty() {
        return Err(refused
            .iter()
            .map(|r| format!("{file}: {}: {}", r.path, r.reason))
            .collect::<Vec<_>>()
            .join("\n"));
    }
    Ok((raw, resolved))
}

fn check_schema(file: &str, raw: Value) -> Result<(Value, Value), String> {
    if !raw.is_object() {
        return Err(format!("{file}: $: the file must hold a JSON object"));
    }
    let resolved =
        placeholders::resolve(&raw, &placeholders::from_env).map_err(|e| format!("{file}: {e}"))?;
    schema::validate(&resolved).map_err(|violations| {
        violations
            .iter()
            .map(|v| format!("{file}: {v}"))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok((raw, resolved))
}

/// A file on disk. It loads with the privileges a guild may not set taken out (the rest
/// of the file applies); each one taken out is returned as a problem naming file and path.
fn read_file(path: &Path) -> Result<(FileContent, Vec<String>), String> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{file}: {e}"))?;
    let (mut raw, mut resolved) = check_schema(&file, parse(&file, &text)?)?;
    let refused: Vec<String> = privileges::refusals(&resolved)
        .iter()
        .map(|r| {
            format!(
                "{file}: {}: {} (left out; the rest of the file applies)",
                r.path, r.reason
            )
        })
        .collect();
    privileges::strip(&mut raw, &mut resolved);
    for r in &refused {
        tracing::error!(error = %r, "guild configuration: a privilege was refused");
    }
    Ok((FileContent { raw, resolved }, refused))
}

/// The guild files under `dir`: `default.json` and `guilds/*.json`, sorted.
pub fn config_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    if dir.join("default.json").exists() {
        out.push(dir.join("default.json"));
    }
    let guilds = dir.join("guilds");
    if guilds.is_dir() {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&guilds)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        out.extend(files);
    }
    Ok(out)
}

fn check_guild_id(path: &Path, id: &str) -> Result<(), String> {
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "{}: the file name must be a guild id (digits)",
            path.display()
        ));
    }
    Ok(())
}

impl GuildConfigs {
    /// Loads `DIR/default.json` (optional) and `DIR/guilds/*.json`; every problem in every
    /// file is reported (the host does not start on a config it cannot trust).
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let me = Self::default();
        me.reload(dir)?;
        Ok(me)
    }

    /// Loads `DIR/default.json` only: guild overrides come from the shared database
    /// (`guilds/*.json` files there are named in a warning and not read).
    pub fn load_default_only(dir: &Path) -> anyhow::Result<Self> {
        let me = Self::default();
        me.overrides_elsewhere
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let ignored: Vec<String> = config_files(dir)?
            .iter()
            .filter(|p| guild_key(dir, p).is_some_and(|id| !id.is_empty()))
            .map(|p| p.display().to_string())
            .collect();
        if !ignored.is_empty() {
            tracing::warn!(files = %ignored.join(", "), "guild config files are not read when KD_DATABASE_URL is set: put them in the database with `kdhost config import`");
        }
        me.reload(dir)?;
        Ok(me)
    }

    /// Whether a config file is this host's to read: default.json always, guild files
    /// unless overrides live in the database.
    fn reads(&self, id: &str) -> bool {
        id.is_empty()
            || !self
                .overrides_elsewhere
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Every guild gets `default` (no files: `kdhost plugin test`).
    pub fn with_default(default: Value) -> Self {
        let me = Self::default();
        let typed = schema::typed(&default).unwrap_or_default();
        let entry = GuildEntry {
            raw: default.clone(),
            value: default,
            typed,
        };
        let merged = HashMap::from([(String::new(), Arc::new(entry))]);
        me.current.store(Arc::new(Snapshot {
            files: BTreeMap::new(),
            merged,
        }));
        me
    }

    /// Re-reads everything, all or nothing: on any error the previous config stays and the
    /// error lists every problem.
    pub fn reload(&self, dir: &Path) -> anyhow::Result<()> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut files = BTreeMap::new();
        let mut errors = Vec::new();
        let mut stripped = Vec::new();
        for path in config_files(dir)? {
            let Some(id) = guild_key(dir, &path).filter(|id| self.reads(id)) else {
                continue;
            };
            if !id.is_empty()
                && let Err(e) = check_guild_id(&path, &id)
            {
                errors.push(e);
                continue;
            }
            match read_file(&path) {
                Ok((c, refused)) => {
                    files.insert(id, c);
                    if !refused.is_empty() {
                        stripped.push((path.clone(), refused.join("\n")));
                    }
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            anyhow::bail!("{}", errors.join("\n"));
        }
        let snap = Snapshot::rebuild(files).map_err(anyhow::Error::msg)?;
        self.current.store(Arc::new(snap));
        let mut problems = self.problems.lock().unwrap();
        problems.clear();
        problems.extend(stripped);
        Ok(())
    }

    /// Applies changed files (hot reload): each valid file replaces its old version, a
    /// deleted one is dropped, an invalid one keeps its last good version. Returns the
    /// problems found (already logged and counted).
    pub fn apply_changes(&self, dir: &Path, changed: &[PathBuf]) -> Vec<String> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut snap = (**self.current.load()).clone();
        let mut problems = Vec::new();
        let mut touched = false;
        for path in changed {
            let Some(id) = guild_key(dir, path).filter(|id| self.reads(id)) else {
                continue;
            };
            if !id.is_empty()
                && let Err(e) = check_guild_id(path, &id)
            {
                problems.push(e);
                continue;
            }
            if !path.exists() {
                touched |= snap.files.remove(&id).is_some();
                self.problems.lock().unwrap().remove(path);
                continue;
            }
            match read_file(path) {
                Ok((c, refused)) => {
                    snap.files.insert(id, c);
                    touched = true;
                    let mut known = self.problems.lock().unwrap();
                    if refused.is_empty() {
                        known.remove(path);
                        METRICS.config_reloads.with_label_values(&["ok"]).inc();
                        tracing::info!(file = %path.display(), "guild configuration reloaded");
                    } else {
                        METRICS
                            .config_reloads
                            .with_label_values(&["refused_keys"])
                            .inc();
                        known.insert(path.clone(), refused.join("\n"));
                        problems.extend(refused);
                    }
                }
                Err(e) => {
                    METRICS.config_reloads.with_label_values(&["invalid"]).inc();
                    tracing::error!(error = %e, "guild configuration file not applied; its last good version stays");
                    self.problems
                        .lock()
                        .unwrap()
                        .insert(path.clone(), e.clone());
                    problems.push(e);
                }
            }
        }
        if touched {
            match Snapshot::rebuild(snap.files) {
                Ok(s) => self.current.store(Arc::new(s)),
                Err(e) => problems.push(e),
            }
        }
        problems
    }

    /// Checks a guild's new override (as written; `None` removes it) without applying it:
    /// errors name the JSON path.
    pub fn check_override(
        &self,
        guild_id: &str,
        content: Option<Value>,
    ) -> Result<CheckedOverride, String> {
        let file = format!("config/guilds/{guild_id}.json");
        check_guild_id(Path::new(&file), guild_id)?;
        let content = match content {
            Some(raw) => {
                let (raw, resolved) = check_value(&file, raw)?;
                Some(FileContent { raw, resolved })
            }
            None => None,
        };
        // A trial merge with everything else: nothing is kept unless it applies.
        let mut files = self.current.load().files.clone();
        match &content {
            Some(c) => files.insert(guild_id.to_string(), c.clone()),
            None => files.remove(guild_id),
        };
        Snapshot::rebuild(files)?;
        Ok(CheckedOverride {
            guild_id: guild_id.to_string(),
            content,
        })
    }

    /// Applies a checked override (onto whatever else changed meanwhile).
    pub fn set_override(&self, checked: CheckedOverride) -> Result<(), String> {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut files = self.current.load().files.clone();
        match checked.content {
            Some(c) => files.insert(checked.guild_id.clone(), c),
            None => files.remove(&checked.guild_id),
        };
        let next = Snapshot::rebuild(files)?;
        self.current.store(Arc::new(next));
        let path = PathBuf::from(format!("guilds/{}.json", checked.guild_id));
        self.problems
            .lock()
            .unwrap()
            .retain(|p, _| !p.ends_with(&path));
        Ok(())
    }

    /// Validates a guild's new override (as written), writes it atomically (temp file +
    /// rename) and applies it at once; `None` deletes the override. Nothing is written
    /// unless it is valid.
    pub fn write_guild(
        &self,
        dir: &Path,
        guild_id: &str,
        content: Option<Value>,
    ) -> Result<(), String> {
        let checked = self.check_override(guild_id, content)?;
        self.write_checked(dir, checked)
    }

    /// Writes a checked override's file atomically (or removes it) and applies it.
    pub fn write_checked(&self, dir: &Path, checked: CheckedOverride) -> Result<(), String> {
        let _p = self.persist.lock().unwrap_or_else(|e| e.into_inner());
        let guild_id = checked.guild_id.clone();
        let path = dir.join("guilds").join(format!("{guild_id}.json"));
        match checked.raw() {
            Some(raw) => write_atomically(&path, raw)
                .map_err(|e| format!("config/guilds/{guild_id}.json: {e}"))?,
            None => match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("{}: {e}", path.display())),
            },
        }
        self.set_override(checked)
    }

    /// The merged config of a guild (the default one for DMs and unknown guilds).
    pub fn guild(&self, guild_id: Option<&str>) -> Arc<GuildEntry> {
        let snap = self.current.load();
        guild_id
            .and_then(|g| snap.merged.get(g))
            .or_else(|| snap.merged.get(""))
            .cloned()
            .unwrap_or_default()
    }

    /// The guild's own override as written (`{}` when it has none).
    pub fn guild_override(&self, guild_id: &str) -> Value {
        self.current
            .load()
            .files
            .get(guild_id)
            .map(|f| f.raw.clone())
            .unwrap_or_else(|| Value::Object(Default::default()))
    }

    /// Guild ids that have their own file.
    pub fn guild_ids(&self) -> Vec<String> {
        self.current
            .load()
            .files
            .keys()
            .filter(|k| !k.is_empty())
            .cloned()
            .collect()
    }

    /// Files whose current content is invalid, with the reason (the last good version of
    /// each is in use).
    pub fn problems(&self) -> Vec<String> {
        self.problems.lock().unwrap().values().cloned().collect()
    }
}

/// Writes JSON (pretty, newline at the end) atomically: see [`write_atomically_bytes`].
pub fn write_atomically(path: &Path, value: &Value) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(value).expect("JSON serializes");
    text.push('\n');
    write_atomically_bytes(path, text.as_bytes())
}

/// Writes to a temp file in the same folder, syncs it, then renames it over `path`: a
/// reader (or the watcher) sees the old file or the new one, never half of one.
pub fn write_atomically_bytes(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id()
    ));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The guild config files (`default.json`, `guilds/<id>.json`), hot-reloaded: each bad
/// file keeps its last good version (problems are logged and counted).
pub struct GuildFiles {
    guilds: Arc<GuildConfigs>,
    dir: PathBuf,
}

impl GuildFiles {
    pub fn new(guilds: Arc<GuildConfigs>, config_dir: &Path) -> Self {
        Self {
            guilds,
            dir: crate::reload::canonical_dir(config_dir),
        }
    }
}

#[async_trait::async_trait]
impl crate::reload::Reloadable for GuildFiles {
    fn watches(&self) -> Vec<crate::reload::Watch> {
        crate::reload::Watch::tree(&self.dir)
    }

    fn claims(&self, path: &Path) -> bool {
        path.starts_with(&self.dir) && path.extension().is_some_and(|e| e == "json")
    }

    async fn apply(&self, paths: Vec<PathBuf>) {
        let (guilds, dir) = (self.guilds.clone(), self.dir.clone());
        // Parsing and validating are CPU work: off the async runtime.
        let _ = tokio::task::spawn_blocking(move || guilds.apply_changes(&dir, &paths)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_objects_and_replace_arrays() {
        let mut a = json!({"a": {"x": 1, "y": [1, 2]}, "b": 1});
        deep_merge(&mut a, &json!({"a": {"y": [3], "z": true}}));
        assert_eq!(a, json!({"a": {"x": 1, "y": [3], "z": true}, "b": 1}));
    }

    fn write(dir: &Path, rel: &str, text: &str) -> PathBuf {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn a_bad_guild_file_keeps_its_last_good_version() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "default.json", r#"{"plugins":{"a":{"enabled":true}}}"#);
        let one = write(d, "guilds/1.json", r#"{"plugins":{"a":{"enabled":false}}}"#);
        let two = write(d, "guilds/2.json", r#"{"features":{"rules":false}}"#);
        let cfgs = GuildConfigs::load(d).unwrap();
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["enabled"],
            json!(false)
        );
        assert_eq!(
            cfgs.guild(Some("3"))["plugins"]["a"]["enabled"],
            json!(true)
        );
        assert!(!cfgs.guild(Some("2")).typed.features.rules);

        // Bad JSON: line and column.
        std::fs::write(&one, "{ nope").unwrap();
        let errs = cfgs.apply_changes(d, std::slice::from_ref(&one));
        assert!(
            errs[0].contains("1.json") && errs[0].contains("line 1"),
            "{errs:?}"
        );
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["enabled"],
            json!(false)
        );
        // A type error and an unknown key: the JSON path.
        std::fs::write(&one, r#"{"plugins":{"a":{"enabled":"no"}}}"#).unwrap();
        std::fs::write(&two, r#"{"featurs":{}}"#).unwrap();
        let errs = cfgs.apply_changes(d, &[one.clone(), two.clone()]);
        assert!(errs[0].contains("1.json: $.plugins.a.enabled:"), "{errs:?}");
        assert!(
            errs[1].contains("2.json: $.featurs: unknown key"),
            "{errs:?}"
        );
        assert_eq!(cfgs.problems().len(), 2);
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["enabled"],
            json!(false)
        );
        assert!(!cfgs.guild(Some("2")).typed.features.rules);

        // Fixed: applied, the problem is gone; deleted: the guild gets the default.
        std::fs::write(&one, r#"{"plugins":{"a":{"allowed_roles":["9"]}}}"#).unwrap();
        assert!(cfgs.apply_changes(d, std::slice::from_ref(&one)).is_empty());
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["allowed_roles"],
            json!(["9"])
        );
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["enabled"],
            json!(true)
        );
        std::fs::remove_file(&two).unwrap();
        assert!(cfgs.apply_changes(d, std::slice::from_ref(&two)).is_empty());
        assert!(cfgs.guild(Some("2")).typed.features.rules);
        assert_eq!(cfgs.problems().len(), 0);
    }

    #[test]
    fn privileges_a_guild_may_not_set_are_refused_and_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(
            d,
            "guilds/1.json",
            r##"{"kaltura":{"session":{"privileges":{"default":"privacycontext:c,disableentitlement,sview:*"}}},"notifications":{"channel":"#news"}}"##,
        );
        // An existing file loads without them; the rest applies; the problem names the path.
        let cfgs = GuildConfigs::load(d).unwrap();
        let g = cfgs.guild(Some("1"));
        assert_eq!(
            g["kaltura"]["session"]["privileges"]["default"],
            json!("privacycontext:c")
        );
        assert_eq!(g.typed.notifications.channel.as_deref(), Some("#news"));
        let problems = cfgs.problems().join("\n");
        assert!(
            problems.contains("1.json: $.kaltura.session.privileges.default")
                && problems.contains("disableentitlement")
                && problems.contains("sview:*"),
            "{problems}"
        );
        // A write (Discord, API) carrying one is refused whole, nothing written.
        let err = cfgs
            .write_guild(
                d,
                "2",
                Some(json!({"kaltura": {"session": {"privileges": {"video": "edit:*"}}}})),
            )
            .unwrap_err();
        assert!(
            err.contains("config/guilds/2.json: $.kaltura.session.privileges.video")
                && err.contains("edit:*"),
            "{err}"
        );
        assert!(!d.join("guilds/2.json").exists());
        // `config validate` refuses it too.
        let err = check_text(
            "g.json",
            r#"{"kaltura":{"session":{"privileges":{"meeting":"setrole:1"}}}}"#,
        )
        .unwrap_err();
        assert!(err.contains("setrole"), "{err}");
    }

    #[test]
    fn the_startup_load_reports_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write(d, "guilds/1.json", r#"{"notifications":{"enabled":1}}"#);
        write(d, "guilds/abc.json", "{}");
        let Err(err) = GuildConfigs::load(d) else {
            panic!("loaded an invalid config")
        };
        let err = err.to_string();
        assert!(err.contains("$.notifications.enabled"), "{err}");
        assert!(
            err.contains("abc.json: the file name must be a guild id"),
            "{err}"
        );
    }

    #[test]
    fn writes_are_validated_atomic_and_immediate() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let cfgs = GuildConfigs::load(d).unwrap();
        let bad = cfgs.write_guild(d, "5", Some(json!({"notifications": {"enabled": "x"}})));
        assert!(bad.unwrap_err().contains("$.notifications.enabled"));
        assert!(!d.join("guilds/5.json").exists());
        cfgs.write_guild(d, "5", Some(json!({"notifications": {"channel": "#news"}})))
            .unwrap();
        assert_eq!(
            cfgs.guild(Some("5")).typed.notifications.channel.as_deref(),
            Some("#news")
        );
        let on_disk: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("guilds/5.json")).unwrap())
                .unwrap();
        assert_eq!(on_disk, cfgs.guild_override("5"));
        cfgs.write_guild(d, "5", None).unwrap();
        assert!(!d.join("guilds/5.json").exists());
        assert_eq!(cfgs.guild(Some("5")).typed.notifications.channel, None);
        assert!(cfgs.write_guild(d, "../x", None).is_err());
    }

    #[test]
    fn placeholders_are_filled_but_admins_see_them_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        // PATH is set in any environment the tests run in.
        write(
            d,
            "guilds/7.json",
            r#"{"notifications":{"channel":"{{PATH}}"}}"#,
        );
        let cfgs = GuildConfigs::load(d).unwrap();
        let g = cfgs.guild(Some("7"));
        assert_eq!(
            g["notifications"]["channel"],
            json!(std::env::var("PATH").unwrap())
        );
        assert_eq!(g.raw["notifications"]["channel"], json!("{{PATH}}"));
    }
}
