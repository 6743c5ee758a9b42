//! The `host` capability: what this host runs (version, uptime, plugins, services).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use crate::plugins::bindings::kaltura_discord::plugin::host::PluginInfo;
use crate::plugins::bindings::kaltura_discord::plugin::host::{Host, HostInfo};
use chrono::NaiveDate;

use crate::discord::command_versions::{self, Deprecation};
use crate::plugins::bindings::types::CommandNote;
use crate::plugins::state::PluginState;

/// The loaded plugins as `host` reports them (the registry replaces it on every change).
#[derive(Default)]
pub struct Catalog {
    pub plugins: Vec<PluginInfo>,
    /// (plugin, deprecation) for every command or option on its way out.
    pub deprecations: Vec<(String, Deprecation)>,
}

impl Catalog {
    /// The plugins with the commands and options they offer on `today` (retired ones left
    /// out, as in the command sync).
    fn offered(&self, today: NaiveDate) -> Vec<PluginInfo> {
        let mut plugins = self.plugins.clone();
        for p in &mut plugins {
            let notes: Vec<Deprecation> = self
                .deprecations
                .iter()
                .filter(|(owner, _)| *owner == p.name)
                .map(|(_, d)| d.clone())
                .collect();
            p.commands
                .retain(|c| command_versions::offered(&notes, &c.name, None, today));
            for c in &mut p.commands {
                c.options
                    .retain(|o| command_versions::offered(&notes, &c.name, Some(&o.name), today));
            }
        }
        plugins
    }

    /// The notes still in force on `today`.
    fn notes(&self, today: NaiveDate) -> Vec<(String, CommandNote)> {
        self.deprecations
            .iter()
            .filter(|(_, d)| !d.retired(today))
            .map(|(plugin, d)| (plugin.clone(), d.to_note()))
            .collect()
    }
}

/// What the `host` capability reports, kept current by the registry and the app.
pub struct HostCap {
    pub catalog: Arc<ArcSwap<Catalog>>,
    /// (service, state) pairs, e.g. ("discord-gateway", "off: set DISCORD_BOT_TOKEN").
    pub status: ArcSwap<Vec<(String, String)>>,
    pub started: Instant,
}

impl HostCap {
    pub fn new(catalog: Arc<ArcSwap<Catalog>>) -> Self {
        Self {
            catalog,
            status: ArcSwap::from_pointee(Vec::new()),
            started: Instant::now(),
        }
    }
}

impl Host for PluginState {
    /// Denied callers get an empty report (the function has no error channel).
    async fn info(&mut self) -> HostInfo {
        let allowed = self
            .require(crate::plugins::bindings::types::Capability::Host)
            .is_ok();
        let h = &self.caps.host;
        HostInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime: h.started.elapsed().as_secs(),
            plugins: if allowed {
                h.catalog.load().offered(command_versions::today())
            } else {
                Vec::new()
            },
            services: if allowed {
                h.status.load().as_ref().clone()
            } else {
                Vec::new()
            },
        }
    }

    /// The notes still in force; denied callers get none, like `info`.
    async fn command_notes(&mut self) -> Vec<(String, CommandNote)> {
        match self.require(crate::plugins::bindings::types::Capability::Host) {
            Ok(()) => self
                .caps
                .host
                .catalog
                .load()
                .notes(command_versions::today()),
            Err(_) => Vec::new(),
        }
    }
}
