//! Kaltura webhooks → default notifications → the durable outbox → channel messages at the
//! Discord stand-in, over real HTTP with real signatures.

mod common;

use std::time::Duration;

use common::{GUILD, Host, Setup};
use kdhost::config::settings::DeliverySettings;
use serde_json::{Value, json};
use testkit::kaltura::notify::{encode, http_notification};
use testkit::{BodyFormat, Fault};

const RECORDINGS: &str = "910000000000000001";
const LIVE: &str = "910000000000000002";

fn fast_retries() -> DeliverySettings {
    DeliverySettings {
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(100),
        ..Default::default()
    }
}

async fn start(guild_config: Value) -> Host {
    let host = Host::start(Setup {
        kaltura: true,
        guild_configs: vec![(GUILD.into(), guild_config)],
        delivery: Some(fast_retries()),
        ..Default::default()
    })
    .await;
    host.standin
        .set_channels(GUILD, &[(RECORDINGS, "recordings"), (LIVE, "live")]);
    host
}

fn webhook(host: &Host) -> String {
    format!("{}/webhooks/kaltura", host.base)
}

#[tokio::test]
async fn an_entry_ready_webhook_becomes_one_message_in_the_configured_channel() {
    let host = start(json!({"notifications": {"channel": "#recordings"}})).await;
    let k = host.kaltura.as_ref().unwrap();
    let entry = k.ready_entry_ids()[0].clone();
    let name = k.entry_name(&entry).unwrap();
    let n = k
        .entry_ready_notification(&entry, 1001, BodyFormat::DataParam, "sha256")
        .unwrap();
    let (status, body) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains("accepted") && body.contains("entry_ready"),
        "{body}"
    );

    let msgs = host.messages(RECORDINGS, 1).await;
    let m = &msgs[0];
    assert!(m["content"].as_str().unwrap().contains(&name), "{m}");
    assert_eq!(m["embeds"][0]["title"], json!(name));
    assert!(
        m["embeds"][0]["thumbnail"]["url"]
            .as_str()
            .unwrap()
            .contains(&entry)
    );
    // Silent unless the guild allows pings; a nonce makes resends idempotent.
    assert_eq!(m["allowed_mentions"], json!({"parse": [], "roles": []}));
    assert!(
        m["nonce"]
            .as_str()
            .is_some_and(|n| !n.is_empty() && n.len() <= 25)
    );

    // Kaltura redelivers: acknowledged, not delivered again.
    let (status, body) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    host.settled().await;
    assert_eq!(host.standin.channel_messages(RECORDINGS).len(), 1);
}

#[tokio::test]
async fn every_body_format_and_hash_algorithm_is_accepted() {
    let host = start(json!({"notifications": {"channel": "recordings"}})).await;
    let k = host.kaltura.as_ref().unwrap();
    let entries = k.ready_entry_ids();
    let mut job = 2000;
    for format in [
        BodyFormat::Json,
        BodyFormat::DataParam,
        BodyFormat::DataFields,
    ] {
        for algo in ["sha1", "sha256", "sha512"] {
            job += 1;
            let n = k
                .entry_ready_notification(&entries[job % entries.len()], job as u64, format, algo)
                .unwrap();
            let (status, body) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
            assert_eq!(status, 200, "{format:?} {algo}: {body}");
            assert!(body.contains("accepted"), "{format:?} {algo}: {body}");
        }
    }
    host.messages(RECORDINGS, 9).await;
}

#[tokio::test]
async fn bad_signatures_are_refused_and_nothing_is_stored() {
    let host = start(json!({"notifications": {"channel": "#recordings"}})).await;
    let k = host.kaltura.as_ref().unwrap();
    let entry = k.ready_entry_ids()[0].clone();
    let client = reqwest::Client::new();
    let mut n = k
        .entry_ready_notification(&entry, 3001, BodyFormat::Json, "sha1")
        .unwrap();
    // Missing signature.
    let r = client
        .post(webhook(&host))
        .header("content-type", n.content_type)
        .body(n.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("missing X-KALTURA-SIGNATURE")
    );
    // Signed with another secret.
    n.signature = testkit::kaltura::notify::signature("sha1", "not-the-secret", &n.body);
    let (status, body) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
    assert_eq!(status, 401, "{body}");
    // A body changed after signing.
    let mut tampered = k
        .entry_ready_notification(&entry, 3002, BodyFormat::Json, "sha1")
        .unwrap();
    tampered.body.extend_from_slice(b" ");
    let (status, _) = k
        .deliver_notification(&webhook(&host), &tampered)
        .await
        .unwrap();
    assert_eq!(status, 401);
    for key in ["job:3001", "job:3002"] {
        assert!(
            !host.stores.inbox.contains(key).await.unwrap(),
            "{key} was stored"
        );
    }
    host.settled().await;
    assert!(host.standin.channel_messages(RECORDINGS).is_empty());
}

