//! Meetings behind one small trait, so the Kaltura product that hosts them is a
//! configuration choice: scheduled events with the virtual classroom
//! ([`ScheduledEvents`], the default), virtual events for webinars ([`VirtualEvents`]) and
//! rooms ([`Rooms`]). A guild picks one per kind in its `kaltura.meetings` settings, among
//! the backends the operator allows (`kaltura.meeting_backends` in `config/plugins.json`).
//!
//! Every object the host creates carries the tags `kdhost`, `kd-guild-<id>` and
//! `kd-kind-<kind>`: they say which guild a meeting (and its notifications) belongs to. A
//! meeting's id tells which backend holds it: digits for a scheduled event, `ve-<digits>`
//! for a virtual event, an entry id (`1_abc`) for a room.

mod rooms;
mod scheduled_events;
mod virtual_events;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use rooms::Rooms;
pub use scheduled_events::ScheduledEvents;
pub use virtual_events::VirtualEvents;

use super::admin::Admin;
use super::error::KalturaError;
use super::identity::KalturaRole;
use super::sessions::now;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MeetingKind {
    Meeting,
    Webinar,
    Classroom,
}

impl MeetingKind {
    pub const ALL: [Self; 3] = [Self::Meeting, Self::Webinar, Self::Classroom];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Meeting => "meeting",
            Self::Webinar => "webinar",
            Self::Classroom => "classroom",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "meeting" => Some(Self::Meeting),
            "webinar" => Some(Self::Webinar),
            "classroom" => Some(Self::Classroom),
            _ => None,
        }
    }
}

/// The Kaltura products that can host a meeting.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum BackendName {
    /// `schedule_scheduleevent` meetings, joined through the KAF virtual classroom.
    ScheduledEvents,
    /// `virtualevent_virtualevent` with a main-event schedule event (webinars).
    VirtualEvents,
    /// `room_room` room entries.
    Rooms,
}

