//! The `log` capability: a guest's log lines in the host's log, tagged with the plugin's name,
//! capped per line and per call (the rest is dropped and counted).

use crate::plugins::bindings::kaltura_discord::plugin::log::{Host, Level};
use crate::plugins::bindings::types::Capability;
use crate::plugins::state::PluginState;

/// Longest message kept from one log call.
const MAX_LOG_BYTES: usize = 4096;
/// Lines one call may log; past this they are dropped (one warning says so).
pub const MAX_LOG_LINES_PER_CALL: u32 = 100;

impl Host for PluginState {
    async fn log(&mut self, level: Level, message: String) {
        if self.require(Capability::Log).is_err() {
            return;
        }
        self.log_lines += 1;
        if self.log_lines > MAX_LOG_LINES_PER_CALL {
            crate::telemetry::METRICS
                .plugin_log_dropped
                .with_label_values(&[&*self.plugin])
                .inc();
            if self.log_lines == MAX_LOG_LINES_PER_CALL + 1 {
                tracing::warn!(plugin = %self.plugin, "plugin logged over {MAX_LOG_LINES_PER_CALL} lines in one call; the rest of this call's lines are dropped");
            }
            return;
        }
        let mut msg = message;
        if msg.len() > MAX_LOG_BYTES {
            let mut end = MAX_LOG_BYTES;
            while !msg.is_char_boundary(end) {
                end -= 1;
            }
            msg.truncate(end);
            msg.push_str(" …(truncated)");
        }
        // One call, one line: a guest's newlines cannot forge the host's log lines.
        let msg = crate::telemetry::one_line(&msg);
        let plugin = &*self.plugin;
        let guild = self.scope.guild_id.as_deref().unwrap_or("-");
        match level {
            Level::Trace => tracing::trace!(target: "plugin", plugin, guild, "{msg}"),
            Level::Debug => tracing::debug!(target: "plugin", plugin, guild, "{msg}"),
            Level::Info => tracing::info!(target: "plugin", plugin, guild, "{msg}"),
            Level::Warn => tracing::warn!(target: "plugin", plugin, guild, "{msg}"),
            Level::Error => tracing::error!(target: "plugin", plugin, guild, "{msg}"),
        }
    }
}
