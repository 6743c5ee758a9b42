//! The Kaltura commands end to end: signed interactions → host → plugin → `kaltura`
//! capability → Kaltura stand-in → reply. Also: sessions (scoped USER sessions reach
//! people, ADMIN sessions never do), re-signing on an expired session, the eSearch
//! fallback, faults, permissions on buttons, and the roles mapping.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::members::*;
use common::*;
use kdhost::kaltura::ks::{self, SessionType};
use serde_json::{Value, json};
use testkit::kaltura::{FaultKind, KalturaFault, KalturaStandIn};

/// Every log line of this test binary, to prove no ADMIN session is ever logged.
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("kdhost=trace,info")
            .with_ansi(false)
            .with_writer(move || LogSink(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn start(extra: impl FnOnce(&mut Setup)) -> Host {
    logs();
    start_with_kaltura(extra).await
}

fn k(host: &Host) -> &KalturaStandIn {
    host.kaltura.as_ref().unwrap()
}

fn verify(kaltura: &KalturaStandIn, session: &str) -> ks::KsInfo {
    verify_session(kaltura, session)
}

#[tokio::test]
async fn video_search_play_embed_share_and_watch_together() {
    let host = start(|_| {}).await;
    let kal = k(&host);
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("security")), ("limit", json!(3))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(is_ephemeral(&body), "search results are personal");
    let embeds = body["data"]["embeds"].as_array().unwrap();
    assert_eq!(embeds.len(), 3);
    assert!(
        embeds[0]["thumbnail"]["url"]
            .as_str()
            .unwrap()
            .contains("/thumbnail/entry_id/")
    );
    assert!(text_of(&body).contains("3 of 4 videos"), "{body}");
    let searched = kal
        .calls()
        .into_iter()
        .find(|c| c.action == "searchEntry")
        .unwrap();
    assert_eq!(
        searched.ks_privileges.as_deref(),
        Some("privacycontext:discord,enableentitlement"),
        "the guild's privileges, entitlement on"
    );

    // Play: a personal link with a USER session scoped to this entry.
    let play = button_id(&body, ":play:");
    let entry = play.rsplit(':').next().unwrap().to_string();
    let played = button(&host, &play, USER, &[], PLAIN).await;
    assert!(is_ephemeral(&played));
    let url = link(&played);
    assert!(
        url.contains("/embedPlaykitJs/uiconf_id/") && url.contains(&entry),
        "{url}"
    );
    let info = verify(kal, &ks_in(&url));
    assert_eq!(info.session_type, SessionType::User);
    assert_eq!(info.user_id, format!("discord_{USER}"));
    assert!(
        info.privileges.contains(&format!("sview:{entry}")),
        "{}",
        info.privileges
    );
    assert!(info.expiry <= kdhost::kaltura::sessions::now() + 3600);
    assert!(
        kal.user(&format!("discord_{USER}")).is_some(),
        "the Kaltura user was ensured"
    );
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("allows viewing this entry")
    );

    // Embed code: no session inside.
    let code = button(&host, &button_id(&body, ":embed:"), USER, &[], PLAIN).await;
    let text = text_of(&code);
    assert!(
        text.contains("<iframe") && text.contains(&entry) && !text.contains("ks="),
        "{text}"
    );

    // Share: public, with Play for everyone.
    let shared = button(&host, &button_id(&body, ":share:"), USER, &[], PLAIN).await;
    assert!(!is_ephemeral(&shared), "a share is public");
    assert_eq!(
        shared["data"]["embeds"][0]["footer"]["text"],
        format!("Kaltura · {entry}")
    );
    button_id(&shared, ":play:");

    // Watch Together without Activities: a browser link that names the launching control.
    let watch = button_id(&body, ":watch:");
    let launched = button(&host, &watch, USER, &[], PLAIN).await;
    let url = link(&launched);
    assert!(
        url.starts_with(&host.base) && url.contains("/activity/?launch="),
        "{url}"
    );
    assert!(url.contains(&entry));
    let pending = host
        .shared
        .launches
        .get("200000000000000001", USER)
        .await
        .unwrap();
    assert_eq!(pending.custom_id, watch);
    host.stop().await;
}

