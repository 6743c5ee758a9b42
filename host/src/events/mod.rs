//! The typed events that flow from Kaltura (webhooks) and Discord (gateway) to guild rules,
//! plugins and the default notifications.

pub mod process;
pub mod template;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// What happened in Kaltura. The snake_case names are the config keys
/// (`notifications.types.entry_ready`); [`KalturaEventKind::topic`] is what plugins subscribe to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum KalturaEventKind {
    /// An entry finished processing and can be played.
    EntryReady,
    /// A recording (of a live stream or a meeting) is ready to watch.
    RecordingReady,
    /// A new entry was created.
    EntryAdded,
    /// An entry's status changed (any status).
    EntryStatusChanged,
    /// A live stream went on air.
    LiveStarted,
    /// A live stream went off air.
    LiveEnded,
    /// A meeting (virtual classroom, room) started.
    MeetingStarted,
    /// A meeting ended.
    MeetingEnded,
    /// An entry was added to a category.
    CategoryEntryAdded,
}

impl KalturaEventKind {
    pub const ALL: [Self; 9] = [
        Self::EntryReady,
        Self::RecordingReady,
        Self::EntryAdded,
        Self::EntryStatusChanged,
        Self::LiveStarted,
        Self::LiveEnded,
        Self::MeetingStarted,
        Self::MeetingEnded,
        Self::CategoryEntryAdded,
    ];

    /// The config key, e.g. `entry_ready`.
    pub fn key(self) -> &'static str {
        match self {
            Self::EntryReady => "entry_ready",
            Self::RecordingReady => "recording_ready",
            Self::EntryAdded => "entry_added",
            Self::EntryStatusChanged => "entry_status_changed",
            Self::LiveStarted => "live_started",
            Self::LiveEnded => "live_ended",
            Self::MeetingStarted => "meeting_started",
            Self::MeetingEnded => "meeting_ended",
            Self::CategoryEntryAdded => "category_entry_added",
        }
    }

    pub fn parse(key: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.key() == key)
    }

    /// The event kind plugins subscribe to in their manifest, e.g. `kaltura.entry_ready`.
    pub fn topic(self) -> String {
        format!("kaltura.{}", self.key())
    }

    /// Posted by default (when a channel is configured) unless the guild turns it off.
    pub fn on_by_default(self) -> bool {
        matches!(
            self,
            Self::EntryReady | Self::RecordingReady | Self::LiveStarted | Self::MeetingStarted
        )
    }

    /// The message used when the guild has no template of its own.
    pub fn default_template(self) -> &'static str {
        match self {
            Self::EntryReady => "🎬 **{{entry_name}}** is ready to watch. {{entry_url}}",
            Self::RecordingReady => "📼 The recording **{{entry_name}}** is ready. {{entry_url}}",
            Self::EntryAdded => "➕ New entry **{{entry_name}}** was added.",
            Self::EntryStatusChanged => "**{{entry_name}}** is now {{status}}.",
            Self::LiveStarted => "🔴 **{{entry_name}}** is live now. {{entry_url}}",
            Self::LiveEnded => "⏹️ **{{entry_name}}** is no longer live.",
            Self::MeetingStarted => "📅 The meeting **{{entry_name}}** has started.",
            Self::MeetingEnded => "The meeting **{{entry_name}}** has ended.",
            Self::CategoryEntryAdded => "📂 **{{entry_name}}** was added to {{category_name}}.",
        }
    }
}

/// A Kaltura notification, decoded and classified. `fields` are the values templates and
/// rules see (`entry_id`, `entry_name`, `status`, `tags`, `categories`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KalturaEvent {
    pub kind: KalturaEventKind,
    /// The guild whose object this is (a meeting, room or webinar the host made for it):
    /// only that guild hears it. `None`: a partner-wide event.
    #[serde(default)]
    pub guild: Option<String>,
    /// Kaltura's `eventNotificationJobId`, else a hash of the body: the dedupe key.
    pub id: String,
    pub entry_id: Option<String>,
    pub entry_name: Option<String>,
    pub tags: Vec<String>,
    pub categories: Vec<String>,
    /// Every field as a flat map of strings (what templates and rules read).
    pub fields: serde_json::Map<String, Value>,
}

impl KalturaEvent {
    /// The event as rules and plugins see it: `{kind, id, entry_id, ..., fields...}`.
    pub fn to_json(&self) -> Value {
        let mut v = Value::Object(self.fields.clone());
        v["kind"] = json!(self.kind.key());
        v["topic"] = json!(self.kind.topic());
        v["id"] = json!(self.id);
        v["tags"] = json!(self.tags);
        v["categories"] = json!(self.categories);
        v
    }
}

impl KalturaEvent {
    /// What templates and rules see: [`KalturaEvent::to_json`] plus `entry_url`, the
    /// partner's player page for the entry (empty without a player configuration).
    pub fn vars(&self, kaltura: Option<&crate::kaltura::KalturaSettings>) -> Value {
        let mut v = self.to_json();
        let url = match (kaltura, &self.entry_id) {
            (Some(k), Some(id)) => k
                .player_uiconf_id
                .as_ref()
                .map(|ui| {
                    format!(
                        "{}/p/{}/embedPlaykitJs/uiconf_id/{ui}?iframeembed=true&entry_id={id}",
                        k.cdn_url.trim_end_matches('/'),
                        k.partner_id
                    )
                })
                .unwrap_or_default(),
            _ => String::new(),
        };
        v["entry_url"] = json!(url);
        v
    }
}

