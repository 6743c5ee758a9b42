//! Virtual events (`virtualevent_virtualevent`): a webinar on the Kaltura side. A
//! `KalturaVirtualEvent` ties together the schedule events of its agenda, registration and
//! main event (`KalturaVirtualScheduleEvent`s whose `virtualEventId` names it). Status: 2
//! active, 3 deleted (a deletion keeps the object, as Kaltura does, until its
//! `deletionDueDate`).

use serde_json::{Value, json};

use super::media::{list_response, page};
use super::params::{copy_writable, int, text};
use super::{ApiError, ApiResult, Data, now};

pub const ACTIVE: i64 = 2;
pub const DELETED: i64 = 3;

/// `virtualScheduleEventSubType`: 1 agenda, 2 registration, 3 main event.
pub const SUB_TYPES: std::ops::RangeInclusive<i64> = 1..=3;

fn not_found(id: &str) -> ApiError {
    ApiError::new(
        "VIRTUAL_EVENT_NOT_FOUND",
        format!("Virtual event id [{id}] not found"),
    )
    .with_args(json!({"ID": id}))
}

/// Fields a caller may set (the rest are the server's).
const WRITABLE: &[&str] = &[
    "name",
    "description",
    "tags",
    "attendeesGroupIds",
    "adminsGroupIds",
    "registrationScheduleEventId",
    "agendaScheduleEventId",
    "mainEventScheduleEventId",
    "eventUrl",
    "deletionDueDate",
    "registrationFormSchema",
];

fn id_of(p: &Value) -> (String, i64) {
    let raw = text(&p["id"]).unwrap_or_default();
    let id = raw.parse::<i64>().unwrap_or(-1);
    (raw, id)
}

/// An active virtual event (what schedule events may point at).
pub fn is_active(data: &Data, id: i64) -> bool {
    data.virtual_events
        .get(&id)
        .is_some_and(|e| int(&e["status"]) == Some(ACTIVE))
}

pub fn add(data: &mut Data, partner_id: u64, p: &Value) -> ApiResult {
    let ev = &p["virtualEvent"];
    if text(&ev["name"]).is_none_or(|n| n.trim().is_empty()) {
        return Err(ApiError::new(
            "PROPERTY_VALIDATION_CANNOT_BE_NULL",
            "The property \"KalturaVirtualEvent::name\" cannot be null",
        )
        .with_args(json!({"PROP_NAME": "KalturaVirtualEvent::name"})));
    }
    let id = data.next_virtual_event_id;
    data.next_virtual_event_id += 1;
    let mut stored = json!({
        "objectType": "KalturaVirtualEvent",
        "id": id,
        "partnerId": partner_id,
        "status": ACTIVE,
        "createdAt": now(),
        "updatedAt": now(),
    });
    copy_writable(&mut stored, ev, WRITABLE);
    data.virtual_events.insert(id, stored.clone());
    Ok(stored)
}

pub fn get(data: &Data, p: &Value) -> ApiResult {
    let (raw, id) = id_of(p);
    data.virtual_events
        .get(&id)
        .filter(|e| int(&e["status"]) == Some(ACTIVE))
        .cloned()
        .ok_or_else(|| not_found(&raw))
}

/// The active virtual event `p["id"]` names.
fn active_mut<'a>(data: &'a mut Data, p: &Value) -> Result<&'a mut Value, ApiError> {
    let (raw, id) = id_of(p);
    data.virtual_events
        .get_mut(&id)
        .filter(|e| int(&e["status"]) == Some(ACTIVE))
        .ok_or_else(|| not_found(&raw))
}

pub fn update(data: &mut Data, p: &Value) -> ApiResult {
    let ev = active_mut(data, p)?;
    copy_writable(ev, &p["virtualEvent"], WRITABLE);
    ev["updatedAt"] = json!(now());
    Ok(ev.clone())
}

pub fn delete(data: &mut Data, p: &Value) -> ApiResult {
    let ev = active_mut(data, p)?;
    ev["status"] = json!(DELETED);
    ev["updatedAt"] = json!(now());
    Ok(Value::Null)
}

pub fn list(data: &Data, p: &Value) -> ApiResult {
    let f = &p["filter"];
    let ids: Option<Vec<i64>> =
        text(&f["idIn"]).map(|l| l.split(',').filter_map(|i| i.trim().parse().ok()).collect());
    let found: Vec<Value> = data
        .virtual_events
        .values()
        .filter(|e| {
            let status = int(&e["status"]).unwrap_or(0);
            let status_ok = int(&f["statusEqual"]).map_or(status != DELETED, |s| s == status);
            let id_ok = ids
                .as_ref()
                .is_none_or(|ids| ids.contains(&int(&e["id"]).unwrap_or(-1)));
            let tags = text(&e["tags"]).unwrap_or_default().to_lowercase();
            let tags_ok = text(&f["tagsLike"]).is_none_or(|t| tags.contains(&t.to_lowercase()));
            status_ok && id_ok && tags_ok
        })
        .cloned()
        .collect();
    let objects = page(&found, &p["pager"]);
    Ok(list_response(
        "KalturaVirtualEventListResponse",
        found.len(),
        objects,
    ))
}

/// A `KalturaVirtualScheduleEvent` must name an active virtual event and a sub-type.
pub fn check_schedule_event(data: &Data, ev: &Value) -> Result<(), ApiError> {
    let id = int(&ev["virtualEventId"]).unwrap_or(-1);
    if !is_active(data, id) {
        return Err(not_found(&id.to_string()));
    }
    let sub = int(&ev["virtualScheduleEventSubType"]).unwrap_or(0);
    if !SUB_TYPES.contains(&sub) {
        return Err(ApiError::new(
            "INVALID_ENUM_VALUE",
            format!("Invalid enumeration value [{sub}] for field [virtualScheduleEventSubType]"),
        ));
    }
    Ok(())
}
