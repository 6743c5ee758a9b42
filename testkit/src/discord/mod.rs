//! A Discord stand-in: the REST subset the host uses, with Discord's rate-limit headers,
//! 429 injection and error codes; it records every request (`GET /_testkit/requests`) and
//! signs and sends interactions to a host like Discord does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;

use axum::http::StatusCode;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::signing::InteractionSigner;

mod applications;
mod attachments;
mod channels;
mod control;
mod guilds;
mod http;
mod interactions;
mod oauth;

use guilds::GuildData;

/// A request the stand-in received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub body: Value,
    /// The status the stand-in answered with.
    pub status: u16,
    /// Milliseconds since the stand-in started.
    pub at_ms: u64,
    pub authorized: bool,
}

/// A fault to inject into the next `count` requests whose path contains `path_contains`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Fault {
    pub path_contains: String,
    /// 429 (rate limited), 500/502/503 or any other status.
    pub status: u16,
    #[serde(default = "one")]
    pub count: u32,
    /// Seconds, for 429.
    #[serde(default)]
    pub retry_after: f64,
    /// Delay before answering, in milliseconds.
    #[serde(default)]
    pub delay_ms: u64,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Clone)]
pub struct StandInOptions {
    pub application_id: String,
    /// If set, bot-authenticated routes require `Authorization: Bot <token>`.
    pub bot_token: Option<String>,
    /// Requests allowed per route bucket per window (Discord-style headers are sent).
    pub bucket_limit: u32,
    pub bucket_window: Duration,
    /// Fixed signing seed (reproducible public key) or random.
    pub seed: Option<[u8; 32]>,
    /// Bot requests per second across all routes (Discord: 50); `None`: no global limit.
    pub global_limit: Option<u32>,
    /// The application's OAuth2 client secret (`POST /oauth2/token` checks it).
    pub client_secret: String,
}

impl Default for StandInOptions {
    fn default() -> Self {
        Self {
            application_id: "100000000000000001".into(),
            bot_token: Some("standin-bot-token".into()),
            bucket_limit: 50,
            bucket_window: Duration::from_secs(1),
            seed: None,
            global_limit: None,
            client_secret: "standin-client-secret".into(),
        }
    }
}

/// What happened to an interaction the stand-in sent.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InteractionState {
    pub id: String,
    /// The callback type the host answered with (inline or via the callback route).
    pub acked: Option<u64>,
    /// The original response message (type 4 data, later edits applied).
    pub original: Option<Value>,
    pub original_deleted: bool,
    pub followups: Vec<Value>,
}

struct Bucket {
    window_start: Instant,
    used: u32,
}

struct Inner {
    opts: StandInOptions,
    started: Instant,
    requests: Mutex<Vec<Recorded>>,
    faults: Mutex<Vec<Fault>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// token → interaction state
    interactions: Mutex<HashMap<String, InteractionState>>,
    ids: AtomicU64,
    signer: InteractionSigner,
    http: reqwest::Client,
    /// The host's interactions URL, for `POST /_testkit/send`.
    target: Mutex<Option<String>>,
    gateway: Arc<crate::gateway::Gateway>,
    addr: SocketAddr,
    /// OAuth2 access token → user object (for `GET /users/@me` with `Bearer`).
    oauth: Mutex<HashMap<String, Value>>,
    /// OAuth2 access tokens issued to another application than this one (token → its id).
    oauth_foreign: Mutex<HashMap<String, String>>,
    /// Activity instance → (its channel, who is in it).
    instances: Mutex<HashMap<String, (String, Vec<String>)>>,
    /// OAuth2 authorization code → the access token it is exchanged for (single use).
    codes: Mutex<HashMap<String, String>>,
    guilds: Mutex<HashMap<String, GuildData>>,
    /// Channel id → messages created in it, oldest first.
    messages: Mutex<HashMap<String, Vec<Value>>>,
    /// Every message created, as it is created (for latency measurements).
    created: tokio::sync::broadcast::Sender<(String, Value)>,
    /// Message nonce → (when, the message), for `enforce_nonce`.
    nonces: Mutex<HashMap<String, (Instant, Value)>>,
    /// The current one-second window of the global limit: (start, requests).
    global_window: Mutex<(Instant, u32)>,
    /// Files sent with messages, by `<attachment id>/<filename>`.
    files: Mutex<attachments::Files>,
    /// The bot's DM channel with each user, and the users who refuse the bot's DMs.
    dms: Mutex<HashMap<String, String>>,
    dm_refusers: Mutex<std::collections::HashSet<String>>,
}