#[tokio::test]
async fn unreadable_bodies_get_400_naming_the_problem() {
    let host = start(json!({})).await;
    let k = host.kaltura.as_ref().unwrap();
    let secret = k.admin_secret().to_string();
    let sign = |body: &str, ct: &'static str| testkit::SignedNotification {
        body: body.as_bytes().to_vec(),
        content_type: ct,
        signature: testkit::kaltura::notify::signature("sha1", &secret, body.as_bytes()),
        algo: "sha1",
    };
    for (body, ct, expect) in [
        (
            "data=%7Bbroken",
            "application/x-www-form-urlencoded",
            "`data` field is not valid JSON",
        ),
        ("{\"object\": ", "application/json", "not valid JSON"),
        ("<notification/>", "text/xml", "XML"),
        ("", "application/json", "empty"),
    ] {
        let (status, text) = k
            .deliver_notification(&webhook(&host), &sign(body, ct))
            .await
            .unwrap();
        assert_eq!(status, 400, "{body}: {text}");
        assert!(text.contains(expect), "{body}: {text}");
    }
    // A notification about something we do not handle is acknowledged (no retries) and ignored.
    let user = http_notification(
        9,
        3,
        "User Changed",
        json!({"objectType": "KalturaUser", "id": "u1"}),
    );
    let n = encode(&user, BodyFormat::Json, &secret, "sha1");
    let (status, text) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
    assert_eq!((status, text.contains("ignored")), (200, true), "{text}");
}

#[tokio::test]
async fn routes_types_templates_and_mentions_follow_the_guild_config() {
    let host = start(json!({
        "notifications": {
            "channel": "#recordings",
            "types": {"live_started": true},
            "channels": {"live_started": "live"},
            "templates": {"live_started": "@everyone {{entry_name}} is live ({{status}})"},
            "mentions": {"everyone": true}
        },
        "kaltura": {"routes": [{"tags": ["physics"], "channel": LIVE, "types": ["entry_ready"]}]}
    }))
    .await;
    let k = host.kaltura.as_ref().unwrap();
    let secret = k.admin_secret().to_string();
    let live = http_notification(
        4001,
        3,
        "Live Status Changed",
        json!({"objectType": "KalturaLiveStreamEntry", "id": "1_live", "name": "Town hall", "status": 2, "liveStatus": 1}),
    );
    let (status, _) = k
        .deliver_notification(
            &webhook(&host),
            &encode(&live, BodyFormat::DataParam, &secret, "sha1"),
        )
        .await
        .unwrap();
    assert_eq!(status, 200);
    let m = host.messages(LIVE, 1).await;
    assert_eq!(m[0]["content"], "@everyone Town hall is live (ready)");
    assert_eq!(m[0]["allowed_mentions"]["parse"], json!(["everyone"]));

    // Tagged physics: the default channel and the route's channel, one message each.
    let ready = http_notification(
        4002,
        3,
        "Entry Status Changed",
        json!({"objectType": "KalturaMediaEntry", "id": "0_phys", "name": "Optics", "status": 2, "tags": "physics, optics"}),
    );
    k.deliver_notification(
        &webhook(&host),
        &encode(&ready, BodyFormat::Json, &secret, "sha1"),
    )
    .await
    .unwrap();
    let rec = host.messages(RECORDINGS, 1).await;
    let live = host.messages(LIVE, 2).await;
    assert!(rec[0]["content"].as_str().unwrap().contains("Optics"));
    assert!(live[1]["content"].as_str().unwrap().contains("Optics"));
    // entry_added is off by default: nothing more arrives.
    let added = http_notification(
        4003,
        2,
        "Entry Added",
        json!({"objectType": "KalturaMediaEntry", "id": "0_new", "name": "New", "status": 0}),
    );
    k.deliver_notification(
        &webhook(&host),
        &encode(&added, BodyFormat::Json, &secret, "sha1"),
    )
    .await
    .unwrap();
    host.settled().await;
    assert_eq!(host.standin.channel_messages(RECORDINGS).len(), 1);
    assert_eq!(host.standin.channel_messages(LIVE).len(), 2);
}

