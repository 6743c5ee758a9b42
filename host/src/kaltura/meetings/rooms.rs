//! Meetings as Kaltura rooms (`room_room`): a `KalturaRoomEntry` of type 1 (room) whose
//! entry scheduling window (`startDate`, `endDate`) is the meeting's time and whose
//! `userId` is its owner. Ending closes the window (the room stays, so a recording
//! attached afterwards with `attachRecordedEntry` still reaches the guild as
//! "recording ready"). People join through the KAF room launch with a USER session that
//! names the room.

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{
    HostTags, Meeting, MeetingBackend, NewMeeting, active_of, no_meeting, not_ours, owner_of,
    pager, role_privileges, scalar, still_on, with_session,
};
use crate::kaltura::admin::Admin;
use crate::kaltura::client::Idempotent;
use crate::kaltura::error::KalturaError;
use crate::kaltura::identity::KalturaRole;
use crate::kaltura::sessions::now;

pub struct Rooms {
    pub kaf_url: String,
}

/// KalturaRoomType.ROOM (2 is a breakout room).
const ROOM: i64 = 1;
/// KalturaEntryStatus.DELETED
const DELETED: &str = "3";

fn meeting(room: &Value) -> Result<Meeting, KalturaError> {
    let id = scalar(&room["id"]);
    let tags = HostTags::of(&scalar(&room["tags"])).ok_or_else(|| not_ours(&id))?;
    let time = |k: &str| scalar(&room[k]).parse::<i64>().unwrap_or(0);
    let ends_at = time("endDate");
    Ok(Meeting {
        kind: tags.kind,
        title: scalar(&room["name"]),
        description: scalar(&room["description"]),
        owner_id: owner_of(room["userId"].as_str()),
        guild_id: tags.guild_id,
        starts_at: time("startDate"),
        ends_at,
        active: still_on(scalar(&room["status"]) == DELETED, ends_at),
        session_object: id.clone(),
        page: None,
        id,
    })
}

const SERVICE: &str = "room_room";

#[async_trait]
impl MeetingBackend for Rooms {
    async fn create(&self, admin: &Admin<'_>, m: &NewMeeting) -> Result<Meeting, KalturaError> {
        let start = now();
        let room = admin
            .call(
                SERVICE,
                "add",
                json!({"room": {
                    "objectType": "KalturaRoomEntry",
                    "roomType": ROOM,
                    "name": m.title,
                    "description": m.description,
                    "tags": m.tags(),
                    "userId": m.owner_kaltura_id,
                    "startDate": start,
                    "endDate": start + m.duration,
                    "referenceId": format!("kdhost-{}", m.guild_id),
                }}),
                Idempotent::Write,
            )
            .await?;
        meeting(&room)
    }

    async fn get(&self, admin: &Admin<'_>, id: &str) -> Result<Meeting, KalturaError> {
        let room = admin
            .call(SERVICE, "get", json!({"roomId": id}), Idempotent::Read)
            .await
            .map_err(no_meeting(id))?;
        meeting(&room)
    }

    async fn list_active(
        &self,
        admin: &Admin<'_>,
        guild_id: &str,
    ) -> Result<Vec<Meeting>, KalturaError> {
        let filter = json!({
            "objectType": "KalturaRoomEntryFilter",
            "roomTypeEqual": ROOM,
            "tagsLike": format!("kd-guild-{guild_id}"),
        });
        let v = admin
            .call(
                SERVICE,
                "list",
                json!({"filter": filter, "pager": pager(100)}),
                Idempotent::Read,
            )
            .await?;
        let rooms = v["objects"].as_array().into_iter().flatten();
        let mut found = active_of(guild_id, rooms.filter_map(|o| meeting(o).ok()));
        found.sort_by_key(|m| m.starts_at);
        Ok(found)
    }

    async fn end(&self, admin: &Admin<'_>, m: &Meeting) -> Result<(), KalturaError> {
        admin
            .call(
                SERVICE,
                "update",
                json!({"roomId": m.session_object, "room": {
                    "objectType": "KalturaRoomEntry",
                    "endDate": now().min(m.ends_at),
                }}),
                Idempotent::Write,
            )
            .await?;
        Ok(())
    }

    fn join_privileges(&self, m: &Meeting, role: KalturaRole, display_name: &str) -> String {
        role_privileges("roomId", &m.session_object, role, display_name)
    }

    fn join_url(&self, _m: &Meeting, user_ks: &str) -> String {
        with_session(&format!("{}/room/launch", self.kaf_url), user_ks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_entry_is_a_meeting_until_its_window_closes() {
        let room = json!({"objectType": "KalturaRoomEntry", "id": "1_r0000001", "name": "Standup",
            "status": 2, "userId": "discord_7", "startDate": 1, "endDate": now() + 60,
            "tags": "kdhost,kd-guild-5,kd-kind-meeting"});
        let m = meeting(&room).unwrap();
        assert_eq!(
            (m.id.as_str(), m.owner_id.as_str(), m.guild_id.as_str()),
            ("1_r0000001", "7", "5")
        );
        assert!(m.active);
        let mut over = room.clone();
        over["endDate"] = json!(now() - 1);
        assert!(!meeting(&over).unwrap().active);
        let mut deleted = room.clone();
        deleted["status"] = json!("3");
        assert!(!meeting(&deleted).unwrap().active);
        let b = Rooms {
            kaf_url: "https://kaf".into(),
        };
        assert!(
            b.join_privileges(&m, KalturaRole::Viewer, "Ann")
                .starts_with("roomId:1_r0000001,role:viewerRole")
        );
        assert!(
            meeting(&json!({"id": "1_x", "tags": "x"}))
                .unwrap_err()
                .is_not_found()
        );
    }
}
