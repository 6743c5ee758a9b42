//! The host side of each capability interface: one file per grant.

mod config;
mod discord;
mod host;
mod http;
mod kaltura;
mod kv;
mod log;

use super::bindings::types;
use super::state::PluginState;

impl types::Host for PluginState {}
