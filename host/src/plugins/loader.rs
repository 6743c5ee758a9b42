//! Turning bytes into a validated, ready-to-call plugin: compile (cached by content hash),
//! check the imports against the contract and the manifest, call `manifest()`, validate it.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::bindings::types::Manifest;
use super::bindings::{CONTRACT_PACKAGE, CONTRACT_VERSION, PluginPre};
use super::grants::{CapabilityName, GrantsConfig, PluginGrants};
use super::manifest;
use super::runtime::{Call, Output, Runtime};
use super::state::{CallScope, PluginState};
use crate::discord::command_versions::{self, Deprecation};

/// Where a plugin came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Compiled into the `kdhost` binary.
    Builtin,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Builtin => f.write_str("built-in"),
            Source::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A plugin ready to serve calls. Cheap to clone (everything heavy is shared).
#[derive(Clone)]
pub struct LoadedPlugin {
    pub name: Arc<str>,
    pub manifest: Manifest,
    /// The contract version the component imports (e.g. "0.1.0").
    pub contract: String,
    pub source: Source,
    /// Capabilities its manifest requests.
    pub requested: BTreeSet<CapabilityName>,
    pub grants: Arc<PluginGrants>,
    pub pre: PluginPre<PluginState>,
    /// SHA-256 of the component bytes.
    pub hash: String,
    /// Its commands and options on their way out (`command-notes`, contract 0.1.2).
    pub deprecations: Vec<Deprecation>,
}

impl LoadedPlugin {
    /// Runs one call of this plugin.
    pub async fn call(
        &self,
        rt: &Runtime,
        scope: CallScope,
        call: Call,
    ) -> Result<Output, super::runtime::CallError> {
        rt.call(&self.pre, &self.name, &self.grants, scope, call)
            .await
    }
}

/// What the component's imports say.
#[derive(Debug, Default, PartialEq)]
pub struct ImportCheck {
    pub contract: Option<String>,
    pub capabilities: BTreeSet<CapabilityName>,
}

/// Why a component is not loaded. The text is what `plugin check` and the log say; the
/// kind is what `--json` output and callers decide on.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// Not a WebAssembly component (a core module, or not wasm at all).
    #[error("{0}")]
    NotAComponent(&'static str),
    /// wasmtime refused to compile it.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// Its imports or exports do not fit a contract version this host serves.
    #[error("{0}")]
    Contract(String),
    /// `manifest()` failed (trap, deadline, memory).
    #[error("manifest() {0}")]
    ManifestCall(String),
    /// The manifest breaks the host's or Discord's rules.
    #[error("invalid manifest: {0}")]
    Manifest(String),
    /// It imports capabilities its manifest does not request.
    #[error("imports capabilities its manifest does not request: {} (add them to the manifest's capabilities)", .0.join(", "))]
    Unrequested(Vec<String>),
    /// Its name or a command clashes with a loaded plugin's.
    #[error("{0}")]
    Conflict(String),
    /// The file could not be read (or the compiler task died).
    #[error("{0}")]
    Io(String),
}

impl Refused {
    /// A stable name per kind (`plugin check --json`'s `error_kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Refused::NotAComponent(_) => "not_a_component",
            Refused::Invalid(_) => "invalid_component",
            Refused::Contract(_) => "contract",
            Refused::ManifestCall(_) => "manifest_call",
            Refused::Manifest(_) => "invalid_manifest",
            Refused::Unrequested(_) => "unrequested_capabilities",
            Refused::Conflict(_) => "conflict",
            Refused::Io(_) => "io",
        }
    }
}

/// Checks every import: contract interfaces of a supported version, WASI, nothing else.
pub fn check_imports<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<ImportCheck, String> {
    let mut out = ImportCheck::default();
    for name in names {
        let (path, version) = name.split_once('@').unwrap_or((name, ""));
        if let Some(iface) = path
            .strip_prefix(CONTRACT_PACKAGE)
            .and_then(|r| r.strip_prefix('/'))
        {
            let v = semver::Version::parse(version)
                .map_err(|_| format!("import `{name}` has no valid contract version"))?;
            check_contract_version(&v)?;
            // Several interfaces may name different patch versions: report the newest.
            let newest = out
                .contract
                .as_deref()
                .and_then(|c| semver::Version::parse(c).ok())
                .is_none_or(|c| v > c);
            if newest {
                out.contract = Some(v.to_string());
            }
            if iface != "types" {
                let cap = CapabilityName::parse(iface).ok_or_else(|| {
                    format!("imports `{name}`, which this contract version does not define")
                })?;
                out.capabilities.insert(cap);
            }
        } else if !path.starts_with("wasi:") {
            return Err(format!("imports `{name}`, which the host does not provide"));
        }
    }
    Ok(out)
}

