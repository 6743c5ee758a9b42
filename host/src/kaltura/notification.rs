//! Kaltura HTTP event notifications: the three body formats, and the typed event each one
//! means.
//!
//! Bodies: JSON (`KalturaHttpNotification`, the template's urlEncode off), `data=` +
//! urlencoded JSON (the default), or form "data fields" (`entry_id=…&entry_name=…`).
//!
//! Classification, first match wins:
//! 1. the template's system name (or name) is `kd_` + one of our kinds, in any case and
//!    with any separators (`KD_LIVE_STARTED`, `kd-recording-ready`): that kind, so an
//!    operator can say exactly what a template means (Kaltura's own generic names, such as
//!    "Entry Status Changed", are classified by their object instead);
//! 2. a `KalturaCategoryEntry` object: category entry added;
//! 3. a schedule event (`…ScheduleEvent`): active → meeting started, cancelled or deleted →
//!    meeting ended; a room entry (`KalturaRoomEntry`) with a `recordedEntryId` → recording
//!    ready for that entry (other room changes are ignored);
//! 4. a live entry (`liveStatus` present): 1 or 2 (playable, broadcasting) → live started,
//!    0 → live ended;
//! 5. an entry that was added or created (eventType 2, 5) → entry added;
//! 6. an entry whose status is 2 (READY) → recording ready when it is a recording of a live
//!    stream (`sourceType` 36, or a `rootEntryId` naming another entry),
//!    else entry ready; any other status → status changed.
//!
//! Anything else (users, assets, …) is acknowledged and ignored.
//!
//! A meeting object this host made for a guild (a schedule event or room entry tagged
//! `kdhost,kd-guild-<id>`) is that guild's event only. Media entries are partner-wide
//! whatever their tags say: anyone who may tag an entry must not be able to aim it at a
//! guild the operator did not let hear partner events.

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::events::{KalturaEvent, KalturaEventKind};
use crate::kaltura::meetings::HostTags;

/// Why a body could not be read.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BodyError {
    #[error("the body is empty")]
    Empty,
    #[error("the body is not valid JSON: {0}")]
    Json(String),
    #[error("the `data` field is not valid JSON: {0}")]
    DataJson(String),
    #[error("the body is XML; set the notification template's format to JSON")]
    Xml,
    #[error("the body is neither JSON nor form data")]
    Unknown,
}

/// The notification as JSON: the object for JSON and `data=` bodies, a flat object of
/// fields for "data fields" bodies.
pub fn decode(content_type: &str, body: &[u8]) -> Result<Value, BodyError> {
    let text = std::str::from_utf8(body).map_err(|_| BodyError::Unknown)?;
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(BodyError::Empty);
    }
    if content_type.contains("json") || trimmed.starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| BodyError::Json(e.to_string()))?;
        return if v.is_object() {
            Ok(v)
        } else {
            Err(BodyError::Json("expected a JSON object".into()))
        };
    }
    if content_type.contains("xml") || trimmed.starts_with('<') {
        return Err(BodyError::Xml);
    }
    if !text.contains('=') {
        return Err(BodyError::Unknown);
    }
    let fields: Vec<(String, String)> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Some((_, data)) = fields.iter().find(|(k, _)| k == "data") {
        let v: Value =
            serde_json::from_str(data).map_err(|e| BodyError::DataJson(e.to_string()))?;
        return if v.is_object() {
            Ok(v)
        } else {
            Err(BodyError::DataJson("expected a JSON object".into()))
        };
    }
    let mut map = Map::new();
    for (k, v) in fields {
        map.insert(k, Value::String(v));
    }
    Ok(Value::Object(map))
}

