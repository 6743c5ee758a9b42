//! What the bench binaries share: percentiles, JSON-line results, a concurrent load driver.
#![allow(dead_code)]

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

/// Prints and returns one measurement: median, p99 (µs) and throughput.
pub fn stats(name: &str, mut lat: Vec<Duration>, wall: Duration) -> Value {
    lat.sort();
    let v = json!({
        "bench": name,
        "requests": lat.len(),
        "median_us": percentile(&lat, 0.5),
        "p99_us": percentile(&lat, 0.99),
        "throughput_rps": lat.len() as f64 / wall.as_secs_f64(),
    });
    println!("{v}");
    v
}

/// Runs `op(i)` for i in 0..n with `concurrency` in flight; returns each latency and the
/// wall time.
pub async fn drive<F, Fut>(n: usize, concurrency: usize, op: F) -> (Vec<Duration>, Duration)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    let t = Instant::now();
                    op(i).await;
                    lat.push(t.elapsed());
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(n);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, started.elapsed())
}

/// This process's resident memory (KiB), from /proc.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

pub fn machine() -> String {
    format!(
        "{} cores",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    )
}

/// The ratio of two measurements' median and p99.
pub fn ratio(name: &str, subject: &Value, baseline: &Value) {
    let r = |k: &str| subject[k].as_f64().unwrap() / baseline[k].as_f64().unwrap();
    println!(
        "{}",
        json!({"bench": name, "median_ratio": r("median_us"), "p99_ratio": r("p99_us"), "subject": subject["bench"], "baseline": baseline["bench"]})
    );
}

/// Interaction bodies signed like Discord signs them: (body, timestamp, signature).
pub type Signed = Arc<Vec<(Vec<u8>, String, String)>>;

pub fn sign_all(
    standin: &testkit::DiscordStandIn,
    payloads: impl Iterator<Item = Value>,
) -> Signed {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    Arc::new(
        payloads
            .map(|p| {
                let body = serde_json::to_vec(&p).unwrap();
                let sig = standin.signer.sign(&ts, &body);
                (body, ts.clone(), sig)
            })
            .collect(),
    )
}

/// An operation for [`drive`]: POST the i-th signed body to `url`, check the answer
/// contains `expect`.
pub fn post_signed(
    client: &reqwest::Client,
    url: &str,
    bodies: Signed,
    expect: &'static str,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    post_signed_round_robin(client, vec![url.to_string()], bodies, expect)
}

/// [`post_signed`] with the i-th body sent to `urls[i % urls.len()]` (instances behind a
/// round-robin load balancer).
pub fn post_signed_round_robin(
    client: &reqwest::Client,
    urls: Vec<String>,
    bodies: Signed,
    expect: &'static str,
) -> impl Fn(usize) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync + 'static {
    let client = client.clone();
    move |i| {
        let url = urls[i % urls.len()].clone();
        let (client, bodies) = (client.clone(), bodies.clone());
        Box::pin(async move {
            let (body, ts, sig) = &bodies[i];
            let text = client
                .post(&url)
                .header("content-type", "application/json")
                .header("x-signature-ed25519", sig)
                .header("x-signature-timestamp", ts)
                .body(body.clone())
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(text.contains(expect), "unexpected answer: {text}");
        })
    }
}

