//! `kdhost demo`: the host and the Discord stand-in on one machine, a few real signed
//! interactions with their answers printed, then serving on for a person to try more.
//! `kdhost demo --instances 3`: the same with several instances on private PostgreSQL and
//! Redis servers (`instances.rs`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{DiscordStandIn, KalturaOptions, KalturaStandIn, StandInOptions};

mod instances;

pub use instances::run_instances;

use super::standin::{DEMO_SEED, kaltura_settings};

use crate::app::App;
use crate::config::settings::{ApiSettings, DiscordSettings, ServeOptions, Settings};
use crate::plugins::builtin;
use crate::telemetry::LogFormat;

const DEMO_GUILD: &str = "600000000000000001";
const DEMO_RECORDINGS: &str = "910000000000000001";

/// Kaltura says a recording is ready (signed, as Kaltura's batch sends it, the same
/// notification to each address in `addrs`); the guild's rule posts it to #recordings
/// through the outbox; the stand-in shows the message.
async fn webhook_demo(
    standin: &DiscordStandIn,
    kaltura: &KalturaStandIn,
    addrs: &[String],
) -> anyhow::Result<()> {
    use testkit::kaltura::notify::{encode, http_notification};
    println!("-- Kaltura webhook → guild rule → Discord channel --\n");
    standin.set_channels(DEMO_GUILD, &[(DEMO_RECORDINGS, "recordings")]);
    let entry = kaltura
        .ready_entry_ids()
        .first()
        .cloned()
        .unwrap_or_default();
    let Some(mut object) = kaltura.entry_object(&entry) else {
        return Ok(());
    };
    object["status"] = json!(2);
    object["sourceType"] = json!("36");
    object["rootEntryId"] = json!("1_demolive");
    // A new job id each run: the demo's database remembers the ids it has seen.
    let job = crate::store::now_ms() as u64;
    let n = encode(
        &http_notification(job, 3, "Entry Status Changed", object.clone()),
        testkit::BodyFormat::DataParam,
        kaltura.admin_secret(),
        "sha256",
    );
    for addr in addrs {
        let (status, body) = kaltura
            .deliver_notification(&format!("http://{addr}/webhooks/kaltura"), &n)
            .await?;
        println!(
            "→ POST http://{addr}/webhooks/kaltura (data=…, X-KALTURA-HASH-ALGO sha256): recording of {:?} ready\n  ← HTTP {status}: {body}",
            object["name"].as_str().unwrap_or_default()
        );
    }
    for _ in 0..100 {
        if let Some(m) = standin.channel_messages(DEMO_RECORDINGS).last() {
            println!(
                "  rule guilds/{DEMO_GUILD}/recording-ready.rhai → #recordings: {:?} + embed {:?}\n",
                m["content"].as_str().unwrap_or_default(),
                m["embeds"][0]["title"].as_str().unwrap_or_default()
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    println!("  (no message reached #recordings: see the log above)\n");
    Ok(())
}

fn cut(s: &str, max: usize) -> String {
    crate::events::template::truncate(s, max + 1)
}

/// The full custom id of the first button whose id contains `marker`.
fn first_button(body: &Value, marker: &str) -> Option<String> {
    body["data"]["components"]
        .as_array()?
        .iter()
        .flat_map(|row| row["components"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["custom_id"].as_str().map(String::from))
        .find(|id| id.contains(marker))
}

/// `./config` when it exists (edit it and watch it reload), else a copy of the shipped
/// defaults under the demo's data folder, so the demo runs from any directory.
fn demo_config(root: &std::path::Path) -> anyhow::Result<PathBuf> {
    let local = PathBuf::from("config");
    if local.join("default.json").exists() {
        return Ok(local);
    }
    let dir = root.join("config");
    std::fs::create_dir_all(dir.join("guilds"))?;
    std::fs::write(
        dir.join("default.json"),
        include_str!("../../../../config/default.json"),
    )?;
    std::fs::write(
        dir.join("plugins.json"),
        include_str!("../../../../config/plugins.json"),
    )?;
    Ok(dir)
}

/// The Activity's built page: `KD_ACTIVITY` (as in the container image), else `activity/dist`.
pub(crate) fn activity_dist() -> PathBuf {
    std::env::var_os("KD_ACTIVITY")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("activity/dist"), PathBuf::from)
}

fn summarize(v: &Value) -> String {
    let data = &v["data"];
    let mut parts = vec![format!("type {}", v["type"])];
    if let Some(c) = data["content"].as_str() {
        parts.push(format!("content {c:?}"));
    }
    for e in data["embeds"].as_array().into_iter().flatten() {
        parts.push(format!("embed {:?}", e["title"].as_str().unwrap_or("")));
        for f in e["fields"].as_array().into_iter().flatten() {
            parts.push(format!(
                "  {}: {}",
                f["name"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or("").replace('\n', " | ")
            ));
        }
    }
    for row in data["components"].as_array().into_iter().flatten() {
        for c in row["components"].as_array().into_iter().flatten() {
            let target = match (c["custom_id"].as_str(), c["url"].as_str()) {
                (Some(id), _) => id.to_string(),
                (None, Some(url)) => format!("{} (link)", cut(url, 90)),
                _ => String::new(),
            };
            let label = c["label"]
                .as_str()
                .or(c["placeholder"].as_str())
                .unwrap_or("");
            parts.push(format!("button {label:?} → {target}"));
        }
    }
    parts.join("\n      ")
}

/// Starts the stand-ins and the host, walks through commands, buttons and a Kaltura
/// webhook (printing each answer), then serves until Ctrl-C (or stops, with `once`).
pub async fn run(listen: SocketAddr, once: bool) -> anyhow::Result<ExitCode> {
    let standin = discord_standin().await?;
    let root = PathBuf::from("data/demo");
    let plugins = prepare_files(&root)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let opts = ServeOptions {
        listen: addr,
        public_url: Some(format!("http://{addr}")),
        config: demo_config(&root)?,
        plugins: plugins.clone(),
        scripts: root.join("scripts"),
        activity: activity_dist(),
        data: root.clone(),
        database_url: None,
        redis_url: None,
        log_format: LogFormat::Text,
    };
    let kaltura = KalturaStandIn::start("127.0.0.1:0".parse()?, KalturaOptions::default()).await?;
    // Metrics on a loopback listener of their own, never on the public one.
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let metrics_addr = metrics.local_addr()?;
    tokio::spawn(crate::app::serve_metrics(metrics));
    let app = App::build(&opts, demo_settings(&standin, &kaltura)?).await?;
    super::serve::print_report(&app, &addr.to_string());
    app.start_gateway();
    let url = format!("http://{addr}/interactions");
    standin.set_target(&url);
    // Whoever opens the Activity in the demo (the SDK's mock users) is in the demo server.
    standin.set_open_membership(DEMO_GUILD);
    let server = tokio::spawn(app.serve(listener, super::serve::shutdown_signal()));

    println!(
        "\n== kdhost demo: Discord stand-in at {}, host at http://{addr}\n",
        standin.base_url
    );
    let tour = Tour {
        standin: &standin,
        url: &url,
    };
    tour.commands().await?;
    println!(
        "-- Kaltura (stand-in at {}, partner {}) --\n",
        kaltura.url,
        kaltura.partner_id()
    );
    tour.kaltura().await?;
    webhook_demo(&standin, &kaltura, &[addr.to_string()]).await?;
    show_command_sync(&standin).await;
    if once {
        return Ok(ExitCode::SUCCESS);
    }
    println!("\nServing. Watch Together in a browser: open this twice (two tabs, two people):");
    println!("  http://{addr}/activity/?instance=demo&channel=200000000000000001");
    println!("  (add &player=kaltura for Kaltura Player v7, played from the Kaltura stand-in)");
    println!("Try more:");
    println!(
        "  curl -s -XPOST {}/_testkit/send -d '{{\"command\":\"about\"}}'",
        standin.base_url
    );
    println!("  curl -s http://{metrics_addr}/metrics | grep kd_plugin_calls");
    println!(
        "  drop a .wasm into {} and it loads at once. Ctrl-C stops.",
        plugins.display()
    );
    server.await??;
    Ok(ExitCode::SUCCESS)
}

/// The Discord stand-in with the demo's fixed keys (the same application every run).
async fn discord_standin() -> anyhow::Result<DiscordStandIn> {
    let options = StandInOptions {
        seed: Some(DEMO_SEED),
        ..Default::default()
    };
    DiscordStandIn::start("127.0.0.1:0".parse()?, options).await
}

/// The demo's plugins folder (with the example plugin, so it hot-reloads) and its guild
/// rule (Kaltura recordings → #recordings, fired by a signed webhook).
fn prepare_files(root: &std::path::Path) -> anyhow::Result<PathBuf> {
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    let hello = PathBuf::from(builtin::GUEST_WASM_DIR).join("kd_plugin_rust_hello.wasm");
    if hello.exists() {
        std::fs::copy(&hello, plugins.join("hello.wasm"))?;
    }
    let rules = root.join("scripts/guilds").join(DEMO_GUILD);
    std::fs::create_dir_all(&rules)?;
    std::fs::write(
        rules.join("recording-ready.rhai"),
        include_str!("../../../../examples/rules/recording-ready.rhai"),
    )?;
    Ok(plugins)
}

/// The host's settings against the two stand-ins.
fn demo_settings(standin: &DiscordStandIn, kaltura: &KalturaStandIn) -> anyhow::Result<Settings> {
    let discord = DiscordSettings {
        public_key: Some(standin.public_key_hex()),
        application_id: Some(standin.application_id().to_string()),
        bot_token: Some(crate::config::secret::Secret::new("standin-bot-token")),
        client_secret: Some(crate::config::secret::Secret::new("standin-client-secret")),
        api_base: standin.base_url.clone(),
        dev_guild: None,
        activities: false,
        member_events: true,
        shards: Default::default(),
    };
    Ok(Settings {
        discord,
        kaltura: Some(kaltura_settings(kaltura)?),
        api: ApiSettings {
            jwt_secret: Some(crate::config::secret::Secret::new(
                "kdhost-demo-jwt-secret-not-for-production",
            )),
            ..Default::default()
        },
        delivery: Default::default(),
        // The demo's Activity runs in an ordinary browser, on the SDK's mock.
        activity: crate::config::settings::ActivitySettings {
            dev_mode: true,
            grace: None,
        },
        http: Default::default(),
        metrics: Default::default(),
        plugin_memory_mib: None,
        retention: Default::default(),
        shutdown: Default::default(),
    })
}

/// Signed interactions sent to the host, each answer printed.
struct Tour<'a> {
    standin: &'a DiscordStandIn,
    url: &'a str,
}

const DEMO_USER: &str = "700000000000000001";

impl Tour<'_> {
    async fn step(&self, label: &str, payload: Value) -> anyhow::Result<Value> {
        let (status, body) = self.standin.send_interaction(self.url, &payload).await?;
        println!("→ {label}\n  ← HTTP {status}: {}\n", summarize(&body));
        Ok(body)
    }

    async fn command(&self, label: &str, name: &str, options: Value) -> anyhow::Result<Value> {
        let payload = self
            .standin
            .command(name, options, DEMO_GUILD, DEMO_USER, &[]);
        self.step(label, payload).await
    }

    async fn button(&self, label: &str, custom_id: &str) -> anyhow::Result<Value> {
        let payload = self.standin.button(custom_id, DEMO_GUILD, DEMO_USER);
        self.step(label, payload).await
    }

    /// The example and built-in plugins' commands and a button.
    async fn commands(&self) -> anyhow::Result<()> {
        self.command("/help", "help", json!([])).await?;
        self.command("/about", "about", json!([])).await?;
        let who = json!([{"name": "who", "type": 6, "value": DEMO_USER}]);
        self.command("/hello who:@you", "hello", who).await?;
        self.button("[Wave back] button", "hello:wave").await?;
        self.command("/nope (unknown)", "nope", json!([])).await?;
        Ok(())
    }

    /// Search, play, Watch Together, a meeting and its join button.
    async fn kaltura(&self) -> anyhow::Result<()> {
        let query = json!([{"name": "query", "type": 3, "value": "security"}, {"name": "limit", "type": 4, "value": 3}]);
        let found = self
            .command(
                "/kaltura-video-search query:security limit:3",
                "kaltura-video-search",
                query,
            )
            .await?;
        if let Some(play) = first_button(&found, ":play:") {
            self.button("[Play] button", &play).await?;
        }
        // Without Activities on the (stand-in) app, Watch Together answers with a browser
        // link; the room opens on this video.
        if let Some(watch) = first_button(&found, ":watch:") {
            self.button("[Watch Together] button", &watch).await?;
        }
        let start = json!([{"name": "type", "type": 3, "value": "meeting"}, {"name": "title", "type": 3, "value": "Demo stand-up"}]);
        let started = self
            .command(
                "/kaltura-start type:meeting title:Demo stand-up",
                "kaltura-start",
                start,
            )
            .await?;
        self.command("/kaltura-list", "kaltura-list", json!([]))
            .await?;
        if let Some(join) = first_button(&started, ":kaltura-join:") {
            self.button("[Join] button", &join).await?;
        }
        Ok(())
    }
}

/// The command sync runs in the background: shows what Discord received.
async fn show_command_sync(standin: &DiscordStandIn) {
    let synced = standin
        .wait_for(Duration::from_secs(3), |r| r.method == "PUT")
        .await;
    if synced.is_none() {
        println!("Commands unchanged since the last run: nothing was sent to Discord.");
    }
    for r in standin
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/commands"))
    {
        let n = r.body.as_array().map(|a| a.len()).unwrap_or(0);
        println!(
            "Discord stand-in received {} {} → {} ({n} commands)",
            r.method, r.path, r.status
        );
    }
}
