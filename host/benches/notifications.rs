//! Benchmarks named by the [rules] issue, printed as JSON lines:
//!
//! 1. webhook → Discord stand-in delivery latency at 200 events/s: from the start of the
//!    signed `POST /webhooks/kaltura` to the moment the stand-in creates the channel message
//!    (verify, persist, answer, classify, route, outbox, rate limiter, REST). Baseline in
//!    the same run: the same message posted straight to the stand-in by one HTTP call;
//! 2. sustained events/s with zero loss: events posted at concurrency 32 as fast as the host
//!    acknowledges them (8 channels, one message per event), every message counted at the
//!    stand-in;
//! 3. guild config read (`GuildConfigs::guild`, 200 guilds), next to a plain `HashMap` get
//!    of an `Arc` in the same process;
//! 4. rule evaluation per event: the shipped `recording-ready` rule run for an event
//!    (sandbox, argument conversion, template, effect), next to a rule that does nothing.
//!
//! 5. personal notifications: an event matching 20 members' subscriptions at 50 events/s,
//!    from the webhook to the last of its 20 direct messages, next to the same event's
//!    channel message in the same run (one lane per person, so the DMs go in parallel).
//!
//! 1 and 2 run on SQLite, then on PostgreSQL (a private server from Debian's `postgresql`,
//! started by the bench; skipped with a note when it is not installed), side by side.
//!
//! `cargo bench -p kdhost --bench notifications` (env BENCH_EVENTS to change the count).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kdhost::config::settings::{DeliverySettings, Settings};
use serde_json::{Value, json};
use testkit::kaltura::notify::{SignedNotification, encode, http_notification};
use testkit::{BodyFormat, DiscordStandIn, StandInOptions};

mod support;
use support::{HostFiles, ratio, stats};

const GUILD: &str = "600000000000000001";
const SECRET: &str = "bench-admin-secret";
const CHANNELS: usize = 8;

fn channel(i: usize) -> String {
    format!("91000000000000000{i}")
}

fn notification(job: u64) -> SignedNotification {
    let n = http_notification(
        job,
        3,
        "Entry Status Changed",
        json!({"objectType": "KalturaMediaEntry", "id": format!("0_e{job}"), "name": format!("Entry {job}"),
               "status": 2, "tags": format!("t{}", job as usize % CHANNELS)}),
    );
    encode(&n, BodyFormat::DataParam, SECRET, "sha256")
}

async fn post(client: &reqwest::Client, url: &str, n: &SignedNotification) {
    let (status, body) = testkit::kaltura::notify::post(client, url, n)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
}