/// The baseline: a bare axum `POST /interactions` answering `canned` (no verification, no
/// plugin). Returns its URL.
pub async fn bare_interactions(canned: Value) -> String {
    let bare = axum::Router::new().route(
        "/interactions",
        axum::routing::post(move || {
            let c = canned.clone();
            async move { axum::Json(c) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/interactions", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, bare).await.unwrap() });
    url
}

/// A host serving on loopback from a temp folder, wired to the Discord stand-in, with rate
/// limits out of the way (they would throttle the load).
pub struct BenchHost {
    pub addr: std::net::SocketAddr,
    _tmp: tempfile::TempDir,
}

impl BenchHost {
    pub fn interactions_url(&self) -> String {
        format!("http://{}/interactions", self.addr)
    }
}

/// `plugins`: (file name, component bytes); `default_config`: `config/default.json`;
/// `settings` gets the Discord part filled in.
pub async fn start_host(
    discord: &testkit::DiscordStandIn,
    plugins: &[(&str, Vec<u8>)],
    default_config: Option<Value>,
    settings: kdhost::config::settings::Settings,
) -> BenchHost {
    start_host_with(
        discord,
        HostFiles {
            plugins,
            default_config,
            ..Default::default()
        },
        settings,
    )
    .await
}

/// What goes into the bench host's folders, and whether it has the bot token.
#[derive(Default)]
pub struct HostFiles<'a> {
    pub plugins: &'a [(&'a str, Vec<u8>)],
    pub default_config: Option<Value>,
    /// `config/guilds/<id>.json`.
    pub guild_configs: Vec<(String, Value)>,
    /// Rule files under `scripts/`.
    pub rules: Vec<(String, String)>,
    /// With the bot token the outbox delivers to the stand-in.
    pub bot_token: bool,
    /// `KD_DATABASE_URL` (PostgreSQL); SQLite in the data folder when `None`.
    pub database_url: Option<String>,
    /// `KD_REDIS_URL`: runtime state (and Activity rooms) shared with other instances.
    pub redis_url: Option<String>,
}

pub async fn start_host_with(
    discord: &testkit::DiscordStandIn,
    files: HostFiles<'_>,
    mut settings: kdhost::config::settings::Settings,
) -> BenchHost {
    let HostFiles {
        plugins,
        default_config,
        guild_configs,
        rules,
        bot_token,
        database_url,
        redis_url,
    } = files;
    use kdhost::config::settings::{DiscordSettings, ServeOptions};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    for (file, bytes) in plugins {
        std::fs::write(dir.join("plugins").join(file), bytes).unwrap();
    }
    std::fs::write(
        dir.join("config/plugins.json"),
        // Concurrency 32 against one plugin: its own limit raised above that (an operator
        // would for a busy plugin), so the runs measure the path, not refusals.
        r#"{"limits":{"concurrency":256},"rate_limits":{"per_user_per_minute":100000000,"per_guild_per_minute":100000000},"kaltura":{"partner_events":["*"],"meeting_backends":["scheduled_events","virtual_events","rooms"]}}"#,
    )
    .unwrap();
    if let Some(d) = default_config {
        std::fs::write(dir.join("config/default.json"), d.to_string()).unwrap();
    }
    std::fs::create_dir_all(dir.join("config/guilds")).unwrap();
    for (id, cfg) in &guild_configs {
        match &database_url {
            // On PostgreSQL the overrides are rows (as `kdhost config import` puts them).
            Some(url) => {
                let pg = kdhost::store::postgres::PostgresStore::connect(url)
                    .await
                    .unwrap();
                pg.import_guild_config(id, cfg).await.unwrap();
            }
            None => std::fs::write(
                dir.join(format!("config/guilds/{id}.json")),
                cfg.to_string(),
            )
            .unwrap(),
        }
    }
    for (rel, src) in &rules {
        let p = dir.join("scripts").join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, src).unwrap();
    }
    // On PostgreSQL rules and plugins are rows too (as an operator moving in puts them).
    if let Some(url) = &database_url {
        let pg = kdhost::store::postgres::PostgresStore::connect(url)
            .await
            .unwrap();
        kdhost::cli::db::import_folders(&pg, &dir.join("scripts"), &dir.join("plugins"))
            .await
            .unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let opts = ServeOptions {
        listen: addr,
        config: dir.join("config"),
        plugins: dir.join("plugins"),
        scripts: dir.join("scripts"),
        activity: dir.join("activity"),
        data: dir.join("data"),
        database_url,
        redis_url,
        public_url: None,
        log_format: kdhost::telemetry::LogFormat::Text,
    };
    // The benches measure the host, with its limit checks but not its limits.
    settings.http = kdhost::config::settings::HttpSettings {
        anonymous_per_minute: u32::MAX,
        subject_per_minute: u32::MAX,
        client_ip_header: None,
    };
    settings.discord = DiscordSettings {
        public_key: Some(discord.public_key_hex()),
        application_id: Some(discord.application_id().into()),
        bot_token: bot_token.then(|| kdhost::config::secret::Secret::new("standin-bot-token")),
        client_secret: None,
        api_base: discord.base_url.clone(),
        dev_guild: None,
        activities: false,
        member_events: false,
        shards: Default::default(),
    };
    let app = kdhost::app::App::build(&opts, settings).await.unwrap();
    tokio::spawn(app.serve(
        listener,
        std::future::pending::<kdhost::app::stopping::Stop>(),
    ));
    BenchHost { addr, _tmp: tmp }
}
