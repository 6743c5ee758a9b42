//! The Discord limits of the one bot token, shared by every instance, in one Lua script
//! per call on Redis's clock:
//! - the global limit as a sliding log of the last second's grants (`kd:dl:global`, at
//!   most `per_second` members), so no one-second window at Discord holds more than that
//!   (the window is kept 1.2 s, for the time between a grant and the request's arrival);
//! - a global pause after a global 429 (`kd:dl:pause`);
//! - per-route buckets learned from Discord's headers (`kd:dl:bucket:<route>`), spent one
//!   grant at a time so instances cannot all pass an almost empty bucket;
//! - invalid answers per 10-second slot (`kd:dl:invalid:<slot>`) over Discord's 10 minutes.
//!
//! While Redis is away, bot-authenticated calls wait (polling) until it is back: no
//! instance can know what the others spent, so none sends. Interaction callbacks and
//! follow-ups (not bot-authenticated, not bound by the global limit) go on, paced by this
//! instance's own buckets.

use std::time::Duration;

use async_trait::async_trait;

use super::{Redis, unavailable};
use crate::store::discord_limits::DiscordLimits;
use crate::store::memory::MemoryDiscordLimits;

/// How long a grant stays in the global log: a second, plus a margin for the time between
/// the grant and the request's arrival at Discord (a busy machine can hold a request that
/// long; without the margin, requests granted apart could arrive within one second). The
/// sustained pace is thus 50 per 1.2 s, about 42/s.
const WINDOW_MS: u64 = 1200;
/// While Redis is away, bot-authenticated calls try again this often.
const RETRY: Duration = Duration::from_millis(250);
const SLOT_SECS: u64 = 10;
const SLOTS: u64 = 60;

/// What every script here starts with: Redis's clock (`now`, ms), and a sliding log of
/// grants: `log_grant` records one in `key` unless it holds `limit` within `window` ms, and
/// answers 0 (granted) or the milliseconds to wait.
macro_rules! prelude {
    () => {
        r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function log_grant(key, limit, window, member)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
    if redis.call('ZCARD', key) >= limit then
        local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
        return math.max(1, tonumber(oldest[2]) + window - now)
    end
    redis.call('ZADD', key, now, member)
    redis.call('PEXPIRE', key, window)
    return 0
end
"#
    };
}

/// KEYS: pause, bucket, global log. ARGV: bot_auth (0/1), per_second, window ms, a
/// unique member. Returns 0 (go: the grant is recorded) or the milliseconds to wait.
const GRANT: &str = concat!(
    prelude!(),
    r#"
local bot = ARGV[1] == '1'
if bot then
    local pause = redis.call('PTTL', KEYS[1])
    if pause > 0 then return pause end
end
local remaining = redis.call('HGET', KEYS[2], 'remaining')
if remaining then
    local reset_at = tonumber(redis.call('HGET', KEYS[2], 'reset_at'))
    if tonumber(remaining) <= 0 and reset_at > now then return reset_at - now end
end
if bot then
    local wait = log_grant(KEYS[3], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4])
    if wait > 0 then return wait end
end
if remaining and tonumber(remaining) > 0 then redis.call('HINCRBY', KEYS[2], 'remaining', -1) end
return 0
"#
);

/// A guild's share: KEYS[1] its log; ARGV: per second, window ms, a unique member.
const SHARE: &str = concat!(
    prelude!(),
    "return log_grant(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])"
);

/// KEYS: bucket. ARGV: remaining, reset_after ms.
const LEARN: &str = concat!(
    prelude!(),
    r#"
local after = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'remaining', ARGV[1], 'reset_at', now + after)
redis.call('PEXPIRE', KEYS[1], after + 1000)
return 0
"#
);

pub struct RedisDiscordLimits {
    redis: Redis,
    grant: redis::Script,
    learn: redis::Script,
    share: redis::Script,
    per_second: u32,
    /// How long a grant counts against the global limit (ms).
    window_ms: u64,
    /// Interaction callbacks' buckets and the invalid count while Redis is away.
    local: MemoryDiscordLimits,
}

impl RedisDiscordLimits {
    pub fn new(redis: Redis, per_second: u32) -> Self {
        Self {
            redis,
            grant: redis::Script::new(GRANT),
            learn: redis::Script::new(LEARN),
            share: redis::Script::new(SHARE),
            per_second: per_second.max(1),
            window_ms: WINDOW_MS,
            local: MemoryDiscordLimits::new(per_second.max(1)),
        }
    }

    /// Grants count for `window` instead of a second (tests: nothing leaves the window
    /// while they run).
    #[cfg(test)]
    pub fn with_window(redis: Redis, per_second: u32, window: Duration) -> Self {
        Self {
            window_ms: window.as_millis() as u64,
            ..Self::new(redis, per_second)
        }
    }

    /// One try for tests: the wait in ms (0: granted).
    #[cfg(test)]
    pub async fn grant_once(&self, route: &str, bot_auth: bool) -> u64 {
        self.grant(route, bot_auth).await.unwrap()
    }

    /// One try for tests: the wait in ms for the guild's share (0: granted).
    #[cfg(test)]
    pub async fn guild_share_once(&self, guild: &str, per_second: u32) -> u64 {
        self.share(guild, per_second).await.unwrap()
    }

