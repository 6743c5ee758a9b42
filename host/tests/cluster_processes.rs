//! Three `kdhost serve` processes on private PostgreSQL and Redis servers with the Discord
//! stand-in: one killed with SIGKILL mid-delivery, Redis stopped and restarted, PostgreSQL
//! restarted. Every message reaches the stand-in exactly once, in each channel's queue
//! order, and the stand-in never sees more than the bot's 50 requests in a second. An
//! Activity room spans instances and outlives its owner.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::processes::{free_port, post_notifications, serve_command, wait_healthy};
use common::sync_socket::{Ws, connect, next, send};
use kdhost::store::postgres::PostgresStore;
use kdhost::store::{Inbox, OutboxStore};
use serde_json::{Value, json};
use testkit::kaltura::notify::{encode, http_notification};
use testkit::servers::{PostgresServer, RedisServer};
use testkit::{BodyFormat, DiscordStandIn, StandInOptions};

const GUILD: &str = "600000000000000001";
const SECRET: &str = "cluster-test-admin-secret";
/// Messages are routed by tag to four channels (each a lane with its own order).
const CHANNELS: [&str; 4] = [
    "910000000000000001",
    "910000000000000002",
    "910000000000000003",
    "910000000000000004",
];
/// Discord's global limit for one bot token, which the instances share.
const GLOBAL_LIMIT: usize = 50;
/// Only catches a hang: every wait here is for the event itself.
const HANG: Duration = Duration::from_secs(240);

