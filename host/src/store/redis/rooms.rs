//! Activity rooms across instances: the claim on a room (`kd:room:<id>` = `<owner>
//! <epoch>`, expiring after [`ROOM_LEASE_MS`] unless renewed; the epoch from
//! `kd:room-epoch:<id>`, one more at every change of hands), the room's snapshot
//! (`kd:room-snap:<id>`, written only while the writer's claim and epoch still hold), and
//! the relay: each instance listens on `kd:sync:<instance>` (pub/sub) for envelopes about
//! the rooms it owns or relays.
//!
//! While Redis is away a room stays with the instance that has it (its clients go on) and
//! relayed clients wait; nothing is lost that the next snapshot does not restore.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::mpsc;

use super::{Redis, unavailable};
use crate::store::rooms::{Claim, ROOM_LEASE_MS, RoomClaims, RoomRelay};

/// How long a snapshot outlives its room's last change (a room idle this long is gone).
const SNAPSHOT_TTL_MS: u64 = 12 * 3600 * 1000;

const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur then
  local sp = string.find(cur, ' ', 1, true)
  local owner = string.sub(cur, 1, sp - 1)
  if owner == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, string.sub(cur, sp + 1)}
  end
  return {0, owner}
end
local epoch = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. epoch, 'PX', ARGV[2])
return {1, tostring(epoch)}
";

/// Deletes the claim if `ARGV[1]` holds it, and with it every other key given.
const RELEASE: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur and string.sub(cur, 1, string.len(ARGV[1]) + 1) == ARGV[1] .. ' ' then
  redis.call('DEL', unpack(KEYS))
end
return 0
";

const SAVE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

pub struct RedisRoomClaims {
    redis: Redis,
    claim: redis::Script,
    release: redis::Script,
    save: redis::Script,
}

impl RedisRoomClaims {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            claim: redis::Script::new(CLAIM),
            release: redis::Script::new(RELEASE),
            save: redis::Script::new(SAVE),
        }
    }
}

impl RedisRoomClaims {
    /// Deletes `owner`'s claim on the room (and its snapshot too, with `snapshot`).
    async fn give_up(&self, room: &str, owner: &str, snapshot: bool) {
        let mut call = self.release.key(lease_key(room));
        if snapshot {
            call.key(snapshot_key(room));
        }
        let r: redis::RedisResult<i64> = call.arg(owner).invoke_async(&mut self.redis.conn()).await;
        if let Err(e) = r {
            unavailable("rooms", &e);
        }
    }
}

fn lease_key(room: &str) -> String {
    format!("kd:room:{room}")
}

fn snapshot_key(room: &str) -> String {
    format!("kd:room-snap:{room}")
}

#[async_trait]
impl RoomClaims for RedisRoomClaims {
    async fn claim(&self, room: &str, owner: &str) -> Claim {
        let r: redis::RedisResult<(i64, String)> = self
            .claim
            .key(lease_key(room))
            .key(format!("kd:room-epoch:{room}"))
            .arg(owner)
            .arg(ROOM_LEASE_MS)
            .arg(SNAPSHOT_TTL_MS)
            .invoke_async(&mut self.redis.conn())
            .await;
        match r {
            Ok((1, epoch)) => Claim::Owned {
                epoch: epoch.parse().unwrap_or(0),
            },
            Ok((_, other)) => Claim::Elsewhere { owner: other },
            Err(e) => {
                unavailable("rooms", &e);
                Claim::Unreachable
            }
        }
    }

    async fn release(&self, room: &str, owner: &str) {
        self.give_up(room, owner, true).await
    }

    async fn hand_over(&self, room: &str, owner: &str) {
        self.give_up(room, owner, false).await
    }

    async fn save(&self, room: &str, owner: &str, epoch: u64, snapshot: &str) {
        let r: redis::RedisResult<i64> = self
            .save
            .key(lease_key(room))
            .key(snapshot_key(room))
            .arg(format!("{owner} {epoch}"))
            .arg(snapshot)
            .arg(SNAPSHOT_TTL_MS)
            .invoke_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("rooms", &e);
        }
    }

    async fn snapshot(&self, room: &str) -> Option<String> {
        let r: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(snapshot_key(room))
            .query_async(&mut self.redis.conn())
            .await;
        r.inspect_err(|e| unavailable("rooms", e)).ok().flatten()
    }

    fn relay(&self) -> Option<Arc<dyn RoomRelay>> {
        Some(Arc::new(RedisRelay {
            redis: self.redis.clone(),
        }))
    }
}

struct RedisRelay {
    redis: Redis,
}

fn relay_channel(instance: &str) -> String {
    format!("kd:sync:{instance}")
}

#[async_trait]
impl RoomRelay for RedisRelay {
    async fn send(&self, instance: &str, envelope: String) -> bool {
        let r: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(relay_channel(instance))
            .arg(envelope)
            .query_async(&mut self.redis.conn())
            .await;
        match r {
            Ok(listeners) => listeners > 0,
            Err(e) => {
                unavailable("relay", &e);
                false
            }
        }
    }

    fn inbox(&self, instance: &str) -> mpsc::Receiver<String> {
        let (tx, rx) = mpsc::channel(4096);
        let client = self.redis.client.clone();
        let channel = relay_channel(instance);
        tokio::spawn(async move {
            // A connection of its own, subscribed for as long as the process runs; a lost
            // one is made again (envelopes sent meanwhile are lost: relayed clients resend
            // their joins when they see no answer, see `activity::relay`).
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                        Ok(()) => {
                            let mut messages = pubsub.on_message();
                            while let Some(m) = messages.next().await {
                                let Ok(text) = m.get_payload::<String>() else {
                                    continue;
                                };
                                if tx.send(text).await.is_err() {
                                    return; // the process is stopping
                                }
                            }
                        }
                        Err(e) => unavailable("relay", &e),
                    },
                    Err(e) => unavailable("relay", &e),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        rx
    }
}
