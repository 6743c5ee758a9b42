//! Command allowances shared by every instance: GCRA in one Lua script per command (the
//! member's allowance, then the guild's; nothing is taken when either is spent), on
//! Redis's clock. While Redis is away each instance enforces the same allowances in its
//! own memory (a member could then get one allowance per instance, for that while).

use async_trait::async_trait;

use super::{Redis, unavailable};
use crate::store::memory::MemoryCommandRates;
use crate::store::rates::{CommandRates, Limited};

/// KEYS: user key, guild key (either may be the empty string: no such limit).
/// ARGV: per-user per minute, per-guild per minute, and a time in ms (tests hold time
/// still; empty: Redis's clock).
/// Returns {0, 0} when allowed, {1, wait_ms} when the member's is spent, {2, wait_ms} for
/// the guild's. A quota of n per minute lets a burst of n through, then one per 60/n s.
const GCRA: &str = r#"
local now = tonumber(ARGV[3])
if not now then
    local t = redis.call('TIME')
    now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function check(key, per_minute)
    if key == '' then return 0, now end
    local interval = 60000 / per_minute
    local tat = tonumber(redis.call('GET', key) or now)
    if tat < now then tat = now end
    local new_tat = tat + interval
    local allowed_at = new_tat - interval * per_minute
    if allowed_at > now then return allowed_at - now, 0 end
    return 0, new_tat
end
local user_wait, user_tat = check(KEYS[1], tonumber(ARGV[1]))
if user_wait > 0 then return {1, math.ceil(user_wait)} end
local guild_wait, guild_tat = check(KEYS[2], tonumber(ARGV[2]))
if guild_wait > 0 then return {2, math.ceil(guild_wait)} end
if KEYS[1] ~= '' then redis.call('SET', KEYS[1], user_tat, 'PX', math.ceil(user_tat - now) + 1) end
if KEYS[2] ~= '' then redis.call('SET', KEYS[2], guild_tat, 'PX', math.ceil(guild_tat - now) + 1) end
return {0, 0}
"#;

pub struct RedisCommandRates {
    redis: Redis,
    script: redis::Script,
    per_user_per_minute: u32,
    per_guild_per_minute: u32,
    local: MemoryCommandRates,
    /// Tests hold time still at this instant (ms); `None`: Redis's clock.
    frozen_at: Option<i64>,
}

impl RedisCommandRates {
    pub fn new(redis: Redis, per_user_per_minute: u32, per_guild_per_minute: u32) -> Self {
        let (u, g) = (per_user_per_minute.max(1), per_guild_per_minute.max(1));
        Self {
            redis,
            script: redis::Script::new(GCRA),
            per_user_per_minute: u,
            per_guild_per_minute: g,
            local: MemoryCommandRates::new(u, g),
            frozen_at: None,
        }
    }

    /// A clock that stands still (tests: no allowance comes back while they run).
    #[cfg(test)]
    pub fn frozen(redis: Redis, per_user_per_minute: u32, per_guild_per_minute: u32) -> Self {
        Self {
            frozen_at: Some(1_000_000),
            ..Self::new(redis, per_user_per_minute, per_guild_per_minute)
        }
    }
}

#[async_trait]
impl CommandRates for RedisCommandRates {
    async fn take(&self, user: Option<&str>, guild: Option<&str>) -> Result<(), Limited> {
        let user_key = user
            .map(|u| format!("kd:rate:user:{u}"))
            .unwrap_or_default();
        let guild_key = guild
            .map(|g| format!("kd:rate:guild:{g}"))
            .unwrap_or_default();
        let r: redis::RedisResult<(u8, u64)> = self
            .script
            .key(user_key)
            .key(guild_key)
            .arg(self.per_user_per_minute)
            .arg(self.per_guild_per_minute)
            .arg(self.frozen_at.map(|t| t.to_string()).unwrap_or_default())
            .invoke_async(&mut self.redis.conn())
            .await;
        let secs = |ms: u64| ms.div_ceil(1000).max(1);
        match r {
            Ok((0, _)) => Ok(()),
            Ok((1, ms)) => Err(Limited::User {
                retry_secs: secs(ms),
            }),
            Ok((_, ms)) => Err(Limited::Guild {
                retry_secs: secs(ms),
            }),
            Err(e) => {
                unavailable("rates", &e);
                self.local.take(user, guild).await
            }
        }
    }

    async fn forget_quiet(&self) {
        // Redis forgets by itself (every key expires when its allowance is whole again).
        self.local.forget_quiet().await;
    }
}
