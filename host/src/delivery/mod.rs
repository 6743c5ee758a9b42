//! The durable outbox for everything the host posts to Discord channels on its own
//! (notifications, rule messages): persisted first, then delivered.
//!
//! - **Order**: one lane per (guild, channel); a lane sends its oldest pending message and
//!   nothing else until that one is sent or dead. Lanes run in parallel.
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

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};

use crate::config::guild::GuildConfigs;
use crate::config::settings::DeliverySettings;
use crate::discord::guilds::{ChannelError, GuildDirectory};
use crate::discord::rest::{DiscordRest, RestError};
use crate::store::{Delivery, Meta, NewMessage, OutboxStore, Queued, now_ms};
use crate::telemetry::METRICS;

pub struct Outbox {
    store: Arc<dyn OutboxStore>,
    rest: Option<Arc<DiscordRest>>,
    directory: Arc<GuildDirectory>,
    guilds: Arc<GuildConfigs>,
    settings: DeliverySettings,
    nonce_prefix: String,
    wake: Notify,
    /// Lanes with a running task.
    active: Mutex<HashSet<String>>,
    /// Callers waiting for a message's fate (a plugin's `send-message` wants its id).
    waiters: Mutex<HashMap<i64, oneshot::Sender<Result<String, String>>>>,
    /// Each guild's share of the global rate (`KD_DELIVERY_GUILD_SHARE`): one busy guild
    /// leaves room for the others.
    guild_rate: governor::DefaultKeyedRateLimiter<String>,
}

/// What to do after a failed attempt.
enum Failure {
    /// Try again later; `counted` unless it was a rate limit.
    Retry {
        error: String,
        after: Option<Duration>,
        counted: bool,
    },
    /// No retry can fix this.
    Permanent(String),
}

/// A random prefix for this database's message nonces, made once: nonces stay unique even
/// if another database (or a wiped one) reuses outbox ids.
pub async fn nonce_prefix(meta: &dyn Meta) -> anyhow::Result<String> {
    const KEY: &str = "outbox.nonce_prefix";
    if let Some(p) = meta.get(KEY).await? {
        return Ok(p);
    }
    let p: String = uuid::Uuid::new_v4().simple().to_string()[..8].to_string();
    meta.set(KEY, &p).await?;
    Ok(p)
}

impl Outbox {
    /// `nonce_prefix`: see [`nonce_prefix`].
    pub fn new(
        store: Arc<dyn OutboxStore>,
        nonce_prefix: String,
        rest: Option<Arc<DiscordRest>>,
        directory: Arc<GuildDirectory>,
        guilds: Arc<GuildConfigs>,
        settings: DeliverySettings,
    ) -> Arc<Self> {
        let share = (u64::from(settings.global_rate) * u64::from(settings.guild_share_percent)
            / 100)
            .clamp(1, u64::from(u32::MAX)) as u32;
        let guild_rate = governor::RateLimiter::keyed(governor::Quota::per_second(
            std::num::NonZeroU32::new(share).expect("at least 1"),
        ));
        Arc::new(Self {
            guild_rate,
            store,
            rest,
            directory,
            guilds,
            settings,
            nonce_prefix,
            wake: Notify::new(),
            active: Mutex::new(HashSet::new()),
            waiters: Mutex::new(HashMap::new()),
        })
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

    /// Starts the dispatcher: it finds lanes with pending messages (at start, on every
    /// wake, and each second for retries that came due) and runs one task per lane.
    pub fn start(self: &Arc<Self>) {
        if !self.can_deliver() {
            tracing::warn!(
                "delivery is off: set DISCORD_BOT_TOKEN; queued messages wait in the outbox"
            );
            return;
        }
        let outbox = self.clone();
        tokio::spawn(async move {
            // Gauges and rate state are kept once a second, not on every wake: counting the
            // outbox reads the whole table.
            let mut kept: Option<std::time::Instant> = None;
            loop {
                // Interest is registered before looking, so a wake in between is not lost.
                let wake = outbox.wake.notified();
                tokio::pin!(wake);
                wake.as_mut().enable();
                outbox.spawn_lanes().await;
                if kept.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    outbox.update_gauges().await;
                    outbox.prune_rates();
                    kept = Some(std::time::Instant::now());
                }
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
    }

    /// Forgets idle guilds' rate state (bounded memory).
    pub fn prune_rates(&self) {
        self.guild_rate.retain_recent();
    }

    async fn update_gauges(&self) {
        if let Ok(c) = self.store.counts().await {
            METRICS.outbox_pending.set(c.pending);
            METRICS.outbox_dead.set(c.dead);
        }
    }

    async fn spawn_lanes(self: &Arc<Self>) {
        let lanes = match self.store.lanes().await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot read pending lanes");
                return;
            }
        };
        let mut active = self.active.lock().unwrap();
        for lane in lanes {
            if active.insert(lane.clone()) {
                tokio::spawn(self.clone().run_lane(lane));
            }
        }
    }

    async fn run_lane(self: Arc<Self>, lane: String) {
        loop {
            let head = match self.store.head(&lane).await {
                Ok(Some(h)) => h,
                Ok(None) => {
                    // Leave, then look once more: a message queued before we left is seen
                    // here; one queued after finds the lane inactive and gets a new task.
                    self.active.lock().unwrap().remove(&lane);
                    match self.store.head(&lane).await {
                        Ok(Some(_)) if self.active.lock().unwrap().insert(lane.clone()) => {
                            continue;
                        }
                        _ => return,
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, lane, "outbox: cannot read the lane");
                    self.active.lock().unwrap().remove(&lane);
                    return;
                }
            };
            let wait = head.next_at - now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
                continue;
            }
            self.deliver(head).await;
        }
    }

