//! The host on PostgreSQL, and several instances sharing one database: nothing lost,
//! nothing doubled. Each test gets a fresh database on a private server (Debian's
//! `postgresql`, started by the test binary on a free port).

mod common;

use std::time::Duration;

use common::{GUILD, Host, Setup, button_ids, eventually_async, guest};
use kdhost::config::settings::DeliverySettings;
use serde_json::{Value, json};
use testkit::BodyFormat;

const RECORDINGS: &str = "910000000000000001";

async fn database() -> String {
    tokio::task::spawn_blocking(testkit::servers::fresh_database)
        .await
        .unwrap()
        .expect("a private PostgreSQL server (apt-get install -y postgresql)")
}

/// An instance on `database_url` (and Redis, when given); `standin`: the Discord stand-in
/// instances share.
async fn instance(
    database_url: &str,
    redis: Option<&testkit::servers::RedisServer>,
    standin: Option<testkit::DiscordStandIn>,
) -> Host {
    try_instance(database_url, redis, standin).await.unwrap()
}

async fn try_instance(
    database_url: &str,
    redis: Option<&testkit::servers::RedisServer>,
    standin: Option<testkit::DiscordStandIn>,
) -> anyhow::Result<Host> {
    try_instance_with(database_url, redis, standin, |_| {}).await
}

async fn try_instance_with(
    database_url: &str,
    redis: Option<&testkit::servers::RedisServer>,
    standin: Option<testkit::DiscordStandIn>,
    extra: impl FnOnce(&mut Setup),
) -> anyhow::Result<Host> {
    let mut setup = Setup {
        kaltura: true,
        guild_configs: vec![(
            GUILD.into(),
            json!({"notifications": {"channel": "#recordings", "templates": {"entry_ready": "{{id}}"}}}),
        )],
        delivery: Some(DeliverySettings {
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_millis(100),
            ..Default::default()
        }),
        database_url: Some(database_url.to_string()),
        redis_url: redis.map(|r| r.url()),
        standin,
        ..Default::default()
    };
    extra(&mut setup);
    let host = Host::try_start(setup).await?;
    host.standin
        .set_channels(GUILD, &[(RECORDINGS, "recordings")]);
    Ok(host)
}

fn webhook(host: &Host) -> String {
    format!("{}/webhooks/kaltura", host.base)
}

/// The outbox id a delivered message carries in its nonce (`<prefix><id>`).
fn outbox_id(m: &Value) -> i64 {
    let nonce = m["nonce"].as_str().unwrap();
    nonce[8..].parse().unwrap()
}