/// The contract versions this host serves: every `0.1.z` up to its own (additions only
/// within a major; for 0.x versions the minor number is the major).
fn check_contract_version(v: &semver::Version) -> Result<(), String> {
    let host = semver::Version::parse(CONTRACT_VERSION).expect("a valid contract version");
    if v.major != host.major || v.minor != host.minor {
        return Err(format!(
            "built for contract {CONTRACT_PACKAGE}@{v}, a different major version; this host serves {CONTRACT_PACKAGE}@{}.{}.0 to {host}",
            host.major, host.minor
        ));
    }
    if v.patch > host.patch {
        return Err(format!(
            "built for contract {CONTRACT_PACKAGE}@{v}, newer than this host's {host}: update kdhost to run it"
        ));
    }
    Ok(())
}

/// Reads the wasm header to explain what a file is when it is not a component.
fn check_header(bytes: &[u8]) -> Result<(), Refused> {
    match bytes.get(0..8) {
        Some([0, b'a', b's', b'm', 0x0d, 0, 0x01, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => Err(Refused::NotAComponent(
            "this is a core WebAssembly module, not a component: build for wasm32-wasip2 (kdhost plugin build)",
        )),
        _ => Err(Refused::NotAComponent(
            "not a WebAssembly component (bad magic bytes)",
        )),
    }
}

/// Compiles, using the cache directory when there is one.
fn compile(
    engine: &Engine,
    bytes: &[u8],
    hash: &str,
    cache: Option<&Path>,
) -> Result<Component, Refused> {
    let path = cache.map(|dir| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        dir.join(format!("{hash}-{:016x}.cwasm", h.finish()))
    });
    if let Some(p) = path.as_ref().filter(|p| p.exists()) {
        // SAFETY: the file was written by `Component::serialize` of an engine with the same
        // compatibility hash (it is in the name) into the host's private data directory.
        match unsafe { Component::deserialize_file(engine, p) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(file = %p.display(), error = %e, "discarding unreadable compiled-plugin cache entry")
            }
        }
    }
    let component =
        Component::new(engine, bytes).map_err(|e| Refused::Invalid(format!("{e:#}")))?;
    if let (Some(p), Ok(data)) = (path, component.serialize()) {
        let tmp = p.with_extension("tmp");
        let written = std::fs::create_dir_all(p.parent().unwrap())
            .and_then(|_| std::fs::write(&tmp, data))
            .and_then(|_| std::fs::rename(&tmp, &p));
        if let Err(e) = written {
            tracing::warn!(file = %p.display(), error = %e, "could not cache the compiled plugin");
        }
    }
    Ok(component)
}

