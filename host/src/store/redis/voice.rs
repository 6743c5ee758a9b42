//! Voice states in Redis: `kd:voice:<guild>` (user → channel) and `kd:voice-known:<guild>`
//! (the gateway described this guild). The instance holding a guild's shard writes them;
//! any instance reads them. Written through to memory, read from it while Redis is away.

use async_trait::async_trait;

use super::{Redis, unavailable};
use crate::store::memory::MemoryVoice;
use crate::store::voice::VoiceStates;

pub struct RedisVoice {
    redis: Redis,
    local: MemoryVoice,
}

impl RedisVoice {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            local: MemoryVoice::default(),
        }
    }
}

#[async_trait]
impl VoiceStates for RedisVoice {
    async fn replace_guild(&self, guild_id: &str, states: Vec<(String, String)>) {
        self.local.replace_guild(guild_id, states.clone()).await;
        let key = format!("kd:voice:{guild_id}");
        let mut pipe = redis::pipe();
        pipe.atomic().del(&key);
        if !states.is_empty() {
            pipe.hset_multiple(&key, &states);
        }
        pipe.set(format!("kd:voice-known:{guild_id}"), 1);
        let r: redis::RedisResult<()> = pipe.query_async(&mut self.redis.conn()).await;
        if let Err(e) = r {
            unavailable("voice", &e);
        }
    }

    async fn set(&self, guild_id: &str, user_id: &str, channel_id: Option<&str>) {
        self.local.set(guild_id, user_id, channel_id).await;
        let key = format!("kd:voice:{guild_id}");
        let cmd = match channel_id {
            Some(c) => redis::cmd("HSET").arg(&key).arg(user_id).arg(c).to_owned(),
            None => redis::cmd("HDEL").arg(&key).arg(user_id).to_owned(),
        };
        let r: redis::RedisResult<()> = cmd.query_async(&mut self.redis.conn()).await;
        if let Err(e) = r {
            unavailable("voice", &e);
        }
    }

    async fn in_voice(&self, guild_id: &str, user_id: &str) -> Option<bool> {
        let r: redis::RedisResult<(bool, bool)> = redis::pipe()
            .exists(format!("kd:voice-known:{guild_id}"))
            .hexists(format!("kd:voice:{guild_id}"), user_id)
            .query_async(&mut self.redis.conn())
            .await;
        match r {
            Ok((true, present)) => Some(present),
            Ok((false, _)) => self.local.in_voice(guild_id, user_id).await,
            Err(e) => {
                unavailable("voice", &e);
                self.local.in_voice(guild_id, user_id).await
            }
        }
    }
}