/// A running stand-in.
#[derive(Clone)]
pub struct DiscordStandIn {
    pub base_url: String,
    pub addr: SocketAddr,
    pub signer: InteractionSigner,
    inner: Arc<Inner>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn discord_error(status: StatusCode, code: u64, message: &str) -> (StatusCode, Value) {
    (status, json!({"message": message, "code": code}))
}

fn not_found() -> (StatusCode, Value) {
    discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found")
}

impl DiscordStandIn {
    /// Binds `addr` (port 0 for any) and serves in the background.
    pub async fn start(addr: SocketAddr, opts: StandInOptions) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let signer: InteractionSigner = match opts.seed {
            Some(seed) => InteractionSigner::from_seed(seed),
            None => InteractionSigner::random(),
        };
        let gateway =
            crate::gateway::Gateway::new(opts.bot_token.clone(), opts.application_id.clone());
        let inner = Arc::new(Inner {
            opts,
            started: Instant::now(),
            requests: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            messages: Mutex::new(HashMap::new()),
            created: tokio::sync::broadcast::channel(65_536).0,
            nonces: Mutex::new(HashMap::new()),
            global_window: Mutex::new((Instant::now(), 0)),
            buckets: Mutex::new(HashMap::new()),
            interactions: Mutex::new(HashMap::new()),
            ids: AtomicU64::new(1),
            signer: signer.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            target: Mutex::new(None),
            gateway: gateway.clone(),
            addr,
            oauth: Mutex::new(HashMap::new()),
            oauth_foreign: Mutex::new(HashMap::new()),
            codes: Mutex::new(HashMap::new()),
            instances: Mutex::new(HashMap::new()),
            guilds: Mutex::new(HashMap::new()),
            files: Mutex::new(HashMap::new()),
            dms: Mutex::new(HashMap::new()),
            dm_refusers: Mutex::new(Default::default()),
        });
        let app = Router::new()
            .route(
                "/gateway-ws",
                axum::routing::get(crate::gateway::upgrade).with_state(gateway),
            )
            .fallback(http::handle)
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            base_url: format!("http://{addr}"),
            addr,
            signer,
            inner,
        })
    }

    pub fn application_id(&self) -> &str {
        &self.inner.opts.application_id
    }

    pub fn public_key_hex(&self) -> String {
        self.signer.public_key_hex()
    }

    /// Everything received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.requests.lock().unwrap().clone()
    }

    pub fn clear_requests(&self) {
        self.inner.requests.lock().unwrap().clear();
    }

    pub fn inject(&self, fault: Fault) {
        self.inner.faults.lock().unwrap().push(fault);
    }

    /// The state of an interaction this stand-in sent, by its token.
    pub fn interaction(&self, token: &str) -> Option<InteractionState> {
        self.inner.interactions.lock().unwrap().get(token).cloned()
    }

    /// Waits until a recorded request satisfies `pred` (or the timeout passes).
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl Fn(&Recorded) -> bool,
    ) -> Option<Recorded> {
        let until = Instant::now() + timeout;
        loop {
            if let Some(r) = self.requests().into_iter().find(&pred) {
                return Some(r);
            }
            if Instant::now() >= until {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes `token` a valid OAuth2 access token for this user (`GET /users/@me`).
    pub fn add_oauth_user(&self, token: &str, user_id: &str, username: &str) {
        self.inner.oauth.lock().unwrap().insert(
            token.to_string(),
            json!({"id": user_id, "username": username, "discriminator": "0", "global_name": username, "avatar": null}),
        );
    }

    /// Like [`Self::add_oauth_user`], for a token that Discord issued to another
    /// application (`GET /oauth2/@me` names that application).
    pub fn add_foreign_oauth_user(&self, token: &str, user_id: &str, username: &str, app_id: &str) {
        self.add_oauth_user(token, user_id, username);
        self.inner
            .oauth_foreign
            .lock()
            .unwrap()
            .insert(token.to_string(), app_id.to_string());
    }

    /// The user behind an OAuth2 access token (`GET /users/@me`'s answer).
    pub fn oauth_user(&self, token: &str) -> Option<Value> {
        self.inner.oauth.lock().unwrap().get(token).cloned()
    }

    /// A user some OAuth2 token belongs to, by id.
    pub fn known_user(&self, user_id: &str) -> Option<Value> {
        let oauth = self.inner.oauth.lock().unwrap();
        oauth.values().find(|u| u["id"] == user_id).cloned()
    }

    /// An Activity instance: (its channel, who is in it).
    pub fn activity_instance(&self, instance_id: &str) -> Option<(String, Vec<String>)> {
        self.inner
            .instances
            .lock()
            .unwrap()
            .get(instance_id)
            .cloned()
    }

    /// Gives the user behind an OAuth2 token an avatar hash (any text, to test what the host
    /// lets through).
    pub fn set_oauth_avatar(&self, token: &str, avatar: &str) {
        if let Some(u) = self.inner.oauth.lock().unwrap().get_mut(token) {
            u["avatar"] = json!(avatar);
        }
    }

    /// Who is in an Activity instance (`GET /applications/{app}/activity-instances/{id}`),
    /// running in channel `200000000000000001`.
    pub fn set_activity_instance(&self, instance_id: &str, users: &[&str]) {
        self.set_activity_instance_in(instance_id, "200000000000000001", users);
    }

    /// The same, in a given channel (the instance's `location.channel_id`).
    pub fn set_activity_instance_in(&self, instance_id: &str, channel_id: &str, users: &[&str]) {
        self.inner.instances.lock().unwrap().insert(
            instance_id.to_string(),
            (
                channel_id.to_string(),
                users.iter().map(|u| u.to_string()).collect(),
            ),
        );
    }

    /// Makes `code` an authorization code (single use) that `POST /oauth2/token` exchanges
    /// for `token` (give the token a user with [`Self::add_oauth_user`]).
    pub fn add_oauth_code(&self, code: &str, token: &str) {
        self.inner
            .codes
            .lock()
            .unwrap()
            .insert(code.to_string(), token.to_string());
    }

    /// Defines a guild: its owner and roles as (id, name, permission bits). The guild id
    /// is also the @everyone role.
    pub fn set_guild(&self, guild_id: &str, owner_id: &str, roles: &[(&str, &str, u64)]) {
        let mut list =
            vec![json!({"id": guild_id, "name": "@everyone", "permissions": "0", "position": 0})];
        for (i, (id, name, perms)) in roles.iter().enumerate() {
            list.push(json!({"id": id, "name": name, "permissions": perms.to_string(), "position": i + 1}));
        }
        self.with_guild(guild_id, |g| {
            g.owner_id = owner_id.to_string();
            g.roles = list;
        });
    }

    /// Changes a guild (made if the stand-in does not know it yet).
    fn with_guild(&self, guild_id: &str, f: impl FnOnce(&mut GuildData)) {
        f(self
            .inner
            .guilds
            .lock()
            .unwrap()
            .entry(guild_id.to_string())
            .or_default());
    }

    /// Adds a member to a guild with these role ids.
    pub fn set_member(&self, guild_id: &str, user_id: &str, roles: &[&str]) {
        self.with_guild(guild_id, |g| {
            g.members.insert(
                user_id.to_string(),
                roles.iter().map(|r| r.to_string()).collect(),
            );
        });
    }

    /// The realistic guilds shipped with the testkit (`fixtures/discord.json`): two servers
    /// with roles, text channels and members, used when none are given.
    pub fn bundled_fixtures() -> Value {
        serde_json::from_str(include_str!("../../fixtures/discord.json"))
            .expect("bundled Discord fixtures parse")
    }

    /// Loads guilds (`{"guilds": [{id, name, owner_id, roles: [{id, name, permissions}],
    /// channels: [{id, name}], members: [{id, roles}]}]}`); an error names what is wrong.
    pub fn load_fixtures(&self, v: &Value) -> Result<usize, String> {
        let guilds = v["guilds"]
            .as_array()
            .ok_or("fixtures: `guilds` must be a list")?;
        for (i, g) in guilds.iter().enumerate() {
            let at = format!("fixtures: guilds[{i}]");
            let text = |field: &str| {
                g[field]
                    .as_str()
                    .map(String::from)
                    .ok_or(format!("{at}.{field} must be text"))
            };
            let id = text("id")?;
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
                return Err(format!("{at}.id must be a Discord id (digits)"));
            }
            let roles: Vec<(String, String, u64)> = g["roles"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    (
                        r["id"].as_str().unwrap_or_default().to_string(),
                        r["name"].as_str().unwrap_or_default().to_string(),
                        r["permissions"]
                            .as_u64()
                            .or_else(|| r["permissions"].as_str().and_then(|p| p.parse().ok()))
                            .unwrap_or(0),
                    )
                })
                .collect();
            let roles_ref: Vec<(&str, &str, u64)> = roles
                .iter()
                .map(|(a, b, c)| (a.as_str(), b.as_str(), *c))
                .collect();
            self.set_guild(&id, &text("owner_id").unwrap_or_default(), &roles_ref);
            let channels: Vec<(String, String)> = g["channels"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| {
                    Some((
                        c["id"].as_str()?.to_string(),
                        c["name"].as_str()?.to_string(),
                    ))
                })
                .collect();
            let channels_ref: Vec<(&str, &str)> = channels
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            self.set_channels(&id, &channels_ref);
            for m in g["members"].as_array().into_iter().flatten() {
                let user = m["id"]
                    .as_str()
                    .ok_or(format!("{at}.members: an id is text"))?;
                let roles: Vec<&str> = m["roles"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                self.set_member(&id, user, &roles);
            }
            if let Some(name) = g["name"].as_str() {
                self.with_guild(&id, |g| g.name = name.to_string());
            }
        }
        Ok(guilds.len())
    }

    /// Makes every user a member of the guild (no roles) unless set otherwise: the demo's
    /// server, joined by whoever opens the Activity in dev mode.
    pub fn set_open_membership(&self, guild_id: &str) {
        self.with_guild(guild_id, |g| g.open = true);
    }

    /// Gives a guild text channels, as (id, name).
    pub fn set_channels(&self, guild_id: &str, channels: &[(&str, &str)]) {
        self.with_guild(guild_id, |g| {
            g.channels = channels
                .iter()
                .map(|(i, n)| (i.to_string(), n.to_string()))
                .collect();
        });
    }

    /// The messages created in a channel (`POST /channels/{id}/messages`), oldest first.
    /// The bot's DM channel with `user`, once it was opened.
    pub fn dm_channel_of(&self, user: &str) -> Option<String> {
        self.inner.dms.lock().unwrap().get(user).cloned()
    }

    /// `user` does not accept DMs from the bot: messages to their DM channel are refused
    /// with Discord's 50007.
    pub fn refuse_dms(&self, user: &str) {
        self.inner
            .dm_refusers
            .lock()
            .unwrap()
            .insert(user.to_string());
    }

    pub fn channel_messages(&self, channel_id: &str) -> Vec<Value> {
        self.inner
            .messages
            .lock()
            .unwrap()
            .get(channel_id)
            .cloned()
            .unwrap_or_default()
    }

    /// (channel id, message) of each message from now on, the moment it is created.
    pub fn subscribe_messages(&self) -> tokio::sync::broadcast::Receiver<(String, Value)> {
        self.inner.created.subscribe()
    }

    /// Messages created in every channel, by channel id.
    pub fn all_channel_messages(&self) -> HashMap<String, Vec<Value>> {
        self.inner.messages.lock().unwrap().clone()
    }

    /// Gateway sessions that have identified (the host's gateway is connected).
    pub fn gateway_sessions(&self) -> usize {
        self.inner.gateway.identified.load(Ordering::Relaxed)
    }

    /// What `GET /gateway/bot` recommends: `shards`, and IDENTIFYs per 5 s per bucket.
    pub fn set_gateway_shards(&self, shards: u32, max_concurrency: u32) {
        let g = &self.inner.gateway;
        g.recommended_shards.store(shards.max(1), Ordering::Relaxed);
        g.max_concurrency
            .store(max_concurrency.max(1), Ordering::Relaxed);
    }

    /// Identified gateway sessions per shard id (a shard connected twice shows 2).
    pub fn gateway_shard_sessions(&self) -> HashMap<u32, usize> {
        self.inner.gateway.shard_sessions.lock().unwrap().clone()
    }

    /// Every IDENTIFY so far: (shard id, shard count, ms since the stand-in started).
    pub fn gateway_identifies(&self) -> Vec<(u32, u32, u64)> {
        self.inner.gateway.identifies.lock().unwrap().clone()
    }

    /// Delivers an interaction over the gateway (INTERACTION_CREATE); the host must answer
    /// through `POST /interactions/{id}/{token}/callback`.
    pub fn send_gateway_interaction(&self, payload: &Value) {
        let token = payload["token"].as_str().unwrap_or_default().to_string();
        self.inner.interactions.lock().unwrap().insert(
            token,
            InteractionState {
                id: payload["id"].as_str().unwrap_or_default().into(),
                ..Default::default()
            },
        );
        let _ = self
            .inner
            .gateway
            .dispatches
            .send(("INTERACTION_CREATE".into(), payload.clone()));
    }

    /// Sends any gateway dispatch event (GUILD_CREATE, VOICE_STATE_UPDATE...) to connected hosts.
    pub fn send_gateway_event(&self, name: &str, payload: Value) {
        let _ = self
            .inner
            .gateway
            .dispatches
            .send((name.to_string(), payload));
    }

    /// Where `POST /_testkit/send` delivers interactions (the host's `/interactions` URL).
    pub fn set_target(&self, url: &str) {
        *self.inner.target.lock().unwrap() = Some(url.to_string());
    }

    /// An APPLICATION_COMMAND interaction as Discord sends it, in a guild.
    pub fn command(
        &self,
        name: &str,
        options: Value,
        guild_id: &str,
        user_id: &str,
        roles: &[&str],
    ) -> Value {
        self.inner.command(name, options, guild_id, user_id, roles)
    }

    /// A MESSAGE_COMPONENT interaction (a button press) with the full custom id.
    pub fn button(&self, custom_id: &str, guild_id: &str, user_id: &str) -> Value {
        let mut v = self.command("unused", json!([]), guild_id, user_id, &[]);
        v["type"] = json!(3);
        v["data"] = json!({"custom_id": custom_id, "component_type": 2});
        v["message"] = json!({"id": "400000000000000001", "content": ""});
        v
    }

    /// Signs `payload` and POSTs it to `url` like Discord; records the inline answer.
    /// Returns the HTTP status and the parsed body (Null when empty or not JSON).
    pub async fn send_interaction(
        &self,
        url: &str,
        payload: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.inner.send_interaction(url, payload).await
    }

    /// Like `send_interaction` with explicit headers (for bad-signature tests).
    pub async fn send_signed(
        &self,
        url: &str,
        body: Vec<u8>,
        ts: &str,
        sig: &str,
        payload: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.inner.send_signed(url, body, ts, sig, payload).await
    }
}
