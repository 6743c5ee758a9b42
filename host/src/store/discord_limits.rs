//! The Discord limits of the one bot token, which every instance spends together: the
//! global pace of bot-authenticated calls, a global pause after a global 429, the per-route
//! buckets learned from `X-RateLimit-*` headers, and the count of invalid answers (401,
//! 403, non-shared 429) over Discord's 10-minute window (`discord/invalid_requests.rs`
//! decides what that count means).

use std::time::Duration;

/// How often a bucket may IDENTIFY: Discord says every 5 s, and half a second more keeps
/// two IDENTIFYs apart even when the first took longer to reach Discord than the second.
pub const IDENTIFY_EVERY: Duration = Duration::from_millis(5500);

use async_trait::async_trait;

#[async_trait]
pub trait DiscordLimits: Send + Sync {
    /// Waits until a call on `route` may go: past a global pause and the bot's global pace
    /// (bot-authenticated calls only), and past the route's bucket when it is empty.
    async fn until_ready(&self, route: &str, bot_auth: bool);
    /// Waits until `guild` may send one more message of its own (notifications, rule
    /// messages): its share of the bot's global rate, `per_second`, over every instance,
    /// so one busy guild leaves room for the others.
    async fn until_guild_ready(&self, guild: &str, per_second: u32);

    /// Waits for the IDENTIFY slot of `bucket` (`shard_id % max_concurrency`): Discord
    /// lets one shard per bucket IDENTIFY every 5 s, over every instance of the bot.
    async fn until_identify(&self, bucket: u32);

    /// What Discord's headers said about a route's bucket.
    async fn learn_bucket(&self, route: &str, remaining: u32, reset_after: Duration);
    /// A global 429: every bot-authenticated call waits this long.
    async fn pause_bot(&self, wait: Duration);
    /// Counts an answer if Discord counts it against the host (401, 403, a 429 that is
    /// not a shared-resource limit).
    async fn record_answer(&self, status: u16, shared_rate_limit: bool);
    /// Invalid answers within the last 10 minutes.
    async fn invalid_count(&self) -> u32;
}