#[tokio::test]
async fn on_postgresql_a_webhook_becomes_one_message_and_readiness_names_the_database() {
    let url = database().await;
    let host = instance(&url, None, None).await;
    let k = host.kaltura.as_ref().unwrap();
    let entry = k.ready_entry_ids()[0].clone();
    let n = k
        .entry_ready_notification(&entry, 1, BodyFormat::Json, "sha256")
        .unwrap();
    let (status, body) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = k.deliver_notification(&webhook(&host), &n).await.unwrap();
    assert_eq!((status, body.contains("duplicate")), (200, true), "{body}");
    let msgs = host.messages(RECORDINGS, 1).await;
    assert_eq!(msgs[0]["content"], "job:1");
    host.settled().await;
    assert_eq!(host.standin.channel_messages(RECORDINGS).len(), 1);

    let ready: Value = reqwest::get(format!("{}/readyz", host.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let db = &ready["backends"]["database"];
    assert_eq!(
        (db["kind"].as_str(), db["reachable"].as_bool()),
        (Some("postgresql"), Some(true))
    );
    assert!(
        db["target"]
            .as_str()
            .unwrap()
            .starts_with("postgres://kd@127.0.0.1:"),
        "{db}"
    );
    host.stop().await;
}

#[tokio::test]
async fn two_instances_on_one_database_handle_each_webhook_once_and_deliver_each_message_once_in_order()
 {
    let url = database().await;
    let redis = testkit::servers::RedisServer::start().unwrap();
    let a = instance(&url, Some(&redis), None).await;
    let b = instance(&url, Some(&redis), Some(a.standin.clone())).await;
    let k = a.kaltura.as_ref().unwrap();
    let entries = k.ready_entry_ids();
    // Kaltura delivers the same notification to both instances (a retry through the load
    // balancer): one of them accepts it, the other recognises it.
    let n = k
        .entry_ready_notification(&entries[0], 1, BodyFormat::Json, "sha256")
        .unwrap();
    let (_, first) = k.deliver_notification(&webhook(&a), &n).await.unwrap();
    let (_, second) = k.deliver_notification(&webhook(&b), &n).await.unwrap();
    assert!(
        first.contains("accepted") && second.contains("duplicate"),
        "{first} / {second}"
    );
    // Then 60 more, spread over both.
    for i in 2..=61u64 {
        let host = if i % 2 == 0 { &a } else { &b };
        let entry = &entries[i as usize % entries.len()];
        let n = k
            .entry_ready_notification(entry, i, BodyFormat::Json, "sha256")
            .unwrap();
        let (status, body) = k.deliver_notification(&webhook(host), &n).await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let msgs = a.messages(RECORDINGS, 61).await;
    a.settled().await;
    let msgs_now = a.standin.channel_messages(RECORDINGS);
    assert_eq!(msgs_now.len(), 61, "each message once");
    let mut contents: Vec<&str> = msgs
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    contents.sort();
    contents.dedup();
    assert_eq!(contents.len(), 61, "no event produced two messages");
    // The channel shows them in the order they were queued (outbox ids ascend), whichever
    // instance sent each.
    let ids: Vec<i64> = msgs.iter().map(outbox_id).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Both instances see one truth.
    let counts = b.stores.outbox.counts().await.unwrap();
    assert_eq!((counts.pending, counts.dead), (0, 0));
    eventually_async("the inbox to be empty", || async {
        (!b.stores.inbox.pending().await.ok()?).then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}

#[tokio::test]
async fn a_second_instance_without_redis_is_refused_with_the_reason_and_the_first_keeps_serving() {
    let url = database().await;
    let a = instance(&url, None, None).await;
    let refused = try_instance(&url, None, Some(a.standin.clone()))
        .await
        .err()
        .expect("a second instance without Redis is refused");
    let why = format!("{refused:#}");
    assert!(
        why.contains("shares this database") && why.contains("KD_REDIS_URL"),
        "{why}"
    );
    // One with Redis next to one without is refused too.
    let redis = testkit::servers::RedisServer::start().unwrap();
    assert!(
        try_instance(&url, Some(&redis), Some(a.standin.clone()))
            .await
            .is_err()
    );
    // The first instance still answers.
    let ready: Value = reqwest::get(format!("{}/readyz", a.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    // Once it has stopped cleanly, another takes its place at once.
    a.stop().await;
    let b = instance(&url, Some(&redis), None).await;
    let ready: Value = reqwest::get(format!("{}/readyz", b.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["backends"]["redis"]["reachable"], true, "{ready}");
    b.stop().await;
}

#[tokio::test]
async fn interactions_round_robin_over_three_instances_are_all_answered_and_votes_add_up_exactly() {
    let url = database().await;
    let redis = testkit::servers::RedisServer::start().unwrap();
    let with_poll = |s: &mut Setup| {
        s.plugin_files = vec![("poll.wasm", guest("kd_plugin_rust_poll"))];
        // Many people vote in one guild at once: the allowances and the plugin's calls in
        // flight are the operator's to raise (with Redis the allowances are one for every
        // instance).
        s.plugins_json = Some(
            json!({"plugins": {"poll": {"grants": ["kv"]}},
                   "limits": {"concurrency": 256},
                   "rate_limits": {"per_user_per_minute": 1000, "per_guild_per_minute": 100000}})
            .to_string(),
        );
    };
    let a = try_instance_with(&url, Some(&redis), None, with_poll)
        .await
        .unwrap();
    let b = try_instance_with(&url, Some(&redis), Some(a.standin.clone()), with_poll)
        .await
        .unwrap();
    let c = try_instance_with(&url, Some(&redis), Some(a.standin.clone()), with_poll)
        .await
        .unwrap();
    let (status, poll) = a
        .command(
            "poll",
            json!([{"name": "question", "type": 3, "value": "Lunch?"},
                   {"name": "options", "type": 3, "value": "Pizza, Sushi, Salad"}]),
        )
        .await;
    assert_eq!(status, 200, "{poll}");
    let ids = button_ids(&poll);
    // 90 people vote at once, their presses spread over the three instances.
    const VOTERS: usize = 90;
    let urls = [a.url.clone(), b.url.clone(), c.url.clone()];
    let presses = (0..VOTERS).map(|i| {
        let standin = a.standin.clone();
        let payload = standin.button(&ids[i % 3], GUILD, &format!("70000000000000{i:04}"));
        let url = urls[i % 3].clone();
        async move { standin.send_interaction(&url, &payload).await.unwrap() }
    });
    let answers = futures::future::join_all(presses).await;
    for (status, body) in &answers {
        assert_eq!((*status, body["type"].as_u64()), (200, Some(7)), "{body}");
    }
    // Every increment counted once: 30 votes each, whichever instance took them.
    let poll_id = ids[0].split(':').nth(2).unwrap().to_string();
    for option in 0..3 {
        let count = b
            .stores
            .kv
            .get("poll", GUILD, &format!("poll:{poll_id}:count:{option}"))
            .await
            .unwrap()
            .expect("a counter");
        assert_eq!(count, b"30", "option {option}");
    }
    for h in [a, b, c] {
        h.stop().await;
    }
}