#[tokio::test]
async fn search_handles_odd_text_autocompletes_and_falls_back_without_esearch() {
    let host = start(|_| {}).await;
    let kal = k(&host);
    for odd in [
        "\"quoted\" title",
        "Café ☕",
        &"x".repeat(2000),
        "'; DROP TABLE entries; --",
    ] {
        let body = command(
            &host,
            "kaltura-video-search",
            opts(&[("query", json!(odd))]),
            USER,
            PLAIN,
        )
        .await;
        assert_eq!(body["type"], 4, "{body}");
        assert!(is_ephemeral(&body));
    }
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("Café ☕"))]),
        USER,
        PLAIN,
    )
    .await;
    assert_eq!(
        body["data"]["embeds"][0]["title"],
        "Café ☕ and croissants 🥐"
    );
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("\"quoted\""))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(text_of(&body).contains("1 of 1"), "{body}");

    // Autocomplete suggests titles.
    let mut p = host.standin.command(
        "kaltura-video-search",
        json!([{"name": "query", "type": 3, "value": "all hands", "focused": true}]),
        GUILD,
        USER,
        &[],
    );
    p["type"] = json!(4);
    let body = send(&host, &p).await;
    assert_eq!(body["type"], 8);
    assert_eq!(
        body["data"]["choices"].as_array().unwrap().len(),
        3,
        "{body}"
    );

    // Without eSearch the same search goes through media.list with freeText.
    kal.set_esearch(false);
    kal.clear_calls();
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("webassembly"))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(text_of(&body).contains("2 of 2"), "{body}");
    let calls: Vec<String> = kal
        .calls()
        .iter()
        .map(|c| format!("{}.{}", c.service, c.action))
        .collect();
    assert!(calls.contains(&"media.list".to_string()), "{calls:?}");
    host.stop().await;
}