/// Per-iteration timings of a synchronous call, `n` times.
fn time_each(n: usize, mut f: impl FnMut()) -> (Vec<Duration>, Duration) {
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f();
        lat.push(t.elapsed());
    }
    (lat, started.elapsed())
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    println!("{}", json!({"machine": support::machine(), "events": n}));

    // 1 and 2 on each durable backend, side by side.
    let sqlite = delivery("sqlite", None, n).await;
    match testkit::servers::PostgresServer::start() {
        Ok(pg) => {
            let url = pg.create_database("bench").unwrap();
            let postgres = delivery("postgresql", Some(url), n).await;
            ratio(
                "webhook_to_message_postgresql_vs_sqlite",
                &postgres,
                &sqlite,
            );
        }
        Err(e) => println!(
            "{}",
            json!({"skipped": "postgresql", "why": format!("{e:#}")})
        ),
    }

    personal(n.min(500)).await;

    // ------------------------------------------------------------ 3. config reads
    {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("guilds")).unwrap();
        std::fs::write(
            dir.path().join("default.json"),
            include_str!("../../config/default.json"),
        )
        .unwrap();
        for g in 0..200 {
            std::fs::write(
                dir.path()
                    .join(format!("guilds/{}.json", 600_000_000_000_000_000u64 + g)),
                json!({"notifications": {"channel": format!("#c{g}")}}).to_string(),
            )
            .unwrap();
        }
        let cfgs = kdhost::config::guild::GuildConfigs::load(dir.path()).unwrap();
        let ids: Vec<String> = (0..200)
            .map(|g| (600_000_000_000_000_000u64 + g).to_string())
            .collect();
        let mut i = 0;
        let (lat, wall) = time_each(1_000_000, || {
            i = (i + 1) % ids.len();
            let g = cfgs.guild(Some(&ids[i]));
            std::hint::black_box(g.typed.notifications.enabled);
        });
        let read = stats("guild_config_read", lat, wall);
        let map: HashMap<String, Arc<Value>> = ids
            .iter()
            .map(|id| (id.clone(), Arc::new(json!({"x": 1}))))
            .collect();
        let mut i = 0;
        let (lat, wall) = time_each(1_000_000, || {
            i = (i + 1) % ids.len();
            std::hint::black_box(map.get(&ids[i]).cloned());
        });
        let base = stats("hashmap_get_arc_clone", lat, wall);
        ratio("guild_config_read_vs_hashmap", &read, &base);
    }

    // ------------------------------------------------------------ 4. rule evaluation
    {
        let dir = tempfile::tempdir().unwrap();
        // The per-guild runs-per-minute quota would stop a benchmark loop: lifted here.
        let limits = kdhost::scripts::sandbox::Limits {
            runs_per_minute: u32::MAX,
            ..Default::default()
        };
        let rules = kdhost::scripts::Rules::new(dir.path(), limits, None, None);
        let real = rules
            .compile(
                "global/recording-ready.rhai",
                None,
                include_str!("../../examples/rules/recording-ready.rhai"),
            )
            .unwrap();
        let noop = rules
            .compile("global/noop.rhai", None, "fn on_kaltura_event(ev) {}")
            .unwrap();
        let cfg = Arc::new(kdhost::config::guild::GuildEntry::default());
        let ev = json!({"kind": "recording_ready", "topic": "kaltura.recording_ready", "id": "job:1",
            "entry_id": "1_rec", "entry_name": "All hands", "thumbnail_url": "https://cdn/t.jpg",
            "entry_url": "https://cdn/p/1/embed", "status": "ready", "tags": ["a", "b"], "categories": []});
        let (lat, wall) = time_each(20_000, || {
            let o = rules.run_one(&real, GUILD, &cfg, "on_kaltura_event", Some(&ev));
            assert_eq!(o.result.unwrap().len(), 1);
        });
        let eval = stats("rule_eval_recording_ready", lat, wall);
        let (lat, wall) = time_each(20_000, || {
            let o = rules.run_one(&noop, GUILD, &cfg, "on_kaltura_event", Some(&ev));
            assert!(o.result.is_ok());
        });
        let base = stats("rule_eval_noop", lat, wall);
        ratio("rule_eval_vs_noop_rule", &eval, &base);
    }
}

