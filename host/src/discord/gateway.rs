//! The serenity gateway: INTERACTION_CREATE feeds the same dispatcher as `POST /interactions`;
//! the answer goes back over REST (`/interactions/{id}/{token}/callback`).

use std::sync::Arc;

use serenity::all::{Context, Event, GatewayIntents, HttpBuilder, RawEventHandler};
use serenity::async_trait;
use tokio::sync::oneshot;

use super::dispatch::Dispatcher;
use super::model::Interaction;
use super::rest::DiscordRest;
use super::voice;
use crate::config::secret::Secret;
use crate::events::DiscordEvent;
use crate::events::process::EventProcessor;
use crate::store::voice::VoiceStates;
use crate::telemetry::METRICS;

struct Handler {
    dispatcher: Arc<Dispatcher>,
    rest: Arc<DiscordRest>,
    voice: Arc<dyn VoiceStates>,
    events: Arc<EventProcessor>,
}

impl Handler {
    /// Member joins and scheduled events go to the inbox (persisted, deduplicated) for
    /// the guild's rules and subscribed plugins.
    async fn discord_event(&self, kind: &str, raw: &serde_json::Value) {
        let events = &self.events;
        let ev = match kind {
            "GUILD_MEMBER_ADD" => DiscordEvent::member_join(raw),
            "GUILD_SCHEDULED_EVENT_CREATE" => DiscordEvent::scheduled_event("create", raw),
            "GUILD_SCHEDULED_EVENT_UPDATE" => DiscordEvent::scheduled_event("update", raw),
            "GUILD_SCHEDULED_EVENT_DELETE" => DiscordEvent::scheduled_event("delete", raw),
            _ => None,
        };
        if let Some(ev) = ev {
            let result = if events.accept_discord(&ev).await {
                "accepted"
            } else {
                "duplicate"
            };
            crate::telemetry::METRICS
                .gateway_events
                .with_label_values(&[kind, result])
                .inc();
        }
    }
}

#[async_trait]
impl RawEventHandler for Handler {
    async fn raw_event(&self, _ctx: Context, event: Event) {
        // Discord adds interaction fields faster than models follow: when serenity cannot
        // type an INTERACTION_CREATE it hands over the raw JSON, which is all we need.
        let raw = match event {
            Event::Ready(r) => {
                tracing::info!(user = %r.ready.user.name, guilds = r.ready.guilds.len(), "gateway connected");
                return;
            }
            Event::InteractionCreate(e) => serde_json::to_value(&e.interaction),
            Event::Unknown(u) if u.kind == "INTERACTION_CREATE" => Ok(u.value),
            Event::GuildCreate(e) => {
                if let Ok(g) = serde_json::to_value(&e.guild) {
                    voice::guild_create(self.voice.as_ref(), &g).await;
                }
                return;
            }
            Event::VoiceStateUpdate(e) => {
                if let Ok(v) = serde_json::to_value(&e.voice_state) {
                    voice::update(self.voice.as_ref(), &v).await;
                }
                return;
            }
            Event::Unknown(u) if u.kind == "GUILD_CREATE" => {
                voice::guild_create(self.voice.as_ref(), &u.value).await;
                return;
            }
            Event::Unknown(u) if u.kind == "VOICE_STATE_UPDATE" => {
                voice::update(self.voice.as_ref(), &u.value).await;
                return;
            }
            Event::GuildMemberAdd(e) => {
                if let Ok(mut m) = serde_json::to_value(&e.member) {
                    m["guild_id"] = serde_json::json!(e.member.guild_id.to_string());
                    self.discord_event("GUILD_MEMBER_ADD", &m).await;
                }
                return;
            }
            Event::GuildScheduledEventCreate(e) => {
                if let Ok(v) = serde_json::to_value(&e.event) {
                    self.discord_event("GUILD_SCHEDULED_EVENT_CREATE", &v).await;
                }
                return;
            }
            Event::GuildScheduledEventUpdate(e) => {
                if let Ok(v) = serde_json::to_value(&e.event) {
                    self.discord_event("GUILD_SCHEDULED_EVENT_UPDATE", &v).await;
                }
                return;
            }
            Event::GuildScheduledEventDelete(e) => {
                if let Ok(v) = serde_json::to_value(&e.event) {
                    self.discord_event("GUILD_SCHEDULED_EVENT_DELETE", &v).await;
                }
                return;
            }
            Event::Unknown(u) => {
                self.discord_event(&u.kind, &u.value).await;
                return;
            }
            _ => return,
        };
        let ix: Interaction = match raw.and_then(serde_json::from_value) {
            Ok(ix) => ix,
            Err(e) => {
                tracing::warn!(error = %e, "gateway interaction could not be read");
                return;
            }
        };
        METRICS
            .interactions
            .with_label_values(&["gateway", "accepted"])
            .inc();
        let (acked, on_acked) = oneshot::channel();
        let body = self.dispatcher.handle(ix.clone(), on_acked).await;
        if let Err(e) = self
            .rest
            .interaction_callback(&ix.id, &ix.token, &body.to_json())
            .await
        {
            tracing::warn!(error = %e, interaction = %ix.id, "could not answer a gateway interaction");
        }
        let _ = acked.send(());
    }
}

