//! Scheduled events (`schedule_scheduleevent`): what a meeting is on the Kaltura side.
//! Status: 1 cancelled, 2 active, 3 deleted.

use serde_json::{Value, json};

use super::media::{list_response, page};
use super::params::{int, text};
use super::{ApiError, ApiResult, Data, now};

pub const CANCELLED: i64 = 1;
pub const ACTIVE: i64 = 2;
pub const DELETED: i64 = 3;

const EVENT_TYPES: &[&str] = &[
    "KalturaMeetingScheduleEvent",
    "KalturaLiveStreamScheduleEvent",
    "KalturaRecordScheduleEvent",
    "KalturaVirtualScheduleEvent",
];

fn not_found(id: &str) -> ApiError {
    ApiError::new("INVALID_OBJECT_ID", format!("Invalid object id [{id}]"))
        .with_args(json!({"ID": id}))
}

fn cannot_be_null(prop: &str) -> ApiError {
    ApiError::new(
        "PROPERTY_VALIDATION_CANNOT_BE_NULL",
        format!("The property \"{prop}\" cannot be null"),
    )
    .with_args(json!({"PROP_NAME": prop}))
}

fn find<'a>(data: &'a mut Data, p: &Value) -> Result<&'a mut Value, ApiError> {
    let raw = text(&p["scheduleEventId"]).unwrap_or_default();
    data.events
        .get_mut(&raw.parse::<i64>().unwrap_or(-1))
        .filter(|e| int(&e["status"]) != Some(DELETED))
        .ok_or_else(|| not_found(&raw))
}

pub fn add(data: &mut Data, partner_id: u64, p: &Value) -> ApiResult {
    let ev = &p["scheduleEvent"];
    let object_type = text(&ev["objectType"]).unwrap_or_default();
    if !EVENT_TYPES.contains(&object_type.as_str()) {
        return Err(ApiError::new(
            "OBJECT_TYPE_ABSTRACT",
            format!(
                "The object type \"{object_type}\" is abstract, use one of the object implementations"
            ),
        ));
    }
    for prop in ["summary", "startDate", "endDate"] {
        if text(&ev[prop]).is_none_or(|v| v.is_empty()) {
            return Err(cannot_be_null(&format!("{object_type}::{prop}")));
        }
    }
    if object_type == "KalturaVirtualScheduleEvent" {
        super::virtual_events::check_schedule_event(data, ev)?;
    }
    let (start, end) = (
        int(&ev["startDate"]).unwrap_or(0),
        int(&ev["endDate"]).unwrap_or(0),
    );
    if end < start {
        return Err(ApiError::new(
            "INVALID_SCHEDULE_END_BEFORE_START",
            format!("Schedule event end date [{end}] is before start date [{start}]"),
        ));
    }
    let id = data.next_event_id;
    data.next_event_id += 1;
    let mut stored = json!({
        "id": id,
        "partnerId": partner_id,
        "status": ACTIVE,
        "recurrenceType": 0,
        "createdAt": now(),
        "updatedAt": now(),
    });
    if let Value::Object(fields) = ev {
        for (k, v) in fields {
            if !matches!(
                k.as_str(),
                "id" | "partnerId" | "status" | "createdAt" | "updatedAt"
            ) {
                stored[k] = v.clone();
            }
        }
    }
    for int_field in ["startDate", "endDate"] {
        stored[int_field] = json!(int(&stored[int_field]).unwrap_or(0));
    }
    data.events.insert(id, stored.clone());
    Ok(stored)
}

pub fn get(data: &Data, p: &Value) -> ApiResult {
    let raw = text(&p["scheduleEventId"]).unwrap_or_default();
    data.events
        .get(&raw.parse::<i64>().unwrap_or(-1))
        .filter(|e| int(&e["status"]) != Some(DELETED))
        .cloned()
        .ok_or_else(|| not_found(&raw))
}

pub fn update(data: &mut Data, p: &Value) -> ApiResult {
    let event = find(data, p)?;
    if let Value::Object(fields) = &p["scheduleEvent"] {
        for (k, v) in fields {
            if !matches!(k.as_str(), "id" | "partnerId" | "objectType" | "createdAt") {
                event[k] = v.clone();
            }
        }
    }
    event["updatedAt"] = json!(now());
    Ok(event.clone())
}

pub fn set_status(data: &mut Data, p: &Value, status: i64) -> ApiResult {
    let event = find(data, p)?;
    event["status"] = json!(status);
    event["updatedAt"] = json!(now());
    Ok(event.clone())
}

fn matches(e: &Value, f: &Value) -> bool {
    let status = int(&e["status"]).unwrap_or(0);
    let status_ok = match (int(&f["statusEqual"]), text(&f["statusIn"])) {
        (Some(s), _) => status == s,
        (None, Some(list)) => list.split(',').any(|s| s.trim().parse() == Ok(status)),
        _ => status != DELETED,
    };
    let tags = text(&e["tags"]).unwrap_or_default().to_lowercase();
    let tags_like = text(&f["tagsLike"]).is_none_or(|t| tags.contains(&t.to_lowercase()));
    let tags_and = text(&f["tagsMultiLikeAnd"]).is_none_or(|t| {
        t.split(',')
            .map(|x| x.trim().to_lowercase())
            .all(|x| tags.contains(&x))
    });
    let owner = text(&f["ownerIdEqual"]).is_none_or(|o| e["ownerId"] == o.as_str());
    let reference = text(&f["referenceIdEqual"]).is_none_or(|r| e["referenceId"] == r.as_str());
    let starts =
        int(&f["startDateLessThanOrEqual"]).is_none_or(|t| int(&e["startDate"]).unwrap_or(0) <= t);
    let ends =
        int(&f["endDateGreaterThanOrEqual"]).is_none_or(|t| int(&e["endDate"]).unwrap_or(0) >= t);
    status_ok && tags_like && tags_and && owner && reference && starts && ends
}

pub fn list(data: &Data, p: &Value) -> ApiResult {
    let f = &p["filter"];
    let mut found: Vec<Value> = data
        .events
        .values()
        .filter(|e| matches(e, f))
        .cloned()
        .collect();
    let order = text(&f["orderBy"]).unwrap_or_else(|| "+startDate".into());
    let key = |e: &Value| {
        let field = order.trim_start_matches(['+', '-']);
        int(&e[field]).unwrap_or(0)
    };
    found.sort_by_key(key);
    if order.starts_with('-') {
        found.reverse();
    }
    let objects = page(&found, &p["pager"]);
    Ok(list_response(
        "KalturaScheduleEventListResponse",
        found.len(),
        objects,
    ))
}
