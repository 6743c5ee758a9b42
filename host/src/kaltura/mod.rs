//! Kaltura: KS signing (the API client, meetings backend and webhook intake arrive with the
//! rest of the [kaltura] work).

/// Kaltura Sessions: local signing and verification. The algorithm lives in the
/// `kaltura-ks` crate because the Kaltura stand-in in `testkit` validates the same way.
pub use kaltura_ks as ks;
