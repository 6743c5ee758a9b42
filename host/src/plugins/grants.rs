//! What the operator grants each plugin, and its limits: `config/plugins.json`.
//!
//! ```json
//! { "limits":  { "cpu_ms": 1000, "timeout_ms": 10000, "memory_mb": 64 },
//!   "plugins": { "*": { "grants": ["log"] }, "core": { "grants": ["host", "log"] },
//!                "weather": { "grants": ["http"], "http_hosts": ["api.weather.example"] } } }
//! ```
//! A plugin gets the limits, overridden by `"*"`, overridden by its own entry. Grants are
//! the union of `"*"` and its own entry.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::bindings::types::Capability;
use crate::kaltura::privileges::OperatorKaltura;

/// Resource limits for one plugin call.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Guest compute per call (host I/O is not charged).
    pub cpu_ms: u64,
    /// Whole call, including host I/O.
    pub timeout_ms: u64,
    pub memory_bytes: usize,
    pub kv_quota_bytes: u64,
    pub http_response_max_bytes: usize,
    /// Calls of this plugin in flight at once (past it: "busy").
    pub concurrency: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            cpu_ms: 1000,
            timeout_ms: 10_000,
            memory_bytes: 64 << 20,
            kv_quota_bytes: 1 << 20,
            http_response_max_bytes: 1 << 20,
            concurrency: 16,
        }
    }
}

/// Everything the operator decided for one plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginGrants {
    pub capabilities: BTreeSet<CapabilityName>,
    pub http_hosts: BTreeSet<String>,
    /// Ports `http` may reach: 80, 443 and the granted ones (`None`: any, author tools).
    pub http_ports: Option<BTreeSet<u16>>,
    /// `http` may reach private addresses (an internal service the operator vouches for).
    pub http_private: bool,
    pub limits: Limits,
}

impl PluginGrants {
    pub fn allows_port(&self, port: u16) -> bool {
        self.http_ports
            .as_ref()
            .is_none_or(|p| matches!(port, 80 | 443) || p.contains(&port))
    }
}

impl PluginGrants {
    pub fn allows(&self, cap: Capability) -> bool {
        self.capabilities.contains(&CapabilityName::from(cap))
    }
}

/// Capability names as written in config and manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CapabilityName {
    Discord,
    Kaltura,
    Http,
    Kv,
    Config,
    Log,
    Host,
}

