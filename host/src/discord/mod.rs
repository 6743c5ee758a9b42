//! Discord: the signed interactions endpoint, the gateway, REST, the command registry.

pub mod response;
pub mod rest;
pub mod tokens;
