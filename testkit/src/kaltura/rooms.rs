//! Rooms (`room_room`): a meeting room is an entry of its own (`KalturaRoomEntry`, ids like
//! other entries), `roomType` 1 room or 2 breakout room, optionally made from a template
//! room, with the entry it broadcasts to and, after a session, the entry it was recorded to
//! (`attachRecordedEntry`). Like every entry, a room has an owner (`userId`) and a
//! scheduling window (`startDate`, `endDate`).

use serde_json::{Value, json};

use super::media::{list_response, page};
use super::params::{copy_writable, int, text};
use super::{ApiError, ApiResult, Data, now};

pub const READY: i64 = 2;
pub const DELETED: i64 = 3;

fn not_found(id: &str) -> ApiError {
    ApiError::new("ENTRY_ID_NOT_FOUND", format!("Entry id \"{id}\" not found"))
        .with_args(json!({"ENTRY_ID": id}))
}

const WRITABLE: &[&str] = &[
    "name",
    "description",
    "tags",
    "roomType",
    "broadcastEntryId",
    "templateRoomEntryId",
    "referenceId",
    "userId",
    "startDate",
    "endDate",
];

fn live<'a>(data: &'a mut Data, raw: &str) -> Result<&'a mut Value, ApiError> {
    data.rooms
        .get_mut(raw)
        .filter(|r| int(&r["status"]) != Some(DELETED))
        .ok_or_else(|| not_found(raw))
}

pub fn add(data: &mut Data, partner_id: u64, p: &Value) -> ApiResult {
    let room = &p["room"];
    let kind = int(&room["roomType"]).unwrap_or(1);
    if !(1..=2).contains(&kind) {
        return Err(ApiError::new(
            "INVALID_ENUM_VALUE",
            format!("Invalid enumeration value [{kind}] for field [roomType]"),
        ));
    }
    if let Some(t) = text(&room["templateRoomEntryId"])
        && !data.rooms.contains_key(&t)
    {
        return Err(not_found(&t));
    }
    data.next_room += 1;
    let id = format!("1_r{:07x}", data.next_room);
    let mut stored = json!({
        "objectType": "KalturaRoomEntry",
        "id": id,
        "partnerId": partner_id,
        "status": READY,
        "type": 14,
        "roomType": kind,
        "createdAt": now(),
        "updatedAt": now(),
    });
    copy_writable(&mut stored, room, WRITABLE);
    if text(&stored["name"]).is_none_or(|n| n.is_empty()) {
        stored["name"] = json!("Room");
    }
    data.rooms.insert(id, stored.clone());
    Ok(stored)
}

pub fn get(data: &mut Data, p: &Value) -> ApiResult {
    let raw = text(&p["roomId"]).unwrap_or_default();
    live(data, &raw).map(|r| r.clone())
}

pub fn update(data: &mut Data, p: &Value) -> ApiResult {
    let raw = text(&p["roomId"]).unwrap_or_default();
    let room = live(data, &raw)?;
    copy_writable(room, &p["room"], WRITABLE);
    room["updatedAt"] = json!(now());
    Ok(room.clone())
}

pub fn delete(data: &mut Data, p: &Value) -> ApiResult {
    let raw = text(&p["roomId"]).unwrap_or_default();
    let room = live(data, &raw)?;
    room["status"] = json!(DELETED);
    room["updatedAt"] = json!(now());
    Ok(Value::Null)
}

/// Records that a session of the room was recorded to `recordedEntryId` (which must be an
/// existing entry).
pub fn attach_recorded_entry(data: &mut Data, p: &Value) -> ApiResult {
    let raw = text(&p["roomId"]).unwrap_or_default();
    let recorded = text(&p["recordedEntryId"]).unwrap_or_default();
    if !data.entries.iter().any(|e| e["id"] == recorded.as_str()) {
        return Err(not_found(&recorded));
    }
    let room = live(data, &raw)?;
    room["recordedEntryId"] = json!(recorded);
    room["updatedAt"] = json!(now());
    Ok(room.clone())
}

pub fn list(data: &Data, p: &Value) -> ApiResult {
    let f = &p["filter"];
    let found: Vec<Value> = data
        .rooms
        .values()
        .filter(|r| {
            let status_ok = int(&r["status"]) != Some(DELETED);
            let type_ok = int(&f["roomTypeEqual"]).is_none_or(|t| int(&r["roomType"]) == Some(t));
            let tags = text(&r["tags"]).unwrap_or_default().to_lowercase();
            let tags_ok = text(&f["tagsLike"]).is_none_or(|t| tags.contains(&t.to_lowercase()));
            status_ok && type_ok && tags_ok
        })
        .cloned()
        .collect();
    let objects = page(&found, &p["pager"]);
    Ok(list_response(
        "KalturaRoomEntryListResponse",
        found.len(),
        objects,
    ))
}