#[tokio::test]
async fn an_outage_delays_delivery_but_loses_nothing_and_keeps_channel_order() {
    let host = start(json!({
        "notifications": {"channel": "#recordings", "templates": {"entry_ready": "{{entry_name}} #{{id}}"}},
        "kaltura": {"routes": [{"tags": ["training"], "channel": "#live"}]}
    }))
    .await;
    let k = host.kaltura.as_ref().unwrap();
    // Discord answers 503 and 429 for a while.
    host.standin.inject(Fault {
        path_contains: "/messages".into(),
        status: 503,
        count: 12,
        retry_after: 0.0,
        delay_ms: 0,
    });
    host.standin.inject(Fault {
        path_contains: "/messages".into(),
        status: 429,
        count: 6,
        retry_after: 0.05,
        delay_ms: 0,
    });
    let entries = k.ready_entry_ids();
    let mut expected = Vec::new();
    for i in 0..30u64 {
        let entry = &entries[i as usize % entries.len()];
        let n = k
            .entry_ready_notification(entry, 5000 + i, BodyFormat::Json, "sha1")
            .unwrap();
        let (status, _) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
        assert_eq!(status, 200);
        let name = k.entry_name(entry).unwrap();
        expected.push(format!("{name} #job:{}", 5000 + i));
    }
    let rec = host.messages(RECORDINGS, 30).await;
    host.settled().await;
    let got: Vec<&str> = rec.iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(got, expected, "every message once, in order");
    // The routed copies (training-tagged entries) keep their order too.
    let tagged: Vec<String> = (0..30u64)
        .filter(|i| {
            let e = k
                .entry_object(&entries[*i as usize % entries.len()])
                .unwrap();
            e["tags"]
                .as_str()
                .unwrap_or_default()
                .split(',')
                .any(|t| t.trim() == "training")
        })
        .map(|i| expected[i as usize].clone())
        .collect();
    let live = host.messages(LIVE, tagged.len()).await;
    let got: Vec<&str> = live
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(got, tagged);
    assert!(!tagged.is_empty());
    // Nothing is left pending or dead.
    host.settled().await;
    assert_eq!(host.stores.outbox.counts().await.unwrap().dead, 0);
}

#[tokio::test]
async fn undeliverable_messages_become_dead_letters_with_the_reason() {
    let host = start(json!({"notifications": {"channel": "#no-such-channel"}})).await;
    let k = host.kaltura.as_ref().unwrap();
    let n = k
        .entry_ready_notification(&k.ready_entry_ids()[0], 6001, BodyFormat::Json, "sha1")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n).await.unwrap();
    host.settled().await;
    let dead = host
        .stores
        .outbox
        .list(GUILD, Some("dead"), 10, None)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no text channel named #no-such-channel"),
        "{:?}",
        dead[0].last_error
    );
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("kd_deliveries_total{result=\"dead\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_resend_after_a_crash_returns_the_message_discord_already_made() {
    let host = start(json!({"notifications": {"channel": RECORDINGS}})).await;
    let k = host.kaltura.as_ref().unwrap();
    let n = k
        .entry_ready_notification(&k.ready_entry_ids()[0], 7001, BodyFormat::Json, "sha1")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n).await.unwrap();
    let first = host.messages(RECORDINGS, 1).await[0].clone();
    host.settled().await;
    // What a crash between Discord's answer and the host's bookkeeping leaves behind: the
    // row still pending although Discord made the message.
    let db = rusqlite::Connection::open(host.dir.join("data/kdhost.sqlite3")).unwrap();
    let changed = db
        .execute(
            "UPDATE outbox SET state = 'pending', message_id = NULL, next_at = 0",
            [],
        )
        .unwrap();
    assert_eq!(changed, 1);
    assert_eq!(host.stores.outbox.counts().await.unwrap().pending, 1);
    host.outbox.wake();
    host.settled().await;
    let rows = host
        .stores
        .outbox
        .list(GUILD, Some("sent"), 10, None)
        .await
        .unwrap();
    assert_eq!(rows[0].message_id.as_deref(), first["id"].as_str());
    assert_eq!(rows[0].attempts, 2, "it was sent again");
    assert_eq!(host.standin.channel_messages(RECORDINGS).len(), 1);
}

