//! Kaltura: the account the host acts on (API client, locally signed sessions, identity
//! and roles, media, meetings). Guests reach it through the `kaltura` capability and
//! people through `/api/v1`; ADMIN sessions never leave this module.

pub mod account;
pub mod admin;
pub mod client;
pub mod error;
pub mod identity;
pub mod media;
pub mod meetings;
pub mod notification;
pub mod privileges;
pub mod sessions;
pub mod settings;
pub mod webhook;

pub use account::{Caller, Kaltura};
pub use error::KalturaError;
/// Kaltura Sessions: local signing and verification. The algorithm lives in the
/// `kaltura-ks` crate because the Kaltura stand-in in `testkit` validates the same way.
pub use kaltura_ks as ks;
pub use settings::KalturaSettings;
