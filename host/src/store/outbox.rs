//! The delivery outbox's storage: every message the host sends to a Discord channel on
//! its own (not as an interaction reply) is a row here first. Rows leave `pending` only as
//! `sent` (with Discord's message id) or `dead` (with the last error). Messages to one
//! channel of one guild form a lane and are delivered in order.
//!
//! Instances share the outbox by leasing lanes, not messages: the holder of a lane's lease
//! is the only one that sends its head, its lease carries a fencing epoch that every
//! result it records must still match (a holder that stalled past its lease records
//! nothing once another took over), and the lease is renewed by heartbeat, so a crashed
//! holder's lanes are taken over seconds later. A failed head stays the head.

use anyhow::Result;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

/// A message to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub guild_id: String,
    /// A channel id, or a name (`#news`) resolved at delivery.
    pub channel: String,
    /// Discord's message body (content, embeds, components, allowed_mentions).
    pub body: Value,
    /// Who produced it: `notification:entry_ready`, `rule:global/x.rhai`, `plugin:name`.
    pub source: String,
}

impl NewMessage {
    /// Messages to one channel of one guild are delivered in order.
    pub fn lane(guild_id: &str, channel: &str) -> String {
        format!("{guild_id}/{channel}")
    }
}

/// A queued message and its delivery state.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: i64,
    pub guild_id: String,
    pub channel: String,
    #[serde(skip)]
    pub lane: String,
    pub body: Value,
    pub source: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// `pending`, `sent` or `dead`.
    pub state: String,
    pub attempts: i64,
    /// When the next attempt is due (pending), Unix milliseconds.
    pub next_at: i64,
    pub last_error: Option<String>,
    pub message_id: Option<String>,
    pub done_at: Option<i64>,
}

/// A message just pushed: its id, and why it was refused at the door (then it is a dead
/// letter already and will not be sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub id: i64,
    pub refused: Option<String>,
}

/// A lane held by one deliverer: `epoch` fences what it records.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaneLease {
    pub lane: String,
    pub owner: String,
    pub epoch: i64,
}

/// What recording a delivery's result came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded<T> {
    Done(T),
    /// Another deliverer took the lane over (this lease expired): nothing was recorded.
    LeaseLost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxCounts {
    pub pending: i64,
    pub dead: i64,
}

/// Why a message was refused at the door (kept as a dead letter with this reason).
pub fn over_quota(guild_id: &str, quota: u64) -> String {
    format!(
        "not sent: guild {guild_id} already has {quota} messages waiting (KD_DELIVERY_GUILD_QUOTA)"
    )
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Queues messages in one transaction. A guild that already has `guild_quota` messages
    /// waiting gets the rest recorded as dead letters at once (listed with the reason,
    /// never sent), so one guild cannot fill the outbox for everyone.
    async fn push(&self, messages: &[NewMessage], guild_quota: u64) -> Result<Vec<Queued>>;

    /// Leases up to `limit` lanes with pending messages whose lease is free, expired or
    /// already `owner`'s, for `lease_ms`. A lane that changes hands gets a new epoch.
    async fn claim_lanes(&self, owner: &str, lease_ms: i64, limit: usize)
    -> Result<Vec<LaneLease>>;

    /// Extends every lease `owner` holds by `lease_ms`; returns those it still holds.
    async fn renew(&self, owner: &str, lease_ms: i64) -> Result<Vec<LaneLease>>;

    /// Gives a lane back (nothing happens if the lease moved on).
    async fn release(&self, lease: &LaneLease) -> Result<()>;

    /// The oldest pending message of a lane: the only one that may be sent next.
    async fn head(&self, lane: &str) -> Result<Option<Delivery>>;

    async fn get(&self, id: i64) -> Result<Option<Delivery>>;

    /// Records Discord's message id, if `lease` still holds the message's lane.
    async fn sent(&self, id: i64, message_id: &str, lease: &LaneLease) -> Result<Recorded<()>>;

    /// Records a failed attempt (counted unless it was a rate limit) and when to try
    /// again, if `lease` still holds the lane; returns the counted attempts so far.
    async fn retry(
        &self,
        id: i64,
        error: &str,
        next_at: i64,
        counted: bool,
        lease: &LaneLease,
    ) -> Result<Recorded<i64>>;

    /// A message that will not be delivered: kept, visible, counted (if `lease` still
    /// holds the lane).
    async fn dead(&self, id: i64, error: &str, lease: &LaneLease) -> Result<Recorded<()>>;

    /// A guild's deliveries, newest first; `state` filters (`pending`, `sent`, `dead`).
    async fn list(
        &self,
        guild_id: &str,
        state: Option<&str>,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<Delivery>>;

    async fn counts(&self) -> Result<OutboxCounts>;

    /// Forgets finished messages: sent ones older than `sent_ms`, dead letters older than
    /// `dead_ms` (and lanes left with nothing to send).
    async fn prune(&self, sent_ms: i64, dead_ms: i64) -> Result<usize>;
}
