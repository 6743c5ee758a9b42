//! Running as one of several instances: membership (registration and heartbeat on the
//! shared database). Single instances on SQLite have nothing to join.

pub mod changes;
pub mod leader;
pub mod membership;
pub mod shards;

pub use leader::Leadership;
pub use membership::Membership;
