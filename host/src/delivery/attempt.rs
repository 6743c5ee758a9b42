//! One delivery attempt of a lane's head, and what its outcome means: sent, retried later
//! (with backoff, the head staying the head) or a dead letter. Every result is recorded
//! under the lane's lease; a lease another instance took over ends the lane's task here.

use std::time::Duration;

use serde_json::json;

use super::Outbox;
use super::mentions::clamp_mentions;
use crate::discord::guilds::ChannelError;
use crate::discord::rest::RestError;
use crate::store::{Delivery, LaneLease, Recorded, now_ms};
use crate::telemetry::METRICS;

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

/// What the lane's task does after an attempt.
pub(super) enum Next {
    Continue,
    /// Another instance holds the lane now.
    LeaseLost,
}

impl Outbox {
    pub(super) async fn deliver(&self, row: Delivery, lease: &LaneLease) -> Next {
        let outcome = self.attempt(&row).await;
        let stored = match outcome {
            Ok(message_id) => {
                METRICS.deliveries.with_label_values(&["sent"]).inc();
                METRICS
                    .delivery_latency
                    .with_label_values(&[source_kind(&row.source)])
                    .observe((now_ms() - row.created_at).max(0) as f64 / 1000.0);
                let stored = self.store.sent(row.id, &message_id, lease).await;
                self.settle(row.id, Ok(message_id));
                stored
            }
            Err(Failure::Permanent(error)) => self.dead(&row, &error, lease).await,
            Err(Failure::Retry {
                error,
                after,
                counted,
            }) => {
                let attempts = row.attempts + i64::from(counted);
                if counted && attempts >= i64::from(self.settings.max_attempts) {
                    let error = format!("{error} (after {attempts} attempts)");
                    self.dead(&row, &error, lease).await
                } else {
                    METRICS.deliveries.with_label_values(&["retry"]).inc();
                    let delay = after.unwrap_or_else(|| self.backoff(attempts));
                    tracing::warn!(id = row.id, guild = %row.guild_id, channel = %row.channel, attempts, retry_in_ms = delay.as_millis() as u64, error = %error, "delivery failed; will retry");
                    let next_at = now_ms() + delay.as_millis() as i64;
                    self.store
                        .retry(row.id, &error, next_at, counted, lease)
                        .await
                        .map(|r| match r {
                            Recorded::Done(_) => Recorded::Done(()),
                            Recorded::LeaseLost => Recorded::LeaseLost,
                        })
                }
            }
        };
        match stored {
            Ok(Recorded::Done(())) => Next::Continue,
            Ok(Recorded::LeaseLost) => {
                tracing::info!(lane = %lease.lane, "outbox: another instance took this lane over");
                Next::LeaseLost
            }
            Err(e) => {
                // The row stays pending; the next attempt resends with the same nonce.
                tracing::error!(id = row.id, error = %e, "outbox: cannot record a delivery result");
                tokio::time::sleep(Duration::from_millis(200)).await;
                Next::Continue
            }
        }
    }

    async fn dead(
        &self,
        row: &Delivery,
        error: &str,
        lease: &LaneLease,
    ) -> anyhow::Result<Recorded<()>> {
        METRICS.deliveries.with_label_values(&["dead"]).inc();
        self.settle(row.id, Err(error.to_string()));
        tracing::error!(id = row.id, guild = %row.guild_id, channel = %row.channel, source = %row.source, error, "message not delivered: dead letter");
        self.store.dead(row.id, error, lease).await
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
        let dm = crate::notify::dm_user(&row.channel);
        let channel = if let Some(user) = dm {
            self.dm_channel(rest, user).await?
        } else if row.guild_id.is_empty() {
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
        rest.until_guild_ready(&row.guild_id, self.guild_share)
            .await;
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
        let msg = match rest.create_message_with(&channel, &body, 1).await {
            Ok(m) => m,
            Err(RestError::Api {
                code: CANNOT_DM,
                message,
                ..
            }) if dm.is_some() => {
                let user = dm.unwrap_or_default();
                return Err(Failure::Permanent(
                    self.refused_dms(&row.guild_id, user, &message).await,
                ));
            }
            Err(e) => return Err(classify(e)),
        };
        Ok(msg["id"].as_str().unwrap_or_default().to_string())
    }

    /// The DM channel with `user`, opened once per process.
    async fn dm_channel(
        &self,
        rest: &crate::discord::rest::DiscordRest,
        user: &str,
    ) -> Result<String, Failure> {
        if let Some(c) = self.dm_channels.lock().unwrap().get(user) {
            return Ok(c.clone());
        }
        let channel = rest.open_dm(user, 1).await.map_err(classify)?;
        self.dm_channels
            .lock()
            .unwrap()
            .insert(user.to_string(), channel.clone());
        Ok(channel)
    }

    /// Discord will not deliver the bot's DMs to this person: their subscriptions in the
    /// guild end (a retry cannot help, and each try would spend the bot's budget). The
    /// dead letter's reason says so.
    async fn refused_dms(&self, guild: &str, user: &str, discord_says: &str) -> String {
        let dropped = match self.preferences.get() {
            Some(p) => match p.erase_user(user, Some(guild)).await {
                Ok(_) => "their notification subscriptions in this server were removed",
                Err(e) => {
                    tracing::error!(error = %e, "a person refusing DMs could not be unsubscribed");
                    "their subscriptions could not be removed (storage error)"
                }
            },
            None => "no subscriptions to remove",
        };
        format!(
            "the person does not accept direct messages from the bot (Discord {CANNOT_DM}: {discord_says}); {dropped}"
        )
    }
}

/// Discord's "Cannot send messages to this user".
const CANNOT_DM: i64 = 50007;

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
