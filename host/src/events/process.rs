//! From the inbox to the outbox: each accepted event is turned into the messages every
//! configured guild wants (its default notifications, its category/tag routes, its rules),
//! queued in the same transaction that marks the event processed. Plugins subscribed to
//! the event get it afterwards (at most once: a guest's own sends are its business).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::Notify;

use super::template::{render, truncate};
use super::{DiscordEvent, KalturaEvent, KalturaEventKind, PrivacyErase};
use crate::config::guild::{GuildConfigs, GuildEntry};
use crate::config::policy::Policy;
use crate::delivery::Outbox;
use crate::kaltura::KalturaSettings;
use crate::plugins::bindings::types::Event as GuestEvent;
use crate::plugins::registry::Registry;
use crate::plugins::runtime::Call;
use crate::plugins::state::CallScope;
use crate::scripts::Rules;
use crate::store::{Inbox, InboxRow, NewMessage, Processed};
use crate::telemetry::METRICS;

/// How many inbox rows one pass takes.
const BATCH: usize = 256;
/// How many processed events are queued in one transaction: enough to spread a commit's
/// cost, few enough that the first event's messages do not wait long for the others.
const CHUNK: usize = 32;
/// How long an instance's claim on an event lasts: if it dies while processing, another
/// instance takes the event after this.
const CLAIM: Duration = Duration::from_secs(30);
/// Processing attempts of one event (a crash or a restart in the middle counts) before it
/// is given up, so an event that brings the host down is not retried forever.
const MAX_ATTEMPTS: u32 = 3;

pub struct EventProcessor {
    inbox: Arc<dyn Inbox>,
    guilds: Arc<GuildConfigs>,
    outbox: Arc<Outbox>,
    /// For `{{entry_url}}`: the partner's player, when one is configured.
    kaltura: Option<KalturaSettings>,
    plugins: Arc<Registry>,
    rules: Arc<Rules>,
    /// Who asked for matching events by direct message.
    preferences: Arc<dyn crate::store::Preferences>,
    /// Signalled by whoever puts an event into the inbox (the webhook intake, the gateway).
    accepted: Arc<Notify>,
    /// One pass at a time; a stop waits for the pass in flight.
    passes: tokio::sync::Mutex<()>,
    /// The host is stopping: no more passes.
    stopping: std::sync::atomic::AtomicBool,
}