#[tokio::test]
async fn meetings_start_list_join_share_and_end_with_roles_enforced_by_the_host() {
    let host = start(|_| {}).await;
    let kal = k(&host);
    let started = command(
        &host,
        "kaltura-start",
        opts(&[
            ("type", json!("webinar")),
            ("title", json!("Quarterly review")),
            ("description", json!("Numbers")),
        ]),
        USER,
        PLAIN,
    )
    .await;
    assert!(is_ephemeral(&started));
    let id = started_id(&started);
    let ev = kal
        .events()
        .into_iter()
        .find(|e| e["id"].as_i64() == id.parse().ok())
        .unwrap();
    assert_eq!(ev["objectType"], "KalturaMeetingScheduleEvent");
    assert_eq!(ev["ownerId"], format!("discord_{USER}"));
    assert!(
        ev["tags"]
            .as_str()
            .unwrap()
            .contains(&format!("kd-guild-{GUILD}"))
    );
    assert!(
        kal.calls()
            .iter()
            .any(|c| c.multi && c.action == "get" && c.service == "user"),
        "user ensured by multirequest"
    );

    // The list is public and has a Join button per meeting.
    let listed = command(&host, "kaltura-list", json!([]), OTHER, PLAIN).await;
    assert!(!is_ephemeral(&listed));
    assert!(text_of(&listed).contains("Active meetings"));
    assert_eq!(
        button_id(&listed, ":kaltura-join:"),
        format!("kaltura-meetings:kaltura-join:{id}")
    );

    // Join: a viewer gets viewerRole, a "Mods" member (mapped by name) adminRole.
    let joined = command(
        &host,
        "kaltura-join",
        opts(&[("meeting-id", json!(id))]),
        OTHER,
        PLAIN,
    )
    .await;
    let info = verify(kal, &ks_in(&link(&joined)));
    assert_eq!(info.session_type, SessionType::User);
    assert!(
        info.privileges.contains(&format!("eventId:{id}"))
            && info.privileges.contains("role:viewerRole"),
        "{}",
        info.privileges
    );
    let joined = button(
        &host,
        &format!("kaltura-meetings:kaltura-join:{id}"),
        OTHER,
        &["800000000000000005"],
        PLAIN,
    )
    .await;
    let join_url = link(&joined);
    let info = verify(kal, &ks_in(&join_url));
    assert!(
        info.privileges.contains("role:adminRole"),
        "{}",
        info.privileges
    );
    let page = reqwest::get(&join_url).await.unwrap().text().await.unwrap();
    assert!(
        page.contains("Joined “Quarterly review”") && page.contains("role adminRole"),
        "{page}"
    );

    // Share uses the guild's template, publicly.
    let shared = button(
        &host,
        &format!("kaltura-meetings:kaltura-start:share:{id}"),
        USER,
        &[],
        PLAIN,
    )
    .await;
    assert!(!is_ephemeral(&shared));
    assert_eq!(
        shared["data"]["content"],
        format!("Join Quarterly review (webinar) by <@{USER}>!")
    );

    // Autocomplete over active meetings.
    let mut p = host.standin.command(
        "kaltura-end",
        json!([{"name": "meeting-id", "type": 3, "value": "quart", "focused": true}]),
        GUILD,
        USER,
        &[],
    );
    p["type"] = json!(4);
    let body = send(&host, &p).await;
    assert_eq!(body["data"]["choices"][0]["value"], id.as_str(), "{body}");

    // Ending: not someone else's meeting (button or command), but the owner can.
    let refused = button(
        &host,
        &format!("kaltura-meetings:kaltura-end:{id}"),
        OTHER,
        &[],
        PLAIN,
    )
    .await;
    assert!(
        text_of(&refused).contains("Only the meeting's owner"),
        "{refused}"
    );
    assert!(is_ephemeral(&refused));
    let ended = command(
        &host,
        "kaltura-end",
        opts(&[("meeting-id", json!(id))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(text_of(&ended).contains("has ended"), "{ended}");
    assert_eq!(
        kal.events()
            .into_iter()
            .find(|e| e["id"].as_i64() == id.parse().ok())
            .unwrap()["status"],
        1
    );
    let old = reqwest::get(&join_url).await.unwrap().status();
    assert_eq!(
        old, 410,
        "the link no longer gets in once the meeting ended"
    );
    let listed = command(&host, "kaltura-list", json!([]), OTHER, PLAIN).await;
    assert!(text_of(&listed).contains("No active meetings"), "{listed}");

    // A guild admin (Discord permission, or the mapped role) may end anyone's meeting.
    let second = command(
        &host,
        "kaltura-start",
        opts(&[("type", json!("meeting")), ("title", json!("Sync"))]),
        USER,
        PLAIN,
    )
    .await;
    let id2 = button_id(&second, ":kaltura-end:")
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let by_admin = button(
        &host,
        &format!("kaltura-meetings:kaltura-end:{id2}"),
        OTHER,
        &["800000000000000009"],
        PLAIN,
    )
    .await;
    assert!(text_of(&by_admin).contains("has ended"), "{by_admin}");

    // Unknown meetings are "not found".
    let missing = command(
        &host,
        "kaltura-join",
        opts(&[("meeting-id", json!("999999"))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(
        text_of(&missing).contains("There is no meeting `999999`"),
        "{missing}"
    );
    let missing = command(
        &host,
        "kaltura-join",
        opts(&[("meeting-id", json!("not-a-number"))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(
        text_of(&missing).contains("There is no meeting"),
        "{missing}"
    );
    host.stop().await;
}

#[tokio::test]
async fn buttons_are_held_to_their_commands_permissions() {
    let host = start(|s| {
        s.guild_configs.push((
            GUILD.into(),
            json!({"commands": {"kaltura-end": {"allowed_roles": ["800000000000000005"]}}}),
        ));
    })
    .await;
    let started = command(
        &host,
        "kaltura-start",
        opts(&[("type", json!("meeting")), ("title", json!("T"))]),
        USER,
        PLAIN,
    )
    .await;
    let end = button_id(&started, ":kaltura-end:");
    // The owner without the role the guild requires for /kaltura-end: refused before the plugin runs.
    let refused = button(&host, &end, USER, &[], PLAIN).await;
    assert!(
        text_of(&refused).contains("may not use /kaltura-end"),
        "{refused}"
    );
    let ok = button(&host, &end, USER, &["800000000000000005"], PLAIN).await;
    assert!(text_of(&ok).contains("has ended"), "{ok}");
    // /kaltura-get-ks is admins-only by Discord permission, so are any controls of it.
    let denied = command(&host, "kaltura-get-ks", json!([]), OTHER, PLAIN).await;
    assert!(text_of(&denied).contains("Only server admins"), "{denied}");
    host.stop().await;
}

#[tokio::test]
async fn get_ks_shows_the_callers_own_user_session_never_an_admin_one() {
    let host = start(|_| {}).await;
    let body = command(&host, "kaltura-get-ks", json!([]), USER, "8").await;
    assert!(is_ephemeral(&body));
    let embed = &body["data"]["embeds"][0];
    assert_eq!(embed["fields"][0]["value"], "USER (0)");
    assert_eq!(embed["fields"][1]["value"], format!("`discord_{USER}`"));
    assert_eq!(embed["fields"][3]["value"], "`privacycontext:discord`");
    let shown = sessions_in(&body.to_string());
    assert_eq!(shown.len(), 1);
    let info = verify(k(&host), &shown[0]);
    assert_eq!(info.session_type, SessionType::User);
    assert_eq!(info.user_id, format!("discord_{USER}"));
    host.stop().await;
}

#[tokio::test]
async fn expired_sessions_are_re_signed_and_5xx_reads_retried_transparently() {
    let host = start(|_| {}).await;
    let kal = k(&host);
    kal.inject(KalturaFault {
        action: "searchEntry".into(),
        kind: FaultKind::ExpireKs,
        count: 1,
    });
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("talk"))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(text_of(&body).contains("videos matching"), "{body}");
    let errors: Vec<_> = kal.calls().iter().filter_map(|c| c.error.clone()).collect();
    assert_eq!(
        errors,
        ["INVALID_KS"],
        "one refusal, then a fresh session worked"
    );

    kal.clear_calls();
    kal.inject(KalturaFault {
        action: "media.get".into(),
        kind: FaultKind::Status { status: 503 },
        count: 1,
    });
    kal.inject(KalturaFault {
        action: "media.get".into(),
        kind: FaultKind::Drop,
        count: 1,
    });
    let id = &kal.ready_entry_ids()[0];
    let shared = button(
        &host,
        &format!("kaltura-videos:kaltura-video-search:share:{id}"),
        USER,
        &[],
        PLAIN,
    )
    .await;
    assert!(
        !is_ephemeral(&shared),
        "retried past a 503 and a dropped connection: {shared}"
    );

    // Unknown entries are "not found".
    let missing = button(
        &host,
        "kaltura-videos:kaltura-video-search:play:0_missing1",
        USER,
        &[],
        PLAIN,
    )
    .await;
    assert!(
        text_of(&missing).contains("There is no video `0_missing1`"),
        "{missing}"
    );
    host.stop().await;
}

#[tokio::test]
async fn slow_or_unreachable_kaltura_gets_a_clear_answer_and_the_host_keeps_serving() {
    let host = start(|_| {}).await;
    let kal = k(&host);
    // Slower than Discord's deadline: the host defers, then edits in the answer.
    kal.inject(KalturaFault {
        action: "schedule_scheduleevent.list".into(),
        kind: FaultKind::Latency { ms: 3200 },
        count: 1,
    });
    let p = member(
        host.standin
            .command("kaltura-list", json!([]), GUILD, USER, &[]),
        USER,
        &[],
        PLAIN,
    );
    let token = p["token"].as_str().unwrap().to_string();
    let body = send(&host, &p).await;
    assert_eq!(body["type"], 5, "deferred before Discord's 3 s");
    let answered = eventually("the late answer", || {
        host.standin.interaction(&token).and_then(|st| st.original)
    })
    .await;
    assert!(
        answered.to_string().contains("No active meetings"),
        "{answered}"
    );
    host.stop().await;

    // Unreachable: a clear, ephemeral "try again" while other commands keep working.
    let host = start(|s| s.kaltura_unreachable = true).await;
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("x"))]),
        USER,
        PLAIN,
    )
    .await;
    assert!(is_ephemeral(&body));
    assert_eq!(
        text_of(&body),
        "Kaltura is unavailable, try again in a minute."
    );
    let (status, help) = host.command("help", json!([])).await;
    assert_eq!(status, 200);
    assert!(text_of(&help).contains("Commands"), "{help}");
    host.stop().await;
}

#[tokio::test]
async fn a_guild_without_kaltura_config_is_told_what_to_set() {
    let host = start(|s| {
        s.default_config = Some(json!({}));
    })
    .await;
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("x"))]),
        USER,
        PLAIN,
    )
    .await;
    let text = text_of(&body);
    assert!(is_ephemeral(&body));
    assert!(
        text.contains("Kaltura is not set up for this server")
            && text.contains(&format!("config/guilds/{GUILD}.json")),
        "{text}"
    );
    host.stop().await;
}

