//! The bot's Discord limits in this process: governor paces the global rate, buckets and
//! the global pause are instants, invalid answers are counted in a ring of 10-second slots.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::store::discord_limits::DiscordLimits;

const WINDOW: Duration = Duration::from_secs(600);
const SLOT: Duration = Duration::from_secs(10);
const SLOTS: usize = 60;

#[derive(Clone, Copy)]
struct Bucket {
    remaining: u32,
    reset_at: Instant,
}

pub struct MemoryDiscordLimits {
    global: DefaultDirectRateLimiter,
    /// Each guild's share, made at the first call (the share is the operator's setting).
    guilds: std::sync::OnceLock<governor::DefaultKeyedRateLimiter<String>>,
    guild_calls: std::sync::atomic::AtomicU64,
    /// When each IDENTIFY bucket's next slot begins.
    identify_at: Mutex<HashMap<u32, Instant>>,
    global_until: Mutex<Option<Instant>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    started: Instant,
    /// (slot number since `started`, answers counted in it), a ring over the window.
    slots: Mutex<[(u64, u32); SLOTS]>,
}

impl MemoryDiscordLimits {
    /// Bot-authenticated calls paced at `per_second` (Discord's global limit: 50).
    pub fn new(per_second: u32) -> Self {
        let n = NonZeroU32::new(per_second.max(1)).expect("at least 1");
        Self {
            global: RateLimiter::direct(Quota::per_second(n)),
            guilds: std::sync::OnceLock::new(),
            guild_calls: std::sync::atomic::AtomicU64::new(0),
            identify_at: Mutex::new(HashMap::new()),
            global_until: Mutex::new(None),
            buckets: Mutex::new(HashMap::new()),
            started: Instant::now(),
            slots: Mutex::new([(u64::MAX, 0); SLOTS]),
        }
    }

    fn slot_now(&self) -> u64 {
        self.started.elapsed().as_secs() / SLOT.as_secs()
    }
}

#[async_trait]
impl DiscordLimits for MemoryDiscordLimits {
    async fn until_ready(&self, route: &str, bot_auth: bool) {
        if bot_auth {
            let until = *self.global_until.lock().unwrap();
            if let Some(t) = until.filter(|t| *t > Instant::now()) {
                tokio::time::sleep_until(t.into()).await;
            }
            self.global.until_ready().await;
        }
        let bucket = self.buckets.lock().unwrap().get(route).copied();
        if let Some(b) = bucket
            && b.remaining == 0
            && b.reset_at > Instant::now()
        {
            tokio::time::sleep_until(b.reset_at.into()).await;
        }
    }

    async fn until_guild_ready(&self, guild: &str, per_second: u32) {
        let limiter = self.guilds.get_or_init(|| {
            RateLimiter::keyed(Quota::per_second(
                NonZeroU32::new(per_second.max(1)).expect("at least 1"),
            ))
        });
        // Idle guilds are forgotten now and then (bounded memory), never on every call.
        let n = self
            .guild_calls
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n % 4096 == 4095 {
            limiter.retain_recent();
        }
        limiter.until_key_ready(&guild.to_string()).await;
    }

    async fn until_identify(&self, bucket: u32) {
        // Reserve the bucket's next slot, then wait for it: shards of one bucket queue in
        // turn, other buckets do not wait behind them.
        let slot = {
            let mut at = self.identify_at.lock().unwrap();
            let next = at
                .get(&bucket)
                .copied()
                .unwrap_or_else(Instant::now)
                .max(Instant::now());
            at.insert(bucket, next + crate::store::discord_limits::IDENTIFY_EVERY);
            next
        };
        tokio::time::sleep_until(slot.into()).await;
    }

    async fn learn_bucket(&self, route: &str, remaining: u32, reset_after: Duration) {
        self.buckets.lock().unwrap().insert(
            route.to_string(),
            Bucket {
                remaining,
                reset_at: Instant::now() + reset_after,
            },
        );
    }

    async fn pause_bot(&self, wait: Duration) {
        *self.global_until.lock().unwrap() = Some(Instant::now() + wait);
    }

    async fn record_answer(&self, status: u16, shared_rate_limit: bool) {
        if !crate::discord::invalid_requests::counts(status, shared_rate_limit) {
            return;
        }
        let now = self.slot_now();
        let mut slots = self.slots.lock().unwrap();
        let s = &mut slots[(now % SLOTS as u64) as usize];
        if s.0 != now {
            *s = (now, 0);
        }
        s.1 += 1;
        crate::telemetry::METRICS.discord_invalid.inc();
    }

    async fn invalid_count(&self) -> u32 {
        let now = self.slot_now();
        let oldest = now.saturating_sub((WINDOW.as_secs() / SLOT.as_secs()) - 1);
        self.slots
            .lock()
            .unwrap()
            .iter()
            .filter(|(slot, _)| *slot != u64::MAX && *slot >= oldest && *slot <= now)
            .map(|(_, n)| n)
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_answers_discord_counts_are_counted() {
        let l = MemoryDiscordLimits::new(50);
        for _ in 0..9 {
            l.record_answer(401, false).await;
        }
        l.record_answer(200, false).await;
        l.record_answer(404, false).await;
        l.record_answer(429, true).await;
        l.record_answer(403, false).await;
        l.record_answer(429, false).await;
        assert_eq!(
            l.invalid_count().await,
            11,
            "only 401, 403 and non-shared 429 count"
        );
    }
}
