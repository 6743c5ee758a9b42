//! The Kaltura stand-in answers like the real server: KS validation, flat form and JSON
//! parameters, list/search semantics, multirequest, errors at HTTP 200, injected faults.

use kaltura_ks::{KsRequest, SessionType};
use kd_testkit::kaltura::{FaultKind, KalturaFault, KalturaOptions, KalturaStandIn, now};
use serde_json::{Value, json};

async fn standin() -> KalturaStandIn {
    KalturaStandIn::start("127.0.0.1:0".parse().unwrap(), KalturaOptions::default())
        .await
        .unwrap()
}

fn ks(k: &KalturaStandIn, secret: &str, kind: SessionType, expiry: i64) -> String {
    KsRequest {
        partner_id: k.partner_id(),
        user_id: "tester",
        session_type: kind,
        expiry,
        privileges: "",
    }
    .sign(secret)
}

async fn post_json(k: &KalturaStandIn, service_action: &str, body: Value) -> Value {
    let (service, action) = service_action.split_once('.').unwrap();
    reqwest::Client::new()
        .post(format!(
            "{}/api_v3/service/{service}/action/{action}?format=1",
            k.url
        ))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn post_form(k: &KalturaStandIn, service_action: &str, form: &[(&str, &str)]) -> Value {
    let (service, action) = service_action.split_once('.').unwrap();
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api_v3/service/{service}/action/{action}",
            k.url
        ))
        .form(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "API errors come back with HTTP 200");
    res.json().await.unwrap()
}

#[tokio::test]
async fn ks_validation_rejects_wrong_secret_tampered_and_expired() {
    let k = standin().await;
    let good = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    let ok = post_json(&k, "media.list", json!({"ks": good})).await;
    assert_eq!(ok["objectType"], "KalturaMediaListResponse", "{ok}");

    let wrong = ks(
        &k,
        "not-the-partner-secret",
        SessionType::Admin,
        now() + 600,
    );
    let r = post_json(&k, "media.list", json!({"ks": wrong})).await;
    assert_eq!(r["objectType"], "KalturaAPIException");
    assert_eq!(r["code"], "INVALID_KS");

    // Flip one character inside the ciphertext.
    let mut tampered: Vec<char> = good.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == 'A' { 'B' } else { 'A' };
    let tampered: String = tampered.into_iter().collect();
    let r = post_json(&k, "media.list", json!({"ks": tampered})).await;
    assert_eq!(r["code"], "INVALID_KS", "{r}");

    let expired = ks(&k, k.admin_secret(), SessionType::Admin, now() - 1);
    let r = post_json(&k, "media.list", json!({"ks": expired})).await;
    assert_eq!(r["code"], "INVALID_KS");
    assert_eq!(r["args"]["KSID"], "EXPIRED");

    let r = post_json(&k, "media.list", json!({})).await;
    assert_eq!(r["code"], "MISSING_KS");
}

#[tokio::test]
async fn session_start_signs_with_the_partner_secret_only() {
    let k = standin().await;
    let pid = k.partner_id().to_string();
    let r = post_form(
        &k,
        "session.start",
        &[
            ("format", "1"),
            ("secret", k.admin_secret()),
            ("partnerId", &pid),
            ("type", "2"),
            ("userId", "u1"),
            ("expiry", "60"),
        ],
    )
    .await;
    let ks = r.as_str().expect("a JSON string result");
    let info = kaltura_ks::verify(ks, k.partner_id(), &[k.admin_secret()], now()).unwrap();
    assert_eq!(info.user_id, "u1");
    assert_eq!(info.session_type, SessionType::Admin);
    assert!(info.expiry <= now() + 60);

    let r = post_form(
        &k,
        "session.start",
        &[("secret", "nope"), ("partnerId", &pid)],
    )
    .await;
    assert_eq!(r["code"], "START_SESSION_ERROR");
}