/// Parts 1 and 2 on one backend (`label`); returns the latency stats of part 1.
/// A Discord stand-in with its limits out of the way: the runs measure the host, not
/// Discord's quotas.
async fn unlimited_standin() -> DiscordStandIn {
    DiscordStandIn::start(
        "127.0.0.1:0".parse().unwrap(),
        StandInOptions {
            bucket_limit: 1_000_000,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// The bench host's settings: Kaltura webhooks signed with [`SECRET`], no API.
fn host_settings(delivery: DeliverySettings) -> Settings {
    let mut settings = Settings {
        kaltura: Some(
            kdhost::kaltura::KalturaSettings::new(
                Some("http://127.0.0.1:9"),
                1234567,
                SECRET,
                None,
                None,
                None,
                Duration::from_secs(5),
            )
            .unwrap(),
        ),
        delivery,
        ..Default::default()
    };
    settings.api.jwt_secret = None;
    settings
}

async fn delivery(label: &str, database_url: Option<String>, n: usize) -> Value {
    let standin = unlimited_standin().await;
    // The host posts a guild's messages only to that guild's channels.
    let names: Vec<(String, String)> = (0..CHANNELS)
        .map(|i| (channel(i), format!("c{i}")))
        .collect();
    let pairs: Vec<(&str, &str)> = names
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    standin.set_channels(GUILD, &pairs);
    let routes: Vec<Value> = (0..CHANNELS)
        .map(|i| json!({"tags": [format!("t{i}")], "channel": channel(i)}))
        .collect();
    let settings = host_settings(DeliverySettings {
        global_rate: 1_000_000,
        // The throughput runs queue thousands for one guild.
        guild_quota: 1_000_000,
        ..Default::default()
    });
    let host = support::start_host_with(
        &standin,
        HostFiles {
            guild_configs: vec![(
                GUILD.into(),
                json!({"notifications": {"templates": {"entry_ready": "{{entry_name}} {{id}}"}},
                       "kaltura": {"routes": routes}}),
            )],
            bot_token: true,
            database_url,
            ..Default::default()
        },
        settings,
    )
    .await;
    let url = format!("http://{}/webhooks/kaltura", host.addr);
    let client = reqwest::Client::new();
    // Warm up: connections, the first channel lookups.
    for job in 0..50u64 {
        post(&client, &url, &notification(1_000_000 + job)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // ------------------------------------------------------ 1. latency at 200 events/s
    let arrivals: Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    {
        let mut rx = standin.subscribe_messages();
        let arrivals = arrivals.clone();
        tokio::spawn(async move {
            while let Ok((_, m)) = rx.recv().await {
                let content = m["content"].as_str().unwrap_or_default().to_string();
                arrivals.lock().unwrap().insert(content, Instant::now());
            }
        });
    }
    let count = n.min(2000);
    let bodies: Vec<SignedNotification> = (1..=count as u64).map(notification).collect();
    let mut sent_at = Vec::with_capacity(count);
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for (i, b) in bodies.iter().enumerate() {
        tick.tick().await;
        let (client, url, b) = (client.clone(), url.clone(), b.clone());
        sent_at.push(Instant::now());
        tokio::spawn(async move { post(&client, &url, &b).await });
        let _ = i;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while arrivals.lock().unwrap().len() < count && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let got = arrivals.lock().unwrap().clone();
    let lat: Vec<Duration> = (1..=count)
        .filter_map(|j| {
            got.get(&format!("Entry {j} job:{j}"))
                .map(|t| t.duration_since(sent_at[j - 1]))
        })
        .collect();
    assert_eq!(lat.len(), count, "lost messages at 200/s");
    let e2e = stats(
        &format!("{label}/webhook_to_discord_message_at_200_per_s"),
        lat,
        wall,
    );

    // Baseline: one direct POST of the same message to the stand-in.
    let direct = format!(
        "{}/api/v10/channels/{}/messages",
        standin.base_url,
        channel(0)
    );
    let mut lat = Vec::new();
    let started = Instant::now();
    for j in 0..count {
        let t = Instant::now();
        let r = client
            .post(&direct)
            .header("authorization", "Bot standin-bot-token")
            .json(&json!({"content": format!("direct {j}"), "allowed_mentions": {"parse": []}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        lat.push(t.elapsed());
    }
    let base = stats(
        &format!("{label}/direct_post_to_discord_standin"),
        lat,
        started.elapsed(),
    );
    ratio(
        &format!("{label}/webhook_to_message_vs_direct_post"),
        &e2e,
        &base,
    );

    // ------------------------------------------- 2. sustained events/s, zero loss
    let before: usize = standin.all_channel_messages().values().map(Vec::len).sum();
    let total = n.max(2000) * 2;
    let first = 10_000_000u64;
    let bodies: Arc<Vec<SignedNotification>> =
        Arc::new((0..total as u64).map(|j| notification(first + j)).collect());
    let started = Instant::now();
    let (acks, ack_wall) = support::drive(total, 32, {
        let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
        move |i| {
            let (client, url, bodies) = (client.clone(), url.clone(), bodies.clone());
            async move { post(&client, &url, &bodies[i]).await }
        }
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(120);
    let delivered = loop {
        let now: usize = standin.all_channel_messages().values().map(Vec::len).sum();
        if now - before >= total || Instant::now() > deadline {
            break now - before;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let delivered_wall = started.elapsed();
    stats(&format!("{label}/webhook_acknowledged_c32"), acks, ack_wall);
    println!(
        "{}",
        json!({"bench": format!("{label}/sustained_zero_loss"), "events": total, "delivered": delivered,
               "lost": total - delivered.min(total),
               "accepted_per_s": total as f64 / ack_wall.as_secs_f64(),
               "delivered_per_s": delivered as f64 / delivered_wall.as_secs_f64()})
    );
    e2e
}

/// 5: webhook → 20 direct messages per event, next to the event's channel message.
async fn personal(count: usize) {
    const SUBSCRIBERS: usize = 20;
    let standin = unlimited_standin().await;
    standin.set_channels(GUILD, &[(channel(0).as_str(), "c0")]);
    let settings = host_settings(DeliverySettings {
        global_rate: 1_000_000,
        guild_quota: 1_000_000,
        guild_share_percent: 100,
        ..Default::default()
    });
    let host = support::start_host_with(
        &standin,
        HostFiles {
            guild_configs: vec![(
                GUILD.into(),
                json!({"notifications": {"channel": channel(0), "templates": {"entry_ready": "{{entry_name}} {{id}}"},
                       "personal": {"enabled": true}}}),
            )],
            bot_token: true,
            ..Default::default()
        },
        settings,
    )
    .await;
    // 20 members subscribe to tag t0 with the real command.
    let subscribe = (0..SUBSCRIBERS).map(|i| {
        standin.command(
            "kaltura-notify",
            json!([{"type": 1, "name": "subscribe", "options": [
                {"name": "what", "type": 3, "value": "tag"}, {"name": "name", "type": 3, "value": "t0"}]}]),
            GUILD,
            &format!("7000000000000001{i:02}"),
            &[],
        )
    });
    for p in subscribe {
        let (status, body) = standin
            .send_interaction(&host.interactions_url(), &p)
            .await
            .unwrap();
        assert_eq!(status, 200, "{body}");
    }
    let url = format!("http://{}/webhooks/kaltura", host.addr);
    let client = reqwest::Client::new();
    // (event → channel message arrival, DM arrivals)
    type Seen = HashMap<String, (Option<Instant>, Vec<Instant>)>;
    let seen: Arc<std::sync::Mutex<Seen>> = Default::default();
    {
        let mut rx = standin.subscribe_messages();
        let seen = seen.clone();
        let c0 = channel(0);
        tokio::spawn(async move {
            while let Ok((ch, m)) = rx.recv().await {
                let text = m["content"].as_str().unwrap_or_default();
                let key = text.lines().next().unwrap_or_default().to_string();
                let mut s = seen.lock().unwrap();
                let e = s.entry(key).or_default();
                if ch == c0 {
                    e.0 = Some(Instant::now());
                } else {
                    e.1.push(Instant::now());
                }
            }
        });
    }
    // Events tagged t0 (job ≡ 0 mod CHANNELS), 50 a second.
    let jobs: Vec<u64> = (1..=count as u64)
        .map(|j| 5_000_000 + j * CHANNELS as u64)
        .collect();
    let mut sent_at = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for &job in &jobs {
        tick.tick().await;
        let (client, url, b) = (client.clone(), url.clone(), notification(job));
        sent_at.insert(format!("Entry {job} job:{job}"), Instant::now());
        tokio::spawn(async move { post(&client, &url, &b).await });
    }
    let complete = |s: &Seen| {
        sent_at.keys().all(|k| {
            s.get(k)
                .is_some_and(|(c, d)| c.is_some() && d.len() >= SUBSCRIBERS)
        })
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !complete(&seen.lock().unwrap()) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed();
    let seen = seen.lock().unwrap().clone();
    let (mut to_channel, mut to_all_dms) = (Vec::new(), Vec::new());
    for (key, at) in &sent_at {
        let (c, dms) = seen
            .get(key)
            .unwrap_or_else(|| panic!("event {key} never arrived"));
        assert_eq!(dms.len(), SUBSCRIBERS, "{key}: every subscriber once");
        to_channel.push(c.expect("the channel message").duration_since(*at));
        to_all_dms.push(dms.iter().max().unwrap().duration_since(*at));
    }
    let channel_stats = stats(
        "personal/webhook_to_channel_message_at_50_per_s",
        to_channel,
        wall,
    );
    let dm_stats = stats(
        "personal/webhook_to_last_of_20_dms_at_50_per_s",
        to_all_dms,
        wall,
    );
    ratio(
        "personal/last_of_20_dms_vs_channel_message",
        &dm_stats,
        &channel_stats,
    );
}
