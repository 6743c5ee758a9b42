//! The guild configuration as Rust types. `config/schema.json` is generated from them
//! (`kdhost config schema`), and every file is validated against it before it is used.
//!
//! Every field has a default, so a guild file only holds what it changes; unknown keys are
//! errors (a typo must not silently do nothing).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::events::KalturaEventKind;
use crate::kaltura::meetings::{BackendName, MeetingKind};

/// A Discord channel: its id (digits) or its name (`#recordings` or `recordings`).
pub type ChannelRef = String;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(title = "kaltura-discord guild configuration")]
pub struct GuildConfig {
    /// For editors: `"$schema": "../schema.json"` gives completion and checks.
    #[serde(rename = "$schema", skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    pub notifications: Notifications,
    /// Per slash command (name without `/`).
    pub commands: BTreeMap<String, CommandPolicy>,
    pub roles: Roles,
    /// Per plugin (by its name).
    pub plugins: BTreeMap<String, PluginPolicy>,
    pub kaltura: KalturaSection,
    pub features: Features,
    pub rules: RulesSection,
}

/// The guild's rules (Rhai scripts).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RulesSection {
    /// Rules that do not run in this guild, by name (`global/welcome.rhai`).
    pub disabled: Vec<String>,
    /// Free-form settings rules read with `config("rules.settings.<name>")`.
    pub settings: Value,
}

/// Kaltura → Discord notifications posted by the host (guild rules can post more).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Notifications {
    /// Master switch for the default notifications of this guild.
    pub enabled: bool,
    /// Which event types post a message (defaults: entry_ready, recording_ready, live_started,
    /// meeting_started on; the rest off).
    pub types: PerEvent<bool>,
    /// Message text per event type; `{{entry_name}}`, `{{entry_id}}`, `{{entry_url}}`,
    /// `{{status}}`, `{{category_name}}`, `{{tags}}`, `{{thumbnail_url}}` and every field
    /// of the notification are filled in.
    pub templates: PerEvent<String>,
    /// The channel (id or name) for event types without a channel of their own.
    pub channel: Option<ChannelRef>,
    /// The channel per event type.
    pub channels: PerEvent<ChannelRef>,
    pub mentions: Mentions,
    /// Direct messages to the people who ask for them (`/kaltura-notify`).
    pub personal: PersonalNotifications,
}

/// Personal notifications: a member subscribes to a category, a tag or live events and gets
/// matching Kaltura events by direct message (`docs/configuration.md`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PersonalNotifications {
    /// Members may subscribe in this server (off unless turned on).
    pub enabled: bool,
    /// The most subscriptions one member may have here.
    #[schemars(range(min = 1, max = 50))]
    pub max_subscriptions: u32,
}

impl Default for PersonalNotifications {
    fn default() -> Self {
        Self {
            enabled: false,
            max_subscriptions: 10,
        }
    }
}

impl Default for Notifications {
    fn default() -> Self {
        Self {
            enabled: true,
            types: PerEvent::default(),
            templates: PerEvent::default(),
            channel: None,
            channels: PerEvent::default(),
            mentions: Mentions::default(),
            personal: PersonalNotifications::default(),
        }
    }
}

impl Notifications {
    pub fn type_enabled(&self, kind: KalturaEventKind) -> bool {
        self.types
            .get(kind)
            .copied()
            .unwrap_or(kind.on_by_default())
    }

    pub fn template(&self, kind: KalturaEventKind) -> &str {
        self.templates
            .get(kind)
            .map_or(kind.default_template(), String::as_str)
    }

    pub fn channel(&self, kind: KalturaEventKind) -> Option<&ChannelRef> {
        self.channels.get(kind).or(self.channel.as_ref())
    }
}

/// One optional value per Kaltura event type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[schemars(bound = "T: JsonSchema")]
pub struct PerEvent<T> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_ready: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recording_ready: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_added: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_status_changed: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_started: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub live_ended: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_started: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_ended: Option<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category_entry_added: Option<T>,
}

// Not derived: the derive would demand `T: Default`.
impl<T> Default for PerEvent<T> {
    fn default() -> Self {
        Self {
            entry_ready: None,
            recording_ready: None,
            entry_added: None,
            entry_status_changed: None,
            live_started: None,
            live_ended: None,
            meeting_started: None,
            meeting_ended: None,
            category_entry_added: None,
        }
    }
}

