//! Interaction tokens in Redis (`kd:tok:<interaction>`, a hash expiring with the token),
//! so a follow-up works from any instance. Written through to this instance's memory too:
//! while Redis is away, follow-ups from the instance that took the interaction still work.

use async_trait::async_trait;

use super::{Redis, unavailable};
use crate::store::memory::MemoryTokens;
use crate::store::tokens::{Held, InteractionTokens, TOKEN_LIFETIME};

pub struct RedisTokens {
    redis: Redis,
    local: MemoryTokens,
    /// Marks a token answered, only if it is still held (a hash is never made for a
    /// missing one). Made once: every interaction's answer runs it.
    mark: redis::Script,
}

impl RedisTokens {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            local: MemoryTokens::default(),
            mark: redis::Script::new(
                "if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'answered', '1') end return 0",
            ),
        }
    }
}

fn key(interaction_id: &str) -> String {
    format!("kd:tok:{interaction_id}")
}

#[async_trait]
impl InteractionTokens for RedisTokens {
    async fn insert(&self, interaction_id: &str, token: &str, plugin: &str) {
        self.local.insert(interaction_id, token, plugin).await;
        let r: redis::RedisResult<()> = redis::pipe()
            .atomic()
            .hset_multiple(
                key(interaction_id),
                &[("token", token), ("plugin", plugin), ("answered", "0")],
            )
            .expire(key(interaction_id), TOKEN_LIFETIME.as_secs() as i64)
            .query_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("tokens", &e);
        }
    }

    async fn mark_answered(&self, interaction_id: &str) {
        self.local.mark_answered(interaction_id).await;
        let r: redis::RedisResult<i64> = self
            .mark
            .key(key(interaction_id))
            .invoke_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("tokens", &e);
        }
    }

    async fn get(&self, interaction_id: &str, plugin: &str) -> Option<Held> {
        let r: redis::RedisResult<(Option<String>, Option<String>, Option<String>)> =
            redis::cmd("HMGET")
                .arg(key(interaction_id))
                .arg(&["token", "plugin", "answered"])
                .query_async(&mut self.redis.conn())
                .await;
        match r {
            Ok((Some(token), Some(owner), answered)) => (owner == plugin).then(|| Held {
                token,
                answered: answered.as_deref() == Some("1"),
            }),
            Ok(_) => self.local.get(interaction_id, plugin).await,
            Err(e) => {
                unavailable("tokens", &e);
                self.local.get(interaction_id, plugin).await
            }
        }
    }
}
