//! Meetings behind one small trait, so the Kaltura product that hosts them (scheduled
//! events with the virtual classroom, rooms, virtual events) is a configuration choice.
//! The default backend uses `schedule_scheduleevent` and the KAF virtual-classroom launch.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serde_with::{DisplayFromStr, PickFirst, serde_as};

use super::admin::Admin;
use super::client::Idempotent;
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

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Meeting {
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
    async fn end(&self, admin: &Admin<'_>, id: &str) -> Result<(), KalturaError>;
    /// Privileges of the USER session that lets a person in with `role`.
    fn join_privileges(&self, m: &Meeting, role: KalturaRole, display_name: &str) -> String;
    /// The link a person opens, carrying their USER session.
    fn join_url(&self, m: &Meeting, user_ks: &str) -> String;
}

/// Meetings as scheduled events (`KalturaMeetingScheduleEvent`), joined through the KAF
/// virtual-classroom launch with a USER session carrying `eventId` and the role.
pub struct ScheduledEvents {
    pub kaf_url: String,
}

const CANCELLED_OR_DELETED: [i64; 2] = [1, 3];

#[serde_as]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEvent {
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    id: i64,
    #[serde(default)]
    summary: String,
    #[serde(default)]
    description: Option<String>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    status: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    start_date: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    end_date: Option<i64>,
    #[serde(default)]
    owner_id: Option<String>,
    #[serde(default)]
    tags: Option<String>,
}

/// Tags that mark this host's events: `kdhost`, `kd-guild-<id>`, `kd-kind-<kind>`.
fn tag_value<'a>(tags: &'a [&'a str], prefix: &str) -> Option<&'a str> {
    tags.iter().find_map(|t| t.strip_prefix(prefix))
}

fn parse_event(v: &Value) -> Result<Meeting, KalturaError> {
    let w: WireEvent = serde_json::from_value(v.clone())
        .map_err(|e| KalturaError::Decode(format!("a scheduled event: {e}")))?;
    let tags_text = w.tags.unwrap_or_default();
    let tags: Vec<&str> = tags_text.split(',').map(str::trim).collect();
    let not_ours =
        || KalturaError::NotFound(format!("Meeting {} was not started from Discord.", w.id));
    if !tags.contains(&"kdhost") {
        return Err(not_ours());
    }
    let guild_id = tag_value(&tags, "kd-guild-")
        .ok_or_else(not_ours)?
        .to_string();
    let kind = tag_value(&tags, "kd-kind-")
        .and_then(MeetingKind::parse)
        .unwrap_or(MeetingKind::Meeting);
    let owner_id = w
        .owner_id
        .as_deref()
        .and_then(super::identity::subject_of)
        .unwrap_or_default();
    let ends_at = w.end_date.unwrap_or(0);
    Ok(Meeting {
        id: w.id.to_string(),
        kind,
        title: w.summary,
        description: w.description.unwrap_or_default(),
        owner_id,
        guild_id,
        starts_at: w.start_date.unwrap_or(0),
        ends_at,
        active: !CANCELLED_OR_DELETED.contains(&w.status.unwrap_or(2)) && ends_at > now(),
    })
}

/// Commas and colons would split a privilege list; keep names readable without them.
fn privilege_safe(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ',' | ':' | '/' | '&' | '=' | '\n' | '\r'))
        .take(64)
        .collect()
}

#[async_trait]
impl MeetingBackend for ScheduledEvents {
    async fn create(&self, admin: &Admin<'_>, m: &NewMeeting) -> Result<Meeting, KalturaError> {
        let start = now();
        let event = json!({
            "objectType": "KalturaMeetingScheduleEvent",
            "summary": m.title,
            "description": m.description,
            "startDate": start,
            "endDate": start + m.duration,
            "recurrenceType": 0,
            "ownerId": m.owner_kaltura_id,
            "tags": format!("kdhost,kd-guild-{},kd-kind-{}", m.guild_id, m.kind.as_str()),
            "referenceId": format!("kdhost-{}", m.guild_id),
        });
        let v = admin
            .call(
                "schedule_scheduleevent",
                "add",
                json!({"scheduleEvent": event}),
                Idempotent::Write,
            )
            .await?;
        parse_event(&v)
    }

