use crate::plugins::bindings::kaltura_discord::plugin::host::{Host, HostInfo};
use crate::plugins::state::PluginState;

impl Host for PluginState {
    /// Denied callers get an empty report (the function has no error channel).
    async fn info(&mut self) -> HostInfo {
        let allowed = self
            .require(crate::plugins::bindings::types::Capability::Host)
            .is_ok();
        let s = &self.services;
        HostInfo {
            version: env!("CARGO_PKG_VERSION").into(),
            uptime: s.started.elapsed().as_secs(),
            plugins: if allowed {
                s.catalog.load().as_ref().clone()
            } else {
                Vec::new()
            },
            services: if allowed {
                s.status.load().as_ref().clone()
            } else {
                Vec::new()
            },
        }
    }
}