#[tokio::test]
async fn no_admin_session_in_any_reply_or_log_line() {
    let host = start(|_| {}).await;
    let kal = k(&host);
    let mut seen = String::new();
    let search = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("talk")), ("limit", json!(3))]),
        USER,
        "8",
    )
    .await;
    seen.push_str(&search.to_string());
    for marker in [":play:", ":embed:", ":share:", ":watch:"] {
        seen.push_str(
            &button(&host, &button_id(&search, marker), USER, &[], "8")
                .await
                .to_string(),
        );
    }
    let started = command(
        &host,
        "kaltura-start",
        opts(&[("type", json!("classroom")), ("title", json!("Class"))]),
        USER,
        "8",
    )
    .await;
    seen.push_str(&started.to_string());
    for marker in [":kaltura-join:", ":share:", ":kaltura-end:"] {
        seen.push_str(
            &button(&host, &button_id(&started, marker), USER, &[], "8")
                .await
                .to_string(),
        );
    }
    seen.push_str(
        &command(&host, "kaltura-get-ks", json!([]), USER, "8")
            .await
            .to_string(),
    );
    kal.inject(KalturaFault {
        action: "".into(),
        kind: FaultKind::ExpireKs,
        count: 3,
    });
    seen.push_str(
        &command(&host, "kaltura-list", json!([]), USER, "8")
            .await
            .to_string(),
    );
    // The scan itself catches an ADMIN session (so a pass means something).
    let planted = ks::KsRequest {
        partner_id: kal.partner_id(),
        user_id: "x",
        session_type: SessionType::Admin,
        expiry: kdhost::kaltura::sessions::now() + 60,
        privileges: "",
    }
    .sign(kal.admin_secret());
    let caught = std::panic::catch_unwind(|| {
        assert_no_admin_session(kal, &format!("text {planted} text"), "a planted string")
    });
    assert!(caught.is_err());
    // Sessions did reach people (USER ones) and the host did use ADMIN ones with Kaltura.
    assert!(!sessions_in(&seen).is_empty());
    assert!(kal.calls().iter().any(|c| c.ks_type == Some(2)));
    assert_no_admin_session(kal, &seen, "a reply");
    let log_text = String::from_utf8_lossy(&logs().lock().unwrap()).to_string();
    assert!(
        log_text.contains("Kaltura refused the session"),
        "the re-sign was logged"
    );
    assert_no_admin_session(kal, &log_text, "a log line");
    host.stop().await;
}