/// What every gateway connection needs. `api_base` other than discord.com (a stand-in) is
/// reached through serenity's proxy setting, which needs its own rate limiter off; our REST
/// client does the rate limiting for every call the host makes, and serenity's start-up
/// call is booked in the same shared limit first.
#[derive(Clone)]
pub struct Gateway {
    pub token: Secret,
    pub api_base: String,
    pub dispatcher: Arc<Dispatcher>,
    pub rest: Arc<DiscordRest>,
    pub voice: Arc<dyn VoiceStates>,
    pub events: Arc<EventProcessor>,
    pub member_events: bool,
}

/// One running connection (a shard, or the single one); stopping it closes the socket.
pub struct Connection {
    manager: Arc<serenity::gateway::ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Connection {
    /// Closes the connection (another instance may take its shard).
    pub async fn stop(self) {
        self.manager.shutdown_all().await;
        self.task.abort();
    }

    /// Whether it has ended on its own (an error it does not recover from).
    pub fn ended(&self) -> bool {
        self.task.is_finished()
    }
}

impl Gateway {
    /// Connects `shard` (id, count), or the single connection (`None`); `max_concurrency`:
    /// Discord's IDENTIFY buckets, shared by every instance (one IDENTIFY per 5 s each).
    pub async fn connect(
        &self,
        shard: Option<(u32, u32)>,
        max_concurrency: u32,
    ) -> Option<Connection> {
        let (id, total) = shard.unwrap_or((0, 1));
        // One IDENTIFY per bucket per 5 s over the whole cluster, then serenity's own
        // start-up call in the shared global limit.
        self.rest.until_identify(id % max_concurrency.max(1)).await;
        self.rest.book_bot_call("gateway").await;
        let mut http = HttpBuilder::new(self.token.expose());
        if !self
            .api_base
            .trim_end_matches('/')
            .eq_ignore_ascii_case("https://discord.com")
        {
            http = http
                .proxy(self.api_base.trim_end_matches('/'))
                .ratelimiter_disabled(true);
        }
        // Voice states say who can watch an Activity together; scheduled events feed rules
        // (neither is privileged). Member joins need the privileged GUILD_MEMBERS intent,
        // enabled in the developer portal: only when the operator says so.
        let mut intents = GatewayIntents::GUILDS
            | GatewayIntents::GUILD_VOICE_STATES
            | GatewayIntents::GUILD_SCHEDULED_EVENTS;
        if self.member_events {
            intents |= GatewayIntents::GUILD_MEMBERS;
        }
        let client = serenity::client::ClientBuilder::new_with_http(http.build(), intents)
            .raw_event_handler(Handler {
                dispatcher: self.dispatcher.clone(),
                rest: self.rest.clone(),
                voice: self.voice.clone(),
                events: self.events.clone(),
            })
            .await;
        let mut client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %redact(&e.to_string(), &self.token), "gateway client could not be built");
                return None;
            }
        };
        let manager = client.shard_manager.clone();
        let token = self.token.clone();
        let task = tokio::spawn(async move {
            if let Err(e) = client.start_shard(id, total).await {
                tracing::error!(error = %redact(&e.to_string(), &token), shard = id, "gateway stopped");
            }
        });
        tracing::info!(shard = id, shards = total, "gateway shard connecting");
        watch_shard(manager.clone(), task.abort_handle(), id, total);
        Some(Connection { manager, task })
    }

    /// Connects what `plan` says (each connection runs on a task of its own).
    pub async fn run(
        self,
        plan: super::shards::ShardPlan,
        assign: Option<crate::cluster::shards::Assignment>,
    ) {
        use super::shards::ShardPlan;
        match plan {
            ShardPlan::None => {
                tracing::info!("no gateway connection on this instance (DISCORD_SHARDS=none)");
            }
            ShardPlan::Single => {
                self.connect(None, 1).await;
            }
            ShardPlan::Range { first, last, total } => {
                let (_, max_concurrency) = self.recommended().await;
                self.connect_all(first..=last, total, max_concurrency).await;
            }
            ShardPlan::Auto { total } => {
                let (recommended, max_concurrency) = self.recommended().await;
                let total = total.unwrap_or(recommended);
                match assign {
                    // Several instances: leases decide who connects which shard.
                    Some(assign) => assign.run(self, total, max_concurrency).await,
                    None => {
                        self.connect_all(0..=total - 1, total, max_concurrency)
                            .await
                    }
                }
            }
        }
    }

    /// Connects the shards `ids` of `total`, one after another.
    async fn connect_all(
        &self,
        ids: std::ops::RangeInclusive<u32>,
        total: u32,
        max_concurrency: u32,
    ) {
        for id in ids {
            self.connect(Some((id, total)), max_concurrency).await;
        }
    }

    /// Discord's recommended shard count and IDENTIFY concurrency (`GET /gateway/bot`);
    /// one shard and concurrency 1 when it cannot say.
    pub async fn recommended(&self) -> (u32, u32) {
        match self.rest.gateway_bot().await {
            Ok(v) => (
                v["shards"].as_u64().unwrap_or(1).max(1) as u32,
                v["session_start_limit"]["max_concurrency"]
                    .as_u64()
                    .unwrap_or(1)
                    .max(1) as u32,
            ),
            Err(e) => {
                tracing::warn!(error = %e, "GET /gateway/bot failed; one shard, one IDENTIFY at a time");
                (1, 1)
            }
        }
    }
}

/// `kd_gateway_shard_up{shard}` follows the shard's connection stage every 2 s while its
/// connection runs; the series goes when the connection ends (here or by a move).
fn watch_shard(
    manager: Arc<serenity::gateway::ShardManager>,
    running: tokio::task::AbortHandle,
    id: u32,
    total: u32,
) {
    crate::telemetry::METRICS
        .gateway_shard_count
        .set(total.into());
    let label = id.to_string();
    tokio::spawn(async move {
        while !running.is_finished() {
            let connected = manager
                .runners
                .lock()
                .await
                .get(&serenity::model::id::ShardId(id))
                .is_some_and(|r| r.stage == serenity::gateway::ConnectionStage::Connected);
            // Looked up each round: a connection of the same shard that ended here meanwhile
            // may have removed the series.
            crate::telemetry::METRICS
                .gateway_shard_up
                .with_label_values(&[&label])
                .set(connected.into());
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        let _ = crate::telemetry::METRICS
            .gateway_shard_up
            .remove_label_values(&[&label]);
    });
}

fn redact(s: &str, token: &Secret) -> String {
    s.replace(token.expose(), "<redacted>")
}
