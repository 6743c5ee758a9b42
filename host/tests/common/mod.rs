//! Test harness: the real host on loopback against the Discord stand-in, in temp folders.
#![allow(dead_code)]

pub mod members;
pub mod processes;
pub mod sync_socket;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kdhost::app::App;
use kdhost::config::secret::Secret;
use kdhost::config::settings::{
    ApiSettings, DeliverySettings, DiscordSettings, ServeOptions, Settings,
};
use kdhost::plugins::builtin::GUEST_WASM_DIR;
use kdhost::telemetry::LogFormat;
use serde_json::{Value, json};
use testkit::{DiscordStandIn, KalturaOptions, KalturaStandIn, StandInOptions};

pub const GUILD: &str = "600000000000000001";
pub const USER: &str = "700000000000000001";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";
/// `KD_METRICS_TOKEN` of the test hosts.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789abcdef012345";

/// How long a test waits for something that must happen before it calls it a hang. Tests
/// wait for the event itself (a message, a state, a log line); this bound only stops a
/// test that would otherwise wait forever, so no verdict depends on the machine's speed.
pub const HANG: Duration = Duration::from_secs(120);

/// Polls `check` until it answers, failing (naming `what`) only after [`HANG`].
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + HANG;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "gave up waiting for {what} after {HANG:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// [`eventually`] for a check that has to await.
pub async fn eventually_async<T, F>(what: &str, mut check: impl FnMut() -> F) -> T
where
    F: Future<Output = Option<T>>,
{
    let until = std::time::Instant::now() + HANG;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "gave up waiting for {what} after {HANG:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A built guest component by crate name (e.g. "kd_fixture_hostile").
pub fn guest(name: &str) -> PathBuf {
    let p = Path::new(GUEST_WASM_DIR).join(format!("{name}.wasm"));
    assert!(p.exists(), "{} was not built", p.display());
    p
}

pub struct Host {
    pub standin: DiscordStandIn,
    pub outbox: std::sync::Arc<kdhost::delivery::Outbox>,
    pub processor: std::sync::Arc<kdhost::events::process::EventProcessor>,
    pub rules: std::sync::Arc<kdhost::scripts::Rules>,
    pub url: String,
    pub base: String,
    pub app_registry: std::sync::Arc<kdhost::plugins::Registry>,
    pub guilds: std::sync::Arc<kdhost::config::guild::GuildConfigs>,
    /// The host's runtime state (tokens, launches, room claims, ...).
    pub shared: kdhost::store::SharedState,
    /// The host's storage, to look at what it kept.
    pub stores: kdhost::store::Stores,
    pub dir: PathBuf,
    pub load_failures: Vec<kdhost::plugins::registry::LoadFailure>,
    pub kaltura: Option<KalturaStandIn>,
    gateway: Option<Box<dyn FnOnce() + Send + Sync>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving task: done once the host has stopped (and left its cluster).
    served: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

pub struct Setup {
    /// (file name in the plugins folder, guest crate name)
    pub plugins: Vec<(&'static str, &'static str)>,
    /// (file name in the plugins folder, a component file built elsewhere)
    pub plugin_files: Vec<(&'static str, PathBuf)>,
    pub plugins_json: Option<String>,
    pub guild_configs: Vec<(String, Value)>,
    pub bot_token: bool,
    /// Reuse this folder (restart tests) instead of a fresh temp dir.
    pub dir: Option<PathBuf>,
    pub standin: Option<DiscordStandIn>,
    pub dev_guild: Option<String>,
    /// Start a Kaltura stand-in and configure the host for it.
    pub kaltura: bool,
    /// Configure Kaltura at a closed port (nothing answers).
    pub kaltura_unreachable: bool,
    /// The app has Activities (`DISCORD_ACTIVITIES=true`).
    pub activities: bool,
    /// `KD_ACTIVITY_DEV`: the token exchange accepts the SDK mock's `mock_code`.
    pub activity_dev: bool,
    /// Rule files: (path under the scripts folder, source).
    pub rules: Vec<(&'static str, String)>,
    /// Outbox settings (tests shorten the retry delays).
    pub delivery: Option<DeliverySettings>,
    /// `config/api.json` (service accounts).
    pub api_json: Option<Value>,
    /// `config/default.json` (the guild default).
    pub default_config: Option<Value>,
    /// How long a dropped Activity participant keeps their seat (400 ms unless set).
    pub activity_grace: Option<Duration>,
    /// HTTP request limits (tests sign in many people from one address: high unless set).
    pub http: Option<kdhost::config::settings::HttpSettings>,
    /// `KD_DATABASE_URL`: PostgreSQL instead of SQLite in the data folder.
    pub database_url: Option<String>,
    /// `KD_REDIS_URL`: runtime state shared through Redis.
    pub redis_url: Option<String>,
    /// `DISCORD_SHARDS` / `DISCORD_SHARD_COUNT`.
    pub shards: kdhost::discord::shards::ShardPlan,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            plugins: vec![],
            plugin_files: vec![],
            plugins_json: None,
            guild_configs: vec![],
            bot_token: true,
            dir: None,
            standin: None,
            dev_guild: None,
            kaltura: false,
            delivery: None,
            activity_dev: false,
            rules: vec![],
            kaltura_unreachable: false,
            api_json: None,
            activities: false,
            default_config: None,
            activity_grace: None,
            http: None,
            database_url: None,
            redis_url: None,
            shards: Default::default(),
        }
    }
}

pub fn default_grants() -> String {
    json!({
        "plugins": {
            "*": {"grants": ["log"]},
            "core": {"grants": ["host", "log"]},
            "hello": {"grants": ["log"]},
            "hostile": {"grants": ["log"], "cpu_ms": 300, "memory_mb": 16, "timeout_ms": 8000}
        },
        // `kaltura_config()` narrows sessions to this context: the operator binds it; every
        // configured guild hears the partner's events.
        "kaltura": {"guilds": {GUILD: {"privacy_contexts": ["discord"]}}, "partner_events": ["*"]}
    })
    .to_string()
}

impl Host {
    pub async fn start(setup: Setup) -> Host {
        Self::try_start(setup).await.unwrap()
    }

    /// Starts a host, or says why it would not start.
    pub async fn try_start(setup: Setup) -> anyhow::Result<Host> {
        if std::env::var_os("RUST_LOG").is_some() {
            kdhost::telemetry::init_logging(LogFormat::Text);
        }
        let (tmp, dir) = match setup.dir {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().unwrap();
                let d = t.path().to_path_buf();
                (Some(t), d)
            }
        };
        let plugins = dir.join("plugins");
        let config = dir.join("config");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::create_dir_all(config.join("guilds")).unwrap();
        std::fs::write(
            config.join("plugins.json"),
            setup.plugins_json.unwrap_or_else(default_grants),
        )
        .unwrap();
        if let Some(a) = &setup.api_json {
            std::fs::write(config.join("api.json"), a.to_string()).unwrap();
        }
        if let Some(d) = &setup.default_config {
            std::fs::write(config.join("default.json"), d.to_string()).unwrap();
        }
        for (id, cfg) in &setup.guild_configs {
            match &setup.database_url {
                // On a shared database the overrides are rows there (as `kdhost config
                // import` puts them).
                Some(url) => {
                    let pg = kdhost::store::postgres::PostgresStore::connect(url).await?;
                    pg.import_guild_config(id, cfg).await?;
                }
                None => std::fs::write(config.join(format!("guilds/{id}.json")), cfg.to_string())
                    .unwrap(),
            }
        }
        for (rel, src) in &setup.rules {
            let p = dir.join("scripts").join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, src).unwrap();
        }
        for (file, crate_name) in &setup.plugins {
            std::fs::copy(guest(crate_name), plugins.join(file)).unwrap();
        }
        for (file, path) in &setup.plugin_files {
            std::fs::copy(path, plugins.join(file)).unwrap();
        }
        // On a shared database rules and plugins are rows there (as `kdhost script import`
        // and `kdhost plugin publish` put them).
        if let Some(url) = &setup.database_url {
            let pg = kdhost::store::postgres::PostgresStore::connect(url).await?;
            kdhost::cli::db::import_folders(&pg, &dir.join("scripts"), &plugins).await?;
        }
        let standin = match setup.standin {
            Some(s) => s,
            None => {
                DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
                    .await
                    .unwrap()
            }
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = ServeOptions {
            listen: addr,
            public_url: Some(format!("http://{addr}")),
            config,
            plugins,
            scripts: dir.join("scripts"),
            activity: std::path::PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../activity/dist"
            )),
            data: dir.join("data"),
            database_url: setup.database_url.clone(),
            redis_url: setup.redis_url.clone(),
            log_format: LogFormat::Text,
        };
        let discord = DiscordSettings {
            public_key: Some(standin.public_key_hex()),
            application_id: Some(standin.application_id().into()),
            bot_token: setup.bot_token.then(|| Secret::new("standin-bot-token")),
            client_secret: Some(Secret::new("standin-client-secret")),
            api_base: standin.base_url.clone(),
            dev_guild: setup.dev_guild.clone(),
            activities: setup.activities,
            member_events: true,
            shards: setup.shards.clone(),
        };
        let kaltura = if setup.kaltura {
            Some(
                KalturaStandIn::start("127.0.0.1:0".parse().unwrap(), KalturaOptions::default())
                    .await
                    .unwrap(),
            )
        } else {
            None
        };
        let mut kaltura_settings = kaltura
            .as_ref()
            .map(|k| kdhost::cli::standin::kaltura_settings(k).unwrap());
        if setup.kaltura_unreachable {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", closed.local_addr().unwrap());
            drop(closed);
            let mut s = kaltura_settings.expect("kaltura_unreachable needs kaltura: true");
            s.service_url = url;
            kaltura_settings = Some(s);
        }
        let settings = Settings {
            discord,
            kaltura: kaltura_settings,
            api: ApiSettings {
                jwt_secret: Some(Secret::new(JWT_SECRET)),
                ..Default::default()
            },
            delivery: setup.delivery.clone().unwrap_or_default(),
            activity: kdhost::config::settings::ActivitySettings {
                dev_mode: setup.activity_dev,
                grace: Some(setup.activity_grace.unwrap_or(Duration::from_millis(400))),
            },
            http: setup
                .http
                .clone()
                .unwrap_or(kdhost::config::settings::HttpSettings {
                    anonymous_per_minute: 1_000_000,
                    subject_per_minute: 1_000_000,
                    client_ip_header: None,
                }),
            metrics: kdhost::config::settings::MetricsSettings {
                listen: None,
                token: Some(Secret::new(METRICS_TOKEN)),
            },
            plugin_memory_mib: None,
            retention: Default::default(),
            shutdown: Default::default(),
        };
        let app = App::build(&opts, settings).await?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app_registry = app.registry.clone();
        let outbox = app.outbox.clone();
        let processor = app.processor.clone();
        let rules = app.rules.clone();
        let (guilds, shared) = (app.guilds.clone(), app.shared.clone());
        let stores = app.stores.clone();
        let load_failures = app.load_failures.clone();
        let gateway = app.gateway_starter();
        let served = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
            kdhost::app::stopping::Stop::Now
        }));
        let url = format!("http://{addr}/interactions");
        standin.set_target(&url);
        Ok(Host {
            standin,
            outbox,
            processor,
            rules,
            url,
            base: format!("http://{addr}"),
            app_registry,
            guilds,
            shared,
            stores,
            dir,
            load_failures,
            kaltura,
            gateway: Some(gateway),
            shutdown: Some(tx),
            served: Some(served),
            _tmp: tmp,
        })
    }

    /// Why a plugin file was refused at start (panics if it was not).
    pub fn refusal(&self, file: &str) -> String {
        self.load_failures
            .iter()
            .find(|f| f.source.ends_with(file))
            .unwrap_or_else(|| panic!("{file} was not refused: {:?}", self.load_failures))
            .reason
            .clone()
    }

    /// Waits until every accepted event is processed and every queued message has its
    /// result (sent or dead): after this, what has not arrived will not arrive.
    pub async fn settled(&self) {
        let stores = &self.stores;
        eventually_async("the inbox and the outbox to settle", || async {
            let inbox_done = !stores.inbox.pending().await.ok()?;
            let outbox_done = stores.outbox.counts().await.ok()?.pending == 0;
            (inbox_done && outbox_done).then_some(())
        })
        .await
    }

    /// Waits until `channel` holds at least `n` messages; returns them all.
    pub async fn messages(&self, channel: &str, n: usize) -> Vec<Value> {
        eventually(&format!("{n} messages in channel {channel}"), || {
            let m = self.standin.channel_messages(channel);
            (m.len() >= n).then_some(m)
        })
        .await
    }

    /// Waits until the host's gateway has a session at the stand-in.
    pub async fn gateway_connected(&self) {
        eventually("the gateway to connect", || {
            (self.standin.gateway_sessions() > 0).then_some(())
        })
        .await
    }

    /// Connects the host's gateway (serenity) to the stand-in.
    pub fn start_gateway(&mut self) {
        if let Some(start) = self.gateway.take() {
            start();
        }
    }

    /// Sends a signed slash command and returns (status, body).
    pub async fn command(&self, name: &str, options: Value) -> (u16, Value) {
        let p = self.standin.command(name, options, GUILD, USER, &[]);
        self.standin.send_interaction(&self.url, &p).await.unwrap()
    }

    /// The text of a reply (content, or the first embed's title and description).
    pub async fn command_text(&self, name: &str) -> String {
        let (status, body) = self.command(name, json!([])).await;
        assert_eq!(status, 200, "{body}");
        text_of(&body)
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        reqwest::Client::new()
            .get(format!("{}/metrics", self.base))
            .bearer_auth(METRICS_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// An API token (`POST /api/v1/auth/token`) for the holder of a Discord access token
    /// the stand-in knows (`add_oauth_user`).
    pub async fn api_token(&self, discord_access_token: &str) -> String {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/auth/token", self.base))
            .json(&json!({"discord_access_token": discord_access_token}))
            .send()
            .await
            .unwrap();
        let body: Value = r.json().await.unwrap();
        body["token"]
            .as_str()
            .unwrap_or_else(|| panic!("no token: {body}"))
            .to_string()
    }

    /// Makes `user` a config admin of [`GUILD`] (through a role with Manage Server) who
    /// signs in to the API with the OAuth2 access token `oauth`.
    pub fn add_guild_admin(&self, user: &str, role: &str, oauth: &str) {
        self.standin
            .set_guild(GUILD, "700000000000000099", &[(role, "Config team", 32)]);
        self.standin.set_member(GUILD, user, &[role]);
        self.standin.add_oauth_user(oauth, user, "Ada");
    }

    /// `POST /api/v1/activity/token` (the Activity's sign-in): status and answer.
    pub async fn activity_token(&self, body: Value) -> (u16, Value) {
        let r = reqwest::Client::new()
            .post(format!("{}/api/v1/activity/token", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `GET /readyz`'s body.
    pub async fn ready(&self) -> Value {
        reqwest::get(format!("{}/readyz", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Stops serving and waits until the host has stopped.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(served) = self.served.take() {
            let _ = tokio::time::timeout(HANG, served).await;
        }
    }
}

pub fn text_of(body: &Value) -> String {
    let d = &body["data"];
    let mut s = d["content"].as_str().unwrap_or_default().to_string();
    for e in d["embeds"].as_array().into_iter().flatten() {
        s.push_str(e["title"].as_str().unwrap_or_default());
        s.push_str(e["description"].as_str().unwrap_or_default());
    }
    s
}

pub fn is_ephemeral(body: &Value) -> bool {
    body["data"]["flags"].as_u64().unwrap_or(0) & 64 != 0
}

/// A guild config with Kaltura on: privileges, a roles mapping by name and by id, and a
/// share template.
pub fn kaltura_config() -> Value {
    json!({
        "kaltura": {"enabled": true, "session": {"privileges": {"default": "privacycontext:discord", "video": "", "meeting": ""}}},
        "roles": {"mapping": {"moderator": ["Mods"], "admin": ["800000000000000009"]}},
        "plugins": {"kaltura-meetings": {"settings": {"templates": {"meeting_share": "Join {{title}} ({{kind}}) by {{owner}}!"}}}}
    })
}

/// The host with the Kaltura stand-in and `kaltura_config()`; the guild has a "Mods" role
/// (800000000000000005) and a mapped admin role (800000000000000009).
pub async fn start_with_kaltura(extra: impl FnOnce(&mut Setup)) -> Host {
    let mut setup = Setup {
        kaltura: true,
        default_config: Some(kaltura_config()),
        ..Default::default()
    };
    extra(&mut setup);
    let host = Host::start(setup).await;
    host.standin.set_guild(
        GUILD,
        "700000000000000099",
        &[
            ("800000000000000005", "Mods", 0),
            ("800000000000000009", "Kaltura admins", 0),
        ],
    );
    host
}

/// Every v2 KS in `text` (they start with base64 "v2|"), also inside URLs (`%3D` padding).
pub fn sessions_in(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"djJ8[A-Za-z0-9_\-]+(?:=|%3D){0,2}").unwrap();
    re.find_iter(text)
        .map(|m| m.as_str().replace("%3D", "="))
        .collect()
}

/// Fails if any ADMIN session of the stand-in's partner appears in `text`.
pub fn assert_no_admin_session(kaltura: &testkit::KalturaStandIn, text: &str, where_: &str) {
    use kdhost::kaltura::ks;
    for s in sessions_in(text) {
        if let Ok(info) = ks::decode(&s, kaltura.partner_id(), &[kaltura.admin_secret()]) {
            assert_ne!(
                info.session_type,
                ks::SessionType::Admin,
                "an ADMIN session leaked into {where_}"
            );
        }
    }
}

/// Checks a session the stand-in would accept and returns what it grants.
pub fn verify_session(
    kaltura: &testkit::KalturaStandIn,
    session: &str,
) -> kdhost::kaltura::ks::KsInfo {
    kdhost::kaltura::ks::verify(
        session,
        kaltura.partner_id(),
        &[kaltura.admin_secret()],
        kdhost::kaltura::sessions::now(),
    )
    .unwrap()
}

/// The options array of a slash command: integers typed as integers, the rest as text.
pub fn opts(pairs: &[(&str, Value)]) -> Value {
    Value::Array(
        pairs
            .iter()
            .map(|(n, v)| {
                let t = if v.is_i64() { 4 } else { 3 };
                json!({"name": n, "type": t, "value": v})
            })
            .collect(),
    )
}

/// The buttons (and other components) of an interaction answer, row after row.
pub fn buttons(body: &Value) -> Vec<Value> {
    body["data"]["components"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["components"].as_array().cloned().unwrap_or_default())
        .collect()
}

/// The custom ids of an answer's components.
pub fn button_ids(body: &Value) -> Vec<String> {
    buttons(body)
        .iter()
        .filter_map(|b| b["custom_id"].as_str().map(String::from))
        .collect()
}
