//! Pending Activity launches in Redis, so the Activity can ask what it was launched for on
//! whichever instance it connects to: `kd:launch:<channel>:<user>` (the control's custom
//! id) and `kd:launch-latest:<channel>` (`<user>\n<custom id>`), both expiring. Written
//! through to this instance's memory, read from it while Redis is away.

use async_trait::async_trait;

use super::{Redis, unavailable};
use crate::store::launches::{LAUNCH_TTL, Launch, Launches};
use crate::store::memory::MemoryLaunches;

pub struct RedisLaunches {
    redis: Redis,
    local: MemoryLaunches,
}

impl RedisLaunches {
    pub fn new(redis: Redis) -> Self {
        Self {
            redis,
            local: MemoryLaunches::default(),
        }
    }
}

#[async_trait]
impl Launches for RedisLaunches {
    async fn record(&self, channel_id: &str, user_id: &str, custom_id: &str) {
        self.local.record(channel_id, user_id, custom_id).await;
        let ttl = LAUNCH_TTL.as_secs();
        let r: redis::RedisResult<()> = redis::pipe()
            .set_ex(format!("kd:launch:{channel_id}:{user_id}"), custom_id, ttl)
            .set_ex(
                format!("kd:launch-latest:{channel_id}"),
                format!("{user_id}\n{custom_id}"),
                ttl,
            )
            .query_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("launches", &e);
        }
    }

    async fn latest_in(&self, channel_id: &str) -> Option<(String, Launch)> {
        let r: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(format!("kd:launch-latest:{channel_id}"))
            .query_async(&mut self.redis.conn())
            .await;
        match r {
            Ok(Some(v)) => v.split_once('\n').map(|(user, custom_id)| {
                (
                    user.to_string(),
                    Launch {
                        custom_id: custom_id.to_string(),
                    },
                )
            }),
            Ok(None) => self.local.latest_in(channel_id).await,
            Err(e) => {
                unavailable("launches", &e);
                self.local.latest_in(channel_id).await
            }
        }
    }

    async fn get(&self, channel_id: &str, user_id: &str) -> Option<Launch> {
        let r: redis::RedisResult<Option<String>> = redis::cmd("GET")
            .arg(format!("kd:launch:{channel_id}:{user_id}"))
            .query_async(&mut self.redis.conn())
            .await;
        match r {
            Ok(Some(custom_id)) => Some(Launch { custom_id }),
            Ok(None) => self.local.get(channel_id, user_id).await,
            Err(e) => {
                unavailable("launches", &e);
                self.local.get(channel_id, user_id).await
            }
        }
    }
}
