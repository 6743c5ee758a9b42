//! The host on PostgreSQL, and several instances sharing one database: nothing lost,
//! nothing doubled. Each test gets a fresh database on a private server (Debian's
//! `postgresql`, started by the test binary on a free port).

mod common;

use std::time::Duration;

use common::{GUILD, Host, Setup, button_ids, eventually, eventually_async, guest};
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

    let ready = host.ready().await;
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
    let ready = a.ready().await;
    assert_eq!(ready["status"], "ready");
    // Once it has stopped cleanly, another takes its place at once.
    a.stop().await;
    let b = instance(&url, Some(&redis), None).await;
    let ready = b.ready().await;
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

#[tokio::test]
async fn a_pinned_range_connects_exactly_its_shards_and_hears_their_guilds_only() {
    use kdhost::discord::shards::ShardPlan;
    let standin =
        testkit::DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();
    standin.set_gateway_shards(4, 1);
    let mut host = Host::start(Setup {
        standin: Some(standin),
        shards: ShardPlan::Range {
            first: 1,
            last: 2,
            total: 4,
        },
        ..Default::default()
    })
    .await;
    host.start_gateway();
    eventually("shards 1 and 2 to connect", || {
        let s = host.standin.gateway_shard_sessions();
        (s.get(&1) == Some(&1) && s.get(&2) == Some(&1)).then_some(())
    })
    .await;
    let s = host.standin.gateway_shard_sessions();
    assert!(
        s.get(&0).is_none_or(|n| *n == 0) && s.get(&3).is_none_or(|n| *n == 0),
        "{s:?}"
    );
    let ids: Vec<(u32, u32)> = host
        .standin
        .gateway_identifies()
        .iter()
        .map(|(id, n, _)| (*id, *n))
        .collect();
    assert_eq!(ids, vec![(1, 4), (2, 4)]);
    host.stop().await;
}

/// The Kubernetes split: a scaling HTTP side with `DISCORD_SHARDS=none` beside `auto`
/// instances. The HTTP-only instance connects nothing and does not count in the spread:
/// with three shards the two `auto` instances take two each at most (a share of
/// ceil(3/2)), where counting the HTTP one (a share of ceil(3/3) = 1) would leave a shard
/// unconnected.
#[tokio::test]
async fn an_http_only_instance_connects_no_shard_and_the_auto_ones_cover_them_all() {
    use kdhost::discord::shards::ShardPlan;
    let url = database().await;
    let redis = testkit::servers::RedisServer::start().unwrap();
    let standin =
        testkit::DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();
    standin.set_gateway_shards(3, 3);
    let start = |plan: ShardPlan| {
        try_instance_with(&url, Some(&redis), Some(standin.clone()), move |s| {
            s.shards = plan
        })
    };
    let mut http = start(ShardPlan::None).await.unwrap();
    let mut a = start(ShardPlan::Auto { total: None }).await.unwrap();
    let mut b = start(ShardPlan::Auto { total: None }).await.unwrap();
    for host in [&mut http, &mut a, &mut b] {
        host.start_gateway();
    }
    let sessions = eventually("all three shards to connect once", || {
        let s = standin.gateway_shard_sessions();
        ((0..3).all(|id| s.get(&id) == Some(&1))).then_some(s)
    })
    .await;
    assert_eq!(sessions.len(), 3, "{sessions:?}");
    let identified: Vec<u32> = standin
        .gateway_identifies()
        .iter()
        .map(|(id, _, _)| *id)
        .collect();
    assert_eq!(
        identified.len(),
        3,
        "one IDENTIFY per shard: {identified:?}"
    );
    for host in [http, a, b] {
        host.stop().await;
    }
}

/// `/kaltura-config-update notifications KEY VALUE` by a guild administrator on `host`.
async fn config_update(host: &Host, key: &str, value: &str) -> Value {
    let mut p = host.standin.command(
        "kaltura-config-update",
        json!([{"name": "section", "type": 3, "value": "notifications"},
               {"name": "key", "type": 3, "value": key},
               {"name": "value", "type": 3, "value": value}]),
        GUILD,
        common::USER,
        &[],
    );
    p["member"]["permissions"] = json!("8");
    host.standin
        .send_interaction(&host.url, &p)
        .await
        .unwrap()
        .1
}

