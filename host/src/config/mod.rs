//! Settings (environment, `.env`, flags), operator grants and guild configuration.

pub mod guild;
pub mod secret;
pub mod settings;
