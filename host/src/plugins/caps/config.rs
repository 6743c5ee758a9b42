//! The `config` capability: the plugin's settings in the calling guild's merged config.

use std::sync::Arc;

use crate::config::guild::GuildConfigs;
use crate::plugins::bindings::kaltura_discord::plugin::config::Host;
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::state::PluginState;

/// What the `config` capability needs: the guilds' configuration.
pub struct ConfigCap {
    pub guilds: Arc<GuildConfigs>,
}

impl Host for PluginState {
    /// `plugins.<name>.settings` of the current guild's merged config, at a dotted path.
    async fn get(&mut self, path: String) -> Result<Option<String>, CapError> {
        self.require(Capability::Config)?;
        let cfg = self
            .caps
            .config
            .guilds
            .guild(self.scope.guild_id.as_deref());
        let mut node = &cfg["plugins"][&*self.plugin]["settings"];
        for part in path.split('.').filter(|p| !p.is_empty()) {
            node = match node {
                serde_json::Value::Array(a) => match part.parse::<usize>() {
                    Ok(i) => a.get(i).unwrap_or(&serde_json::Value::Null),
                    Err(_) => &serde_json::Value::Null,
                },
                other => &other[part],
            };
        }
        Ok((!node.is_null()).then(|| node.to_string()))
    }
}
