//! [people] 5: the two other meetings backends end to end, through signed interactions →
//! host → `kaltura-meetings` plugin → `kaltura` capability → Kaltura stand-in: webinars on
//! virtual events, meetings on rooms (with the recording attached to a room reaching only
//! its guild), and a backend the operator has not turned on refused with what to change.

mod common;

use common::members::*;
use common::*;
use kdhost::kaltura::ks;
use serde_json::{Value, json};

const RECORDINGS: &str = "900000000000000001";
const NEIGHBOUR: &str = "600000000000000002";
const NEIGHBOUR_CHANNEL: &str = "910000000000000002";

/// The operator allows every backend; the guild hosts webinars on virtual events and
/// meetings on rooms (classrooms stay on scheduled events).
async fn start(operator_backends: Value) -> Host {
    let mut grants: Value = serde_json::from_str(&default_grants()).unwrap();
    grants["kaltura"]["meeting_backends"] = operator_backends;
    let mut cfg = kaltura_config();
    cfg["kaltura"]["meetings"] = json!({"webinar": "virtual_events", "meeting": "rooms"});
    cfg["notifications"] = json!({"channel": "#recordings"});
    let host = start_with_kaltura(|s| {
        s.plugins_json = Some(grants.to_string());
        s.default_config = Some(cfg);
        // A neighbour that hears every partner-wide event.
        s.guild_configs.push((
            NEIGHBOUR.into(),
            json!({"notifications": {"channel": "#theirs"}}),
        ));
    })
    .await;
    host.standin
        .set_channels(GUILD, &[(RECORDINGS, "recordings")]);
    host.standin
        .set_channels(NEIGHBOUR, &[(NEIGHBOUR_CHANNEL, "theirs")]);
    host
}

fn all_backends() -> Value {
    json!(["scheduled_events", "virtual_events", "rooms"])
}

async fn start_meeting(host: &Host, kind: &str, title: &str) -> Value {
    command(
        host,
        "kaltura-start",
        opts(&[("type", json!(kind)), ("title", json!(title))]),
        USER,
        PLAIN,
    )
    .await
}

async fn join_page(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// `/kaltura-join` as `user`: the personal link, the session it carries (checked as the
/// stand-in would), after opening the link shows "Joined “title”".
async fn join(host: &Host, id: &str, user: &str, title: &str) -> (String, ks::KsInfo) {
    let joined = command(
        host,
        "kaltura-join",
        opts(&[("meeting-id", json!(id))]),
        user,
        PLAIN,
    )
    .await;
    let url = link(&joined);
    let info = verify_session(host.kaltura.as_ref().unwrap(), &ks_in(&url));
    let (status, page) = join_page(&url).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(&format!("Joined “{title}”")), "{page}");
    (url, info)
}