impl CapabilityName {
    pub const ALL: [CapabilityName; 7] = [
        Self::Discord,
        Self::Kaltura,
        Self::Http,
        Self::Kv,
        Self::Config,
        Self::Log,
        Self::Host,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Discord => "discord",
            Self::Kaltura => "kaltura",
            Self::Http => "http",
            Self::Kv => "kv",
            Self::Config => "config",
            Self::Log => "log",
            Self::Host => "host",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl From<Capability> for CapabilityName {
    fn from(c: Capability) -> Self {
        match c {
            Capability::Discord => Self::Discord,
            Capability::Kaltura => Self::Kaltura,
            Capability::Http => Self::Http,
            Capability::Kv => Self::Kv,
            Capability::Config => Self::Config,
            Capability::Log => Self::Log,
            Capability::Host => Self::Host,
        }
    }
}

impl std::fmt::Display for CapabilityName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsFile {
    cpu_ms: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    kv_quota_bytes: Option<u64>,
    http_response_max_bytes: Option<usize>,
    concurrency: Option<u32>,
}

impl LimitsFile {
    fn apply(&self, l: &mut Limits) {
        if let Some(v) = self.cpu_ms {
            l.cpu_ms = v;
        }
        if let Some(v) = self.timeout_ms {
            l.timeout_ms = v;
        }
        if let Some(v) = self.memory_mb {
            l.memory_bytes = (v as usize) << 20;
        }
        if let Some(v) = self.kv_quota_bytes {
            l.kv_quota_bytes = v;
        }
        if let Some(v) = self.http_response_max_bytes {
            l.http_response_max_bytes = v;
        }
        if let Some(v) = self.concurrency {
            l.concurrency = v.max(1);
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PluginEntry {
    #[serde(default)]
    grants: Vec<CapabilityName>,
    #[serde(default)]
    http_hosts: Vec<String>,
    /// Ports besides 80 and 443.
    #[serde(default)]
    http_ports: Vec<u16>,
    /// Private addresses allowed (default: public ones only).
    #[serde(default)]
    http_private: bool,
    cpu_ms: Option<u64>,
    timeout_ms: Option<u64>,
    memory_mb: Option<u64>,
    kv_quota_bytes: Option<u64>,
    http_response_max_bytes: Option<usize>,
    concurrency: Option<u32>,
}

impl PluginEntry {
    fn limits(&self) -> LimitsFile {
        LimitsFile {
            cpu_ms: self.cpu_ms,
            timeout_ms: self.timeout_ms,
            memory_mb: self.memory_mb,
            kv_quota_bytes: self.kv_quota_bytes,
            http_response_max_bytes: self.http_response_max_bytes,
            concurrency: self.concurrency,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantsFile {
    #[serde(default)]
    limits: LimitsFile,
    #[serde(default)]
    rate_limits: RateLimits,
    #[serde(default)]
    plugins: BTreeMap<String, PluginEntry>,
    /// The operator's side of Kaltura sessions (privileges, privacy contexts per guild).
    #[serde(default)]
    kaltura: OperatorKaltura,
}

/// Per-user and per-guild interaction rate limits, enforced before any guest runs.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    pub per_user_per_minute: u32,
    pub per_guild_per_minute: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            per_user_per_minute: 30,
            per_guild_per_minute: 600,
        }
    }
}

/// The parsed `config/plugins.json`.
#[derive(Debug, Default)]
pub struct GrantsConfig {
    file: GrantsFile,
    /// Author tools: `http` may use any port.
    any_port: bool,
}

impl GrantsConfig {
    /// Every capability for every plugin (and `http` to these hosts): for the author's
    /// tools (`plugin check`, `plugin test`), never for serving.
    pub fn everything(http_hosts: &[String]) -> Self {
        let mut me = Self::parse(
            &serde_json::json!({"plugins": {"*": {
                "grants": ["discord", "kaltura", "http", "kv", "config", "log", "host"],
                "http_hosts": http_hosts,
                "http_private": true,
            }}})
            .to_string(),
        )
        .expect("a valid grants file");
        // An author's local test server listens on any port.
        me.any_port = true;
        me
    }

    /// Reads the file; a missing file means defaults (log only).
    pub fn load(path: &Path) -> Result<Self> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Self> {
        let file: GrantsFile = serde_json::from_str(text)
            .map_err(|e| anyhow::anyhow!("line {}, column {}: {e}", e.line(), e.column()))?;
        file.kaltura
            .check("plugins.json")
            .map_err(anyhow::Error::msg)?;
        for (name, entry) in &file.plugins {
            if entry
                .memory_mb
                .is_some_and(|mb| (mb as usize) << 20 > super::engine::MAX_MEMORY_BYTES)
            {
                anyhow::bail!(
                    "plugins.{name}.memory_mb: at most {} MiB",
                    super::engine::MAX_MEMORY_BYTES >> 20
                );
            }
        }
        Ok(Self {
            file,
            any_port: false,
        })
    }

    /// The operator's side of Kaltura sessions.
    pub fn kaltura(&self) -> &OperatorKaltura {
        &self.file.kaltura
    }

    pub fn rate_limits(&self) -> RateLimits {
        self.file.rate_limits
    }

    /// The grants of a loaded plugin. First-party plugins compiled into the binary get what
    /// they request unless the operator wrote an entry for them.
    pub fn for_loaded(
        &self,
        name: &str,
        builtin: bool,
        requested: &BTreeSet<CapabilityName>,
    ) -> PluginGrants {
        let mut g = self.for_plugin(name);
        if builtin && !self.file.plugins.contains_key(name) {
            g.capabilities.extend(requested.iter().copied());
        }
        g
    }

    /// Whether guild rules may read Kaltura: built in, they may unless the operator's
    /// `rules` entry leaves `kaltura` out.
    pub fn rules_read_kaltura(&self) -> bool {
        let wanted = BTreeSet::from([CapabilityName::Kaltura]);
        self.for_loaded("rules", true, &wanted)
            .allows(super::bindings::types::Capability::Kaltura)
    }

    /// The grants and limits of one plugin.
    pub fn for_plugin(&self, name: &str) -> PluginGrants {
        let mut g = PluginGrants::default();
        self.file.limits.apply(&mut g.limits);
        let mut ports = BTreeSet::new();
        for key in ["*", name] {
            if let Some(entry) = self.file.plugins.get(key) {
                g.capabilities.extend(entry.grants.iter().copied());
                g.http_hosts
                    .extend(entry.http_hosts.iter().map(|h| h.to_ascii_lowercase()));
                ports.extend(entry.http_ports.iter().copied());
                g.http_private |= entry.http_private;
                entry.limits().apply(&mut g.limits);
            }
        }
        g.http_ports = (!self.any_port).then_some(ports);
        g
    }
}

/// `config/plugins.json`, hot-reloaded: the plugins' grants and the operator's side of
/// Kaltura sessions change together; an invalid file keeps the previous grants.
pub struct GrantsReload {
    registry: std::sync::Arc<super::registry::Registry>,
    kaltura: Option<std::sync::Arc<crate::kaltura::Kaltura>>,
    config_dir: std::path::PathBuf,
}

impl GrantsReload {
    pub fn new(
        registry: std::sync::Arc<super::registry::Registry>,
        kaltura: Option<std::sync::Arc<crate::kaltura::Kaltura>>,
        config_dir: &Path,
    ) -> Self {
        Self {
            registry,
            kaltura,
            config_dir: crate::reload::canonical_dir(config_dir),
        }
    }
}

#[async_trait::async_trait]
impl crate::reload::Reloadable for GrantsReload {
    fn watches(&self) -> Vec<crate::reload::Watch> {
        crate::reload::Watch::tree(&self.config_dir)
    }

    fn claims(&self, path: &Path) -> bool {
        path == self.config_dir.join("plugins.json")
    }

    async fn apply(&self, paths: Vec<std::path::PathBuf>) {
        for path in paths {
            match GrantsConfig::load(&path) {
                Ok(g) => {
                    if let Some(k) = &self.kaltura {
                        k.set_operator(g.kaltura().clone());
                    }
                    self.registry.set_grants(g).await
                }
                Err(e) => {
                    tracing::error!(file = %path.display(), error = format!("{e:#}"), "plugin grants not reloaded; the previous ones stay")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_entry_overrides_wildcard_and_grants_union() {
        let cfg = GrantsConfig::parse(
            r#"{"limits":{"cpu_ms":500},
                "plugins":{"*":{"grants":["log"],"memory_mb":32},
                           "w":{"grants":["http"],"http_hosts":["API.example"],"cpu_ms":50}}}"#,
        )
        .unwrap();
        let w = cfg.for_plugin("w");
        assert_eq!(w.limits.cpu_ms, 50);
        assert_eq!(w.limits.memory_bytes, 32 << 20);
        assert!(w.allows(Capability::Http) && w.allows(Capability::Log));
        assert!(!w.allows(Capability::Kv));
        assert!(w.http_hosts.contains("api.example"));
        let other = cfg.for_plugin("other");
        assert_eq!(other.limits.cpu_ms, 500);
        assert!(!other.allows(Capability::Http));
    }

    #[test]
    fn built_ins_get_what_they_request_unless_the_operator_says_otherwise() {
        let requested = BTreeSet::from([CapabilityName::Host]);
        let none = GrantsConfig::default();
        assert!(
            none.for_loaded("core", true, &requested)
                .capabilities
                .contains(&CapabilityName::Host)
        );
        assert!(
            !none
                .for_loaded("core", false, &requested)
                .capabilities
                .contains(&CapabilityName::Host)
        );
        let narrowed = GrantsConfig::parse(r#"{"plugins":{"core":{"grants":["log"]}}}"#).unwrap();
        assert!(
            !narrowed
                .for_loaded("core", true, &requested)
                .capabilities
                .contains(&CapabilityName::Host)
        );
    }

    #[test]
    fn unknown_capability_is_an_error_with_position() {
        let err = GrantsConfig::parse(r#"{"plugins":{"x":{"grants":["root"]}}}"#).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