    /// One try at a guild's share: 0 when granted (and recorded), else how long to wait.
    async fn share(&self, guild: &str, per_second: u32) -> redis::RedisResult<u64> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        self.share
            .key(format!("kd:dl:guild:{guild}"))
            .arg(per_second.max(1))
            .arg(self.window_ms)
            .arg(member)
            .invoke_async(&mut self.redis.conn())
            .await
    }

    /// One try: 0 when the call may go (the grant is recorded), else how long to wait.
    async fn grant(&self, route: &str, bot_auth: bool) -> redis::RedisResult<u64> {
        let member = uuid::Uuid::new_v4().simple().to_string();
        self.grant
            .key("kd:dl:pause")
            .key(format!("kd:dl:bucket:{route}"))
            .key("kd:dl:global")
            .arg(u8::from(bot_auth))
            .arg(self.per_second)
            .arg(self.window_ms)
            .arg(member)
            .invoke_async(&mut self.redis.conn())
            .await
    }
}

/// Tries `attempt` (a script answering 0 for granted, else the ms to wait) until it grants;
/// Redis's error when it does not answer.
async fn until_granted<F, Fut>(mut attempt: F) -> redis::RedisResult<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = redis::RedisResult<u64>>,
{
    loop {
        match attempt().await? {
            0 => return Ok(()),
            wait_ms => tokio::time::sleep(Duration::from_millis(wait_ms)).await,
        }
    }
}

fn slot_now() -> u64 {
    crate::store::now_secs().max(0) as u64 / SLOT_SECS
}

#[async_trait]
impl DiscordLimits for RedisDiscordLimits {
    async fn until_ready(&self, route: &str, bot_auth: bool) {
        while let Err(away) = until_granted(|| self.grant(route, bot_auth)).await {
            unavailable("discord_limits", &away);
            if !bot_auth {
                return self.local.until_ready(route, false).await;
            }
            crate::telemetry::METRICS.discord_paused.inc();
            tokio::time::sleep(RETRY).await;
        }
    }

    async fn until_guild_ready(&self, guild: &str, per_second: u32) {
        if let Err(away) = until_granted(|| self.share(guild, per_second)).await {
            // The global limit holds the message back until Redis answers; the share is
            // this instance's meanwhile.
            unavailable("discord_limits", &away);
            self.local.until_guild_ready(guild, per_second).await;
        }
    }

    async fn until_identify(&self, bucket: u32) {
        let key = format!("kd:dl:identify:{bucket}");
        let every = crate::store::discord_limits::IDENTIFY_EVERY.as_millis() as u64;
        loop {
            // The slot is taken for 5 s and never given back: the next IDENTIFY of the
            // bucket, on any instance, comes after it runs out.
            let r: redis::RedisResult<Option<String>> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("PX")
                .arg(every)
                .query_async(&mut self.redis.conn())
                .await;
            match r {
                Ok(Some(_)) => return,
                Ok(None) => tokio::time::sleep(RETRY).await,
                Err(e) => {
                    unavailable("discord_limits", &e);
                    return self.local.until_identify(bucket).await;
                }
            }
        }
    }

    async fn learn_bucket(&self, route: &str, remaining: u32, reset_after: Duration) {
        self.local.learn_bucket(route, remaining, reset_after).await;
        let r: redis::RedisResult<i64> = self
            .learn
            .key(format!("kd:dl:bucket:{route}"))
            .arg(remaining)
            .arg(reset_after.as_millis() as u64)
            .invoke_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("discord_limits", &e);
        }
    }

    async fn pause_bot(&self, wait: Duration) {
        self.local.pause_bot(wait).await;
        let r: redis::RedisResult<()> = redis::cmd("SET")
            .arg("kd:dl:pause")
            .arg(1)
            .arg("PX")
            .arg((wait.as_millis() as u64).max(1))
            .query_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("discord_limits", &e);
        }
    }

    async fn record_answer(&self, status: u16, shared_rate_limit: bool) {
        if !crate::discord::invalid_requests::counts(status, shared_rate_limit) {
            return;
        }
        // Counted here too: the local count stands in while Redis is away.
        self.local.record_answer(status, shared_rate_limit).await;
        let key = format!("kd:dl:invalid:{}", slot_now());
        let r: redis::RedisResult<()> = redis::pipe()
            .incr(&key, 1)
            .expire(&key, (SLOT_SECS * (SLOTS + 1)) as i64)
            .query_async(&mut self.redis.conn())
            .await;
        if let Err(e) = r {
            unavailable("discord_limits", &e);
        }
    }

    async fn invalid_count(&self) -> u32 {
        let now = slot_now();
        let keys: Vec<String> = (0..SLOTS)
            .map(|i| format!("kd:dl:invalid:{}", now.saturating_sub(i)))
            .collect();
        let r: redis::RedisResult<Vec<Option<u32>>> = redis::cmd("MGET")
            .arg(&keys)
            .query_async(&mut self.redis.conn())
            .await;
        match r {
            Ok(counts) => counts.into_iter().flatten().sum(),
            Err(e) => {
                unavailable("discord_limits", &e);
                self.local.invalid_count().await
            }
        }
    }
}
