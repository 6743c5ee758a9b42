//! kdhost: the kaltura-discord plugin host.
//!
//! See `ARCHITECTURE.md` (shared design) for the shape: `discord/` and `kaltura/` own the
//! connections, `plugins/` the WebAssembly sandbox, `store/` persistence, `app` the wiring.

pub mod config;
pub mod discord;
pub mod plugins;
pub mod store;
pub mod telemetry;