#[tokio::test]
async fn plugins_subscribed_to_an_event_receive_it_per_guild() {
    let host = Host::start(Setup {
        kaltura: true,
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(
            json!({"plugins": {"caps": {"grants": ["kv", "http", "discord", "config", "kaltura"]}},
                   "kaltura": {"partner_events": [GUILD, "600000000000000002"]}})
            .to_string(),
        ),
        guild_configs: vec![
            (GUILD.into(), json!({"kaltura": {"enabled": true}})),
            // This guild keeps plugins out of its events.
            (
                "600000000000000002".into(),
                json!({"kaltura": {"enabled": true}, "features": {"plugin_events": false}}),
            ),
        ],
        ..Default::default()
    })
    .await;
    let k = host.kaltura.as_ref().unwrap();
    let entry = k.ready_entry_ids()[0].clone();
    let name = k.entry_name(&entry).unwrap();
    let n = k
        .entry_ready_notification(&entry, 8001, BodyFormat::Json, "sha1")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n).await.unwrap();
    let last = |guild: &'static str| {
        let host = &host;
        async move {
            let p = host
                .standin
                .command("last-event", json!([]), guild, common::USER, &[]);
            let (_, body) = host.standin.send_interaction(&host.url, &p).await.unwrap();
            common::text_of(&body)
        }
    };
    let seen = common::eventually_async("the plugin to receive the event", || async {
        let seen = last(GUILD).await;
        (seen != "none").then_some(seen)
    })
    .await;
    assert_eq!(seen, format!("kaltura.entry_ready {name}"));
    assert_eq!(last("600000000000000002").await, "none");
}

/// [harden] 6: partner-wide events name entries of the whole account: only the guilds the
/// operator lists hear them, whatever a guild's own file says.
#[tokio::test]
async fn only_guilds_the_operator_lists_hear_partner_events() {
    const UNLISTED: &str = "600000000000000002";
    const THEIRS: &str = "910000000000000009";
    let mut grants: Value = serde_json::from_str(&common::default_grants()).unwrap();
    grants["kaltura"]["partner_events"] = json!([GUILD]);
    let host = Host::start(Setup {
        kaltura: true,
        plugins_json: Some(grants.to_string()),
        guild_configs: vec![
            (
                GUILD.into(),
                json!({"notifications": {"channel": "#recordings"}}),
            ),
            (
                UNLISTED.into(),
                json!({"notifications": {"channel": "#theirs"}}),
            ),
        ],
        ..Default::default()
    })
    .await;
    host.standin
        .set_channels(GUILD, &[(RECORDINGS, "recordings")]);
    host.standin.set_channels(UNLISTED, &[(THEIRS, "theirs")]);
    let k = host.kaltura.as_ref().unwrap();
    let n = k
        .entry_ready_notification(&k.ready_entry_ids()[0], 9101, BodyFormat::Json, "sha1")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n).await.unwrap();
    host.messages(RECORDINGS, 1).await;
    host.settled().await;
    assert!(host.standin.channel_messages(THEIRS).is_empty());
}

/// `/kaltura-notify subscribe` as a member, with the options Discord sends for it.
fn notify_command(host: &Host, user: &str, sub: &str, options: Value) -> Value {
    host.standin.command(
        "kaltura-notify",
        json!([{"type": 1, "name": sub, "options": options}]),
        GUILD,
        user,
        &[],
    )
}

async fn notify(host: &Host, user: &str, sub: &str, options: Value) -> String {
    let p = notify_command(host, user, sub, options);
    let (status, body) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["flags"], 64, "only the member sees it: {body}");
    common::text_of(&body)
}