impl EventProcessor {
    /// `stores`: the inbox it works through and the notification preferences it reads.
    pub fn new(
        stores: &crate::store::Stores,
        accepted: Arc<Notify>,
        guilds: Arc<GuildConfigs>,
        outbox: Arc<Outbox>,
        kaltura: Option<KalturaSettings>,
        plugins: Arc<Registry>,
        rules: Arc<Rules>,
    ) -> Arc<Self> {
        Arc::new(Self {
            preferences: stores.preferences.clone(),
            inbox: stores.inbox.clone(),
            guilds,
            outbox,
            kaltura,
            plugins,
            rules,
            accepted,
            passes: tokio::sync::Mutex::new(()),
            stopping: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Processes what is in the inbox now (events left by a crash too), then each new one.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let wake = me.accepted.notified();
                tokio::pin!(wake);
                wake.as_mut().enable();
                while me.run_batch().await > 0 {}
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                }
            }
        });
    }

    /// Processes up to one batch; returns how many events it took. The events' messages
    /// are queued in chunks, each in one transaction, so a busy inbox costs one commit per
    /// chunk instead of one per event.
    pub async fn run_batch(self: &Arc<Self>) -> usize {
        let _pass = self.passes.lock().await;
        if self.stopping.load(std::sync::atomic::Ordering::Acquire) {
            return 0;
        }
        let claim_ms = CLAIM.as_millis() as i64;
        let rows = match self.inbox.claim(self.outbox.owner(), BATCH, claim_ms).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "inbox: cannot read pending events");
                return 0;
            }
        };
        let n = rows.len();
        for chunk in rows.chunks(CHUNK) {
            let mut done = Vec::with_capacity(chunk.len());
            let mut events = Vec::with_capacity(chunk.len());
            for row in chunk {
                let (event, messages) = match self.prepare(row) {
                    Some(event) => {
                        let messages = match &event {
                            Incoming::Kaltura(ev) => self.messages_for(ev).await,
                            Incoming::Discord(ev) => self.discord_messages(ev).await,
                            Incoming::Privacy(_) => Vec::new(),
                        };
                        (Some(event), messages)
                    }
                    // Given up: marked done with nothing queued and no plugin told.
                    None => (None, Vec::new()),
                };
                done.push(Processed {
                    seq: row.seq,
                    messages,
                });
                events.push(event);
            }
            let answers = match self
                .inbox
                .complete_all(&done, self.outbox.guild_quota())
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(error = %e, "inbox: cannot queue events' messages; will retry");
                    return 0;
                }
            };
            if answers.iter().flatten().any(|q| !q.is_empty()) {
                self.outbox.wake();
            }
            for (answer, event) in answers.into_iter().zip(events) {
                // `None`: another instance finished it first (its claim ran out while it
                // worked, or ours did): its messages and its plugin calls are that
                // instance's.
                if let (Some(_), Some(event)) = (answer, event) {
                    self.tell_plugins(event);
                }
            }
        }
        n
    }

    /// The host is stopping: the pass in flight finishes (at most `timeout`), then the
    /// events this instance claimed and did not finish are given back for another to take.
    pub async fn stop(&self, timeout: Duration) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        if tokio::time::timeout(timeout, self.passes.lock())
            .await
            .is_err()
        {
            tracing::warn!(
                "events: a pass was still running at shutdown; its claims run out by themselves"
            );
            return;
        }
        match self.inbox.release_claims(self.outbox.owner()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, "events: claims given back for another instance"),
            Err(e) => {
                tracing::warn!(error = %e, "events: cannot give claims back; they run out by themselves")
            }
        }
    }

    /// The event of an inbox row, or `None` when it is to be given up (processing never
    /// finished too often, or it cannot be read).
    fn prepare(&self, row: &InboxRow) -> Option<Incoming> {
        if row.attempts > MAX_ATTEMPTS {
            tracing::error!(
                seq = row.seq,
                attempts = row.attempts - 1,
                "inbox: an event whose processing never finished is given up"
            );
            METRICS.events_abandoned.inc();
            return None;
        }
        let event = match row.source.as_str() {
            "discord" => serde_json::from_str(&row.event).map(Incoming::Discord),
            "privacy" => serde_json::from_str(&row.event).map(Incoming::Privacy),
            _ => serde_json::from_str(&row.event).map(Incoming::Kaltura),
        };
        match event {
            Ok(e) => Some(e),
            Err(e) => {
                // Written by this host, so only a bug gets here; mark it done to move on.
                tracing::error!(seq = row.seq, error = %e, "inbox: unreadable event skipped");
                None
            }
        }
    }

    /// Subscribed plugins hear about a processed event, on a task of its own: a slow
    /// plugin must not hold up the next events.
    fn tell_plugins(self: &Arc<Self>, event: Incoming) {
        if let Incoming::Privacy(erase) = event {
            let me = self.clone();
            tokio::spawn(async move { me.tell_erasure(&erase).await });
            return;
        }
        let (topic, guilds, payload) = match event {
            Incoming::Kaltura(ev) => (ev.kind.topic(), self.audience_of(&ev), ev.to_json()),
            Incoming::Discord(ev) => (
                ev.topic().to_string(),
                BTreeSet::from([ev.guild_id.clone()]),
                ev.payload,
            ),
            Incoming::Privacy(_) => return,
        };
        let me = self.clone();
        tokio::spawn(async move { me.notify_plugins(&topic, &guilds, &payload).await });
    }

    /// Persists a Discord gateway event (deduplicated) for processing; `false` for a
    /// duplicate.
    pub async fn accept_discord(&self, ev: &DiscordEvent) -> bool {
        let text = serde_json::to_string(ev).expect("events serialize");
        match self.inbox.insert("discord", &ev.dedupe_key(), &text).await {
            Ok(Some(_)) => {
                self.accepted.notify_one();
                true
            }
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "a Discord event could not be stored");
                false
            }
        }
    }

    /// Persists a person's erasure for the plugins that subscribe to `privacy.erase`
    /// (told once the event is processed, across restarts).
    pub async fn accept_privacy(&self, ev: &PrivacyErase) -> anyhow::Result<()> {
        let text = serde_json::to_string(ev).expect("events serialize");
        self.inbox
            .insert("privacy", &ev.dedupe_key(), &text)
            .await?;
        self.accepted.notify_one();
        Ok(())
    }

    /// Every plugin subscribed to `privacy.erase` hears of it, whatever the guild's
    /// policy says about events: a plugin switched off in a guild may still keep data of
    /// someone who asked for it to go. The call runs as that person, in that guild.
    async fn tell_erasure(&self, ev: &PrivacyErase) {
        let set = self.plugins.snapshot();
        let subscribed = set
            .plugins
            .values()
            .filter(|p| p.manifest.events.iter().any(|e| e == PrivacyErase::TOPIC));
        for p in subscribed {
            for guild in ev.calls() {
                let scope = CallScope {
                    guild_id: guild.clone(),
                    user_id: Some(ev.user.clone()),
                    ..Default::default()
                };
                let call = Call::Event(GuestEvent {
                    kind: PrivacyErase::TOPIC.to_string(),
                    payload: ev.payload(guild.as_deref()).to_string(),
                    guild_id: guild,
                });
                if let Err(e) = p.call(&self.plugins.runtime, scope, call).await {
                    tracing::warn!(plugin = %p.name, error = %e, "a plugin's privacy.erase handler failed");
                }
            }
        }
    }

    /// The messages a guild's rules produce for a Discord event.
    async fn discord_messages(&self, ev: &DiscordEvent) -> Vec<NewMessage> {
        let cfg = self.guilds.guild(Some(&ev.guild_id));
        if Policy::of(&cfg.typed).rules_on().is_err() {
            return Vec::new();
        }
        self.rules
            .dispatch(
                &ev.guild_id,
                cfg.clone(),
                ev.hook(),
                Some(ev.payload.clone()),
            )
            .await
    }

    /// Guilds that hear about Kaltura events: those with a config file or rules of their
    /// own that the operator lists in `kaltura.partner_events` (`config/plugins.json`):
    /// partner-wide events name entries of the whole account, so a guild admin's file alone
    /// does not let a guild hear them.
    pub fn audience(&self) -> BTreeSet<String> {
        let grants = self.plugins.grants();
        let operator = grants.kaltura();
        let mut ids: BTreeSet<String> = self.guilds.guild_ids().into_iter().collect();
        ids.extend(self.rules.guild_ids());
        ids.retain(|g| operator.hears_partner_events(g));
        ids
    }

    /// Who hears a Kaltura event: the guild it belongs to, else [`Self::audience`].
    pub fn audience_of(&self, ev: &KalturaEvent) -> BTreeSet<String> {
        match &ev.guild {
            Some(g) => BTreeSet::from([g.clone()]),
            None => self.audience(),
        }
    }

    /// Every message every guild wants for this event. Guilds' rules run side by side, each
    /// within its own timeout, so a slow guild delays no other; messages keep guild order.
    pub async fn messages_for(&self, ev: &KalturaEvent) -> Vec<NewMessage> {
        let per_guild = self.audience_of(ev).into_iter().map(|guild_id| async move {
            let cfg = self.guilds.guild(Some(&guild_id));
            let mut out = Vec::new();
            let policy = Policy::of(&cfg.typed);
            if policy.kaltura_on().is_err() {
                return out;
            }
            out.extend(self.notifications(&guild_id, &cfg, ev));
            out.extend(self.personal(&guild_id, &cfg, ev).await);
            if policy.rules_on().is_ok() {
                let arg = self.vars(ev);
                out.extend(
                    self.rules
                        .dispatch(&guild_id, cfg.clone(), "on_kaltura_event", Some(arg))
                        .await,
                );
            }
            out
        });
        futures::stream::iter(per_guild)
            .buffered(crate::scripts::rules::MAX_CONCURRENT_RUNS)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// The template's variables: the event's fields plus `entry_url`.
    pub fn vars(&self, ev: &KalturaEvent) -> Value {
        ev.vars(self.kaltura.as_ref())
    }

    /// The guild's default notification and its matching routes (one message per channel).
    fn notifications(
        &self,
        guild_id: &str,
        cfg: &GuildEntry,
        ev: &KalturaEvent,
    ) -> Vec<NewMessage> {
        let n = &cfg.typed.notifications;
        if !n.enabled {
            return Vec::new();
        }
        let mut channels: Vec<&str> = Vec::new();
        if n.type_enabled(ev.kind)
            && let Some(c) = n.channel(ev.kind)
        {
            channels.push(c);
        }
        for route in &cfg.typed.kaltura.routes {
            if route.matches(ev.kind, &ev.categories, &ev.tags)
                && !channels.contains(&route.channel.as_str())
            {
                channels.push(&route.channel);
            }
        }
        if channels.is_empty() {
            return Vec::new();
        }
        let body = self.notification_body(n.template(ev.kind), ev);
        channels
            .into_iter()
            .map(|c| NewMessage {
                guild_id: guild_id.to_string(),
                channel: c.to_string(),
                body: body.clone(),
                source: format!("notification:{}", ev.kind.key()),
            })
            .collect()
    }

    /// Direct messages to the guild's members who subscribed to what the event is about
    /// (when the guild has personal notifications on and the event type is on).
    async fn personal(
        &self,
        guild_id: &str,
        cfg: &GuildEntry,
        ev: &KalturaEvent,
    ) -> Vec<NewMessage> {
        let n = &cfg.typed.notifications;
        if !n.personal.enabled || !n.type_enabled(ev.kind) {
            return Vec::new();
        }
        let offer = crate::notify::offer_of(ev);
        let listeners = match self
            .preferences
            .listeners(guild_id, &offer, crate::store::now_ms())
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(guild = %guild_id, error = %e, "subscriptions could not be read: no direct messages for this event");
                return Vec::new();
            }
        };
        if listeners.is_empty() {
            return Vec::new();
        }
        let body = crate::notify::dm_body(n.template(ev.kind), &self.vars(ev));
        crate::notify::messages(guild_id, &listeners, &body, ev)
    }

    fn notification_body(&self, template: &str, ev: &KalturaEvent) -> Value {
        let vars = self.vars(ev);
        let mut body = json!({"content": truncate(&render(template, &vars), 2000)});
        let thumb = vars["thumbnail_url"].as_str().unwrap_or_default();
        if !thumb.is_empty()
            && matches!(
                ev.kind,
                KalturaEventKind::EntryReady | KalturaEventKind::RecordingReady
            )
        {
            let mut embed = json!({
                "title": truncate(ev.entry_name.as_deref().unwrap_or("Untitled"), 256),
                "thumbnail": {"url": thumb},
            });
            let url = vars["entry_url"].as_str().unwrap_or_default();
            if !url.is_empty() {
                embed["url"] = json!(url);
            }
            body["embeds"] = json!([embed]);
        }
        body
    }

    /// Plugins whose manifest subscribes to the topic, in each of `guilds` that lets
    /// plugins receive events. Failures end that call only (logged and counted).
    async fn notify_plugins(&self, topic: &str, guilds: &BTreeSet<String>, payload: &Value) {
        let registry = &self.plugins;
        let set = registry.snapshot();
        let subscribed: Vec<_> = set
            .plugins
            .values()
            .filter(|p| p.manifest.events.iter().any(|e| e == topic))
            .cloned()
            .collect();
        if subscribed.is_empty() {
            return;
        }
        let payload = payload.to_string();
        for guild_id in guilds {
            let cfg = self.guilds.guild(Some(guild_id));
            let policy = Policy::of(&cfg.typed);
            if policy.plugins_hear(topic).is_err() {
                continue;
            }
            for p in &subscribed {
                if policy.may_receive(&p.name).is_err() {
                    continue;
                }
                let scope = CallScope {
                    guild_id: Some(guild_id.clone()),
                    ..Default::default()
                };
                let call = Call::Event(GuestEvent {
                    kind: topic.to_string(),
                    guild_id: Some(guild_id.clone()),
                    payload: payload.clone(),
                });
                if let Err(e) = p.call(&registry.runtime, scope, call).await {
                    tracing::warn!(plugin = %p.name, guild = %guild_id, error = %e, "plugin event handler failed");
                }
            }
        }
    }
}

/// An inbox row, decoded.
enum Incoming {
    Kaltura(KalturaEvent),
    Discord(DiscordEvent),
    Privacy(PrivacyErase),
}
