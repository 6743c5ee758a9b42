//! Meetings as scheduled events (`KalturaMeetingScheduleEvent`), joined through the KAF
//! virtual-classroom launch with a USER session carrying `eventId` and the role. The same
//! wire format serves the main-event schedule of a virtual event ([`super::VirtualEvents`]).

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{Value, json};
use serde_with::{DisplayFromStr, PickFirst, serde_as};

use super::{
    HostTags, Meeting, MeetingBackend, NewMeeting, active_of, no_meeting, not_ours, owner_of,
    pager, role_privileges, still_on, with_session,
};
use crate::kaltura::admin::Admin;
use crate::kaltura::client::Idempotent;
use crate::kaltura::error::KalturaError;
use crate::kaltura::identity::KalturaRole;
use crate::kaltura::sessions::now;

pub struct ScheduledEvents {
    pub kaf_url: String,
}

/// KalturaScheduleEventStatus CANCELLED and DELETED.
const CANCELLED_OR_DELETED: [i64; 2] = [1, 3];
/// The schedule event type of a virtual event's parts (not a meeting of its own).
pub(super) const VIRTUAL_SCHEDULE_EVENT: &str = "KalturaVirtualScheduleEvent";

/// A schedule event as Kaltura sends it (numbers as numbers or strings).
#[serde_as]
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WireEvent {
    #[serde(default)]
    pub object_type: String,
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub id: i64,
    #[serde(default)]
    pub summary: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    pub status: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    pub start_date: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    pub end_date: Option<i64>,
    #[serde(default)]
    pub owner_id: Option<String>,
    #[serde(default)]
    pub tags: Option<String>,
}

impl WireEvent {
    pub fn read(v: &Value) -> Result<Self, KalturaError> {
        serde_json::from_value(v.clone())
            .map_err(|e| KalturaError::Decode(format!("a scheduled event: {e}")))
    }

    /// The meeting this event is, under `id` (its own, or its virtual event's).
    pub fn meeting(self, id: String) -> Result<Meeting, KalturaError> {
        let tags =
            HostTags::of(self.tags.as_deref().unwrap_or_default()).ok_or_else(|| not_ours(&id))?;
        let ends_at = self.end_date.unwrap_or(0);
        let cancelled = CANCELLED_OR_DELETED.contains(&self.status.unwrap_or(2));
        Ok(Meeting {
            id,
            kind: tags.kind,
            title: self.summary,
            description: self.description.unwrap_or_default(),
            owner_id: owner_of(self.owner_id.as_deref()),
            guild_id: tags.guild_id,
            starts_at: self.start_date.unwrap_or(0),
            ends_at,
            active: still_on(cancelled, ends_at),
            session_object: self.id.to_string(),
            page: None,
        })
    }
}

/// A meeting-type schedule event (a virtual event's parts are not meetings of their own).
fn parse_event(v: &Value) -> Result<Meeting, KalturaError> {
    let w = WireEvent::read(v)?;
    if w.object_type == VIRTUAL_SCHEDULE_EVENT {
        return Err(not_ours(w.id));
    }
    let id = w.id.to_string();
    w.meeting(id)
}

/// The schedule event fields a meeting starts with (type and extra fields are the caller's).
pub(super) fn new_event(object_type: &str, m: &NewMeeting) -> Value {
    let start = now();
    json!({
        "objectType": object_type,
        "summary": m.title,
        "description": m.description,
        "startDate": start,
        "endDate": start + m.duration,
        "recurrenceType": 0,
        "ownerId": m.owner_kaltura_id,
        "tags": m.tags(),
        "referenceId": format!("kdhost-{}", m.guild_id),
    })
}

pub(super) async fn add_event(admin: &Admin<'_>, event: Value) -> Result<Value, KalturaError> {
    admin
        .call(
            "schedule_scheduleevent",
            "add",
            json!({"scheduleEvent": event}),
            Idempotent::Write,
        )
        .await
}

pub(super) async fn get_event(admin: &Admin<'_>, id: &str) -> Result<Value, KalturaError> {
    admin
        .call(
            "schedule_scheduleevent",
            "get",
            json!({"scheduleEventId": id}),
            Idempotent::Read,
        )
        .await
}

/// This guild's active schedule events (either kind; the caller keeps its own).
pub(super) async fn list_guild_events(
    admin: &Admin<'_>,
    guild_id: &str,
) -> Result<Vec<Value>, KalturaError> {
    let filter = json!({
        "objectType": "KalturaScheduleEventFilter",
        "statusEqual": 2,
        "tagsMultiLikeAnd": format!("kdhost,kd-guild-{guild_id}"),
        "endDateGreaterThanOrEqual": now(),
        "orderBy": "+startDate",
    });
    let v = admin
        .call(
            "schedule_scheduleevent",
            "list",
            json!({"filter": filter, "pager": pager(100)}),
            Idempotent::Read,
        )
        .await?;
    Ok(v["objects"].as_array().cloned().unwrap_or_default())
}

pub(super) async fn cancel_event(admin: &Admin<'_>, id: &str) -> Result<(), KalturaError> {
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

#[async_trait]
impl MeetingBackend for ScheduledEvents {
    async fn create(&self, admin: &Admin<'_>, m: &NewMeeting) -> Result<Meeting, KalturaError> {
        let v = add_event(admin, new_event("KalturaMeetingScheduleEvent", m)).await?;
        parse_event(&v)
    }

    async fn get(&self, admin: &Admin<'_>, id: &str) -> Result<Meeting, KalturaError> {
        // Cancelled meetings still answer `get`: they come back with `active: false`.
        let v = get_event(admin, id).await.map_err(no_meeting(id))?;
        parse_event(&v)
    }

    async fn list_active(
        &self,
        admin: &Admin<'_>,
        guild_id: &str,
    ) -> Result<Vec<Meeting>, KalturaError> {
        let events = list_guild_events(admin, guild_id).await?;
        Ok(active_of(
            guild_id,
            events.iter().filter_map(|o| parse_event(o).ok()),
        ))
    }

    async fn end(&self, admin: &Admin<'_>, m: &Meeting) -> Result<(), KalturaError> {
        cancel_event(admin, &m.session_object).await
    }

    fn join_privileges(&self, m: &Meeting, role: KalturaRole, display_name: &str) -> String {
        role_privileges("eventId", &m.session_object, role, display_name)
    }

    fn join_url(&self, _m: &Meeting, user_ks: &str) -> String {
        with_session(&format!("{}/virtualEvent/launch", self.kaf_url), user_ks)
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
        assert_eq!(m.kind, super::super::MeetingKind::Webinar);
        assert!(m.active);
        assert!(
            parse_event(&json!({"id": 1, "tags": "other"}))
                .unwrap_err()
                .is_not_found()
        );
        let part =
            json!({"objectType": VIRTUAL_SCHEDULE_EVENT, "id": 2, "tags": "kdhost,kd-guild-5"});
        assert!(parse_event(&part).unwrap_err().is_not_found());
    }
}
