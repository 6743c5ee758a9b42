//! kdhost: the kaltura-discord plugin host.
//!
//! See `ARCHITECTURE.md` (shared design) for the shape: `discord/` and `kaltura/` own the
//! connections, `plugins/` the WebAssembly sandbox, `store/` persistence, `app` the wiring.

pub mod activity;
pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod delivery;
pub mod discord;
pub mod events;
pub mod http_server;
pub mod kaltura;
pub mod notify;
pub mod plugins;
pub mod privacy;
pub mod reload;
pub mod scripts;
pub mod store;
pub mod telemetry;
pub mod tls;
