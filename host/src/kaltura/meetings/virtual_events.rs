//! Webinars as Kaltura virtual events: a `KalturaVirtualEvent` (the event's record, kept
//! after it ends) and its main-event schedule (`KalturaVirtualScheduleEvent`, sub-type 3)
//! that holds the times and the owner. The meeting id is `ve-<virtual event id>`; ending
//! cancels the main event. A person joins through the event's own page (`eventUrl`) when
//! Kaltura gave it one, else the KAF launch, with a USER session naming the main event and
//! the virtual event.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::scheduled_events::{
    VIRTUAL_SCHEDULE_EVENT, WireEvent, add_event, cancel_event, get_event, list_guild_events,
    new_event,
};
use super::{
    Meeting, MeetingBackend, NewMeeting, active_of, no_meeting, no_such_meeting, not_ours,
    role_privileges, scalar, with_session,
};
use crate::kaltura::admin::Admin;
use crate::kaltura::client::Idempotent;
use crate::kaltura::error::KalturaError;
use crate::kaltura::identity::KalturaRole;

pub struct VirtualEvents {
    pub kaf_url: String,
}

pub(super) const ID_PREFIX: &str = "ve-";
/// KalturaVirtualScheduleEventSubType.MAIN_EVENT
const MAIN_EVENT: i64 = 3;

fn meeting_id(virtual_event_id: impl std::fmt::Display) -> String {
    format!("{ID_PREFIX}{virtual_event_id}")
}

const SERVICE: &str = "virtualevent_virtualevent";

/// The meeting a virtual event and its main event make.
fn meeting(ve: &Value, main: &Value) -> Result<Meeting, KalturaError> {
    let w = WireEvent::read(main)?;
    let id = meeting_id(scalar(&ve["id"]));
    if w.object_type != VIRTUAL_SCHEDULE_EVENT {
        return Err(not_ours(&id));
    }
    let mut m = w.meeting(id)?;
    m.page = ve["eventUrl"]
        .as_str()
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
        .map(String::from);
    Ok(m)
}

#[async_trait]
impl MeetingBackend for VirtualEvents {
    async fn create(&self, admin: &Admin<'_>, m: &NewMeeting) -> Result<Meeting, KalturaError> {
        let ve = admin
            .call(
                SERVICE,
                "add",
                json!({"virtualEvent": {
                    "objectType": "KalturaVirtualEvent",
                    "name": m.title,
                    "description": m.description,
                    "tags": m.tags(),
                }}),
                Idempotent::Write,
            )
            .await?;
        let ve_id = ve["id"].clone();
        let mut event = new_event(VIRTUAL_SCHEDULE_EVENT, m);
        event["virtualEventId"] = ve_id.clone();
        event["virtualScheduleEventSubType"] = json!(MAIN_EVENT);
        let main = match add_event(admin, event).await {
            Ok(main) => main,
            Err(e) => {
                // Leave no half-made webinar behind.
                let gone = admin
                    .call(SERVICE, "delete", json!({"id": ve_id}), Idempotent::Write)
                    .await;
                if let Err(d) = gone {
                    tracing::warn!(virtual_event = %ve_id, error = %d, "could not delete a virtual event whose main event failed");
                }
                return Err(e);
            }
        };
        let ve = admin
            .call(
                SERVICE,
                "update",
                json!({"id": ve_id, "virtualEvent": {
                    "objectType": "KalturaVirtualEvent",
                    "mainEventScheduleEventId": main["id"],
                }}),
                Idempotent::Write,
            )
            .await?;
        meeting(&ve, &main)
    }

    async fn get(&self, admin: &Admin<'_>, id: &str) -> Result<Meeting, KalturaError> {
        let raw = id
            .strip_prefix(ID_PREFIX)
            .ok_or_else(|| no_such_meeting(id))?;
        let ve = admin
            .call(SERVICE, "get", json!({"id": raw}), Idempotent::Read)
            .await
            .map_err(no_meeting(id))?;
        let main_id = scalar(&ve["mainEventScheduleEventId"]);
        if main_id.is_empty() {
            return Err(not_ours(id));
        }
        let main = get_event(admin, &main_id).await.map_err(no_meeting(id))?;
        let m = meeting(&ve, &main)?;
        // The main event must be this virtual event's (not one an edit pointed elsewhere).
        if scalar(&main["virtualEventId"]) != raw {
            return Err(not_ours(id));
        }
        Ok(m)
    }

    async fn list_active(
        &self,
        admin: &Admin<'_>,
        guild_id: &str,
    ) -> Result<Vec<Meeting>, KalturaError> {
        // One call: the main events carry the same tags as their virtual events.
        let events = list_guild_events(admin, guild_id).await?;
        let mains = events
            .iter()
            .filter(|o| scalar(&o["virtualScheduleEventSubType"]) == MAIN_EVENT.to_string())
            .filter_map(|o| meeting(&json!({"id": o["virtualEventId"]}), o).ok());
        Ok(active_of(guild_id, mains))
    }

    async fn end(&self, admin: &Admin<'_>, m: &Meeting) -> Result<(), KalturaError> {
        // The virtual event stays: it is the webinar's record (attendees, recordings).
        cancel_event(admin, &m.session_object).await
    }

    fn join_privileges(&self, m: &Meeting, role: KalturaRole, display_name: &str) -> String {
        let ve = m.id.strip_prefix(ID_PREFIX).unwrap_or_default();
        format!(
            "{},virtualEventId:{ve}",
            role_privileges("eventId", &m.session_object, role, display_name)
        )
    }

    fn join_url(&self, m: &Meeting, user_ks: &str) -> String {
        match &m.page {
            Some(page) => with_session(page, user_ks),
            None => with_session(&format!("{}/virtualEvent/launch", self.kaf_url), user_ks),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kaltura::sessions::now;

    fn main_event(ve: i64) -> Value {
        json!({"objectType": VIRTUAL_SCHEDULE_EVENT, "id": 40, "summary": "Launch", "status": 2,
            "startDate": 1, "endDate": now() + 60, "ownerId": "discord_7", "virtualEventId": ve,
            "virtualScheduleEventSubType": 3, "tags": "kdhost,kd-guild-5,kd-kind-webinar"})
    }

    #[test]
    fn a_virtual_event_and_its_main_event_make_one_meeting() {
        let ve = json!({"id": 12, "eventUrl": "https://events.example/e/12"});
        let m = meeting(&ve, &main_event(12)).unwrap();
        assert_eq!(
            (
                m.id.as_str(),
                m.session_object.as_str(),
                m.owner_id.as_str()
            ),
            ("ve-12", "40", "7")
        );
        assert!(m.active);
        let b = VirtualEvents {
            kaf_url: "https://kaf".into(),
        };
        assert_eq!(b.join_url(&m, "K"), "https://events.example/e/12?ks=K");
        assert!(
            b.join_privileges(&m, KalturaRole::Viewer, "Ann")
                .starts_with("eventId:40,role:viewerRole")
        );
        assert!(
            b.join_privileges(&m, KalturaRole::Viewer, "Ann")
                .ends_with(",virtualEventId:12")
        );
        // A page that is not a web address is not used.
        let m = meeting(
            &json!({"id": 12, "eventUrl": "javascript:x"}),
            &main_event(12),
        )
        .unwrap();
        assert_eq!(b.join_url(&m, "K"), "https://kaf/virtualEvent/launch?ks=K");
        // A plain meeting event is not a virtual event's main event.
        let mut plain = main_event(12);
        plain["objectType"] = json!("KalturaMeetingScheduleEvent");
        assert!(meeting(&ve, &plain).unwrap_err().is_not_found());
    }
}
