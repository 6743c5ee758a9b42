//! The `host` capability: what this host runs (version, uptime, plugins, services).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use crate::plugins::bindings::kaltura_discord::plugin::host::PluginInfo;
use crate::plugins::bindings::kaltura_discord::plugin::host::{Host, HostInfo};
use crate::plugins::bindings::types::CommandNote;
use crate::plugins::state::PluginState;

/// The loaded plugins as `host` reports them (the registry replaces it on every change).
#[derive(Default)]
pub struct Catalog {
    pub plugins: Vec<PluginInfo>,
    /// (plugin, note) for every command or option on its way out.
    pub notes: Vec<(String, CommandNote)>,
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
                h.catalog.load().plugins.clone()
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

    /// Denied callers get none, like `info`.
    async fn command_notes(&mut self) -> Vec<(String, CommandNote)> {
        match self.require(crate::plugins::bindings::types::Capability::Host) {
            Ok(()) => self.caps.host.catalog.load().notes.clone(),
            Err(_) => Vec::new(),
        }
    }
}
