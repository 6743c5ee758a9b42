//! The durable outbox for everything the host posts to Discord channels on its own
//! (notifications, rule messages): persisted first, then delivered.
//!
//! - **Order**: one lane per (guild, channel); a lane sends its oldest pending message and
//!   nothing else until that one is sent or dead. Lanes run in parallel.
//! - **Instances**: a lane is delivered by the instance holding its lease (`lanes.rs`);
//!   every result is recorded under the lease's fencing epoch.
//! - **Rate limits**: `DiscordRest` paces the global limit and per-route buckets; a 429 is
//!   waited out (not counted as a failed attempt).
//! - **Retries**: 5xx and network errors back off exponentially (`KD_DELIVERY_RETRY_MS`
//!   doubling up to `KD_DELIVERY_RETRY_MAX_MS`); after `KD_DELIVERY_MAX_ATTEMPTS` the message
//!   is a dead letter (kept, counted, listed at `/api/v1/guilds/{id}/deliveries`). Errors no
//!   retry can fix (unknown channel, missing access, invalid body) are dead at once.
//! - **Exactly once**: every message carries `nonce = <db prefix><id>` with
//!   `enforce_nonce: true`, so when a crash lands between Discord creating the message and
//!   the host recording it, the resend returns the message Discord already made.
//! - **Mentions**: `allowed_mentions` is clamped to what the guild's config allows.

mod attempt;
mod lanes;
mod mentions;

pub use lanes::LANE_LEASE;
pub use mentions::clamp_mentions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, oneshot};

use crate::config::guild::GuildConfigs;
use crate::config::settings::DeliverySettings;
use crate::discord::guilds::GuildDirectory;
use crate::discord::rest::DiscordRest;
use crate::store::{Meta, NewMessage, OutboxStore, Queued};

pub struct Outbox {
    store: Arc<dyn OutboxStore>,
    rest: Option<Arc<DiscordRest>>,
    directory: Arc<GuildDirectory>,
    guilds: Arc<GuildConfigs>,
    settings: DeliverySettings,
    nonce_prefix: String,
    /// This instance's name on the lanes it leases.
    owner: String,
    wake: Notify,
    /// Lanes with a running task, by lane.
    held: Mutex<HashMap<String, lanes::Held>>,
    /// Callers waiting for a message's fate (a plugin's `send-message` wants its id).
    waiters: Mutex<HashMap<i64, oneshot::Sender<Result<String, String>>>>,
    /// Each guild's share of the global rate (`KD_DELIVERY_GUILD_SHARE`), per second over
    /// every instance: one busy guild leaves room for the others.
    guild_share: u32,
    /// The host is stopping: no lane is claimed, each lane task gives its lane back after
    /// the attempt it is making.
    stopping: std::sync::atomic::AtomicBool,
    /// Direct-message channels opened, by user.
    dm_channels: Mutex<HashMap<String, String>>,
    /// Where a person who refuses the bot's DMs is unsubscribed (personal notifications).
    preferences: std::sync::OnceLock<Arc<dyn crate::store::Preferences>>,
}

/// A random prefix for this database's message nonces, made once: nonces stay unique even
/// if another database (or a wiped one) reuses outbox ids.
pub async fn nonce_prefix(meta: &dyn Meta) -> anyhow::Result<String> {
    const KEY: &str = "outbox.nonce_prefix";
    let p: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    // Instances starting together agree on the first one stored.
    meta.get_or_insert(KEY, &p).await
}

impl Outbox {
    /// `nonce_prefix`: see [`nonce_prefix`]; `owner`: this instance's name on the lanes it
    /// leases (see [`crate::store::SharedState::instance_id`]).
    pub fn new(
        store: Arc<dyn OutboxStore>,
        owner: &str,
        nonce_prefix: String,
        rest: Option<Arc<DiscordRest>>,
        directory: Arc<GuildDirectory>,
        guilds: Arc<GuildConfigs>,
        settings: DeliverySettings,
    ) -> Arc<Self> {
        let guild_share =
            (u64::from(settings.global_rate) * u64::from(settings.guild_share_percent) / 100)
                .clamp(1, u64::from(u32::MAX)) as u32;
        Arc::new(Self {
            guild_share,
            store,
            rest,
            directory,
            guilds,
            settings,
            nonce_prefix,
            owner: owner.to_string(),
            wake: Notify::new(),
            held: Mutex::new(HashMap::new()),
            waiters: Mutex::new(HashMap::new()),
            stopping: std::sync::atomic::AtomicBool::new(false),
            dm_channels: Mutex::new(HashMap::new()),
            preferences: std::sync::OnceLock::new(),
        })
    }

    /// People who refuse the bot's direct messages are unsubscribed here.
    pub fn unsubscribe_refusals_in(&self, preferences: Arc<dyn crate::store::Preferences>) {
        let _ = self.preferences.set(preferences);
    }

    /// This instance's name on the lanes and events it claims.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Whether messages can leave (a bot token is configured).
    pub fn can_deliver(&self) -> bool {
        self.rest.as_ref().is_some_and(|r| r.has_bot_token())
    }

    /// Messages one guild may have waiting (`KD_DELIVERY_GUILD_QUOTA`); the rest are
    /// dead letters at once.
    pub fn guild_quota(&self) -> u64 {
        self.settings.guild_quota
    }

    /// Persists messages and wakes the delivery.
    pub async fn enqueue(&self, messages: &[NewMessage]) -> anyhow::Result<Vec<Queued>> {
        let queued = self.store.push(messages, self.guild_quota()).await?;
        self.wake();
        Ok(queued)
    }

    /// Queues one message and waits (at most `timeout`) for Discord's message id. A timeout
    /// is not a failure: the message stays queued and will be delivered.
    pub async fn send_and_wait(
        &self,
        message: NewMessage,
        timeout: Duration,
    ) -> Result<String, String> {
        let Queued { id, refused } = self
            .store
            .push(std::slice::from_ref(&message), self.guild_quota())
            .await
            .map_err(|e| format!("the message could not be queued: {e}"))?
            .pop()
            .expect("one message, one id");
        // Over the guild's quota it is a dead letter already.
        if let Some(why) = refused {
            return Err(why);
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.lock().unwrap().insert(id, tx);
        self.wake();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result,
            _ => {
                self.waiters.lock().unwrap().remove(&id);
                Err(format!(
                    "queued as delivery {id}; Discord has not confirmed it yet (it will be delivered)"
                ))
            }
        }
    }

    fn settle(&self, id: i64, result: Result<String, String>) {
        if let Some(tx) = self.waiters.lock().unwrap().remove(&id) {
            let _ = tx.send(result);
        }
    }

    /// New rows were committed (possibly by someone else's transaction).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
