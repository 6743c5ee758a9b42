//! kdhost: the kaltura-discord plugin host.
//!
//! See `ARCHITECTURE.md` (shared design) for the shape: `discord/` and `kaltura/` own the
//! connections, `plugins/` the WebAssembly sandbox, `store/` persistence, `app` the wiring.

pub mod activity;
pub mod api;
pub mod app;
pub mod cache;
pub mod cli;
pub mod config;
pub mod config_cli;
pub mod delivery;
pub mod demo;
pub mod discord;
pub mod events;
pub mod http_server;
pub mod kaltura;
pub mod kaltura_cli;
pub mod plugin_build;
pub mod plugin_cli;
pub mod plugin_templates;
pub mod plugin_test;
pub mod plugins;
pub mod script_cli;
pub mod scripts;
pub mod serve;
pub mod store;
pub mod telemetry;
