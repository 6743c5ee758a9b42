//! `kdhost plugin check FILE.wasm [--json]`: load a component as the host would and say
//! what it is (name, version, contract, capabilities, events, commands) or why it is refused.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use serde_json::json;

use crate::app::plugins::{PluginWiring, plugins};
use crate::discord::commands;
use crate::plugins::caps::Capabilities;
use crate::plugins::grants::{CapabilityName, GrantsConfig};
use crate::plugins::loader::{LoadedPlugin, Refused};

/// Loads a component (the bytes of `file`) with the host's runtime and checks, without
/// serving it. What the operator will grant is theirs to decide: checking assumes
/// everything.
pub async fn load_checked(
    bytes: Vec<u8>,
    file: &Path,
) -> Result<std::result::Result<Arc<LoadedPlugin>, Refused>> {
    let registry = plugins(PluginWiring {
        caps: Capabilities::offline(),
        grants: Arc::new(ArcSwap::from_pointee(GrantsConfig::everything(&[]))),
        memory_mib: None,
        cache: None,
    })?;
    Ok(registry.try_load(bytes, file).await)
}

/// Loads and validates one component, then prints what it is.
pub async fn check(file: &Path, as_json: bool) -> Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let p = match load_checked(bytes, file).await? {
        Ok(p) => p,
        Err(reason) => {
            if as_json {
                println!(
                    "{}",
                    json!({"ok": false, "file": file.display().to_string(), "error": reason.to_string(), "error_kind": reason.kind()})
                );
            } else {
                eprintln!("{}: refused: {reason}", file.display());
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let caps: Vec<&str> = p
        .manifest
        .capabilities
        .iter()
        .map(|c| CapabilityName::from(*c).as_str())
        .collect();
    if as_json {
        let commands: Vec<_> = p
            .manifest
            .commands
            .iter()
            .map(commands::command_json)
            .collect();
        let out = json!({
            "ok": true, "file": file.display().to_string(), "name": p.name.as_ref(),
            "version": p.manifest.version, "description": p.manifest.description,
            "contract": format!("kaltura-discord:plugin@{}", p.contract),
            "commands": commands, "events": p.manifest.events, "capabilities": caps, "sha256": p.hash,
            "deprecations": p.deprecations.iter().map(|d| d.to_json()).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!(
            "{} {} — {}",
            p.name, p.manifest.version, p.manifest.description
        );
        println!("  contract:     kaltura-discord:plugin@{}", p.contract);
        println!(
            "  capabilities: {}",
            if caps.is_empty() {
                "none".into()
            } else {
                caps.join(", ")
            }
        );
        if !p.manifest.events.is_empty() {
            println!("  events:       {}", p.manifest.events.join(", "));
        }
        println!("  commands:");
        for c in &p.manifest.commands {
            println!("    /{} — {}", c.name, c.description);
        }
        if !p.deprecations.is_empty() {
            println!("  deprecated:");
            for d in &p.deprecations {
                println!("    {d}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