/// Presses a button until the answer satisfies `done`; returns that answer.
async fn press_until(host: &Host, custom_id: &str, done: impl Fn(&Value) -> bool) -> Value {
    eventually_async("the expected answer to the button", || async {
        let b = button(host, custom_id, USER, &[], PLAIN).await;
        done(&b).then_some(b)
    })
    .await
}

#[tokio::test]
async fn watch_together_launches_the_activity_for_people_in_voice() {
    let mut host = start(|s| s.activities = true).await;
    host.start_gateway();
    host.gateway_connected().await;
    let entry = k(&host).ready_entry_ids()[0].clone();
    let watch = format!("kaltura-videos:kaltura-video-search:watch:{entry}");

    // The gateway described the guild: nobody is in voice.
    host.standin.send_gateway_event(
        "GUILD_CREATE",
        json!({"id": GUILD, "name": "g", "voice_states": [], "unavailable": false}),
    );
    // (The gateway delivers events asynchronously: press until the answer changes.)
    let told = press_until(&host, &watch, |b| b["type"] == 4).await;
    assert!(
        text_of(&told).contains("Join a voice channel first"),
        "{told}"
    );
    assert!(is_ephemeral(&told));

    // Once Discord says the user is in a voice channel, the Activity launches (type 12) and
    // the host remembers which control launched it.
    host.standin.send_gateway_event(
        "VOICE_STATE_UPDATE",
        json!({"guild_id": GUILD, "channel_id": "200000000000000009", "user_id": USER, "session_id": "s",
               "deaf": false, "mute": false, "self_deaf": false, "self_mute": false, "self_video": false,
               "suppress": false, "request_to_speak_timestamp": null}),
    );
    let launched = press_until(&host, &watch, |b| b["type"] == 12).await;
    assert_eq!(launched["type"], 12, "{launched}");
    // The Activity asks the host what it was launched for (with the user's API token).
    let jwt = kdhost::api::auth::Jwt::new(
        &kdhost::config::secret::Secret::new(JWT_SECRET),
        Duration::from_secs(60),
    );
    let (token, _) = jwt
        .issue(USER, kdhost::api::auth::SubjectKind::Discord, "Ann")
        .unwrap();
    let asked: Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/activity/launch?channel_id=200000000000000001",
            host.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(asked["custom_id"], watch.as_str());
    assert_eq!(asked["plugin"], "kaltura-videos");
    let pending = host
        .shared
        .launches
        .get("200000000000000001", USER)
        .await
        .unwrap();
    assert_eq!(pending.custom_id, watch);
    host.stop().await;
}