/// A scalar as a string (Kaltura sends numbers and enums either way).
fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(x) if !x.is_empty() => Some(x.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn split_list(v: Option<String>) -> Vec<String> {
    v.map(|t| {
        t.split(',')
            .map(|x| x.trim().to_string())
            .filter(|x| !x.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

/// Kaltura's entry status names (KalturaEntryStatus).
fn status_name(code: &str) -> &str {
    match code {
        "-2" => "error importing",
        "-1" => "error converting",
        "0" => "importing",
        "1" => "converting",
        "2" => "ready",
        "3" => "deleted",
        "4" => "pending",
        "5" => "moderating",
        "6" => "blocked",
        "7" => "no content",
        other => other,
    }
}

/// The Kaltura enum values classification reads, by their Kaltura names.
mod kaltura_enum {
    /// KalturaEntryStatus.READY
    pub const ENTRY_READY: &str = "2";
    /// KalturaScheduleEventStatus.CANCELLED and DELETED
    pub const SCHEDULE_CANCELLED: &str = "1";
    pub const SCHEDULE_DELETED: &str = "3";
    /// KalturaEntryServerNodeStatus of a live entry: STOPPED, PLAYABLE, BROADCASTING
    pub const LIVE_STOPPED: &str = "0";
    pub const LIVE_PLAYABLE: &str = "1";
    pub const LIVE_BROADCASTING: &str = "2";
    /// KalturaEventNotificationEventType.OBJECT_ADDED and OBJECT_CREATED
    pub const EVENT_OBJECT_ADDED: &str = "2";
    pub const EVENT_OBJECT_CREATED: &str = "5";
    /// KalturaEventNotificationEventObjectType.ENTRY
    pub const EVENT_OBJECT_ENTRY: &str = "1";
    /// KalturaSourceType.RECORDED_LIVE
    pub const SOURCE_RECORDED_LIVE: &str = "36";
    pub const CATEGORY_ENTRY: &str = "KalturaCategoryEntry";
    pub const ROOM_ENTRY: &str = "KalturaRoomEntry";
}

use kaltura_enum as ke;

/// A decoded notification, read the same way whichever body format it came in: "data
/// fields" bodies are flat, JSON bodies carry the object under `object`.
struct Notice<'a> {
    n: &'a Value,
    obj: &'a Value,
    flat: bool,
    object_type: String,
    entry_id: Option<String>,
    /// The template's system name (or name), lower case with `_` for separators.
    template: String,
}

impl<'a> Notice<'a> {
    fn new(n: &'a Value) -> Self {
        let flat = !n["object"].is_object();
        let obj = if flat { n } else { &n["object"] };
        let object_type = s(&obj["objectType"]).unwrap_or_default();
        let entry_id = if object_type == ke::CATEGORY_ENTRY {
            s(&obj["entryId"])
        } else if object_type == ke::ROOM_ENTRY {
            // What a room notification is about is the recording attached to it.
            s(&obj["recordedEntryId"])
        } else if flat {
            s(&n["entry_id"])
        } else {
            s(&obj["id"])
        };
        let template = s(&n["templateSystemName"])
            .or_else(|| s(&n["templateName"]))
            .or_else(|| s(&n["template_system_name"]))
            .or_else(|| s(&n["notification"]))
            .unwrap_or_default()
            .to_ascii_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        Self {
            n,
            obj,
            flat,
            object_type,
            entry_id,
            template,
        }
    }

    /// A field of the object: `json_key` in JSON bodies, `flat_key` in data fields.
    fn field(&self, json_key: &str, flat_key: &str) -> Option<String> {
        if self.flat {
            s(&self.n[flat_key])
        } else {
            s(&self.obj[json_key])
        }
    }

    /// What the meetings backends create: schedule events and room entries.
    fn is_meeting_object(&self) -> bool {
        self.object_type.contains("ScheduleEvent") || self.object_type == ke::ROOM_ENTRY
    }

    fn is_category_entry(&self) -> bool {
        self.object_type == ke::CATEGORY_ENTRY
    }

    fn is_entry(&self) -> bool {
        self.flat && self.entry_id.is_some()
            || self.object_type.ends_with("Entry") && !self.is_category_entry()
            || s(&self.n["eventObjectType"]).as_deref() == Some(ke::EVENT_OBJECT_ENTRY)
    }
}

/// The typed event for a decoded notification, or `None` for kinds we do not handle.
/// `raw` is the body, hashed for the dedupe key when Kaltura sent no job id.
pub fn classify(n: &Value, raw: &[u8]) -> Option<KalturaEvent> {
    let notice = Notice::new(n);
    let kind = kind_of(&notice)?;
    let entry_name = if notice.is_category_entry() {
        None
    } else {
        notice.field("name", "entry_name")
    };
    let tags = split_list(notice.field("tags", "entry_tags"));
    let mut categories = split_list(notice.field("categories", "entry_categories"));
    if notice.is_category_entry()
        && let Some(c) = s(&notice.obj["categoryFullIds"]).or_else(|| s(&notice.obj["categoryId"]))
    {
        categories.push(c);
    }
    let guild = notice
        .is_meeting_object()
        .then(|| HostTags::of(&tags.join(",")))
        .flatten()
        .map(|t| t.guild_id);
    Some(KalturaEvent {
        kind,
        guild,
        id: dedupe_id(n, raw),
        entry_id: notice.entry_id.clone(),
        fields: fields(&notice, entry_name.clone(), &tags),
        entry_name,
        tags,
        categories,
    })
}

/// What the notification means (the rules in the module's comment, in order).
fn kind_of(notice: &Notice) -> Option<KalturaEventKind> {
    use KalturaEventKind as K;
    if let Some(k) = K::ALL
        .into_iter()
        .find(|k| notice.template.strip_prefix("kd_") == Some(k.key()))
    {
        return Some(k);
    }
    if notice.is_category_entry() {
        return Some(K::CategoryEntryAdded);
    }
    let status = notice.field("status", "entry_status");
    if notice.object_type.contains("ScheduleEvent") {
        return match status.as_deref() {
            Some(ke::SCHEDULE_CANCELLED | ke::SCHEDULE_DELETED) => Some(K::MeetingEnded),
            _ => Some(K::MeetingStarted),
        };
    }
    if notice.object_type == ke::ROOM_ENTRY {
        return notice.entry_id.is_some().then_some(K::RecordingReady);
    }
    if let Some(live) = notice.field("liveStatus", "live_status") {
        return match live.as_str() {
            ke::LIVE_BROADCASTING | ke::LIVE_PLAYABLE => Some(K::LiveStarted),
            ke::LIVE_STOPPED => Some(K::LiveEnded),
            _ => None,
        };
    }
    if !notice.is_entry() {
        return None;
    }
    let event_type = s(&notice.n["eventType"]).or_else(|| s(&notice.n["event_type"]));
    if matches!(
        event_type.as_deref(),
        Some(ke::EVENT_OBJECT_ADDED | ke::EVENT_OBJECT_CREATED)
    ) {
        return Some(K::EntryAdded);
    }
    // A recording's rootEntryId is the live entry it was recorded from.
    let recorded_from = notice
        .field("rootEntryId", "entry_root_entry_id")
        .filter(|r| Some(r) != notice.entry_id.as_ref());
    let recording = notice.field("sourceType", "entry_source_type").as_deref()
        == Some(ke::SOURCE_RECORDED_LIVE)
        || recorded_from.is_some();
    match status.as_deref() {
        Some(ke::ENTRY_READY) if recording => Some(K::RecordingReady),
        Some(ke::ENTRY_READY) => Some(K::EntryReady),
        Some(_) => Some(K::EntryStatusChanged),
        None => None,
    }
}

/// The inbox's dedupe key: Kaltura's job id, else the body's digest.
fn dedupe_id(n: &Value, raw: &[u8]) -> String {
    s(&n["eventNotificationJobId"])
        .or_else(|| s(&n["event_notification_job_id"]))
        .map(|j| format!("job:{j}"))
        .unwrap_or_else(|| format!("sha256:{}", hex::encode(Sha256::digest(raw))))
}

/// What templates and rules read: the known fields (empty when absent) and, for flat
/// bodies, every other scalar as sent.
fn fields(notice: &Notice, entry_name: Option<String>, tags: &[String]) -> Map<String, Value> {
    let mut fields = Map::new();
    let mut put = |k: &str, v: Option<String>| {
        fields.insert(k.to_string(), v.map(Value::String).unwrap_or(json!("")));
    };
    let f = |json_key: &str, flat_key: &str| notice.field(json_key, flat_key);
    put("entry_id", notice.entry_id.clone());
    put("entry_name", entry_name);
    let status = f("status", "entry_status");
    put(
        "status",
        status.as_deref().map(status_name).map(String::from),
    );
    put("description", f("description", "entry_description"));
    put("thumbnail_url", f("thumbnailUrl", "entry_thumbnail_url"));
    put("media_type", f("mediaType", "entry_media_type"));
    put("duration", f("duration", "entry_duration"));
    put("user_id", f("userId", "entry_user_id"));
    put(
        "category_id",
        s(&notice.obj["categoryId"]).or_else(|| s(&notice.n["category_id"])),
    );
    put("category_name", f("categoryName", "category_name"));
    put("tags_text", Some(tags.join(", ")));
    put("template", Some(notice.template.clone()));
    if notice.flat
        && let Some(o) = notice.n.as_object()
    {
        for (k, v) in o {
            if !fields.contains_key(k)
                && let Some(v) = s(v)
            {
                fields.insert(k.clone(), Value::String(v));
            }
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json_body(object: Value, event_type: u32, template: &str) -> Value {
        json!({"object": object, "eventObjectType": 1, "eventNotificationJobId": 77,
               "templateId": 1, "templateName": template, "templateSystemName": template,
               "eventType": event_type})
    }

    #[test]
    fn the_three_body_formats_decode() {
        let v = json!({"object": {"id": "0_a"}, "eventType": 3});
        assert_eq!(
            decode("application/json", v.to_string().as_bytes()).unwrap(),
            v
        );
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("data", &v.to_string())
            .finish();
        assert_eq!(
            decode("application/x-www-form-urlencoded", form.as_bytes()).unwrap(),
            v
        );
        let fields = decode("", b"entry_id=0_a&entry_name=My+talk%21&entry_status=2").unwrap();
        assert_eq!(fields["entry_name"], "My talk!");
        assert_eq!(decode("", b"").unwrap_err(), BodyError::Empty);
        assert!(matches!(
            decode("application/json", b"{nope"),
            Err(BodyError::Json(_))
        ));
        assert!(matches!(
            decode("", b"data=%7Bnope"),
            Err(BodyError::DataJson(_))
        ));
        assert_eq!(decode("text/xml", b"<xml/>").unwrap_err(), BodyError::Xml);
        assert_eq!(
            decode("text/plain", b"hello").unwrap_err(),
            BodyError::Unknown
        );
    }

    #[test]
    fn kinds_from_objects() {
        let k = |v: Value| classify(&v, b"x").map(|e| e.kind);
        let entry = |extra: Value| {
            let mut o = json!({"objectType": "KalturaMediaEntry", "id": "0_a", "name": "Talk"});
            for (key, val) in extra.as_object().unwrap() {
                o[key] = val.clone();
            }
            o
        };
        use KalturaEventKind as K;
        assert_eq!(
            k(json_body(entry(json!({"status": 2})), 3, "")),
            Some(K::EntryReady)
        );
        assert_eq!(
            k(json_body(
                entry(json!({"status": 2, "sourceType": "36"})),
                3,
                ""
            )),
            Some(K::RecordingReady)
        );
        assert_eq!(
            k(json_body(
                entry(json!({"status": 2, "rootEntryId": "1_live"})),
                3,
                ""
            )),
            Some(K::RecordingReady)
        );
        assert_eq!(
            k(json_body(entry(json!({"status": 4})), 3, "")),
            Some(K::EntryStatusChanged)
        );
        assert_eq!(
            k(json_body(entry(json!({"status": 0})), 2, "")),
            Some(K::EntryAdded)
        );
        let live = json!({"objectType": "KalturaLiveStreamEntry", "id": "1_l", "liveStatus": 1});
        assert_eq!(k(json_body(live.clone(), 3, "")), Some(K::LiveStarted));
        let mut off = live;
        off["liveStatus"] = json!(0);
        assert_eq!(k(json_body(off, 3, "")), Some(K::LiveEnded));
        let ce = json!({"objectType": "KalturaCategoryEntry", "entryId": "0_a", "categoryId": 9});
        let ev = classify(&json_body(ce, 2, ""), b"x").unwrap();
        assert_eq!(
            (ev.kind, ev.entry_id.as_deref()),
            (K::CategoryEntryAdded, Some("0_a"))
        );
        let meeting = json!({"objectType": "KalturaMeetingScheduleEvent", "id": 5, "status": 2});
        assert_eq!(k(json_body(meeting, 2, "")), Some(K::MeetingStarted));
        // A room tells about its recording; the guild that made it is the only audience.
        let room = json!({"objectType": "KalturaRoomEntry", "id": "1_r1", "name": "Standup",
            "status": 2, "tags": "kdhost,kd-guild-42,kd-kind-meeting"});
        assert_eq!(k(json_body(room.clone(), 3, "")), None);
        let mut recorded = room;
        recorded["recordedEntryId"] = json!("1_rec1");
        let ev = classify(&json_body(recorded, 3, ""), b"x").unwrap();
        assert_eq!(
            (ev.kind, ev.entry_id.as_deref(), ev.guild.as_deref()),
            (K::RecordingReady, Some("1_rec1"), Some("42"))
        );
        assert_eq!(ev.entry_name.as_deref(), Some("Standup"));
        // A media entry tagged like the host's objects is still partner-wide.
        let partner_wide = classify(
            &json_body(
                entry(json!({"status": 2, "tags": "kdhost,kd-guild-42"})),
                3,
                "",
            ),
            b"x",
        );
        assert_eq!(
            partner_wide.unwrap().guild,
            None,
            "only the host's meeting objects name a guild"
        );
        let meeting = json!({"objectType": "KalturaMeetingScheduleEvent", "id": 6, "status": 2,
            "tags": "kdhost,kd-guild-42,kd-kind-meeting"});
        let ev = classify(&json_body(meeting, 2, ""), b"x").unwrap();
        assert_eq!(ev.guild.as_deref(), Some("42"));
        // The template's system name decides when it names a kind.
        assert_eq!(
            k(json_body(
                entry(json!({"status": 2})),
                3,
                "KD-Recording-Ready"
            )),
            Some(K::RecordingReady)
        );
        // Kaltura's generic template names do not decide.
        assert_eq!(
            k(json_body(
                entry(json!({"status": 2})),
                3,
                "Entry Status Changed"
            )),
            Some(K::EntryReady)
        );
        // Users and other objects are not ours.
        assert_eq!(
            k(
                json!({"object": {"objectType": "KalturaUser", "id": "u"}, "eventObjectType": 8, "eventType": 3})
            ),
            None
        );
    }

    #[test]
    fn ids_fields_and_flat_bodies() {
        let v = json_body(
            json!({"objectType": "KalturaMediaEntry", "id": "0_a", "name": "Talk", "status": "2",
                   "tags": "lecture, physics", "categories": "Courses>Physics", "thumbnailUrl": "https://t/0_a"}),
            3,
            "",
        );
        let ev = classify(&v, b"x").unwrap();
        assert_eq!(ev.id, "job:77");
        assert_eq!(ev.tags, vec!["lecture", "physics"]);
        assert_eq!(ev.categories, vec!["Courses>Physics"]);
        assert_eq!(ev.fields["status"], "ready");
        assert_eq!(ev.fields["thumbnail_url"], "https://t/0_a");

        let flat = decode(
            "",
            b"entry_id=0_b&entry_name=Flat&entry_status=2&entry_tags=a,b&custom=1",
        )
        .unwrap();
        let ev = classify(&flat, b"entry_id=0_b").unwrap();
        assert_eq!(ev.kind, KalturaEventKind::EntryReady);
        assert!(ev.id.starts_with("sha256:"));
        assert_eq!(ev.entry_name.as_deref(), Some("Flat"));
        assert_eq!(ev.fields["custom"], "1");
    }
}