impl<T> PerEvent<T> {
    pub fn get(&self, kind: KalturaEventKind) -> Option<&T> {
        use KalturaEventKind as K;
        match kind {
            K::EntryReady => &self.entry_ready,
            K::RecordingReady => &self.recording_ready,
            K::EntryAdded => &self.entry_added,
            K::EntryStatusChanged => &self.entry_status_changed,
            K::LiveStarted => &self.live_started,
            K::LiveEnded => &self.live_ended,
            K::MeetingStarted => &self.meeting_started,
            K::MeetingEnded => &self.meeting_ended,
            K::CategoryEntryAdded => &self.category_entry_added,
        }
        .as_ref()
    }
}

/// Who a notification, rule message or plugin message may ping. Everything is off by
/// default: text that says `@everyone` stays text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Mentions {
    /// `@everyone` and `@here` ping.
    pub everyone: bool,
    /// `<@user>` mentions ping.
    pub users: bool,
    /// Role ids whose `<@&role>` mentions ping.
    pub roles: Vec<String>,
}

impl Mentions {
    /// Discord's `allowed_mentions` for this policy.
    pub fn allowed_mentions(&self) -> Value {
        let mut parse = Vec::new();
        if self.everyone {
            parse.push("everyone");
        }
        if self.users {
            parse.push("users");
        }
        serde_json::json!({"parse": parse, "roles": self.roles})
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CommandPolicy {
    /// `false` turns the command off in this guild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Role ids allowed to use it (empty: everyone the command's permissions allow).
    pub allowed_roles: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PluginPolicy {
    /// `false` turns the plugin off in this guild.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    /// Role ids allowed to use its commands and buttons (empty: everyone).
    pub allowed_roles: Vec<String>,
    /// Channels (ids or names) where its commands work and where it may post (empty: all).
    pub channels: Vec<ChannelRef>,
    /// The plugin's own settings (read with its `config` capability).
    pub settings: Value,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Roles {
    /// Discord roles (ids or case-insensitive names) per Kaltura role; everyone else is a
    /// viewer.
    pub mapping: RoleMapping,
    /// Roles (ids or names) that may change this guild's configuration and rules, besides
    /// members with Administrator or Manage Server.
    pub config_admins: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoleMapping {
    pub admin: Vec<String>,
    pub moderator: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct KalturaSection {
    /// `false` turns every Kaltura feature off in this guild.
    pub enabled: bool,
    pub session: SessionSection,
    /// Category and tag routing: an event whose entry matches goes (also) to that channel.
    pub routes: Vec<Route>,
    /// Which Kaltura product hosts each kind of meeting (`/kaltura-start type:`), among the
    /// backends the operator allows (`kaltura.meeting_backends` in `config/plugins.json`).
    pub meetings: MeetingBackends,
}

/// The backend per kind of meeting (default: scheduled events for all three).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MeetingBackends {
    pub meeting: BackendName,
    pub webinar: BackendName,
    pub classroom: BackendName,
}

impl Default for MeetingBackends {
    fn default() -> Self {
        Self {
            meeting: BackendName::ScheduledEvents,
            webinar: BackendName::ScheduledEvents,
            classroom: BackendName::ScheduledEvents,
        }
    }
}

impl MeetingBackends {
    pub fn for_kind(&self, kind: MeetingKind) -> BackendName {
        match kind {
            MeetingKind::Meeting => self.meeting,
            MeetingKind::Webinar => self.webinar,
            MeetingKind::Classroom => self.classroom,
        }
    }
}

impl Default for KalturaSection {
    fn default() -> Self {
        Self {
            enabled: true,
            session: SessionSection::default(),
            routes: Vec::new(),
            meetings: MeetingBackends::default(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionSection {
    /// Extra KS privileges (comma lists) for every session, for video sessions and for
    /// meeting sessions.
    pub privileges: Privileges,
    /// Lifetime in seconds of the sessions people get (60 to 86400; default 3600).
    pub expiry: Expiry,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Privileges {
    pub default: String,
    pub video: String,
    pub meeting: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Expiry {
    #[schemars(range(min = 60, max = 86400))]
    pub video: u32,
    #[schemars(range(min = 60, max = 86400))]
    pub meeting: u32,
}

impl Default for Expiry {
    fn default() -> Self {
        Self {
            video: 3600,
            meeting: 3600,
        }
    }
}

/// Entries in any of `categories` (ids or full names) or carrying any of `tags` go to
/// `channel`; an empty list does not filter. `types` limits the event types (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Route {
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub types: Vec<KalturaEventKind>,
    pub channel: ChannelRef,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Features {
    /// Watch Together buttons and the Activity.
    pub watch_together: bool,
    /// The guild's Rhai rules run.
    pub rules: bool,
    /// Plugins subscribed to Kaltura events receive this guild's events.
    pub plugin_events: bool,
}

impl Default for Features {
    fn default() -> Self {
        Self {
            watch_together: true,
            rules: true,
            plugin_events: true,
        }
    }
}

impl Route {
    /// Whether an event about an entry with these categories and tags takes this route.
    pub fn matches(&self, kind: KalturaEventKind, categories: &[String], tags: &[String]) -> bool {
        let any = |want: &[String], have: &[String]| {
            want.is_empty()
                || want
                    .iter()
                    .any(|w| have.iter().any(|h| h.eq_ignore_ascii_case(w)))
        };
        (self.types.is_empty() || self.types.contains(&kind))
            && any(&self.categories, categories)
            && any(&self.tags, tags)
    }
}

/// The JSON Schema of a guild file, as published in `config/schema.json`.
pub fn json_schema() -> Value {
    let schema = schemars::schema_for!(GuildConfig);
    serde_json::to_value(schema).expect("a schema serializes")
}

/// `config/schema.json` as written by `kdhost config schema` (pretty, newline at the end).
pub fn json_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&json_schema()).expect("a schema serializes");
    s.push('\n');
    s
}

static VALIDATOR: LazyLock<jsonschema::Validator> = LazyLock::new(|| {
    jsonschema::validator_for(&json_schema()).expect("the generated schema is valid")
});

/// One schema violation: where (a JSON path such as `$.notifications.enabled`) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub path: String,
    pub reason: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Checks one file's content (default or guild override) against the schema.
pub fn validate(value: &Value) -> Result<(), Vec<Violation>> {
    let violations: Vec<Violation> = VALIDATOR
        .iter_errors(value)
        .map(|e| {
            let mut path = json_path(e.instance_path().as_str());
            // Name the unknown key itself, not the object that holds it.
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                e.kind()
                && let [one] = unexpected.as_slice()
            {
                path = format!("{path}.{one}");
                return Violation {
                    path,
                    reason: format!(
                        "unknown key `{one}`{}",
                        suggestion(e.instance_path().as_str(), one)
                    ),
                };
            }
            Violation {
                path,
                reason: e.to_string(),
            }
        })
        .collect();
    if violations.is_empty() {
        Ok(())
    } else {
        Err(violations)
    }
}

/// "(did you mean `enabled`?)" for a key one or two edits away from a known one.
fn suggestion(pointer: &str, key: &str) -> String {
    let known = known_keys(pointer);
    known
        .iter()
        .filter(|k| strsim_close(k, key))
        .map(|k| format!(" (did you mean `{k}`?)"))
        .next()
        .unwrap_or_else(|| {
            if known.is_empty() {
                String::new()
            } else {
                format!(" (allowed: {})", known.join(", "))
            }
        })
}

/// The property names the schema allows at a JSON pointer (map entries use `additionalProperties`).
fn known_keys(pointer: &str) -> Vec<String> {
    let schema = json_schema();
    let defs = schema["$defs"].clone();
    let resolve = |mut node: Value| {
        while let Some(r) = node["$ref"].as_str() {
            let name = r.trim_start_matches("#/$defs/");
            node = defs[name].clone();
        }
        node
    };
    let mut node = resolve(schema.clone());
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        let next = if node["properties"][seg].is_object() {
            node["properties"][seg].clone()
        } else {
            node["additionalProperties"].clone()
        };
        node = resolve(next);
    }
    node["properties"]
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Edit distance ≤ 2 (typos), for short names.
fn strsim_close(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()] <= 2
}

/// `/notifications/types/0` → `$.notifications.types[0]`.
pub fn json_path(pointer: &str) -> String {
    let mut out = String::from("$");
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg.chars().all(|c| c.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else if seg
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            out.push('.');
            out.push_str(&seg);
        } else {
            out.push_str(&format!("[{seg:?}]"));
        }
    }
    out
}

/// The (resolved) schema node at a dotted path (`notifications.enabled`).
fn node_at(path: &str) -> Option<Value> {
    let schema = json_schema();
    let defs = schema["$defs"].clone();
    let resolve = |mut node: Value| {
        while let Some(r) = node["$ref"].as_str() {
            node = defs[r.trim_start_matches("#/$defs/")].clone();
        }
        // `Option<T>` is `anyOf [T, null]` or `type: [T, null]`.
        if let Some(any) = node["anyOf"].as_array()
            && let Some(real) = any.iter().find(|s| s["type"] != "null")
        {
            let mut real = real.clone();
            while let Some(r) = real["$ref"].as_str() {
                real = defs[r.trim_start_matches("#/$defs/")].clone();
            }
            if node["description"].is_string() && !real["description"].is_string() {
                real["description"] = node["description"].clone();
            }
            return real;
        }
        node
    };
    let mut node = resolve(schema.clone());
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        let next = if node["properties"][seg].is_object() {
            node["properties"][seg].clone()
        } else if node["additionalProperties"].is_object() {
            node["additionalProperties"].clone()
        } else {
            return None;
        };
        node = resolve(next);
    }
    Some(node)
}

/// The JSON types the schema allows at a dotted path (`None`: no such setting; empty: any).
pub fn expected_types(path: &str) -> Option<Vec<String>> {
    let node = node_at(path)?;
    Some(match &node["type"] {
        Value::String(t) => vec![t.clone()],
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ if node["enum"].is_array() => vec!["string".into()],
        _ => Vec::new(),
    })
}

/// What the schema expects at a dotted path, in words, for error messages.
pub fn expectation(path: &str) -> Option<String> {
    let node = node_at(path)?;
    let ty = match &node["type"] {
        Value::String(t) => t.clone(),
        Value::Array(ts) => ts
            .iter()
            .filter_map(Value::as_str)
            .filter(|t| *t != "null")
            .collect::<Vec<_>>()
            .join(" or "),
        _ if node["enum"].is_array() => "one of the listed values".into(),
        _ => "any JSON value".into(),
    };
    let mut out = format!("`{path}` expects {ty}");
    if let Some(values) = node["enum"].as_array() {
        let v: Vec<String> = values.iter().map(Value::to_string).collect();
        out.push_str(&format!(" ({})", v.join(", ")));
    }
    if let (Some(lo), Some(hi)) = (node["minimum"].as_f64(), node["maximum"].as_f64()) {
        out.push_str(&format!(" from {lo} to {hi}"));
    }
    if let Some(d) = node["description"].as_str() {
        out.push_str(&format!(": {}", d.replace('\n', " ")));
    }
    Some(out)
}

/// The typed view of an already validated, merged config.
pub fn typed(merged: &Value) -> Result<GuildConfig, String> {
    serde_json::from_value(merged.clone()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_published_schema_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/schema.json");
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == json_schema_text(),
            "config/schema.json is stale: run `cargo run -p kdhost -- config schema > config/schema.json`"
        );
    }

    #[test]
    fn the_shipped_default_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../config/default.json");
        let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        validate(&v).unwrap();
        typed(&v).unwrap();
    }

    #[test]
    fn violations_name_the_json_path() {
        let err = validate(&json!({"notifications": {"enabled": "yes"}})).unwrap_err();
        assert_eq!(err[0].path, "$.notifications.enabled");
        assert!(err[0].reason.contains("boolean"), "{}", err[0].reason);

        let err = validate(&json!({"notifications": {"enabeld": true}})).unwrap_err();
        assert_eq!(err[0].path, "$.notifications.enabeld");
        assert!(
            err[0].reason.contains("did you mean `enabled`"),
            "{}",
            err[0].reason
        );

        let err = validate(&json!({"kaltura": {"routes": [{"types": ["nope"]}]}})).unwrap_err();
        assert_eq!(err[0].path, "$.kaltura.routes[0].types[0]");

        let err = validate(&json!({"kaltura": {"session": {"expiry": {"video": 5}}}})).unwrap_err();
        assert_eq!(err[0].path, "$.kaltura.session.expiry.video");
    }

    #[test]
    fn plugin_settings_are_free_form() {
        validate(&json!({"plugins": {"x": {"settings": {"any": [1, {"thing": null}]}}}})).unwrap();
        let err = validate(&json!({"plugins": {"x": {"enabeld": false}}})).unwrap_err();
        assert_eq!(err[0].path, "$.plugins.x.enabeld");
    }

    #[test]
    fn expectations_quote_the_schema() {
        let e = expectation("notifications.enabled").unwrap();
        assert!(e.contains("boolean") && e.contains("Master switch"), "{e}");
        let e = expectation("kaltura.session.expiry.video").unwrap();
        assert!(e.contains("integer") && e.contains("60"), "{e}");
        let e = expectation("notifications.channels.live_started").unwrap();
        assert!(e.contains("string"), "{e}");
        assert!(expectation("nope.nothing").is_none());
    }

    #[test]
    fn routes_filter_by_type_category_and_tag() {
        let r = Route {
            tags: vec!["Lecture".into()],
            types: vec![KalturaEventKind::EntryReady],
            channel: "#lectures".into(),
            ..Default::default()
        };
        let k = KalturaEventKind::EntryReady;
        assert!(r.matches(k, &[], &["lecture".into()]));
        assert!(!r.matches(k, &[], &["other".into()]));
        assert!(!r.matches(KalturaEventKind::LiveStarted, &[], &["lecture".into()]));
    }

    #[test]
    fn mentions_are_silent_by_default() {
        assert_eq!(
            Mentions::default().allowed_mentions(),
            json!({"parse": [], "roles": []})
        );
    }
}