/// What a cluster runs with beyond the defaults.
#[derive(Default)]
struct Options {
    /// Environment for every instance.
    env: Vec<(&'static str, String)>,
    /// What `GET /gateway/bot` recommends: (shards, max_concurrency).
    gateway: Option<(u32, u32)>,
    /// Extra rule files (path under `scripts/`, source).
    rules: Vec<(&'static str, &'static str)>,
    /// Extra guilds: (guild id, its one channel), each with a config file.
    guilds: Vec<(String, String)>,
    /// More of `config/plugins.json` (top-level keys added to the defaults).
    grants: Option<Value>,
    /// Components published with `kdhost plugin publish` before the instances start.
    plugins: Vec<PathBuf>,
}

/// Held by the running cluster (see [`Cluster::start_with`]).
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Cluster {
    _serial: tokio::sync::MutexGuard<'static, ()>,
    _tmp: tempfile::TempDir,
    options: Options,
    dir: PathBuf,
    pg: PostgresServer,
    redis: RedisServer,
    database_url: String,
    standin: DiscordStandIn,
    instances: Vec<Instance>,
}

struct Instance {
    child: Child,
    base: String,
}

/// Runs `kdhost ARGS DIR` against the shared database; it must succeed.
fn operator(args: &[&str], dir: &std::path::Path, database_url: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(args)
        .arg(dir)
        .env("KD_DATABASE_URL", database_url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kdhost {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    async fn start(n: usize) -> Cluster {
        Self::start_with(n, Options::default()).await
    }

    async fn start_with(n: usize, options: Options) -> Cluster {
        // One cluster at a time: three of them at once on two cores measure the machine.
        let serial = SERIAL.lock().await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        // Operator files: every instance mounts the same ones.
        std::fs::create_dir_all(dir.join("config/guilds")).unwrap();
        std::fs::create_dir_all(dir.join("plugins")).unwrap();
        let mut grants = json!({"kaltura": {"partner_events": [GUILD]}});
        for (k, v) in options.grants.iter().flat_map(|g| g.as_object()).flatten() {
            grants[k] = v.clone();
        }
        std::fs::write(dir.join("config/plugins.json"), grants.to_string()).unwrap();
        let routes: Vec<Value> = CHANNELS
            .iter()
            .enumerate()
            .map(|(i, c)| json!({"tags": [format!("t{i}")], "channel": c}))
            .collect();
        std::fs::write(
            dir.join("config/guilds").join(format!("{GUILD}.json")),
            // No default channel: each event becomes one message, in its tag's channel.
            json!({"notifications": {"templates": {"entry_ready": "{{id}}"}},
                   "kaltura": {"routes": routes}})
            .to_string(),
        )
        .unwrap();
        let pg = PostgresServer::start().expect("apt-get install -y postgresql");
        let database_url = pg.create_database("kd").unwrap();
        let redis = RedisServer::start().expect("apt-get install -y redis-server");
        // Per-channel buckets out of the way: the shared global limit is what is measured.
        let standin = DiscordStandIn::start(
            "127.0.0.1:0".parse().unwrap(),
            StandInOptions {
                bucket_limit: 1000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let pairs: Vec<(&str, &str)> = CHANNELS.iter().map(|c| (*c, "news")).collect();
        standin.set_channels(GUILD, &pairs);
        if let Some((shards, concurrency)) = options.gateway {
            standin.set_gateway_shards(shards, concurrency);
        }
        for (rel, src) in &options.rules {
            let p = dir.join("scripts").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, src).unwrap();
        }
        for (guild, channel) in &options.guilds {
            standin.set_channels(guild, &[(channel.as_str(), "welcome")]);
            std::fs::write(
                dir.join("config/guilds").join(format!("{guild}.json")),
                json!({}).to_string(),
            )
            .unwrap();
        }
        // The guild overrides and rules go into the shared database, as an operator moving
        // in would.
        operator(&["config", "import"], &dir.join("config"), &database_url);
        if !options.rules.is_empty() {
            operator(&["script", "import"], &dir.join("scripts"), &database_url);
        }
        for component in &options.plugins {
            operator(&["plugin", "publish"], component, &database_url);
        }
        let mut cluster = Cluster {
            _serial: serial,
            _tmp: tmp,
            options,
            dir,
            pg,
            redis,
            database_url,
            standin,
            instances: Vec::new(),
        };
        for i in 0..n {
            let instance = cluster.spawn(i);
            cluster.instances.push(instance);
        }
        for i in 0..n {
            wait_healthy(&cluster.instances[i].base).await;
        }
        cluster
    }

    fn spawn(&self, i: usize) -> Instance {
        let port = free_port();
        let data = self.dir.join(format!("data{i}"));
        let child = serve_command(&self.dir, &data, port, &self.standin, SECRET)
            .envs(self.options.env.iter().map(|(k, v)| (*k, v.as_str())))
            .env("KD_DATABASE_URL", &self.database_url)
            .env("KD_REDIS_URL", self.redis.url())
            // Shown when the test fails (servers restarted on purpose make errors here).
            .stderr(std::fs::File::create(self.dir.join(format!("instance{i}.log"))).unwrap())
            .spawn()
            .expect("kdhost starts");
        Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn webhook(&self, i: usize) -> String {
        format!("{}/webhooks/kaltura", self.instances[i].base)
    }

    /// The shared database, as the test reads it.
    async fn database(&self) -> PostgresStore {
        PostgresStore::connect_only(&self.database_url).unwrap()
    }

    /// Waits until every event is processed and every message has its result, and every
    /// expected message is at the stand-in: after this nothing more arrives.
    async fn settled(&self, expected: usize) {
        let db = self.database().await;
        let until = Instant::now() + HANG;
        loop {
            let inbox = db.pending().await.ok();
            let outbox = db.counts().await.ok();
            let delivered: usize = self.messages().values().map(Vec::len).sum();
            if inbox == Some(false)
                && outbox.is_some_and(|c| c.pending == 0)
                && delivered >= expected
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "not settled after {HANG:?}: inbox pending {inbox:?}, outbox {outbox:?}, {delivered} of {expected} delivered"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Messages at the stand-in so far.
    fn delivered(&self) -> usize {
        self.messages().values().map(Vec::len).sum()
    }

    /// Waits for the next message after `before` were delivered; how long that took.
    async fn next_delivery_after(&self, before: usize) -> Duration {
        let since = Instant::now();
        while self.delivered() <= before {
            assert!(
                since.elapsed() < HANG,
                "nothing delivered after a server came back"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        since.elapsed()
    }

    fn messages(&self) -> HashMap<String, Vec<Value>> {
        self.standin.all_channel_messages()
    }

    /// The most bot-authenticated requests the stand-in saw within any one second, and
    /// those requests (method, path, ms).
    fn busiest_second(&self) -> (usize, Vec<String>) {
        let mut reqs: Vec<testkit::Recorded> = self
            .standin
            .requests()
            .into_iter()
            .filter(|r| r.authorized)
            .collect();
        reqs.sort_by_key(|r| r.at_ms);
        let (mut most, mut at) = (0, 0..0);
        let mut start = 0;
        for end in 0..reqs.len() {
            while reqs[end].at_ms - reqs[start].at_ms >= 1000 {
                start += 1;
            }
            if end - start + 1 > most {
                (most, at) = (end - start + 1, start..end + 1);
            }
        }
        let seen = reqs[at]
            .iter()
            .map(|r| format!("{} {} @{}", r.method, r.path, r.at_ms))
            .collect();
        (most, seen)
    }

    /// Checks what reached the stand-in: `jobs` messages, each once, each channel in queue
    /// order (the outbox id in the nonce ascends), the bot's limit kept.
    fn check_delivered(&self, jobs: std::ops::RangeInclusive<u64>) {
        let all = self.messages();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for channel in CHANNELS {
            let msgs = all.get(channel).cloned().unwrap_or_default();
            let ids: Vec<i64> = msgs
                .iter()
                .map(|m| m["nonce"].as_str().unwrap()[8..].parse().unwrap())
                .collect();
            assert!(
                ids.windows(2).all(|w| w[0] < w[1]),
                "channel {channel} out of queue order: {ids:?}"
            );
            for m in &msgs {
                *seen
                    .entry(m["content"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
        }
        let missing: Vec<u64> = jobs
            .clone()
            .filter(|j| !seen.contains_key(&format!("job:{j}")))
            .collect();
        let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
        assert!(missing.is_empty(), "never delivered: {missing:?}");
        assert!(twice.is_empty(), "delivered more than once: {twice:?}");
        assert_eq!(seen.len(), jobs.count());
        let (busiest, seen) = self.busiest_second();
        eprintln!("busiest second at the stand-in: {busiest} bot requests");
        assert!(
            busiest <= GLOBAL_LIMIT,
            "the stand-in saw {busiest} bot requests within one second (limit {GLOBAL_LIMIT}): {seen:#?}"
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in &mut self.instances {
            let _ = i.child.kill();
            let _ = i.child.wait();
        }
        if std::thread::panicking() {
            for i in 0..self.instances.len() {
                let log = std::fs::read_to_string(self.dir.join(format!("instance{i}.log")))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                eprintln!(
                    "--- instance {i}, last lines of its log:\n{}",
                    lines[lines.len().saturating_sub(30)..].join("\n")
                );
            }
        }
    }
}

fn notification(job: u64) -> testkit::SignedNotification {
    let n = http_notification(
        job,
        3,
        "Entry Status Changed",
        json!({"objectType": "KalturaMediaEntry", "id": format!("0_e{job}"), "name": format!("Entry {job}"),
               "status": 2, "tags": format!("t{}", job as usize % CHANNELS.len())}),
    );
    encode(&n, BodyFormat::DataParam, SECRET, "sha256")
}

/// Posts until every job is acknowledged by one of `urls` (as Kaltura retries).
async fn post_until_acknowledged(urls: Vec<String>, jobs: Vec<u64>) {
    let mut left = jobs;
    let until = Instant::now() + HANG;
    while !left.is_empty() {
        assert!(Instant::now() < until, "still unacknowledged: {left:?}");
        left = post_notifications(&urls, left, notification).await;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_of_three_killed_mid_delivery_every_message_once_in_channel_order_within_the_limit() {
    const EVENTS: u64 = 1000;
    let mut cluster = Cluster::start(3).await;
    let urls: Vec<String> = (0..3).map(|i| cluster.webhook(i)).collect();

    // Kill instance 0 once 150 messages are out, whatever the poster is doing.
    let pid = cluster.instances[0].child.id() as i32;
    let killer = {
        let standin = cluster.standin.clone();
        tokio::spawn(async move {
            let since = Instant::now();
            loop {
                assert!(since.elapsed() < HANG, "150 messages never arrived");
                let n: usize = standin.all_channel_messages().values().map(Vec::len).sum();
                if n >= 150 {
                    // SAFETY: a signal to our own child process.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let unacknowledged = post_notifications(&urls, (1..=EVENTS).collect(), notification).await;
    let at_kill = killer.await.unwrap();
    let _ = cluster.instances[0].child.wait();
    let before: usize = cluster.messages().values().map(Vec::len).sum();
    assert!(
        before < EVENTS as usize,
        "the kill came after everything was delivered ({before}); the test proves nothing"
    );
    eprintln!(
        "killed at {at_kill} delivered; {} unacknowledged, resent to the survivors",
        unacknowledged.len()
    );
    // Kaltura sends again what was not acknowledged; the load balancer has only two left.
    post_until_acknowledged(urls[1..].to_vec(), unacknowledged).await;
    cluster.settled(EVENTS as usize).await;
    cluster.check_delivered(1..=EVENTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_away_then_postgresql_restarted_nothing_lost_nothing_over_the_limit() {
    let mut cluster = Cluster::start(3).await;
    let urls: Vec<String> = (0..3).map(|i| cluster.webhook(i)).collect();
    let wave = |from: u64, to: u64| post_until_acknowledged(urls.clone(), (from..=to).collect());

    wave(1, 150).await;
    // Redis goes away for a while (5 s of traffic), then comes back empty.
    cluster.redis.stop();
    let down = Instant::now();
    wave(151, 300).await;
    while down.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before = cluster.delivered();
    cluster.redis.resume().unwrap();
    let flowing = cluster.next_delivery_after(before).await;
    cluster.settled(300).await;
    eprintln!("Redis back: messages flowing again after {flowing:?}");

    // Then PostgreSQL restarts under traffic.
    let restart = tokio::spawn(wave(301, 450));
    cluster.pg.stop();
    let before = cluster.delivered();
    cluster.pg.resume().unwrap();
    let flowing = cluster.next_delivery_after(before).await;
    restart.await.unwrap();
    cluster.settled(450).await;
    eprintln!("PostgreSQL back: messages flowing again after {flowing:?}");
    cluster.check_delivered(1..=450);
}

/// A guild whose events go to shard `k` of 4 (`(id >> 22) % 4 == k`).
fn guild_on_shard(k: u64) -> String {
    (((1u64 << 36) + k) << 22).to_string()
}

/// A member joins `guild` over the gateway (delivered on the guild's shard only).
fn join(cluster: &Cluster, guild: &str, user: u64) {
    cluster.standin.send_gateway_event(
        "GUILD_MEMBER_ADD",
        json!({"guild_id": guild, "joined_at": "2026-12-02T09:00:00.000000+00:00", "roles": [],
               "deaf": false, "mute": false,
               "user": {"id": format!("{}", 700_000_000_000_000_000u64 + user), "username": "newcomer",
                        "discriminator": "0", "global_name": null, "avatar": null}}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_over_three_instances_each_connected_once_and_taken_over_when_its_holder_dies()
{
    const SHARDS: u32 = 4;
    let guilds: Vec<(String, String)> = (0..SHARDS as u64)
        .map(|k| (guild_on_shard(k), format!("92000000000000000{k}")))
        .collect();
    let mut cluster = Cluster::start_with(
        3,
        Options {
            env: vec![
                ("DISCORD_SHARDS", "auto".into()),
                ("DISCORD_MEMBER_EVENTS", "true".into()),
            ],
            gateway: Some((SHARDS, 1)),
            rules: vec![(
                "global/welcome.rhai",
                "fn on_member_join(member) { notify(\"#welcome\", `hi ${member.id}`); }",
            )],
            guilds: guilds.clone(),
            ..Default::default()
        },
    )
    .await;
    let every_shard_once = |cluster: &Cluster| {
        let sessions = cluster.standin.gateway_shard_sessions();
        (0..SHARDS).all(|s| sessions.get(&s) == Some(&1))
    };
    let until = Instant::now() + HANG;
    while !every_shard_once(&cluster) {
        assert!(
            Instant::now() < until,
            "shards: {:?}",
            cluster.standin.gateway_shard_sessions()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One IDENTIFY per 5 s (max_concurrency 1), whichever instance made it.
    let identifies = cluster.standin.gateway_identifies();
    assert!(
        identifies.iter().all(|(_, count, _)| *count == SHARDS),
        "{identifies:?}"
    );
    for w in identifies.windows(2) {
        assert!(
            w[1].2 - w[0].2 >= 5000,
            "IDENTIFYs closer than 5 s: {identifies:?}"
        );
    }
    // A member joins every guild: each welcomed once, by whoever holds its shard.
    for (i, (guild, _)) in guilds.iter().enumerate() {
        join(&cluster, guild, i as u64);
    }
    cluster.settled(SHARDS as usize).await;
    for (guild, channel) in &guilds {
        assert_eq!(
            cluster.standin.channel_messages(channel).len(),
            1,
            "guild {guild}"
        );
    }

    // The holder of shard 0 dies; another instance connects it.
    let db = cluster.database().await;
    let holder = db.holders("shard:0").await.unwrap()[0].owner.clone();
    let pid = db
        .instances()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.id == holder)
        .expect("the holder is a live instance")
        .pid;
    let victim = cluster
        .instances
        .iter()
        .position(|i| i.child.id() as i32 == pid)
        .expect("one of ours");
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = cluster.instances[victim].child.wait();
    let killed = Instant::now();
    while cluster.standin.gateway_shard_sessions().get(&0) == Some(&1) {
        assert!(
            killed.elapsed() < HANG,
            "the dead holder's shard stayed connected"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    while !every_shard_once(&cluster) {
        assert!(
            killed.elapsed() < HANG,
            "shards: {:?}",
            cluster.standin.gateway_shard_sessions()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "every shard connected once again {:?} after the holder died",
        killed.elapsed()
    );
    // Joins on every shard again: each handled once.
    for (i, (guild, _)) in guilds.iter().enumerate() {
        join(&cluster, guild, 100 + i as u64);
    }
    cluster.settled(2 * SHARDS as usize).await;
    for (guild, channel) in &guilds {
        assert_eq!(
            cluster.standin.channel_messages(channel).len(),
            2,
            "guild {guild}"
        );
    }
}

/// Settings for the Activity on the stand-in: sign-in (dev mode, the API's JWT secret, the
/// OAuth2 client secret) and a seat grace far longer than any reconnect here (the verdict
/// never races the clock).
fn activity_env() -> Vec<(&'static str, String)> {
    vec![
        ("KD_ACTIVITY_DEV", "true".into()),
        (
            "JWT_SECRET",
            "cluster-test-jwt-secret-of-enough-length".into(),
        ),
        ("DISCORD_CLIENT_SECRET", "standin-client-secret".into()),
        ("KD_ACTIVITY_GRACE_MS", "120000".into()),
    ]
}

/// An Activity host token for `user` from the instance at `base` (the real sign-in
/// against the stand-in's OAuth2).
async fn activity_token(cluster: &Cluster, base: &str, user: &str, name: &str) -> String {
    let (code, at) = (format!("code-{user}"), format!("at-{user}"));
    cluster.standin.add_oauth_user(&at, user, name);
    cluster.standin.add_oauth_code(&code, &at);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/activity/token"))
        .json(&json!({"code": code}))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {v}"))
        .to_string()
}

/// The next state message whose playback satisfies `want` (earlier ones are skipped).
async fn state_where(ws: &mut Ws, want: impl Fn(&Value) -> bool) -> Value {
    loop {
        let s = next(ws, "state").await;
        assert!(s.get("close").is_none() && s.get("ended").is_none(), "{s}");
        if want(&s["state"]) {
            return s;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_activity_room_spans_instances_and_lives_on_with_host_and_position_when_its_owner_dies()
{
    const ANN: &str = "700000000000000011";
    const BOB: &str = "700000000000000012";
    const ROOM: &str = "i-cluster-room";
    let mut cluster = Cluster::start_with(
        2,
        Options {
            env: activity_env(),
            ..Default::default()
        },
    )
    .await;
    let (a, b) = (
        cluster.instances[0].base.clone(),
        cluster.instances[1].base.clone(),
    );
    let ann = activity_token(&cluster, &a, ANN, "Ann").await;
    let bob = activity_token(&cluster, &b, BOB, "Bob").await;
    // Ann opens the room at A (A owns it); Bob joins through B (relayed to A).
    let mut host = connect(&a, ROOM, &ann).await;
    assert_eq!(next(&mut host, "welcome").await["host"], ANN);
    let mut follower = connect(&b, ROOM, &bob).await;
    let w = next(&mut follower, "welcome").await;
    assert_eq!(
        (w["you"].as_str(), w["host"].as_str()),
        (Some(BOB), Some(ANN)),
        "{w}"
    );
    // The host drives; the follower on the other instance follows.
    send(&mut host, json!({"type": "load", "entry_id": "1_abcdefgh"})).await;
    send(&mut host, json!({"type": "play", "position": 30.0})).await;
    let playing = state_where(&mut follower, |s| s["playing"] == true).await;
    assert_eq!(playing["by"], ANN);
    let before = playing["state"].clone();
    assert_eq!(
        (before["entry_id"].as_str(), before["position"].as_f64()),
        (Some("1_abcdefgh"), Some(30.0))
    );
    // A follower may not drive, through the relay too.
    send(&mut follower, json!({"type": "pause", "position": 1.0})).await;
    assert_eq!(next(&mut follower, "error").await["code"], "not_host");

    // A dies. Its room lives on at B: the follower gets a fresh welcome on the socket it
    // has, with the host and the playback (entry, position, when it was true) kept.
    let pid = cluster.instances[0].child.id() as i32;
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = cluster.instances[0].child.wait();
    let killed = Instant::now();
    let w = next(&mut follower, "welcome").await;
    let resynced = killed.elapsed();
    assert_eq!(w["host"], ANN, "{w}");
    assert_eq!(w["state"], before, "{w}");
    // The host's page reconnects (its socket died with A) and still hosts.
    let mut host = connect(&b, ROOM, &ann).await;
    let w = next(&mut host, "welcome").await;
    assert_eq!(
        (w["host"].as_str(), &w["state"]),
        (Some(ANN), &before),
        "{w}"
    );
    send(&mut host, json!({"type": "seek", "position": 90.0})).await;
    let seeked = state_where(&mut follower, |s| s["position"] == 90.0).await;
    assert_eq!(seeked["by"], ANN);
    eprintln!("the follower was back in sync {resynced:?} after the room's owner died");
    drop(cluster);
}

/// `METHOD PATH` on an instance's API with a bearer token: status and answer.
async fn api_call(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<(&str, String)>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(token);
    if let Some((content_type, b)) = body {
        req = req.header("content-type", content_type).body(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactions_config_and_rules_through_three_processes_are_one_bot() {
    const ADMIN: &str = "700000000000000077";
    const ADMIN_ROLE: &str = "800000000000000077";
    let poll = common::guest("kd_plugin_rust_poll");
    let cluster = Cluster::start_with(
        3,
        Options {
            env: vec![
                ("JWT_SECRET", "cluster-test-jwt-secret-of-enough-length".into()),
                // The test polls the API until a change shows: no per-minute cap on that.
                ("KD_API_PER_MINUTE", "1000000".into()),
            ],
            // Many people vote at once: the operator raises the allowances (with Redis they
            // are one for every instance) and the plugin's calls in flight.
            grants: Some(json!({"plugins": {"poll": {"grants": ["kv"]}},
                                "limits": {"concurrency": 256},
                                "rate_limits": {"per_user_per_minute": 1000, "per_guild_per_minute": 100000}})),
            plugins: vec![poll],
            ..Default::default()
        },
    )
    .await;
    let bases: Vec<String> = cluster.instances.iter().map(|i| i.base.clone()).collect();
    let urls: Vec<String> = bases.iter().map(|b| format!("{b}/interactions")).collect();
    let standin = &cluster.standin;

    // A poll opened on one instance; 90 people vote at once, round-robin over all three.
    let payload = standin.command(
        "poll",
        json!([{"name": "question", "type": 3, "value": "Lunch?"},
               {"name": "options", "type": 3, "value": "Pizza, Sushi, Salad"}]),
        GUILD,
        "700000000000000001",
        &[],
    );
    let (status, opened) = standin.send_interaction(&urls[0], &payload).await.unwrap();
    assert_eq!(status, 200, "{opened}");
    let ids = common::button_ids(&opened);
    const VOTERS: usize = 90;
    let presses = (0..VOTERS).map(|i| {
        let payload = standin.button(&ids[i % 3], GUILD, &format!("70000000000000{i:04}"));
        let url = urls[i % 3].clone();
        async move { standin.send_interaction(&url, &payload).await.unwrap() }
    });
    for (status, body) in futures::future::join_all(presses).await {
        assert_eq!((status, body["type"].as_u64()), (200, Some(7)), "{body}");
    }
    // Every increment counted once, whichever instance took it.
    let db = cluster.database().await;
    let poll_id = ids[0].split(':').nth(2).unwrap().to_string();
    for option in 0..3 {
        let key = format!("poll:{poll_id}:count:{option}");
        let count = kdhost::store::KvStore::get(&db, "poll", GUILD, &key)
            .await
            .unwrap();
        assert_eq!(count.as_deref(), Some(&b"30"[..]), "option {option}");
    }

    // A guild admin changes the config through the API of one instance: the others have it.
    standin.set_guild(
        GUILD,
        "700000000000000099",
        &[(ADMIN_ROLE, "Config team", 32)],
    );
    standin.set_member(GUILD, ADMIN, &[ADMIN_ROLE]);
    standin.add_oauth_user("oauth-admin", ADMIN, "Ada");
    let token = {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/token", bases[1]))
            .json(&json!({"discord_access_token": "oauth-admin"}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{v}"))
            .to_string()
    };
    let config = format!("/api/v1/guilds/{GUILD}/config");
    let patch = json!({"notifications": {"templates": {"entry_ready": "Ready: {{id}}"}}});
    let (status, v) = api_call(
        &bases[1],
        &token,
        "PATCH",
        &config,
        Some(("application/merge-patch+json", patch.to_string())),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let changed = Instant::now();
    for base in [&bases[0], &bases[2]] {
        loop {
            let (_, v) = api_call(base, &token, "GET", &config, None).await;
            if v["effective"]["notifications"]["templates"]["entry_ready"] == "Ready: {{id}}" {
                break;
            }
            assert!(changed.elapsed() < HANG, "{v}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    eprintln!(
        "config change through the API in force on the other instances after {:?}",
        changed.elapsed()
    );
    // A bad one is refused, and nothing changes anywhere.
    let (_, good) = api_call(&bases[0], &token, "GET", &config, None).await;
    let bad = json!({"notifications": {"enabled": "maybe"}});
    let (status, v) = api_call(
        &bases[2],
        &token,
        "PATCH",
        &config,
        Some(("application/merge-patch+json", bad.to_string())),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    for base in &bases {
        let (_, v) = api_call(base, &token, "GET", &config, None).await;
        assert_eq!(v["effective"], good["effective"]);
    }

    // A rule uploaded through one instance runs for an event arriving at another.
    let rule = format!(
        "fn on_kaltura_event(ev) {{ if ev.kind == \"entry_ready\" {{ notify(\"{}\", `rule saw ${{ev.id}}`); }} }}",
        CHANNELS[0]
    );
    let script = format!("/api/v1/guilds/{GUILD}/scripts/seen.rhai");
    let (status, v) = api_call(
        &bases[2],
        &token,
        "PUT",
        &script,
        Some(("text/plain", rule)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    for base in &bases {
        loop {
            let (_, v) = api_call(base, &token, "GET", &script, None).await;
            if v.as_str().is_some_and(|s| s.contains("rule saw")) {
                break;
            }
            assert!(changed.elapsed() < HANG, "{v}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let (status, v) = api_call(
        &bases[1],
        &token,
        "PUT",
        &script,
        Some(("text/plain", "fn on_schedule( {".into())),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    post_until_acknowledged(vec![cluster.webhook(0)], vec![4]).await;
    cluster.settled(2).await;
    let texts: Vec<String> = cluster
        .standin
        .channel_messages(CHANNELS[0])
        .iter()
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts.contains(&"Ready: job:4".to_string()), "{texts:?}");
    assert!(texts.contains(&"rule saw job:4".to_string()), "{texts:?}");
}

/// Rows in the shared database still held by `owner`, by what holds them: outbox lanes
/// with a live lease, leases (leader, shards), unfinished event claims.
async fn held_by(database_url: &str, owner: &str) -> Vec<(String, i64)> {
    let (client, connection) = tokio_postgres::connect(database_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let now = "(extract(epoch from clock_timestamp()) * 1000)::bigint";
    let mut held = Vec::new();
    for (what, sql) in [
        (
            "outbox lanes",
            format!("SELECT count(*) FROM outbox_lanes WHERE owner = $1 AND expires_at > {now}"),
        ),
        (
            "leases",
            format!("SELECT count(*) FROM leases WHERE owner = $1 AND expires_at > {now}"),
        ),
        (
            "event claims",
            "SELECT count(*) FROM inbox WHERE claimed_by = $1 AND processed_at IS NULL".to_string(),
        ),
        (
            "registration",
            "SELECT count(*) FROM instances WHERE id = $1".to_string(),
        ),
    ] {
        let n: i64 = client.query_one(&sql, &[&owner]).await.unwrap().get(0);
        held.push((what.to_string(), n));
    }
    held
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_stream_fails_no_interaction_loses_nothing_and_hands_everything_over() {
    const EVENTS: u64 = 300;
    const ANN: &str = "700000000000000021";
    const BOB: &str = "700000000000000022";
    const ROOM: &str = "i-rolling-update";
    let mut cluster = Cluster::start_with(
        2,
        Options {
            env: vec![
                // Far longer than the test's load balancer takes to notice (it asks before
                // every request): the verdict never races the clock.
                ("KD_SHUTDOWN_DELAY_MS", "10000".into()),
                ("DISCORD_SHARDS", "auto".into()),
            ]
            .into_iter()
            .chain(activity_env())
            .collect(),
            gateway: Some((2, 1)),
            ..Default::default()
        },
    )
    .await;
    let bases: Vec<String> = cluster.instances.iter().map(|i| i.base.clone()).collect();
    let urls: Vec<String> = (0..2).map(|i| cluster.webhook(i)).collect();
    let pid = cluster.instances[0].child.id() as i32;
    let db = cluster.database().await;
    let leaving = db
        .instances()
        .await
        .unwrap()
        .into_iter()
        .find(|i| i.pid == pid)
        .expect("instance 0 is registered")
        .id;

    // An Activity room owned by instance 0, with a follower relayed through instance 1.
    let ann = activity_token(&cluster, &bases[0], ANN, "Ann").await;
    let bob = activity_token(&cluster, &bases[1], BOB, "Bob").await;
    let mut host = connect(&bases[0], ROOM, &ann).await;
    next(&mut host, "welcome").await;
    let mut follower = connect(&bases[1], ROOM, &bob).await;
    next(&mut follower, "welcome").await;
    send(&mut host, json!({"type": "load", "entry_id": "1_abcdefgh"})).await;
    send(&mut host, json!({"type": "play", "position": 12.0})).await;
    let playing = state_where(&mut follower, |s| s["playing"] == true).await["state"].clone();

    // Interactions stream through a load balancer that asks each instance's /readyz before
    // every request (as a Service's endpoints follow readiness).
    let stop_stream = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stream = {
        let (standin, bases, stop) = (cluster.standin.clone(), bases.clone(), stop_stream.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut answered, mut failed) = (0usize, Vec::new());
            let mut i = 0usize;
            while !stop.load(std::sync::atomic::Ordering::Acquire) {
                i += 1;
                let mut ready = Vec::new();
                for base in &bases {
                    let up = http.get(format!("{base}/readyz")).send().await;
                    if up.is_ok_and(|r| r.status() == 200) {
                        ready.push(base.clone());
                    }
                }
                let Some(base) = ready.get(i % ready.len().max(1)) else {
                    continue;
                };
                let payload = standin.command("help", json!([]), GUILD, "700000000000000001", &[]);
                match standin
                    .send_interaction(&format!("{base}/interactions"), &payload)
                    .await
                {
                    Ok((200, _)) => answered += 1,
                    other => failed.push(format!("{base}: {other:?}")),
                }
            }
            (answered, failed)
        })
    };
    // Deliveries in flight when the stop comes.
    let first = post_notifications(&urls, (1..=EVENTS / 2).collect(), notification).await;
    assert!(first.is_empty(), "{first:?}");

    // SIGTERM to instance 0 (a rolling update).
    // SAFETY: a signal to our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let rest = post_notifications(
        &urls[1..],
        (EVENTS / 2 + 1..=EVENTS).collect(),
        notification,
    )
    .await;
    assert!(rest.is_empty(), "{rest:?}");
    // The room's host is told "server restarting" and reconnects (here, to the survivor):
    // the room resumed there with its host and playback.
    let closed = next(&mut host, "welcome").await;
    assert_eq!(closed["close"], 4013, "{closed}");
    let mut host = connect(&bases[1], ROOM, &ann).await;
    let w = next(&mut host, "welcome").await;
    assert_eq!(
        (w["host"].as_str(), &w["state"]),
        (Some(ANN), &playing),
        "{w}"
    );
    // It exits cleanly, having given back everything it held.
    let status = cluster.instances[0].child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    let held = held_by(&cluster.database_url, &leaving).await;
    assert!(held.iter().all(|(_, n)| *n == 0), "{held:?}");

    stop_stream.store(true, std::sync::atomic::Ordering::Release);
    let (answered, failed) = stream.await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    assert!(answered > 0);
    cluster.settled(EVENTS as usize).await;
    cluster.check_delivered(1..=EVENTS);
    eprintln!("{answered} interactions answered across the stop, none failed");
}
