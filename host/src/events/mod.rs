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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_match_serde() {
        for k in KalturaEventKind::ALL {
            assert_eq!(KalturaEventKind::parse(k.key()), Some(k));
            assert_eq!(serde_json::to_value(k).unwrap(), json!(k.key()));
        }
    }
}
