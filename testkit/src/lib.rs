//! Faithful local stand-ins for Discord and Kaltura, for tests and the demo.
//!
//! They speak the real wire protocol: paths, JSON shapes, Discord's error bodies and codes,
//! rate-limit headers and 429 with `Retry-After`, and Ed25519-signed interaction requests.

pub mod discord;
pub mod discord_client;
pub mod gateway;
pub mod kaltura;
pub mod servers;
pub mod signing;

pub use discord::{DiscordStandIn, Fault, Recorded, StandInOptions};
pub use discord_client::DiscordClientStandIn;
pub use kaltura::notify::{BodyFormat, SignedNotification};
pub use kaltura::{KalturaFault, KalturaOptions, KalturaStandIn};

/// A fixtures file, parsed; errors name the file and, for bad JSON, the line and column.
pub fn read_fixtures<T: serde::de::DeserializeOwned>(path: &std::path::Path) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: line {}, column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })
}