/// A Discord gateway event a rule can react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiscordEventKind {
    /// GUILD_MEMBER_ADD (`on_member_join`; needs the GUILD_MEMBERS intent).
    MemberJoin,
    /// GUILD_SCHEDULED_EVENT_CREATE / _UPDATE / _DELETE (`on_scheduled_event`).
    ScheduledEvent,
}

/// A Discord event, as rules see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscordEvent {
    pub kind: DiscordEventKind,
    pub guild_id: String,
    pub payload: Value,
}

impl DiscordEvent {
    pub fn hook(&self) -> &'static str {
        match self.kind {
            DiscordEventKind::MemberJoin => "on_member_join",
            DiscordEventKind::ScheduledEvent => "on_scheduled_event",
        }
    }

    /// What plugins subscribe to: `discord.member_join`, `discord.scheduled_event`.
    pub fn topic(&self) -> &'static str {
        match self.kind {
            DiscordEventKind::MemberJoin => "discord.member_join",
            DiscordEventKind::ScheduledEvent => "discord.scheduled_event",
        }
    }

    /// The same gateway event delivered twice (a resumed session) has the same key.
    pub fn dedupe_key(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.payload.to_string().as_bytes());
        format!(
            "discord:{}:{}:{}",
            self.hook(),
            self.guild_id,
            hex::encode(&digest[..12])
        )
    }

    /// GUILD_MEMBER_ADD → `{id, username, display_name, avatar, joined_at, guild_id}`.
    pub fn member_join(raw: &Value) -> Option<Self> {
        let guild_id = raw["guild_id"].as_str()?.to_string();
        let user = &raw["user"];
        let id = user["id"].as_str()?;
        if user["bot"] == Value::Bool(true) {
            return None;
        }
        let username = user["username"].as_str().unwrap_or_default();
        Some(Self {
            kind: DiscordEventKind::MemberJoin,
            payload: json!({
                "id": id,
                "username": username,
                "display_name": raw["nick"].as_str().or(user["global_name"].as_str()).unwrap_or(username),
                "avatar": user["avatar"],
                "joined_at": raw["joined_at"],
                "guild_id": guild_id,
            }),
            guild_id,
        })
    }

    /// GUILD_SCHEDULED_EVENT_* → `{action, id, name, description, start_time, end_time,
    /// status, channel_id, location, url, guild_id}`.
    pub fn scheduled_event(action: &str, raw: &Value) -> Option<Self> {
        let guild_id = raw["guild_id"].as_str()?.to_string();
        let id = raw["id"].as_str()?;
        let status = match raw["status"].as_u64() {
            Some(1) => "scheduled",
            Some(2) => "active",
            Some(3) => "completed",
            Some(4) => "canceled",
            _ => "unknown",
        };
        Some(Self {
            kind: DiscordEventKind::ScheduledEvent,
            payload: json!({
                "action": action,
                "id": id,
                "name": raw["name"],
                "description": raw["description"],
                "start_time": raw["scheduled_start_time"],
                "end_time": raw["scheduled_end_time"],
                "status": status,
                "channel_id": raw["channel_id"],
                "location": raw["entity_metadata"]["location"],
                "url": format!("https://discord.com/events/{guild_id}/{id}"),
                "guild_id": guild_id,
            }),
            guild_id,
        })
    }
}

/// A person's data was erased (`privacy.erase`): plugins that keep data of their own drop
/// it. `guild` is the server it was erased in; `None` is everywhere.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacyErase {
    pub user: String,
    pub guild: Option<String>,
    /// For an erasure everywhere: the servers where the person had data, so plugins are
    /// told in each (their server scopes may hold more about the person).
    #[serde(default)]
    pub guilds: Vec<String>,
    /// Tells two erasures of the same person apart (the inbox deduplicates by it).
    pub id: String,
}

impl PrivacyErase {
    pub const TOPIC: &str = "privacy.erase";

    pub fn dedupe_key(&self) -> String {
        format!("privacy:erase:{}", self.id)
    }

    /// Where plugins are told: the erasure's server, or each server the person had data
    /// in and then outside servers.
    pub fn calls(&self) -> Vec<Option<String>> {
        match &self.guild {
            Some(g) => vec![Some(g.clone())],
            None => self
                .guilds
                .iter()
                .cloned()
                .map(Some)
                .chain([None])
                .collect(),
        }
    }

    /// What a plugin's `handle-event` reads in a call for `guild`.
    pub fn payload(&self, guild: Option<&str>) -> Value {
        json!({"user": self.user, "guild": guild})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discord_events_from_gateway_payloads() {
        let m = DiscordEvent::member_join(&json!({"guild_id": "1", "joined_at": "t",
            "user": {"id": "5", "username": "ann", "global_name": "Ann"}}))
        .unwrap();
        assert_eq!(m.payload["display_name"], "Ann");
        assert_eq!(m.hook(), "on_member_join");
        assert!(
            DiscordEvent::member_join(&json!({"guild_id": "1", "user": {"id": "5", "bot": true}}))
                .is_none()
        );
        let e = DiscordEvent::scheduled_event(
            "create",
            &json!({"guild_id": "1", "id": "9", "name": "AMA", "status": 1,
            "entity_metadata": {"location": "Stage"}}),
        )
        .unwrap();
        assert_eq!(e.payload["status"], "scheduled");
        assert_eq!(e.payload["url"], "https://discord.com/events/1/9");
        assert_eq!(e.dedupe_key(), e.clone().dedupe_key());
    }

    #[test]
    fn keys_round_trip_and_match_serde() {
        for k in KalturaEventKind::ALL {
            assert_eq!(KalturaEventKind::parse(k.key()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.key()));
        }
    }
}
