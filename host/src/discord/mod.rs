//! Discord: the signed interactions endpoint, the gateway, REST, the command registry.

pub mod command_versions;
pub mod commands;
pub mod dispatch;
pub mod gateway;
pub mod guilds;
pub mod host_commands;
pub mod interactions;
pub mod invalid_requests;
pub mod launches;
pub mod model;
pub mod permissions;
pub mod response;
pub mod rest;
pub mod shards;
pub mod verify;
pub mod voice;
