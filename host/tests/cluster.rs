//! The host on PostgreSQL, and several instances sharing one database: nothing lost,
//! nothing doubled. Each test gets a fresh database on a private server (Debian's
//! `postgresql`, started by the test binary on a free port).

mod common;

use std::time::Duration;

use common::{GUILD, Host, Setup, eventually_async};
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
    let host = Host::try_start(Setup {
        kaltura: true,
        guild_configs: vec![(GUILD.into(), json!({"notifications": {"channel": "#recordings", "templates": {"entry_ready": "{{id}}"}}}))],
        delivery: Some(DeliverySettings {
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_millis(100),
            ..Default::default()
        }),
        database_url: Some(database_url.to_string()),
        redis_url: redis.map(|r| r.url()),
        standin,
        ..Default::default()
    })
    .await?;
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
