//! Kaltura: KS signing (the API client, meetings backend and webhook intake arrive with the
//! rest of the [kaltura] work).

pub mod ks;