#[tokio::test]
async fn a_config_change_on_one_instance_is_in_force_on_the_others_and_a_bad_one_changes_nothing() {
    let url = database().await;
    let redis = testkit::servers::RedisServer::start().unwrap();
    let a = instance(&url, Some(&redis), None).await;
    let b = instance(&url, Some(&redis), Some(a.standin.clone())).await;
    let c = instance(&url, Some(&redis), Some(a.standin.clone())).await;
    let channel_of = |h: &Host| h.guilds.guild(Some(GUILD)).raw["notifications"]["channel"].clone();
    assert_eq!(channel_of(&b), json!("#recordings"));
    let answer = config_update(&a, "channel", "#news").await;
    let changed = std::time::Instant::now();
    assert!(!answer.to_string().contains("Refused"), "{answer}");
    // In force on the instance that took it at once, on the others when they hear of it.
    assert_eq!(channel_of(&a), json!("#news"));
    for other in [&b, &c] {
        eventually("the change on every instance", || {
            (channel_of(other) == json!("#news")).then_some(())
        })
        .await;
    }
    eprintln!(
        "config change in force on every instance after {:?}",
        changed.elapsed()
    );

    // A bad value is refused where it is made, and nothing changes anywhere.
    let before: Vec<Value> = [&a, &b, &c]
        .iter()
        .map(|h| h.guilds.guild(Some(GUILD)).raw.clone())
        .collect();
    let refused = config_update(&a, "enabled", "maybe").await;
    assert!(refused.to_string().contains("enabled"), "{refused}");
    let pg = kdhost::store::postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    let rows = pg.guild_configs_since(0).await.unwrap();
    assert_eq!(rows.len(), 1, "one row for the guild");
    assert_eq!(
        rows[0].body.as_ref().unwrap()["notifications"]["channel"],
        "#news"
    );
    let after: Vec<Value> = [&a, &b, &c]
        .iter()
        .map(|h| h.guilds.guild(Some(GUILD)).raw.clone())
        .collect();
    assert_eq!(before, after);
    // Both attempts are in the audit log, the accepted one with its change.
    let audit = b.stores.audit.list(GUILD, 10, None).await.unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|e| e.outcome.as_str()).collect();
    assert!(
        outcomes[0].starts_with("invalid") && outcomes[1] == "ok",
        "{outcomes:?}"
    );
    for h in [a, b, c] {
        h.stop().await;
    }
}

#[tokio::test]
async fn config_import_puts_checked_guild_files_in_the_database_and_refuses_a_bad_set_whole() {
    let url = database().await;
    let dir = tempfile::tempdir().unwrap();
    let guilds = dir.path().join("guilds");
    std::fs::create_dir_all(&guilds).unwrap();
    std::fs::write(
        guilds.join("600000000000000001.json"),
        r##"{"notifications": {"channel": "#a"}}"##,
    )
    .unwrap();
    std::fs::write(
        guilds.join("600000000000000002.json"),
        r##"{"notifications": {"enabled": "maybe"}}"##,
    )
    .unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(["config", "import"])
            .arg(dir.path())
            .env("KD_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let out = run();
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("600000000000000002.json") && text.contains("enabled"),
        "{text}"
    );
    let pg = kdhost::store::postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    assert!(
        pg.guild_configs_since(0).await.unwrap().is_empty(),
        "nothing stored"
    );

    std::fs::write(
        guilds.join("600000000000000002.json"),
        r##"{"notifications": {"enabled": false}}"##,
    )
    .unwrap();
    let out = run();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("imported guild 600000000000000001")
            && text.contains("2 guild configurations"),
        "{text}"
    );
    let rows = pg.guild_configs_since(0).await.unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(
        rows[0].body.as_ref().unwrap()["notifications"]["channel"],
        "#a"
    );
}

