//! The inbox: events accepted from outside (Kaltura webhooks), persisted before they are
//! acknowledged, deduplicated by key, and marked processed in the same transaction that
//! queues their messages. A crash between the two re-processes the event, never half of it.
//! Instances take events to process by claiming them for a while: an instance that dies
//! with a claim leaves its events to another once the claim runs out.

use anyhow::Result;
use async_trait::async_trait;

use super::outbox::{NewMessage, Queued};

/// An accepted event waiting to be processed.
#[derive(Debug, Clone)]
pub struct InboxRow {
    pub seq: i64,
    pub source: String,
    pub event: String,
    pub received_at: i64,
    /// Processing attempts, this one included.
    pub attempts: u32,
}

/// An event processed, with the messages it queues.
#[derive(Debug, Clone)]
pub struct Processed {
    pub seq: i64,
    pub messages: Vec<NewMessage>,
}

#[async_trait]
pub trait Inbox: Send + Sync {
    /// Records an event unless its key was seen before. `Some(seq)` when new, `None` for a
    /// redelivery: only the inserter processes it.
    async fn insert(&self, source: &str, key: &str, event: &str) -> Result<Option<i64>>;

    /// Whether an event with this dedupe key was accepted (and not yet pruned).
    async fn contains(&self, key: &str) -> Result<bool>;

    /// Claims the oldest unprocessed events that nobody else holds (claims run out after
    /// `claim_ms`; `owner`'s own are taken again) and counts one more attempt of each.
    /// Counted before the work, so an event whose processing never finishes (a crash, a
    /// hang) is recognised instead of being retried forever.
    async fn claim(&self, owner: &str, limit: usize, claim_ms: i64) -> Result<Vec<InboxRow>>;

    /// Gives up `owner`'s claims on events it has not finished (a clean stop), so another
    /// instance takes them at once; returns how many.
    async fn release_claims(&self, owner: &str) -> Result<usize>;

    /// Whether any event waits to be processed.
    async fn pending(&self) -> Result<bool>;

    /// Queues an event's messages (see [`super::OutboxStore::push`] for `guild_quota`) and
    /// marks it processed, atomically. Returns what was queued, or `None` (and queues
    /// nothing) when the event had already been processed.
    async fn complete(
        &self,
        seq: i64,
        messages: &[NewMessage],
        guild_quota: u64,
    ) -> Result<Option<Vec<Queued>>> {
        let done = [Processed {
            seq,
            messages: messages.to_vec(),
        }];
        Ok(self.complete_all(&done, guild_quota).await?.pop().flatten())
    }

    /// [`Inbox::complete`] for a batch of events in one transaction (all or none): one
    /// answer per event, in the order given, which is the order their messages queue in.
    async fn complete_all(
        &self,
        done: &[Processed],
        guild_quota: u64,
    ) -> Result<Vec<Option<Vec<Queued>>>>;

    /// Forgets processed events older than `age_ms` (their keys no longer dedupe).
    async fn prune(&self, age_ms: i64) -> Result<usize>;
}
