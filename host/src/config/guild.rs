//! Guild configuration: `config/default.json` deep-merged with `config/guilds/<id>.json`.
//!
//! The parts the host enforces before any guest runs:
//! `plugins.<name>.enabled`, `plugins.<name>.allowed_roles`, `plugins.<name>.settings`,
//! `commands.<name>.enabled`, `commands.<name>.allowed_roles`.
//! Reads are lock-free (`ArcSwap`); a bad file keeps the last good version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use serde_json::Value;

/// All guild configs, swapped whole on reload.
#[derive(Default)]
pub struct GuildConfigs {
    current: ArcSwap<Snapshot>,
}

#[derive(Default)]
struct Snapshot {
    /// Merged config per guild id; `""` is the default for guilds without a file.
    merged: HashMap<String, Arc<Value>>,
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

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: line {}, column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}

impl GuildConfigs {
    /// Loads `DIR/default.json` (optional) and `DIR/guilds/*.json`. An error names the file.
    pub fn load(dir: &Path) -> Result<Self> {
        let me = Self::default();
        me.reload(dir)?;
        Ok(me)
    }

    /// Every guild gets `default` (no files: `kdhost plugin test`).
    pub fn with_default(default: Value) -> Self {
        let me = Self::default();
        let merged = HashMap::from([(String::new(), Arc::new(default))]);
        me.current.store(Arc::new(Snapshot { merged }));
        me
    }

    /// Re-reads everything; on error the previous config stays.
    pub fn reload(&self, dir: &Path) -> Result<()> {
        let default_path = dir.join("default.json");
        let default = if default_path.exists() {
            read_json(&default_path)?
        } else {
            Value::Object(Default::default())
        };
        let mut merged = HashMap::new();
        let guilds = dir.join("guilds");
        if guilds.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&guilds)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            files.sort();
            for f in files {
                let id = f
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                if !id.chars().all(|c| c.is_ascii_digit()) {
                    anyhow::bail!("{}: the file name must be a guild id (digits)", f.display());
                }
                let mut v = default.clone();
                deep_merge(&mut v, &read_json(&f)?);
                merged.insert(id, Arc::new(v));
            }
        }
        merged.insert(String::new(), Arc::new(default));
        self.current.store(Arc::new(Snapshot { merged }));
        Ok(())
    }

    /// The merged config of a guild (the default one for DMs and unknown guilds).
    pub fn guild(&self, guild_id: Option<&str>) -> Arc<Value> {
        let snap = self.current.load();
        guild_id
            .and_then(|g| snap.merged.get(g))
            .or_else(|| snap.merged.get(""))
            .cloned()
            .unwrap_or_else(|| Arc::new(Value::Null))
    }
}

/// What the guild's config says about running a command of a plugin.
pub fn check_policy(
    cfg: &Value,
    plugin: &str,
    command: Option<&str>,
    roles: &[String],
) -> Result<(), String> {
    let p = &cfg["plugins"][plugin];
    if p["enabled"] == Value::Bool(false) {
        return Err(format!("The `{plugin}` plugin is disabled on this server."));
    }
    check_roles(&p["allowed_roles"], roles)
        .map_err(|_| format!("Your roles may not use the `{plugin}` plugin here."))?;
    if let Some(cmd) = command {
        let c = &cfg["commands"][cmd];
        if c["enabled"] == Value::Bool(false) {
            return Err(format!("/{cmd} is disabled on this server."));
        }
        check_roles(&c["allowed_roles"], roles)
            .map_err(|_| format!("Your roles may not use /{cmd} here."))?;
    }
    Ok(())
}

/// An absent or empty list allows everyone; otherwise one of the member's roles must be in it.
fn check_roles(allowed: &Value, roles: &[String]) -> Result<(), ()> {
    match allowed.as_array() {
        Some(list) if !list.is_empty() => {
            if list
                .iter()
                .any(|r| r.as_str().is_some_and(|r| roles.iter().any(|m| m == r)))
            {
                Ok(())
            } else {
                Err(())
            }
        }
        _ => Ok(()),
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

    #[test]
    fn policy_checks_plugin_and_command_roles() {
        let cfg = json!({
            "plugins": {"off": {"enabled": false}, "mods": {"allowed_roles": ["42"]}},
            "commands": {"ban": {"allowed_roles": ["7"]}, "gone": {"enabled": false}}
        });
        assert!(
            check_policy(&cfg, "off", None, &[])
                .unwrap_err()
                .contains("disabled")
        );
        assert!(check_policy(&cfg, "mods", None, &["1".into()]).is_err());
        assert!(check_policy(&cfg, "mods", None, &["42".into()]).is_ok());
        assert!(check_policy(&cfg, "x", Some("ban"), &["8".into()]).is_err());
        assert!(check_policy(&cfg, "x", Some("ban"), &["7".into()]).is_ok());
        assert!(check_policy(&cfg, "x", Some("gone"), &[]).is_err());
        assert!(check_policy(&cfg, "x", Some("free"), &[]).is_ok());
    }

    #[test]
    fn a_bad_guild_file_keeps_the_last_good_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("guilds")).unwrap();
        std::fs::write(
            dir.path().join("default.json"),
            r#"{"plugins":{"a":{"enabled":true}}}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("guilds/1.json"),
            r#"{"plugins":{"a":{"enabled":false}}}"#,
        )
        .unwrap();
        let cfgs = GuildConfigs::load(dir.path()).unwrap();
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["enabled"],
            json!(false)
        );
        assert_eq!(
            cfgs.guild(Some("2"))["plugins"]["a"]["enabled"],
            json!(true)
        );
        std::fs::write(dir.path().join("guilds/1.json"), "{ nope").unwrap();
        let err = cfgs.reload(dir.path()).unwrap_err().to_string();
        assert!(err.contains("1.json") && err.contains("line 1"), "{err}");
        assert_eq!(
            cfgs.guild(Some("1"))["plugins"]["a"]["enabled"],
            json!(false)
        );
    }
}
