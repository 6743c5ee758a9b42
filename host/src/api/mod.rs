//! The JSON HTTP surface's shared pieces (the `/api/v1` routes arrive with later work).

pub mod error;