#[tokio::test]
async fn categories_reach_plugins_and_many_results_get_a_picker() {
    let host = start(|s| {
        s.plugins = vec![("caps.wasm", "kd_fixture_caps")];
        s.plugins_json = Some(
            json!({"plugins": {"caps": {"grants": ["kaltura", "kv", "http", "discord", "config"]}},
                   "kaltura": {"guilds": {GUILD: {"privacy_contexts": ["discord"]}}}})
            .to_string(),
        );
    })
    .await;
    let body = command(&host, "categories", json!([]), USER, PLAIN).await;
    let text = text_of(&body);
    assert!(
        text.contains("Training>Security=6") && text.contains("Training=14;"),
        "{text}"
    );

    // More results than rows of buttons: a select menu picks one, then its buttons appear.
    let body = command(
        &host,
        "kaltura-video-search",
        opts(&[("query", json!("talk")), ("limit", json!(8))]),
        USER,
        PLAIN,
    )
    .await;
    assert_eq!(body["data"]["embeds"].as_array().unwrap().len(), 8);
    let select = &body["data"]["components"][0]["components"][0];
    assert_eq!(select["type"], 3, "{body}");
    assert_eq!(select["options"].as_array().unwrap().len(), 8);
    let entry = select["options"][3]["value"].as_str().unwrap().to_string();
    let mut p = host
        .standin
        .button(select["custom_id"].as_str().unwrap(), GUILD, USER);
    p["data"] = json!({"custom_id": select["custom_id"], "component_type": 3, "values": [entry]});
    let picked = send(&host, &member(p, USER, &[], PLAIN)).await;
    assert!(is_ephemeral(&picked));
    assert_eq!(
        picked["data"]["embeds"][0]["footer"]["text"],
        format!("Kaltura · {entry}")
    );
    assert!(button_id(&picked, ":play:").ends_with(&entry));
    host.stop().await;
}