impl BackendName {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ScheduledEvents => "scheduled_events",
            Self::VirtualEvents => "virtual_events",
            Self::Rooms => "rooms",
        }
    }

    /// The backend holding the meeting `id`, by the id's shape; `None` when no backend
    /// could have made it (such an id is "not found" and never sent to Kaltura).
    pub fn of_id(id: &str) -> Option<Self> {
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit());
        if digits(id) {
            return Some(Self::ScheduledEvents);
        }
        if id
            .strip_prefix(virtual_events::ID_PREFIX)
            .is_some_and(digits)
        {
            return Some(Self::VirtualEvents);
        }
        let entry = id.split_once('_').is_some_and(|(p, rest)| {
            digits(p)
                && (1..=20).contains(&rest.len())
                && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        entry.then_some(Self::Rooms)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Meeting {
    /// `1234` on scheduled events, `ve-12` on virtual events, `1_abc123` on rooms.
    pub id: String,
    pub kind: MeetingKind,
    pub title: String,
    pub description: String,
    /// The Discord user id of whoever started it.
    pub owner_id: String,
    pub guild_id: String,
    /// Unix seconds.
    pub starts_at: i64,
    pub ends_at: i64,
    /// Not ended or cancelled.
    pub active: bool,
    /// What a join session names (the schedule event or room entry behind the meeting).
    #[serde(skip)]
    pub(crate) session_object: String,
    /// Where people join, when Kaltura gave the meeting a page of its own (a virtual
    /// event's `eventUrl`).
    #[serde(skip)]
    pub(crate) page: Option<String>,
}

/// What a caller asks for; owner and guild come from the host, never from the request.
pub struct NewMeeting {
    pub kind: MeetingKind,
    pub title: String,
    pub description: String,
    pub owner_discord_id: String,
    pub owner_kaltura_id: String,
    pub guild_id: String,
    /// Seconds.
    pub duration: i64,
}

impl NewMeeting {
    /// The tags that mark the object as this host's, this guild's and this kind's.
    fn tags(&self) -> String {
        format!(
            "kdhost,kd-guild-{},kd-kind-{}",
            self.guild_id,
            self.kind.as_str()
        )
    }
}

#[async_trait]
pub trait MeetingBackend: Send + Sync {
    async fn create(&self, admin: &Admin<'_>, m: &NewMeeting) -> Result<Meeting, KalturaError>;
    /// Any meeting this host created (the caller checks the guild).
    async fn get(&self, admin: &Admin<'_>, id: &str) -> Result<Meeting, KalturaError>;
    async fn list_active(
        &self,
        admin: &Admin<'_>,
        guild_id: &str,
    ) -> Result<Vec<Meeting>, KalturaError>;
    async fn end(&self, admin: &Admin<'_>, m: &Meeting) -> Result<(), KalturaError>;
    /// Privileges of the USER session that lets a person in with `role`.
    fn join_privileges(&self, m: &Meeting, role: KalturaRole, display_name: &str) -> String;
    /// The link a person opens, carrying their USER session.
    fn join_url(&self, m: &Meeting, user_ks: &str) -> String;
}

/// The three backends, reached by name or by a meeting's id.
pub struct Meetings {
    scheduled_events: ScheduledEvents,
    virtual_events: VirtualEvents,
    rooms: Rooms,
}

impl Meetings {
    pub fn new(kaf_url: &str) -> Self {
        Self {
            scheduled_events: ScheduledEvents {
                kaf_url: kaf_url.to_string(),
            },
            virtual_events: VirtualEvents {
                kaf_url: kaf_url.to_string(),
            },
            rooms: Rooms {
                kaf_url: kaf_url.to_string(),
            },
        }
    }

    pub fn backend(&self, name: BackendName) -> &dyn MeetingBackend {
        match name {
            BackendName::ScheduledEvents => &self.scheduled_events,
            BackendName::VirtualEvents => &self.virtual_events,
            BackendName::Rooms => &self.rooms,
        }
    }

    /// The backend that holds `id`, or "not found" for an id no backend could have made.
    pub fn holding(&self, id: &str) -> Result<&dyn MeetingBackend, KalturaError> {
        BackendName::of_id(id)
            .map(|b| self.backend(b))
            .ok_or_else(|| no_such_meeting(id))
    }
}

/// What the host's tags say about an object: `None` when it is not this host's (no
/// `kdhost` or no guild).
pub(crate) struct HostTags {
    pub guild_id: String,
    pub kind: MeetingKind,
}

impl HostTags {
    pub fn of(tags: &str) -> Option<Self> {
        let tags: Vec<&str> = tags.split(',').map(str::trim).collect();
        if !tags.contains(&"kdhost") {
            return None;
        }
        let value = |prefix: &str| tags.iter().find_map(|t| t.strip_prefix(prefix));
        Some(Self {
            guild_id: value("kd-guild-")?.to_string(),
            kind: value("kd-kind-")
                .and_then(MeetingKind::parse)
                .unwrap_or(MeetingKind::Meeting),
        })
    }
}

/// What a person is told about a meeting id that names nothing (of theirs).
pub fn no_such_meeting(id: &str) -> KalturaError {
    KalturaError::NotFound(format!("There is no meeting `{id}`."))
}

/// Kaltura's "not found" as [`no_such_meeting`] (other errors as they are).
fn no_meeting(id: &str) -> impl FnOnce(KalturaError) -> KalturaError + '_ {
    move |e| {
        if e.is_not_found() {
            no_such_meeting(id)
        } else {
            e
        }
    }
}

/// The guild's meetings that are still on (list filters match substrings: keep this
/// guild's exactly).
fn active_of(guild_id: &str, found: impl Iterator<Item = Meeting>) -> Vec<Meeting> {
    found
        .filter(|m| m.guild_id == guild_id && m.active)
        .collect()
}

fn not_ours(id: impl std::fmt::Display) -> KalturaError {
    KalturaError::NotFound(format!("Meeting {id} was not started from Discord."))
}

/// The meeting's owner: the Discord user behind a Kaltura user id this host made.
fn owner_of(kaltura_user_id: Option<&str>) -> String {
    kaltura_user_id
        .and_then(super::identity::subject_of)
        .unwrap_or_default()
}

/// Commas and colons would split a privilege list; keep names readable without them.
fn privilege_safe(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ',' | ':' | '/' | '&' | '=' | '\n' | '\r'))
        .take(64)
        .collect()
}

/// `<object>:<id>,role:…,userContextualRole:…,firstName:…`: the KAF role names the
/// virtual classroom, events and rooms read.
fn role_privileges(object: &str, id: &str, role: KalturaRole, display_name: &str) -> String {
    let (kaf_role, contextual) = match role {
        KalturaRole::Viewer => ("viewerRole", 3),
        KalturaRole::Moderator | KalturaRole::Admin => ("adminRole", 0),
    };
    format!(
        "{object}:{id},role:{kaf_role},userContextualRole:{contextual},firstName:{}",
        privilege_safe(display_name)
    )
}

/// `<base>?ks=<session>` (or `&ks=` when the base has a query already).
fn with_session(base: &str, user_ks: &str) -> String {
    let ks: String = url::form_urlencoded::byte_serialize(user_ks.as_bytes()).collect();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}ks={ks}")
}

/// A scalar field as text (Kaltura sends numbers as numbers or strings); empty when absent.
fn scalar(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list pager for one page of `size`.
fn pager(size: u32) -> serde_json::Value {
    serde_json::json!({"objectType": "KalturaFilterPager", "pageSize": size, "pageIndex": 1})
}

/// Active: not cancelled or deleted, and not past its end.
fn still_on(cancelled: bool, ends_at: i64) -> bool {
    !cancelled && ends_at > now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_names_its_backend_and_odd_ids_none() {
        assert_eq!(
            BackendName::of_id("1001"),
            Some(BackendName::ScheduledEvents)
        );
        assert_eq!(
            BackendName::of_id("ve-12"),
            Some(BackendName::VirtualEvents)
        );
        assert_eq!(BackendName::of_id("1_r0000a1"), Some(BackendName::Rooms));
        for odd in [
            "",
            "ve-",
            "ve-x",
            "1_",
            "_a",
            "1_a-b",
            "x_1",
            "not-a-number",
            "1 2",
        ] {
            assert_eq!(BackendName::of_id(odd), None, "{odd}");
        }
    }

    #[test]
    fn host_tags_need_kdhost_and_a_guild() {
        let t = HostTags::of("kdhost, kd-guild-5,kd-kind-webinar").unwrap();
        assert_eq!((t.guild_id.as_str(), t.kind), ("5", MeetingKind::Webinar));
        assert!(HostTags::of("kd-guild-5").is_none());
        assert!(HostTags::of("kdhost").is_none());
    }

    #[test]
    fn join_privileges_carry_the_role_and_a_safe_name() {
        let p = role_privileges("eventId", "9", KalturaRole::Viewer, "Ann, role:admin");
        assert_eq!(
            p,
            "eventId:9,role:viewerRole,userContextualRole:3,firstName:Ann roleadmin"
        );
        assert!(
            role_privileges("roomId", "1_a", KalturaRole::Moderator, "x").contains("adminRole")
        );
        assert_eq!(
            with_session("https://e/x?a=1", "k+"),
            "https://e/x?a=1&ks=k%2B"
        );
    }
}
