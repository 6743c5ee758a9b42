//! The `host` capability: what this host runs (version, uptime, plugins, services).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;

pub use crate::plugins::bindings::kaltura_discord::plugin::host::PluginInfo;
use crate::plugins::bindings::kaltura_discord::plugin::host::{Host, HostInfo};
use crate::plugins::state::PluginState;

/// What the `host` capability reports, kept current by the registry and the app.
pub struct HostCap {
    /// The loaded plugins (the registry replaces it on every change).
    pub catalog: Arc<ArcSwap<Vec<PluginInfo>>>,
    /// (service, state) pairs, e.g. ("discord-gateway", "off: set DISCORD_BOT_TOKEN").
    pub status: ArcSwap<Vec<(String, String)>>,
    pub started: Instant,
}

impl HostCap {
    pub fn new(catalog: Arc<ArcSwap<Vec<PluginInfo>>>) -> Self {
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
                h.catalog.load().as_ref().clone()
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
}