#[tokio::test]
async fn subscribers_get_direct_messages_once_and_a_refused_dm_unsubscribes() {
    const ANN: &str = "700000000000000011";
    const BOB: &str = "700000000000000012";
    const CAT: &str = "700000000000000013";
    let host = start(json!({"notifications": {"channel": "#recordings",
        "personal": {"enabled": true, "max_subscriptions": 2}}}))
    .await;
    let k = host.kaltura.as_ref().unwrap();
    let entry = k
        .ready_entry_ids()
        .into_iter()
        .find(|id| {
            k.entry_object(id)
                .is_some_and(|e| e["tags"].as_str().is_some_and(|t| !t.is_empty()))
        })
        .expect("a fixture entry with tags");
    let object = k.entry_object(&entry).unwrap();
    let tag = object["tags"]
        .as_str()
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .trim()
        .to_string();
    let name = object["name"].as_str().unwrap().to_string();

    // Ann and Bob subscribe to the tag (Bob twice: once is kept); Cat to something else.
    let tag_opts = json!([{"name": "what", "type": 3, "value": "tag"}, {"name": "name", "type": 3, "value": tag.to_uppercase()}]);
    assert!(
        notify(&host, ANN, "subscribe", tag_opts.clone())
            .await
            .contains("Subscribed")
    );
    assert!(
        notify(&host, BOB, "subscribe", tag_opts.clone())
            .await
            .contains("Subscribed")
    );
    assert!(
        notify(&host, BOB, "subscribe", tag_opts.clone())
            .await
            .contains("already")
    );
    let other = json!([{"name": "what", "type": 3, "value": "tag"}, {"name": "name", "type": 3, "value": "no-such-tag"}]);
    notify(&host, CAT, "subscribe", other).await;
    // The server's limit (2): Ann's third is refused.
    let live = json!([{"name": "what", "type": 3, "value": "live"}]);
    notify(&host, ANN, "subscribe", live).await;
    let third = json!([{"name": "what", "type": 3, "value": "category"}, {"name": "name", "type": 3, "value": "x"}]);
    assert!(
        notify(&host, ANN, "subscribe", third)
            .await
            .contains("2 subscriptions")
    );
    let list = notify(&host, ANN, "list", json!([])).await;
    assert!(
        list.contains(&format!("tag **{tag}**")) && list.contains("live events"),
        "{list}"
    );
    // Bob refuses DMs from the bot.
    host.standin.refuse_dms(BOB);

    let n = k
        .entry_ready_notification(&entry, 7001, BodyFormat::Json, "sha256")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n).await.unwrap();
    // Kaltura redelivers: no second DM.
    k.deliver_notification(&webhook(&host), &n).await.unwrap();
    host.settled().await;

    let ann_dm = host
        .standin
        .dm_channel_of(ANN)
        .expect("a DM channel with Ann");
    let dms = host.standin.channel_messages(&ann_dm);
    assert_eq!(dms.len(), 1, "one DM, once: {dms:?}");
    assert!(
        dms[0]["content"].as_str().unwrap().contains(&name),
        "{}",
        dms[0]
    );
    assert!(
        host.standin.dm_channel_of(CAT).is_none(),
        "Cat did not subscribe to it"
    );
    // The channel message went out as before.
    assert_eq!(host.standin.channel_messages(RECORDINGS).len(), 1);

    // Bob's DM is a dead letter saying why, and he is unsubscribed.
    let dead = host
        .stores
        .outbox
        .list(GUILD, Some("dead"), 10, None)
        .await
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let why = dead[0].last_error.as_deref().unwrap();
    assert!(
        why.contains("does not accept direct messages") && why.contains("50007"),
        "{why}"
    );
    assert_eq!(dead[0].attempts, 1, "one attempt, no retry");
    assert!(
        host.stores
            .preferences
            .list(GUILD, BOB)
            .await
            .unwrap()
            .is_empty()
    );

    // Muted: nothing; unsubscribed from the tag: nothing either after the mute lifts.
    assert!(
        notify(
            &host,
            ANN,
            "mute",
            json!([{"name": "duration", "type": 3, "value": "2h"}])
        )
        .await
        .contains("Muted")
    );
    let n2 = k
        .entry_ready_notification(&entry, 7002, BodyFormat::Json, "sha256")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n2).await.unwrap();
    host.settled().await;
    assert_eq!(host.standin.channel_messages(&ann_dm).len(), 1, "muted");
    assert_eq!(host.standin.channel_messages(RECORDINGS).len(), 2);
    notify(
        &host,
        ANN,
        "mute",
        json!([{"name": "duration", "type": 3, "value": "off"}]),
    )
    .await;
    let n3 = k
        .entry_ready_notification(&entry, 7003, BodyFormat::Json, "sha256")
        .unwrap();
    k.deliver_notification(&webhook(&host), &n3).await.unwrap();
    host.settled().await;
    assert_eq!(host.standin.channel_messages(&ann_dm).len(), 2, "unmuted");
    assert!(
        notify(&host, ANN, "unsubscribe", tag_opts)
            .await
            .contains("Unsubscribed")
    );
    assert_eq!(
        host.stores
            .preferences
            .list(GUILD, ANN)
            .await
            .unwrap()
            .len(),
        1
    );
    host.stop().await;
}

#[tokio::test]
async fn personal_notifications_are_off_unless_the_server_turns_them_on() {
    let host = start(json!({"notifications": {"channel": "#recordings"}})).await;
    let text = notify(&host, "700000000000000011", "list", json!([])).await;
    assert!(text.contains("off in this server"), "{text}");
    host.stop().await;
}