    async fn get(&self, admin: &Admin<'_>, id: &str) -> Result<Meeting, KalturaError> {
        let not_found = || KalturaError::NotFound(format!("There is no meeting `{id}`."));
        // Event ids are numbers: anything else cannot exist (and is not sent on).
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) || id.len() > 18 {
            return Err(not_found());
        }
        let v = admin
            .call(
                "schedule_scheduleevent",
                "get",
                json!({"scheduleEventId": id}),
                Idempotent::Read,
            )
            .await
            .map_err(|e| if e.is_not_found() { not_found() } else { e })?;
        // Cancelled meetings still answer `get`: they come back with `active: false`.
        parse_event(&v)
    }

    async fn list_active(
        &self,
        admin: &Admin<'_>,
        guild_id: &str,
    ) -> Result<Vec<Meeting>, KalturaError> {
        let guild_tag = format!("kd-guild-{guild_id}");
        let filter = json!({
            "objectType": "KalturaScheduleEventFilter",
            "statusEqual": 2,
            "tagsMultiLikeAnd": format!("kdhost,{guild_tag}"),
            "endDateGreaterThanOrEqual": now(),
            "orderBy": "+startDate",
        });
        let v = admin
            .call(
                "schedule_scheduleevent",
                "list",
                json!({"filter": filter, "pager": {"objectType": "KalturaFilterPager", "pageSize": 100, "pageIndex": 1}}),
                Idempotent::Read,
            )
            .await?;
        let objects = v["objects"].as_array().cloned().unwrap_or_default();
        // `tagsMultiLikeAnd` matches substrings: keep this guild's events exactly.
        Ok(objects
            .iter()
            .filter_map(|o| parse_event(o).ok())
            .filter(|m| m.guild_id == guild_id && m.active)
            .collect())
    }

    async fn end(&self, admin: &Admin<'_>, id: &str) -> Result<(), KalturaError> {
        admin
            .call(
                "schedule_scheduleevent",
                "cancel",
                json!({"scheduleEventId": id}),
                Idempotent::Write,
            )
            .await?;
        Ok(())
    }

    fn join_privileges(&self, m: &Meeting, role: KalturaRole, display_name: &str) -> String {
        let (kaf_role, contextual) = match role {
            KalturaRole::Viewer => ("viewerRole", 3),
            KalturaRole::Moderator | KalturaRole::Admin => ("adminRole", 0),
        };
        format!(
            "eventId:{},role:{kaf_role},userContextualRole:{contextual},firstName:{}",
            m.id,
            privilege_safe(display_name)
        )
    }

    fn join_url(&self, _m: &Meeting, user_ks: &str) -> String {
        let ks: String = url::form_urlencoded::byte_serialize(user_ks.as_bytes()).collect();
        format!("{}/virtualEvent/launch?ks={ks}", self.kaf_url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_of_other_guilds_or_hosts_are_not_ours() {
        let ev = json!({"id": "1001", "summary": "S", "status": 2, "startDate": 1, "endDate": now() + 60,
            "ownerId": "discord_7", "tags": "kdhost,kd-guild-5,kd-kind-webinar"});
        let m = parse_event(&ev).unwrap();
        assert_eq!(
            (m.id.as_str(), m.owner_id.as_str(), m.guild_id.as_str()),
            ("1001", "7", "5")
        );
        assert_eq!(m.kind, MeetingKind::Webinar);
        assert!(m.active);
        assert!(
            parse_event(&json!({"id": 1, "tags": "other"}))
                .unwrap_err()
                .is_not_found()
        );
    }

    #[test]
    fn join_privileges_carry_the_role_and_a_safe_name() {
        let b = ScheduledEvents {
            kaf_url: "https://k".into(),
        };
        let m = parse_event(&json!({"id": 9, "endDate": now() + 60, "tags": "kdhost,kd-guild-1"}))
            .unwrap();
        let p = b.join_privileges(&m, KalturaRole::Viewer, "Ann, role:admin");
        assert_eq!(
            p,
            "eventId:9,role:viewerRole,userContextualRole:3,firstName:Ann roleadmin"
        );
        assert!(
            b.join_privileges(&m, KalturaRole::Moderator, "x")
                .contains("adminRole")
        );
    }
}
