//! Settings (environment, `.env`, flags), operator grants and guild configuration.

pub mod admin;
pub mod dotenv;
pub mod guild;
pub mod placeholders;
pub mod policy;
pub mod schema;
pub mod secret;
pub mod settings;