/// Compiles and validates a component; its manifest is read by calling it.
pub async fn load(
    rt: &Runtime,
    bytes: Vec<u8>,
    source: Source,
    grants: &GrantsConfig,
    cache: Option<PathBuf>,
) -> Result<LoadedPlugin, Refused> {
    check_header(&bytes)?;
    let hash = hex::encode(Sha256::digest(&bytes));
    let engine = rt.engine.engine.clone();
    let h = hash.clone();
    // Compilation is CPU-bound: keep it off the async workers.
    let component =
        tokio::task::spawn_blocking(move || compile(&engine, &bytes, &h, cache.as_deref()))
            .await
            .map_err(|e| Refused::Io(format!("compiler task failed: {e}")))??;

    let ty = component.component_type();
    let engine = &rt.engine.engine;
    let names: Vec<String> = ty.imports(engine).map(|(n, _)| n.to_string()).collect();
    let imports = check_imports(names.iter().map(String::as_str)).map_err(Refused::Contract)?;
    let exports_command_notes = ty
        .exports(engine)
        .any(|(n, _)| n == super::runtime::COMMAND_NOTES);

    let pre = rt
        .linker
        .instantiate_pre(&component)
        .map_err(|e| Refused::Contract(format!("does not match the plugin contract: {e:#}")))?;
    let pre = PluginPre::new(pre)
        .map_err(|e| Refused::Contract(format!("does not export the plugin contract: {e:#}")))?;

    // The manifest call runs with no grants: capability calls in `manifest()` are denied.
    let nobody = Arc::new(PluginGrants::default());
    let name: Arc<str> = Arc::from(format!("{source}"));
    let manifest = match rt
        .call(&pre, &name, &nobody, CallScope::default(), Call::Manifest)
        .await
    {
        Ok(Output::Manifest(m)) => m,
        Ok(_) => unreachable!("manifest call returns a manifest"),
        Err(e) => return Err(Refused::ManifestCall(e.to_string())),
    };
    manifest::validate(&manifest).map_err(|e| Refused::Manifest(e.to_string()))?;
    let deprecations = if exports_command_notes {
        let notes = match rt
            .call(
                &pre,
                &name,
                &nobody,
                CallScope::default(),
                Call::CommandNotes,
            )
            .await
        {
            Ok(Output::CommandNotes(n)) => n,
            Ok(_) => unreachable!("command-notes returns notes"),
            Err(e) => return Err(Refused::ManifestCall(format!("command-notes: {e}"))),
        };
        command_versions::from_notes(&notes, &manifest).map_err(Refused::Manifest)?
    } else {
        Vec::new()
    };

    let requested: BTreeSet<CapabilityName> = manifest
        .capabilities
        .iter()
        .map(|c| CapabilityName::from(*c))
        .collect();
    let unrequested: Vec<String> = imports
        .capabilities
        .difference(&requested)
        .map(|c| c.as_str().to_string())
        .collect();
    if !unrequested.is_empty() {
        return Err(Refused::Unrequested(unrequested));
    }
    let plugin_grants = grants.for_loaded(&manifest.name, source == Source::Builtin, &requested);
    let ungranted: Vec<&str> = requested
        .iter()
        .filter(|c| !plugin_grants.capabilities.contains(c))
        .map(|c| c.as_str())
        .collect();
    if !ungranted.is_empty() {
        tracing::warn!(
            plugin = %manifest.name,
            capabilities = %ungranted.join(", "),
            "plugin requests capabilities the operator has not granted; those calls will be denied (config/plugins.json)"
        );
    }
    Ok(LoadedPlugin {
        name: Arc::from(manifest.name.as_str()),
        contract: imports.contract.unwrap_or_else(|| "unknown".into()),
        manifest,
        source,
        requested,
        grants: Arc::new(plugin_grants),
        pre,
        hash,
        deprecations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_map_to_capabilities() {
        let c = check_imports([
            "kaltura-discord:plugin/types@0.1.0",
            "kaltura-discord:plugin/kv@0.1.0",
            "wasi:io/streams@0.2.6",
        ])
        .unwrap();
        assert_eq!(c.contract.as_deref(), Some("0.1.0"));
        let mixed = check_imports([
            "kaltura-discord:plugin/kv@0.1.1",
            "kaltura-discord:plugin/log@0.1.0",
        ])
        .unwrap();
        assert_eq!(
            mixed.contract.as_deref(),
            Some("0.1.1"),
            "the newest one named"
        );
        assert_eq!(
            c.capabilities.into_iter().collect::<Vec<_>>(),
            vec![CapabilityName::Kv]
        );
    }

    #[test]
    fn newer_major_and_foreign_imports_are_refused() {
        let e = check_imports(["kaltura-discord:plugin/kv@0.2.0"]).unwrap_err();
        assert!(
            e.contains("@0.2.0") && e.contains("different major") && e.contains("@0.1.0 to 0.1.2"),
            "{e}"
        );
        let e = check_imports(["kaltura-discord:plugin/kv@0.1.3"]).unwrap_err();
        assert!(e.contains("newer than this host's 0.1.2"), "{e}");
        let e = check_imports(["kaltura-discord:plugin/kv@1.0.0"]).unwrap_err();
        assert!(e.contains("@1.0.0"), "{e}");
        let e = check_imports(["evil:net/raw@1.0.0"]).unwrap_err();
        assert!(e.contains("evil:net/raw"), "{e}");
        assert!(check_imports(["kaltura-discord:plugin/root@0.1.0"]).is_err());
    }

    #[test]
    fn headers_explain_what_the_file_is() {
        let core = check_header(b"\0asm\x01\0\0\0").unwrap_err();
        assert_eq!(core.kind(), "not_a_component");
        assert!(core.to_string().contains("core WebAssembly module"));
        assert!(
            check_header(b"hello world")
                .unwrap_err()
                .to_string()
                .contains("magic")
        );
        assert!(check_header(b"\0asm\x0d\0\x01\0").is_ok());
    }
}
