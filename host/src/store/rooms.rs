//! Which instance owns an Activity room. A room has one writer (who hosts, playing,
//! position); the owner holds the room's claim, renews it while the room is open, bumps its
//! epoch when it takes the room over, and keeps a snapshot of the room after every change
//! (fenced by that epoch) from which the next owner resumes it. One process owns every room
//! it opens; a cluster keeps claims and snapshots where all instances see them, and relays
//! clients connected to one instance to the room's owner.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::mpsc;

/// How long a claim lasts unless renewed; the owner renews it every second, so an owner
/// that dies leaves its rooms to another instance this long after.
pub const ROOM_LEASE_MS: u64 = 3_000;

/// The answer to a claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This owner holds the room, at this epoch (higher after every takeover).
    Owned { epoch: u64 },
    /// Another owner holds it.
    Elsewhere { owner: String },
    /// Nobody can tell now (the shared store is away): a room stays where it is open, a
    /// new one opens here, and nothing is written under this claim.
    Unreachable,
}

#[async_trait]
pub trait RoomClaims: Send + Sync {
    /// Claims (or renews) the room for `owner`.
    async fn claim(&self, room: &str, owner: &str) -> Claim;
    /// Gives the room up, snapshot and all (only its current owner can): it is closed.
    async fn release(&self, room: &str, owner: &str);
    /// Gives the room up but keeps its snapshot (the owner is stopping): the next instance
    /// its clients reach resumes it.
    async fn hand_over(&self, room: &str, owner: &str);
    /// Keeps the room's latest snapshot, only while `owner` still holds it at `epoch` (an
    /// owner that lost the room writes nothing).
    async fn save(&self, room: &str, owner: &str, epoch: u64, snapshot: &str);
    /// The room's latest snapshot, if one was kept.
    async fn snapshot(&self, room: &str) -> Option<String>;
    /// Messages between instances about rooms (clients relayed to their room's owner);
    /// `None` where every room is owned in this process.
    fn relay(&self) -> Option<Arc<dyn RoomRelay>> {
        None
    }
}

/// Envelopes between instances, each addressed to one instance.
#[async_trait]
pub trait RoomRelay: Send + Sync {
    /// Sends to `instance`; `false` when nobody is listening there (or the relay is away).
    async fn send(&self, instance: &str, envelope: String) -> bool;
    /// Every envelope sent to `instance` (this process), for as long as it runs.
    fn inbox(&self, instance: &str) -> mpsc::Receiver<String>;
}