/// `/kaltura-end` by its owner; afterwards the old link no longer gets in.
async fn end(host: &Host, id: &str, link: &str) {
    let ended = command(
        host,
        "kaltura-end",
        opts(&[("meeting-id", json!(id))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(text_of(&ended).contains("has ended"), "{ended}");
    assert_eq!(join_page(link).await.0, 410, "the link no longer gets in");
}

#[tokio::test]
async fn webinars_run_on_virtual_events_with_a_main_event_and_personal_links() {
    let host = start(all_backends()).await;
    let k = host.kaltura.as_ref().unwrap();
    let started = start_meeting(&host, "webinar", "Product launch").await;
    let id = started_id(&started);
    let ve_id = id
        .strip_prefix("ve-")
        .unwrap_or_else(|| panic!("a virtual event id, got {id}"));
    let ve_num: i64 = ve_id.parse().unwrap();

    // The virtual event and its main event, tied both ways, tagged for this guild.
    let ve = k
        .virtual_events()
        .into_iter()
        .find(|v| v["id"] == ve_num)
        .expect("the virtual event");
    assert_eq!(ve["objectType"], "KalturaVirtualEvent");
    assert_eq!(ve["name"], "Product launch");
    assert!(
        ve["tags"]
            .as_str()
            .unwrap()
            .contains(&format!("kd-guild-{GUILD}"))
    );
    let main = k
        .events()
        .into_iter()
        .find(|e| e["id"] == ve["mainEventScheduleEventId"])
        .expect("the main event");
    assert_eq!(main["objectType"], "KalturaVirtualScheduleEvent");
    assert_eq!(main["virtualScheduleEventSubType"], 3);
    assert_eq!(main["virtualEventId"], ve_num);
    assert_eq!(main["ownerId"], format!("discord_{USER}"));

    // Listed (and only once: the main event is not a scheduled meeting of its own).
    let listed = command(&host, "kaltura-list", json!([]), OTHER, PLAIN).await;
    let joins: Vec<String> = button_ids(&listed)
        .into_iter()
        .filter(|b| b.contains(":kaltura-join:"))
        .collect();
    assert_eq!(joins, vec![format!("kaltura-meetings:kaltura-join:{id}")]);

    // Each person gets their own link: a USER session naming the main event and the
    // virtual event, with their role.
    let (url, info) = join(&host, &id, OTHER, "Product launch").await;
    assert_eq!(info.user_id, format!("discord_{OTHER}"));
    assert!(
        info.privileges.contains(&format!("eventId:{}", main["id"]))
            && info.privileges.contains(&format!("virtualEventId:{ve_id}"))
            && info.privileges.contains("role:viewerRole"),
        "{}",
        info.privileges
    );

    // Ending cancels the main event; the virtual event stays as the webinar's record.
    end(&host, &id, &url).await;
    let main_now = k
        .events()
        .into_iter()
        .find(|e| e["id"] == main["id"])
        .unwrap();
    assert_eq!(main_now["status"], 1, "cancelled");
    assert!(
        k.virtual_events()
            .iter()
            .any(|v| v["id"] == ve_num && v["status"] == 2)
    );
    let listed = command(&host, "kaltura-list", json!([]), OTHER, PLAIN).await;
    assert!(text_of(&listed).contains("No active meetings"), "{listed}");
    host.stop().await;
}

#[tokio::test]
async fn meetings_run_on_rooms_and_a_recording_reaches_only_the_rooms_guild() {
    let host = start(all_backends()).await;
    let k = host.kaltura.as_ref().unwrap();
    let started = start_meeting(&host, "meeting", "Standup").await;
    let id = started_id(&started);
    let room = k
        .rooms()
        .into_iter()
        .find(|r| r["id"] == id.as_str())
        .unwrap_or_else(|| panic!("a room entry for {id}"));
    assert_eq!(room["objectType"], "KalturaRoomEntry");
    assert_eq!(room["roomType"], 1);
    assert_eq!(room["userId"], format!("discord_{USER}"));

    // A classroom still goes to scheduled events; the list shows both.
    let classroom = started_id(&start_meeting(&host, "classroom", "Lab").await);
    assert!(classroom.chars().all(|c| c.is_ascii_digit()), "{classroom}");
    let listed = command(&host, "kaltura-list", json!([]), OTHER, PLAIN).await;
    let ids = button_ids(&listed);
    for m in [&id, &classroom] {
        assert!(
            ids.contains(&format!("kaltura-meetings:kaltura-join:{m}")),
            "{m} in {ids:?}"
        );
    }

    // Joining names the room; the owner joins as a moderator.
    let (url, info) = join(&host, &id, USER, "Standup").await;
    assert!(url.contains("/room/launch?"), "{url}");
    assert!(
        info.privileges.contains(&format!("roomId:{id}"))
            && info.privileges.contains("role:adminRole"),
        "{}",
        info.privileges
    );

    // Ending closes the room's window; the room stays for its recording.
    end(&host, &id, &url).await;

    // Kaltura records the session and attaches the recording to the room: the room's
    // change notification becomes "recording ready" in this guild, and only here.
    let recorded = k.record_room(&id).unwrap();
    let n = k.room_changed_notification(&id, 7001).unwrap();
    let (status, body) = k
        .deliver_notification(&format!("{}/webhooks/kaltura", host.base), &n)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let posted = eventually("the recording-ready message", || {
        host.standin.channel_messages(RECORDINGS).into_iter().next()
    })
    .await;
    let content = posted["content"].as_str().unwrap();
    assert!(
        content.contains("The recording **Standup** is ready") && content.contains(&recorded),
        "{content}"
    );
    host.settled().await;
    assert!(
        host.stores
            .outbox
            .list(NEIGHBOUR, None, 10, None)
            .await
            .unwrap()
            .is_empty(),
        "a room of one guild is not news for another"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_backend_the_operator_has_not_turned_on_is_refused_with_what_to_change() {
    let host = start(json!(["scheduled_events"])).await;
    let k = host.kaltura.as_ref().unwrap();
    let refused = start_meeting(&host, "webinar", "Launch").await;
    let text = text_of(&refused);
    assert!(
        text.contains("virtual events")
            && text.contains("kaltura.meetings.webinar")
            && text.contains("kaltura.meeting_backends"),
        "{text}"
    );
    assert!(is_ephemeral(&refused));
    assert!(
        !k.calls()
            .iter()
            .any(|c| c.service == "virtualevent_virtualevent"),
        "nothing was created"
    );
    // What the operator allows still works.
    let classroom = started_id(&start_meeting(&host, "classroom", "Lab").await);
    assert!(classroom.chars().all(|c| c.is_ascii_digit()), "{classroom}");
    host.stop().await;
}