const NEWS: &str = "910000000000000002";
const ADMIN: &str = "700000000000000077";
const ADMIN_ROLE: &str = "800000000000000077";
const NEWS_RULE: &str = r##"
fn on_kaltura_event(ev) {
    if ev.kind == "entry_ready" {
        notify("#news", #{ content: template("Rule: {{id}}", ev) });
    }
}
"##;

/// A guild administrator's API token, taken from `host`.
async fn admin_token(host: &Host) -> String {
    host.add_guild_admin(ADMIN, ADMIN_ROLE, "oauth-admin");
    host.api_token("oauth-admin").await
}

/// `METHOD /api/v1/guilds/GUILD/scripts/FILE` on `host`: status and answer.
async fn script_call(
    host: &Host,
    token: &str,
    method: &str,
    file: &str,
    body: Option<&str>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            format!("{}/api/v1/guilds/{GUILD}/scripts/{file}", host.base),
        )
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.header("content-type", "text/plain").body(b.to_string());
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn a_rule_uploaded_on_one_instance_runs_for_events_at_another_and_a_bad_one_changes_nothing()
{
    let url = database().await;
    let redis = testkit::servers::RedisServer::start().unwrap();
    let a = instance(&url, Some(&redis), None).await;
    let b = instance(&url, Some(&redis), Some(a.standin.clone())).await;
    a.standin
        .set_channels(GUILD, &[(RECORDINGS, "recordings"), (NEWS, "news")]);
    let token = admin_token(&a).await;
    let name = format!("guilds/{GUILD}/ready.rhai");
    let has_rule = |h: &Host| h.rules.source(GUILD, "ready.rhai");

    let (status, info) = script_call(&a, &token, "PUT", "ready.rhai", Some(NEWS_RULE)).await;
    assert_eq!(status, 200, "{info}");
    let uploaded = std::time::Instant::now();
    assert_eq!(
        has_rule(&a).as_deref(),
        Some(NEWS_RULE),
        "in force where it was made"
    );
    eventually("the rule on the other instance", || has_rule(&b)).await;
    eprintln!(
        "rule in force on the other instance after {:?}",
        uploaded.elapsed()
    );
    // An event arriving at the other instance runs it.
    let k = a.kaltura.as_ref().unwrap();
    let entry = k.ready_entry_ids()[0].clone();
    let n = k
        .entry_ready_notification(&entry, 1, BodyFormat::Json, "sha256")
        .unwrap();
    let (status, body) = k.deliver_notification(&webhook(&b), &n).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let msgs = b.messages(NEWS, 1).await;
    assert_eq!(msgs[0]["content"], "Rule: job:1");

    // A bad upload is refused where it is made (file:line:col), and nothing changes
    // anywhere: not the database, not either instance.
    let (status, refused) =
        script_call(&a, &token, "PUT", "ready.rhai", Some("fn on_schedule( {")).await;
    assert_eq!(status, 400, "{refused}");
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.starts_with(&format!("{name}:1:")), "{why}");
    let pg = kdhost::store::postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    let rows = pg.rules_since(0).await.unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].source.as_deref(), Some(NEWS_RULE));
    for h in [&a, &b] {
        assert_eq!(has_rule(h).as_deref(), Some(NEWS_RULE));
    }
    let audit = b.stores.audit.list(GUILD, 10, None).await.unwrap();
    let outcomes: Vec<&str> = audit.iter().map(|e| e.outcome.as_str()).collect();
    assert!(
        outcomes[0].starts_with("invalid") && outcomes[1] == "ok",
        "{outcomes:?}"
    );

    // Deleted on the other instance: gone from both.
    let (status, _) = script_call(&b, &token, "DELETE", "ready.rhai", None).await;
    assert_eq!(status, 204);
    eventually("the rule gone everywhere", || {
        (has_rule(&a).is_none() && has_rule(&b).is_none()).then_some(())
    })
    .await;
    let (status, _) = script_call(&a, &token, "DELETE", "ready.rhai", None).await;
    assert_eq!(status, 404);
    for h in [a, b] {
        h.stop().await;
    }
}

#[tokio::test]
async fn a_plugin_published_while_instances_run_is_loaded_by_every_one_and_a_refused_one_by_none() {
    let url = database().await;
    let redis = testkit::servers::RedisServer::start().unwrap();
    let grants = |s: &mut Setup| {
        s.plugins_json = Some(json!({"plugins": {"poll": {"grants": ["kv"]}}}).to_string());
    };
    let a = try_instance_with(&url, Some(&redis), None, grants)
        .await
        .unwrap();
    let b = try_instance_with(&url, Some(&redis), Some(a.standin.clone()), grants)
        .await
        .unwrap();
    let kdhost = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(["plugin"])
            .args(args)
            .env("KD_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let loaded = |h: &Host| h.app_registry.snapshot().get("poll").is_some();
    assert!(!loaded(&a) && !loaded(&b));

    // Something that is not a component is refused before anything is stored.
    let junk = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(junk.path(), b"not a component").unwrap();
    let out = kdhost(&["publish", junk.path().to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("refused, not published"),
        "{text}"
    );
    let pg = kdhost::store::postgres::PostgresStore::connect(&url)
        .await
        .unwrap();
    assert!(pg.plugins_since(0).await.unwrap().is_empty());

    let poll = guest("kd_plugin_rust_poll");
    let out = kdhost(&["publish", poll.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("published poll"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in [&a, &b] {
        eventually("the plugin loaded on every instance", || {
            loaded(h).then_some(())
        })
        .await;
    }
    let (status, body) = b
        .command(
            "poll",
            json!([{"name": "question", "type": 3, "value": "Lunch?"},
                   {"name": "options", "type": 3, "value": "Pizza, Sushi"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // Two options and "Close poll": the plugin answered on the instance that did not publish.
    assert_eq!(button_ids(&body).len(), 3, "{body}");

    let out = kdhost(&["unpublish", "poll"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for h in [&a, &b] {
        eventually("the plugin unloaded on every instance", || {
            (!loaded(h)).then_some(())
        })
        .await;
    }
    let out = kdhost(&["unpublish", "poll"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && text.contains("no plugin named `poll`"),
        "{text}"
    );
    for h in [a, b] {
        h.stop().await;
    }
}
