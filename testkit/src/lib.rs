//! Faithful local stand-ins for Discord and Kaltura, for tests and the demo.
//!
//! They speak the real wire protocol: paths, JSON shapes, Discord's error bodies and codes,
//! rate-limit headers and 429 with `Retry-After`, and Ed25519-signed interaction requests.

pub mod discord;
pub mod discord_client;
pub mod gateway;
pub mod kaltura;
pub mod signing;

pub use discord::{DiscordStandIn, Fault, Recorded, StandInOptions};
pub use discord_client::DiscordClientStandIn;
pub use kaltura::notify::{BodyFormat, SignedNotification};
pub use kaltura::{KalturaFault, KalturaOptions, KalturaStandIn};
