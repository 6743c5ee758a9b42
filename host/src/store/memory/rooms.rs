//! Room claims in this process: one owner per room; epochs come from one counter, so a
//! room claimed again after a release always gets a higher one. Snapshots are kept too
//! (nobody else resumes from them, but the contract is the same).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use crate::store::rooms::{Claim, RoomClaims};

#[derive(Default)]
pub struct MemoryRoomClaims {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// room → (owner, epoch); released rooms are forgotten (bounded memory).
    rooms: HashMap<String, (String, u64)>,
    snapshots: HashMap<String, String>,
    last_epoch: u64,
}

#[async_trait]
impl RoomClaims for MemoryRoomClaims {
    async fn claim(&self, room: &str, owner: &str) -> Claim {
        let mut inner = self.inner.lock().unwrap();
        if let Some((o, epoch)) = inner.rooms.get(room) {
            return if o == owner {
                Claim::Owned { epoch: *epoch }
            } else {
                Claim::Elsewhere { owner: o.clone() }
            };
        }
        inner.last_epoch += 1;
        let epoch = inner.last_epoch;
        inner
            .rooms
            .insert(room.to_string(), (owner.to_string(), epoch));
        Claim::Owned { epoch }
    }

    async fn release(&self, room: &str, owner: &str) {
        let mut inner = self.inner.lock().unwrap();
        if inner.rooms.get(room).is_some_and(|(o, _)| o == owner) {
            inner.rooms.remove(room);
            inner.snapshots.remove(room);
        }
    }

    async fn hand_over(&self, room: &str, owner: &str) {
        let mut inner = self.inner.lock().unwrap();
        if inner.rooms.get(room).is_some_and(|(o, _)| o == owner) {
            inner.rooms.remove(room);
        }
    }

    async fn save(&self, room: &str, owner: &str, epoch: u64, snapshot: &str) {
        let mut inner = self.inner.lock().unwrap();
        if inner.rooms.get(room) == Some(&(owner.to_string(), epoch)) {
            inner
                .snapshots
                .insert(room.to_string(), snapshot.to_string());
        }
    }

    async fn snapshot(&self, room: &str) -> Option<String> {
        self.inner.lock().unwrap().snapshots.get(room).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_owner_per_room_and_a_takeover_bumps_the_epoch() {
        let c = MemoryRoomClaims::default();
        assert_eq!(c.claim("r", "a").await, Claim::Owned { epoch: 1 });
        assert_eq!(c.claim("r", "a").await, Claim::Owned { epoch: 1 });
        assert_eq!(
            c.claim("r", "b").await,
            Claim::Elsewhere { owner: "a".into() }
        );
        c.release("r", "b").await; // not the owner: nothing happens
        assert!(matches!(c.claim("r", "b").await, Claim::Elsewhere { .. }));
        c.release("r", "a").await;
        assert_eq!(c.claim("r", "b").await, Claim::Owned { epoch: 2 });
    }
}
