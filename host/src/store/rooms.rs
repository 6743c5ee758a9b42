//! Which instance owns an Activity room. A room has one writer (who hosts, playing,
//! position); the owner holds the room's claim and bumps its epoch when it takes it over.
//! One process owns every room it opens; a cluster keeps the claims where all instances
//! see them.

use async_trait::async_trait;

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This owner holds the room, at this epoch (higher after every takeover).
    Owned { epoch: u64 },
    /// Another owner holds it.
    Elsewhere { owner: String },
}

#[async_trait]
pub trait RoomClaims: Send + Sync {
    /// Claims (or keeps) the room for `owner`.
    async fn claim(&self, room: &str, owner: &str) -> Claim;
    /// Gives the room up (only its current owner can).
    async fn release(&self, room: &str, owner: &str);
}