    async fn deliver(&self, row: Delivery) {
        let outcome = self.attempt(&row).await;
        let stored = match outcome {
            Ok(message_id) => {
                METRICS.deliveries.with_label_values(&["sent"]).inc();
                METRICS
                    .delivery_latency
                    .with_label_values(&[source_kind(&row.source)])
                    .observe((now_ms() - row.created_at).max(0) as f64 / 1000.0);
                let stored = self.store.sent(row.id, &message_id).await;
                self.settle(row.id, Ok(message_id));
                stored
            }
            Err(Failure::Permanent(error)) => self.dead(&row, &error).await,
            Err(Failure::Retry {
                error,
                after,
                counted,
            }) => {
                let attempts = row.attempts + i64::from(counted);
                if counted && attempts >= i64::from(self.settings.max_attempts) {
                    self.dead(&row, &format!("{error} (after {attempts} attempts)"))
                        .await
                } else {
                    METRICS.deliveries.with_label_values(&["retry"]).inc();
                    let delay = after.unwrap_or_else(|| self.backoff(attempts));
                    tracing::warn!(id = row.id, guild = %row.guild_id, channel = %row.channel, attempts, retry_in_ms = delay.as_millis() as u64, error = %error, "delivery failed; will retry");
                    self.store
                        .retry(row.id, &error, now_ms() + delay.as_millis() as i64, counted)
                        .await
                        .map(|_| ())
                }
            }
        };
        if let Err(e) = stored {
            // The row stays pending; the next attempt resends with the same nonce.
            tracing::error!(id = row.id, error = %e, "outbox: cannot record a delivery result");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn dead(&self, row: &Delivery, error: &str) -> anyhow::Result<()> {
        METRICS.deliveries.with_label_values(&["dead"]).inc();
        self.settle(row.id, Err(error.to_string()));
        tracing::error!(id = row.id, guild = %row.guild_id, channel = %row.channel, source = %row.source, error, "message not delivered: dead letter");
        self.store.dead(row.id, error).await
    }

    /// `retry_base · 2^(attempts-1)`, at most `retry_max`, with ±20 % jitter so lanes that
    /// failed together do not retry together.
    fn backoff(&self, attempts: i64) -> Duration {
        let exp = attempts.clamp(1, 30) as u32 - 1;
        let base = self
            .settings
            .retry_base
            .saturating_mul(2u32.saturating_pow(exp))
            .min(self.settings.retry_max);
        let jitter = (uuid::Uuid::new_v4().as_u128() % 401) as f64 / 1000.0 - 0.2;
        base.mul_f64(1.0 + jitter)
    }

    async fn attempt(&self, row: &Delivery) -> Result<String, Failure> {
        let rest = self.rest.as_ref().ok_or_else(|| Failure::Retry {
            error: "Discord is not configured".into(),
            after: Some(Duration::from_secs(60)),
            counted: false,
        })?;
        // A guild's messages go to that guild's channels only; a plugin's message outside
        // a guild (no guild id) was checked against its conversation when it was queued.
        let channel = if row.guild_id.is_empty() {
            row.channel.clone()
        } else {
            self.directory
                .resolve_channel(&row.guild_id, &row.channel)
                .await
                .map_err(|e| match e {
                    ChannelError::Unknown(_) | ChannelError::Foreign(_) => {
                        Failure::Permanent(e.to_string())
                    }
                    ChannelError::Rest(e) => classify(e),
                })?
        };
        // The guild's share of the global rate, then the global pacing in the REST client.
        self.guild_rate.until_key_ready(&row.guild_id).await;
        let mut body = row.body.clone();
        body["nonce"] = json!(format!("{}{}", self.nonce_prefix, row.id));
        body["enforce_nonce"] = json!(true);
        let policy = self
            .guilds
            .guild(Some(&row.guild_id))
            .typed
            .notifications
            .mentions
            .allowed_mentions();
        body["allowed_mentions"] = clamp_mentions(&body["allowed_mentions"], &policy);
        let msg = rest
            .create_message_with(&channel, &body, 1)
            .await
            .map_err(classify)?;
        Ok(msg["id"].as_str().unwrap_or_default().to_string())
    }
}

fn classify(e: RestError) -> Failure {
    match e {
        RestError::RateLimited(secs) => Failure::Retry {
            error: e.to_string(),
            after: Some(Duration::from_secs_f64(secs.max(0.05))),
            counted: false,
        },
        RestError::Network(_) => Failure::Retry {
            error: e.to_string(),
            after: None,
            counted: true,
        },
        RestError::Api { status, .. } if status >= 500 || status == 408 => Failure::Retry {
            error: e.to_string(),
            after: None,
            counted: true,
        },
        RestError::Api { .. } => Failure::Permanent(e.to_string()),
        RestError::NotConfigured(_) | RestError::Throttled => Failure::Retry {
            error: e.to_string(),
            after: Some(Duration::from_secs(60)),
            counted: false,
        },
    }
}

/// `notification:entry_ready` → `notification` (a small label set for metrics).
fn source_kind(source: &str) -> &str {
    source.split(':').next().unwrap_or("other")
}

/// The mentions a message may make: what it asks for, within what the guild allows (a
/// message that asks nothing gets the guild's policy).
pub fn clamp_mentions(requested: &Value, policy: &Value) -> Value {
    if !requested.is_object() {
        return policy.clone();
    }
    let list = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str().map(String::from))
            .collect()
    };
    let (allowed_parse, allowed_roles) = (list(&policy["parse"]), list(&policy["roles"]));
    let parse: Vec<String> = list(&requested["parse"])
        .into_iter()
        .filter(|p| allowed_parse.contains(p))
        .collect();
    let roles: Vec<String> = list(&requested["roles"])
        .into_iter()
        .filter(|r| allowed_roles.contains(r))
        .collect();
    json!({"parse": parse, "roles": roles})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_never_exceed_the_guild_policy() {
        let policy = json!({"parse": ["users"], "roles": ["5"]});
        assert_eq!(
            clamp_mentions(
                &json!({"parse": ["everyone", "users"], "roles": ["5", "6"]}),
                &policy
            ),
            json!({"parse": ["users"], "roles": ["5"]})
        );
        assert_eq!(clamp_mentions(&Value::Null, &policy), policy);
        let silent = json!({"parse": [], "roles": []});
        assert_eq!(
            clamp_mentions(&json!({"parse": ["everyone"]}), &silent),
            silent
        );
    }
}