#[tokio::test]
async fn flat_form_filters_pager_and_order_like_the_official_clients() {
    let k = standin().await;
    let good = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    let r = post_form(
        &k,
        "media.list",
        &[
            ("ks", &good),
            ("filter:objectType", "KalturaMediaEntryFilter"),
            ("filter:freeText", "all hands"),
            ("filter:orderBy", "+name"),
            ("pager:pageSize", "2"),
            ("pager:pageIndex", "1"),
        ],
    )
    .await;
    assert_eq!(r["totalCount"], 3, "{r}");
    let names: Vec<&str> = r["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["All hands - February", "All hands - January"]);

    let r = post_json(&k, "media.get", json!({"ks": good, "entryId": "0_nope"})).await;
    assert_eq!(r["code"], "ENTRY_ID_NOT_FOUND");
    assert_eq!(r["args"]["ENTRY_ID"], "0_nope");

    let id = &k.ready_entry_ids()[0];
    let r = post_json(&k, "media.get", json!({"ks": good, "entryId": id})).await;
    assert_eq!(r["id"], id.as_str());
    assert!(
        r["thumbnailUrl"]
            .as_str()
            .unwrap()
            .contains("/thumbnail/entry_id/")
    );
}

#[tokio::test]
async fn esearch_matches_terms_and_can_be_switched_off() {
    let k = standin().await;
    let good = ks(&k, k.admin_secret(), SessionType::User, now() + 600);
    let body = json!({"ks": good, "searchParams": {"objectType": "KalturaESearchEntryParams",
        "searchOperator": {"objectType": "KalturaESearchEntryOperator", "operator": 1,
        "searchItems": [{"objectType": "KalturaESearchUnifiedItem", "searchTerm": "webassembly", "itemType": 2, "addHighlight": true}]}},
        "pager": {"pageSize": 10}});
    let r = post_json(&k, "elasticsearch_esearch.searchEntry", body.clone()).await;
    assert_eq!(r["totalCount"], 2, "{r}");
    assert_eq!(r["objects"][0]["objectType"], "KalturaESearchEntryResult");
    assert!(r["objects"][0]["object"]["name"].is_string());
    k.set_esearch(false);
    let r = post_json(&k, "elasticsearch_esearch.searchEntry", body).await;
    assert_eq!(r["code"], "SERVICE_FORBIDDEN");
}

#[tokio::test]
async fn multirequest_references_earlier_results_and_keeps_going_after_a_failure() {
    let k = standin().await;
    let good = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    let res: Value = reqwest::Client::new()
        .post(format!("{}/api_v3/service/multirequest", k.url))
        .form(&[
            ("format", "1"),
            ("ks", good.as_str()),
            ("1:service", "media"),
            ("1:action", "list"),
            ("1:filter:freeText", "security"),
            ("2:service", "media"),
            ("2:action", "get"),
            ("2:entryId", "{1:result:objects:0:id}"),
            ("3:service", "media"),
            ("3:action", "get"),
            ("3:entryId", "0_missing"),
            ("4:service", "user"),
            ("4:action", "add"),
            ("4:user:id", "discord_1"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let arr = res.as_array().unwrap();
    assert_eq!(arr.len(), 4);
    assert_eq!(arr[1]["id"], arr[0]["objects"][0]["id"]);
    assert_eq!(arr[2]["code"], "ENTRY_ID_NOT_FOUND");
    assert_eq!(arr[3]["id"], "discord_1");
    assert!(k.user("discord_1").is_some());
}

#[tokio::test]
async fn users_and_meetings_need_an_admin_session_to_change() {
    let k = standin().await;
    let user = ks(&k, k.admin_secret(), SessionType::User, now() + 600);
    let admin = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    let r = post_json(&k, "user.add", json!({"ks": user, "user": {"id": "x"}})).await;
    assert_eq!(r["code"], "SERVICE_FORBIDDEN");
    let r = post_json(&k, "user.get", json!({"ks": user, "userId": "x"})).await;
    assert_eq!(r["code"], "INVALID_USER_ID");
    post_json(&k, "user.add", json!({"ks": admin, "user": {"id": "x"}})).await;
    let r = post_json(&k, "user.add", json!({"ks": admin, "user": {"id": "x"}})).await;
    assert_eq!(r["code"], "DUPLICATE_USER_BY_ID");

    let ev = json!({"objectType": "KalturaMeetingScheduleEvent", "summary": "Standup",
        "startDate": now(), "endDate": now() + 3600, "ownerId": "x", "tags": "kdhost,guild:1"});
    let created = post_json(
        &k,
        "schedule_scheduleevent.add",
        json!({"ks": admin, "scheduleEvent": ev}),
    )
    .await;
    let id = created["id"].as_i64().expect("an id");
    assert_eq!(created["status"], 2);
    let listed = post_json(
        &k,
        "schedule_scheduleevent.list",
        json!({"ks": user, "filter": {"statusEqual": 2, "tagsLike": "guild:1"}}),
    )
    .await;
    assert_eq!(listed["totalCount"], 1);
    post_json(
        &k,
        "schedule_scheduleevent.cancel",
        json!({"ks": admin, "scheduleEventId": id}),
    )
    .await;
    let listed = post_json(
        &k,
        "schedule_scheduleevent.list",
        json!({"ks": user, "filter": {"statusEqual": 2}}),
    )
    .await;
    assert_eq!(listed["totalCount"], 0);
    let r = post_json(
        &k,
        "schedule_scheduleevent.get",
        json!({"ks": user, "scheduleEventId": 99}),
    )
    .await;
    assert_eq!(r["code"], "INVALID_OBJECT_ID");
}

#[tokio::test]
async fn injected_faults_hit_the_next_matching_calls() {
    let k = standin().await;
    let good = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    k.inject(KalturaFault {
        action: "media.list".into(),
        kind: FaultKind::Status { status: 503 },
        count: 1,
    });
    k.inject(KalturaFault {
        action: "media.list".into(),
        kind: FaultKind::Drop,
        count: 1,
    });
    k.inject(KalturaFault {
        action: "media.list".into(),
        kind: FaultKind::ExpireKs,
        count: 1,
    });
    let url = format!("{}/api_v3/service/media/action/list", k.url);
    let c = reqwest::Client::new();
    let r = c
        .post(&url)
        .json(&json!({"ks": good}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let dropped = match c.post(&url).json(&json!({"ks": good})).send().await {
        Err(_) => true,
        Ok(r) => r.bytes().await.is_err(),
    };
    assert!(dropped, "the connection drops before a complete answer");
    let r = post_json(&k, "media.list", json!({"ks": good})).await;
    assert_eq!(r["args"]["KSID"], "EXPIRED");
    let r = post_json(&k, "media.list", json!({"ks": good})).await;
    assert_eq!(r["objectType"], "KalturaMediaListResponse");
    let calls = k.calls();
    assert_eq!(calls.last().unwrap().ks_type, Some(2));
}

/// Kaltura's official Python client (`kalturaapiclient`, XML only) works against the
/// stand-in: `format=2` answers are Kaltura's XML, errors included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kalturas_official_python_client_reads_the_xml_answers() {
    let k = standin().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/official_client.py");
    let out = tokio::process::Command::new("python3")
        .arg(script)
        .arg(&k.url)
        .arg(k.partner_id().to_string())
        .arg(k.admin_secret())
        .output()
        .await
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("official client ok"),
        "the official client failed (install it with `pip install -r testkit/python/requirements.txt`):\n{text}"
    );
    // It asked for XML, and every call reached the stand-in.
    let calls = k.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.action == "list" && c.ks_type == Some(2))
    );
    assert!(
        calls
            .iter()
            .any(|c| c.error.as_deref() == Some("ENTRY_ID_NOT_FOUND"))
    );
}

#[tokio::test]
async fn virtual_events_and_their_schedule_events_as_kaltura_keeps_them() {
    let k = standin().await;
    let user = ks(&k, k.admin_secret(), SessionType::User, now() + 600);
    let admin = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    let call = |action: &'static str, body: Value| post_json(&k, action, body);
    let r = call(
        "virtualevent_virtualevent.add",
        json!({"ks": user, "virtualEvent": {"name": "x"}}),
    )
    .await;
    assert_eq!(r["code"], "SERVICE_FORBIDDEN");
    let r = call(
        "virtualevent_virtualevent.add",
        json!({"ks": admin, "virtualEvent": {"description": "no name"}}),
    )
    .await;
    assert_eq!(r["code"], "PROPERTY_VALIDATION_CANNOT_BE_NULL");

    let ve = call(
        "virtualevent_virtualevent.add",
        json!({"ks": admin, "virtualEvent": {"objectType": "KalturaVirtualEvent", "name": "Launch webinar",
            "tags": "kdhost,guild:1", "status": 3, "id": 1}}),
    )
    .await;
    assert_eq!(ve["objectType"], "KalturaVirtualEvent");
    assert_eq!(ve["status"], 2, "the server's, not the caller's");
    let id = ve["id"].as_i64().unwrap();
    // Its main event: a schedule event pointing at it; a wrong sub-type or event is refused.
    let sched = |sub: i64, event: i64| {
        json!({"ks": admin, "scheduleEvent": {"objectType": "KalturaVirtualScheduleEvent", "summary": "Main",
            "startDate": now() + 60, "endDate": now() + 3660, "virtualEventId": event, "virtualScheduleEventSubType": sub}})
    };
    let r = call("schedule_scheduleevent.add", sched(4, id)).await;
    assert_eq!(r["code"], "INVALID_ENUM_VALUE");
    let r = call("schedule_scheduleevent.add", sched(3, 999)).await;
    assert_eq!(r["code"], "VIRTUAL_EVENT_NOT_FOUND");
    let main = call("schedule_scheduleevent.add", sched(3, id)).await;
    let main_id = main["id"].as_i64().expect("a schedule event");
    let ve = call(
        "virtualevent_virtualevent.update",
        json!({"ks": admin, "id": id, "virtualEvent": {"mainEventScheduleEventId": main_id, "eventUrl": "https://events.example/launch"}}),
    )
    .await;
    assert_eq!(ve["mainEventScheduleEventId"], main_id);
    let got = call(
        "virtualevent_virtualevent.get",
        json!({"ks": user, "id": id}),
    )
    .await;
    assert_eq!(got["eventUrl"], "https://events.example/launch");
    let listed = call(
        "virtualevent_virtualevent.list",
        json!({"ks": user, "filter": {"tagsLike": "guild:1"}}),
    )
    .await;
    assert_eq!(
        (listed["objectType"].as_str(), listed["totalCount"].as_i64()),
        (Some("KalturaVirtualEventListResponse"), Some(1))
    );
    call(
        "virtualevent_virtualevent.delete",
        json!({"ks": admin, "id": id}),
    )
    .await;
    let r = call(
        "virtualevent_virtualevent.get",
        json!({"ks": user, "id": id}),
    )
    .await;
    assert_eq!(r["code"], "VIRTUAL_EVENT_NOT_FOUND");
    let listed = call(
        "virtualevent_virtualevent.list",
        json!({"ks": user, "filter": {"statusEqual": 3}}),
    )
    .await;
    assert_eq!(listed["totalCount"], 1, "kept as deleted");
}

#[tokio::test]
async fn rooms_are_entries_with_a_type_a_template_and_a_recording() {
    let k = standin().await;
    let user = ks(&k, k.admin_secret(), SessionType::User, now() + 600);
    let admin = ks(&k, k.admin_secret(), SessionType::Admin, now() + 600);
    let call = |action: &'static str, body: Value| post_json(&k, action, body);
    let r = call(
        "room_room.add",
        json!({"ks": admin, "room": {"name": "x", "roomType": 7}}),
    )
    .await;
    assert_eq!(r["code"], "INVALID_ENUM_VALUE");
    let room = call(
        "room_room.add",
        json!({"ks": admin, "room": {"objectType": "KalturaRoomEntry", "name": "Stand-up", "roomType": 1, "tags": "guild:1"}}),
    )
    .await;
    assert_eq!(room["objectType"], "KalturaRoomEntry");
    let id = room["id"].as_str().unwrap().to_string();
    let breakout = call(
        "room_room.add",
        json!({"ks": admin, "room": {"name": "Breakout", "roomType": 2, "templateRoomEntryId": id}}),
    )
    .await;
    assert_eq!(breakout["templateRoomEntryId"], id.as_str());
    let r = call(
        "room_room.add",
        json!({"ks": admin, "room": {"roomType": 2, "templateRoomEntryId": "1_nothere"}}),
    )
    .await;
    assert_eq!(r["code"], "ENTRY_ID_NOT_FOUND");
    let listed = call(
        "room_room.list",
        json!({"ks": user, "filter": {"roomTypeEqual": 2}}),
    )
    .await;
    assert_eq!(listed["totalCount"], 1);
    // A recording attaches to an existing entry only.
    let r = call(
        "room_room.attachRecordedEntry",
        json!({"ks": admin, "roomId": id, "recordedEntryId": "0_nothere"}),
    )
    .await;
    assert_eq!(r["code"], "ENTRY_ID_NOT_FOUND");
    let recorded = k.ready_entry_ids()[0].clone();
    let r = call(
        "room_room.attachRecordedEntry",
        json!({"ks": user, "roomId": id, "recordedEntryId": recorded}),
    )
    .await;
    assert_eq!(r["code"], "SERVICE_FORBIDDEN");
    let room = call(
        "room_room.attachRecordedEntry",
        json!({"ks": admin, "roomId": id, "recordedEntryId": recorded}),
    )
    .await;
    assert_eq!(room["recordedEntryId"], recorded.as_str());
    call("room_room.delete", json!({"ks": admin, "roomId": id})).await;
    let r = call("room_room.get", json!({"ks": user, "roomId": id})).await;
    assert_eq!(r["code"], "ENTRY_ID_NOT_FOUND");
}
