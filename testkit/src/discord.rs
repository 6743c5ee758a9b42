//! A Discord stand-in: the REST subset the host uses, with Discord's rate-limit headers,
//! 429 injection and error codes; it records every request (`GET /_testkit/requests`) and
//! signs and sends interactions to a host like Discord does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::signing::InteractionSigner;

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
}

/// A guild as the stand-in knows it: owner, roles (with permissions), members' roles.
#[derive(Default, Clone)]
struct GuildData {
    name: String,
    owner_id: String,
    roles: Vec<Value>,
    members: HashMap<String, Vec<String>>,
    /// Everyone who asks is a member without roles (a public demo server, where the
    /// Activity's mock users get made-up ids).
    open: bool,
    /// (id, name) of its text channels.
    channels: Vec<(String, String)>,
}

/// A guild as `GET /users/@me/guilds` lists it (a partial guild, with the member's
/// permissions computed from their roles).
fn partial_guild(id: &str, d: &GuildData, user: &str) -> Value {
    let roles = d.members.get(user).cloned().unwrap_or_default();
    let owner = d.owner_id == user;
    let permissions: u64 = if owner {
        u64::MAX >> 11
    } else {
        d.roles
            .iter()
            .filter(|r| r["id"] == id || roles.iter().any(|m| r["id"] == m.as_str()))
            .filter_map(|r| {
                r["permissions"]
                    .as_str()
                    .and_then(|p| p.parse::<u64>().ok())
            })
            .fold(0, |a, p| a | p)
    };
    json!({"id": id, "name": if d.name.is_empty() { "Stand-in guild" } else { d.name.as_str() },
           "icon": null, "owner": owner, "permissions": permissions.to_string(), "features": []})
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
        });
        let app = Router::new()
            .route(
                "/gateway-ws",
                axum::routing::get(crate::gateway::upgrade).with_state(gateway),
            )
            .fallback(handle)
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
        serde_json::from_str(include_str!("../fixtures/discord.json"))
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

impl Inner {
    fn next_id(&self) -> String {
        // Snowflake-shaped ids.
        (1_100_000_000_000_000_000u64 + self.ids.fetch_add(1, Ordering::Relaxed)).to_string()
    }

    fn command(
        &self,
        name: &str,
        options: Value,
        guild_id: &str,
        user_id: &str,
        roles: &[&str],
    ) -> Value {
        let id = self.next_id();
        json!({
            "id": id,
            "application_id": self.opts.application_id,
            "type": 2,
            "token": format!("tok-{id}"),
            "version": 1,
            "guild_id": guild_id,
            "channel_id": "200000000000000001",
            "locale": "en-US",
            "app_permissions": "2147483647",
            "context": 0,
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id},
            "member": {
                "user": {"id": user_id, "username": "tester", "discriminator": "0", "global_name": "Tester", "avatar": null},
                "roles": roles, "permissions": "2147483647", "nick": null, "avatar": null,
                "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "flags": 0, "pending": false, "premium_since": null
            },
            "data": {"id": "300000000000000001", "name": name, "type": 1, "options": options}
        })
    }

    async fn send_interaction(&self, url: &str, payload: &Value) -> anyhow::Result<(u16, Value)> {
        let body = serde_json::to_vec(payload)?;
        let ts = now_secs().to_string();
        let sig = self.signer.sign(&ts, &body);
        self.send_signed(url, body, &ts, &sig, payload).await
    }

    async fn send_signed(
        &self,
        url: &str,
        body: Vec<u8>,
        ts: &str,
        sig: &str,
        payload: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let token = payload["token"].as_str().unwrap_or_default().to_string();
        if !token.is_empty() {
            self.interactions.lock().unwrap().insert(
                token.clone(),
                InteractionState {
                    id: payload["id"].as_str().unwrap_or_default().into(),
                    ..Default::default()
                },
            );
        }
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", sig)
            .header("x-signature-timestamp", ts)
            .header(
                "user-agent",
                "Discord-Interactions/1.0 (+https://discord.com)",
            )
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 200
            && let Some(s) = self.interactions.lock().unwrap().get_mut(&token)
        {
            s.acked = value["type"].as_u64();
            if s.acked == Some(4) {
                s.original = Some(value["data"].clone());
            }
        }
        Ok((status, value))
    }
}

/// Routes that need the bot token (interaction and webhook-token routes do not).
fn needs_bot_auth(segments: &[&str]) -> bool {
    !matches!(
        segments.first(),
        Some(&"interactions") | Some(&"webhooks") | Some(&"oauth2")
    )
}

/// `POST /oauth2/token`, form-encoded, as Discord answers it (errors in OAuth2's shape).
fn oauth_token(s: &Inner, body: &Value) -> (StatusCode, Value) {
    let text = body.as_str().unwrap_or_default();
    let form: HashMap<String, String> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("client_id") != s.opts.application_id || field("client_secret") != s.opts.client_secret
    {
        return (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    if field("grant_type") != "authorization_code" {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    match s.codes.lock().unwrap().remove(field("code")) {
        Some(token) => (
            StatusCode::OK,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 604800,
                   "refresh_token": format!("refresh-{token}"), "scope": "identify guilds"}),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": "Invalid \"code\" in request."}),
        ),
    }
}

/// The rate-limit bucket of a route: path with ids, minus the top-level resource id for
/// webhooks' tokens (which are secrets, so never echoed).
fn bucket_key(method: &Method, segments: &[&str]) -> String {
    format!(
        "{method} {}",
        segments
            .iter()
            .take(4)
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    )
}

async fn handle(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()))
    };
    let authorized = match &s.opts.bot_token {
        Some(t) => {
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bot {t}"))
        }
        None => true,
    };

    if let Some(rest) = path.strip_prefix("/_testkit/") {
        if method == Method::POST && rest == "send" {
            return send_route(&s, body_json).await.into_response();
        }
        return testkit_route(&s, &method, rest, body_json).into_response();
    }

    let (status, reply, extra) = api(&s, &method, &path, &headers, &body_json, authorized).await;
    s.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        body: body_json,
        status: status.as_u16(),
        at_ms: s.started.elapsed().as_millis() as u64,
        authorized,
    });
    let mut resp = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, axum::Json(reply)).into_response()
    };
    for (k, v) in extra {
        resp.headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    resp
}

/// `POST /_testkit/send {"command": "help", "options": [...], "guild_id": "...", "user_id": "..."}`:
/// sign and deliver a slash command to the host, like Discord, and return its answer.
async fn send_route(s: &Inner, body: Value) -> (StatusCode, axum::Json<Value>) {
    let Some(target) = s.target.lock().unwrap().clone() else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "no target host: start the stand-in with --target URL"})),
        );
    };
    let Some(name) = body["command"].as_str() else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "body needs {\"command\": \"name\"}"})),
        );
    };
    let options = if body["options"].is_array() {
        body["options"].clone()
    } else {
        json!([])
    };
    let guild = body["guild_id"].as_str().unwrap_or("600000000000000001");
    let user = body["user_id"].as_str().unwrap_or("700000000000000001");
    let payload = s.command(name, options, guild, user, &[]);
    match s.send_interaction(&target, &payload).await {
        Ok((status, reply)) => (
            StatusCode::OK,
            axum::Json(json!({"status": status, "response": reply, "interaction": payload})),
        ),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"message": format!("could not reach {target}: {e}")})),
        ),
    }
}

fn testkit_route(
    s: &Inner,
    method: &Method,
    rest: &str,
    body: Value,
) -> (StatusCode, axum::Json<Value>) {
    match (method.as_str(), rest) {
        ("GET", "requests") => (
            StatusCode::OK,
            axum::Json(json!(*s.requests.lock().unwrap())),
        ),
        ("DELETE", "requests") => {
            s.requests.lock().unwrap().clear();
            (StatusCode::OK, axum::Json(json!({"cleared": true})))
        }
        ("POST", "faults") => match serde_json::from_value::<Fault>(body) {
            Ok(f) => {
                s.faults.lock().unwrap().push(f);
                (StatusCode::OK, axum::Json(json!({"ok": true})))
            }
            Err(e) => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"message": e.to_string()})),
            ),
        },
        ("GET", "interactions") => (
            StatusCode::OK,
            axum::Json(json!(
                s.interactions
                    .lock()
                    .unwrap()
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            )),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "unknown testkit route"})),
        ),
    }
}

type Extra = Vec<(&'static str, String)>;

async fn api(
    s: &Inner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    authorized: bool,
) -> (StatusCode, Value, Extra) {
    let Some(rest) = path.strip_prefix("/api/v10/") else {
        let (st, b) = discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found");
        return (st, b, vec![]);
    };
    let seg: Vec<&str> = rest.split('/').collect();

    // Injected faults come first.
    let fault = {
        let mut faults = s.faults.lock().unwrap();
        let i = faults.iter().position(|f| path.contains(&f.path_contains));
        i.map(|i| {
            let f = faults[i].clone();
            if faults[i].count <= 1 {
                faults.remove(i);
            } else {
                faults[i].count -= 1;
            }
            f
        })
    };
    if let Some(f) = fault {
        if f.delay_ms > 0 {
            tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
        }
        if f.status == 429 {
            return rate_limited(f.retry_after, false);
        }
        if f.status != 200 {
            let st = StatusCode::from_u16(f.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (st, json!({"message": "injected fault", "code": 0}), vec![]);
        }
    }

    if method == Method::POST && seg.as_slice() == ["oauth2", "token"] {
        let (st, b) = oauth_token(s, body);
        return (st, b, vec![]);
    }
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let (["users", "@me", "guilds"], Some(bearer)) = (seg.as_slice(), bearer) {
        // A user's guilds (scope `guilds`): those the stand-in lists them in.
        let Some(user) = s.oauth.lock().unwrap().get(bearer).cloned() else {
            let (st, b) = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
            return (st, b, vec![]);
        };
        let uid = user["id"].as_str().unwrap_or_default().to_string();
        let guilds = s.guilds.lock().unwrap();
        let mut list: Vec<Value> = guilds
            .iter()
            .filter(|(_, d)| d.members.contains_key(&uid) || d.open)
            .map(|(id, d)| partial_guild(id, d, &uid))
            .collect();
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        return (StatusCode::OK, Value::Array(list), vec![]);
    }
    if let (["users", "@me"] | ["oauth2", "@me"], Some(bearer)) = (seg.as_slice(), bearer) {
        let Some(user) = s.oauth.lock().unwrap().get(bearer).cloned() else {
            let (st, b) = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
            return (st, b, vec![]);
        };
        if seg[0] == "users" {
            return (StatusCode::OK, user, vec![]);
        }
        // The current authorization, as Discord describes it: which application the
        // token was issued to, its scopes and the user.
        let app = s
            .oauth_foreign
            .lock()
            .unwrap()
            .get(bearer)
            .cloned()
            .unwrap_or_else(|| s.opts.application_id.clone());
        let body = json!({
            "application": {"id": app, "name": "Stand-in app", "icon": null, "description": "", "bot_public": true, "bot_require_code_grant": false, "verify_key": "0"},
            "scopes": ["identify", "guilds"],
            "expires": "2100-01-01T00:00:00+00:00",
            "user": user,
        });
        return (StatusCode::OK, body, vec![]);
    }
    if needs_bot_auth(&seg) && !authorized {
        let (st, b) = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
        return (st, b, vec![]);
    }

    if let Some(limit) = s.opts.global_limit {
        let mut w = s.global_window.lock().unwrap();
        if w.0.elapsed() >= Duration::from_secs(1) {
            *w = (Instant::now(), 0);
        }
        if w.1 >= limit {
            let wait = Duration::from_secs(1).saturating_sub(w.0.elapsed());
            return rate_limited(wait.as_secs_f64(), true);
        }
        w.1 += 1;
    }

    // Discord-style buckets with headers.
    let key = bucket_key(method, &seg);
    let (remaining, reset_after) = {
        let mut buckets = s.buckets.lock().unwrap();
        let b = buckets.entry(key.clone()).or_insert(Bucket {
            window_start: Instant::now(),
            used: 0,
        });
        if b.window_start.elapsed() >= s.opts.bucket_window {
            *b = Bucket {
                window_start: Instant::now(),
                used: 0,
            };
        }
        let reset_after = s
            .opts
            .bucket_window
            .saturating_sub(b.window_start.elapsed())
            .as_secs_f64();
        if b.used >= s.opts.bucket_limit {
            drop(buckets);
            return rate_limited(reset_after, false);
        }
        b.used += 1;
        (s.opts.bucket_limit - b.used, reset_after)
    };
    let headers: Extra = vec![
        ("x-ratelimit-limit", s.opts.bucket_limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        (
            "x-ratelimit-reset",
            format!("{:.3}", now_secs() as f64 + reset_after),
        ),
        ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
        ("x-ratelimit-bucket", format!("{:016x}", fxhash(&key))),
    ];
    let app = s.opts.application_id.as_str();
    let (status, reply) = route(s, method, &seg, body, app).await;
    (status, reply, headers)
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn rate_limited(retry_after: f64, global: bool) -> (StatusCode, Value, Extra) {
    let mut headers: Extra = vec![
        ("retry-after", format!("{retry_after:.3}")),
        (
            "x-ratelimit-scope",
            if global { "global" } else { "user" }.into(),
        ),
        ("x-ratelimit-remaining", "0".into()),
        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
    ];
    if global {
        headers.push(("x-ratelimit-global", "true".into()));
    }
    (
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global}),
        headers,
    )
}

async fn route(
    s: &Inner,
    method: &Method,
    seg: &[&str],
    body: &Value,
    app: &str,
) -> (StatusCode, Value) {
    let id = || (1_200_000_000_000_000_000u64 + s.ids.fetch_add(1, Ordering::Relaxed)).to_string();
    match (method.as_str(), seg) {
        ("GET", ["users", "@me"]) => (
            StatusCode::OK,
            json!({"id": app, "username": "standin-bot", "bot": true, "discriminator": "0", "global_name": null, "avatar": null}),
        ),
        ("GET", ["users", "@me", "guilds"]) => {
            // The bot's guilds: every guild the stand-in knows.
            let guilds = s.guilds.lock().unwrap();
            let mut list: Vec<Value> = guilds
                .iter()
                .map(|(id, d)| partial_guild(id, d, app))
                .collect();
            list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            (StatusCode::OK, Value::Array(list))
        }
        ("GET", ["guilds", g]) => match s.guilds.lock().unwrap().get(*g) {
            Some(d) => (
                StatusCode::OK,
                json!({"id": g, "name": if d.name.is_empty() { "Stand-in guild" } else { d.name.as_str() }, "owner_id": d.owner_id, "roles": d.roles}),
            ),
            None => discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", g, "roles"]) => {
            let roles = s.guilds.lock().unwrap().get(*g).map(|d| d.roles.clone());
            (
                StatusCode::OK,
                Value::Array(roles.unwrap_or_else(|| {
                    vec![json!({"id": g, "name": "@everyone", "permissions": "0", "position": 0})]
                })),
            )
        }
        ("GET", ["guilds", g, "members", u]) => {
            let roles = s
                .guilds
                .lock()
                .unwrap()
                .get(*g)
                .and_then(|d| d.members.get(*u).cloned().or(d.open.then(Vec::new)));
            match roles {
                Some(roles) => (
                    StatusCode::OK,
                    json!({"user": {"id": u, "username": format!("user{u}")}, "roles": roles, "joined_at": "2026-01-01T00:00:00Z", "deaf": false, "mute": false}),
                ),
                None => discord_error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
            }
        }
        ("PUT", ["applications", a, "commands"])
        | ("PUT", ["applications", a, "guilds", _, "commands"]) => {
            if *a != app {
                return discord_error(StatusCode::NOT_FOUND, 10002, "Unknown Application");
            }
            let Some(list) = body.as_array() else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            if let Some(bad) = list.iter().find(|c| {
                c["name"]
                    .as_str()
                    .is_none_or(|n| n.is_empty() || n.chars().count() > 32)
            }) {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Invalid Form Body", "code": 50035, "errors": {"name": bad["name"]}}),
                );
            }
            let out: Vec<Value> = list
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c["id"] = json!(id());
                    c["application_id"] = json!(app);
                    c["version"] = json!(id());
                    c
                })
                .collect();
            (StatusCode::OK, Value::Array(out))
        }
        ("POST", ["interactions", _iid, token, "callback"]) => {
            let mut map = s.interactions.lock().unwrap();
            let Some(st) = map.get_mut(*token) else {
                return discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            };
            if st.acked.is_some() {
                return discord_error(
                    StatusCode::BAD_REQUEST,
                    40060,
                    "Interaction has already been acknowledged.",
                );
            }
            st.acked = body["type"].as_u64();
            if st.acked == Some(4) {
                st.original = Some(body["data"].clone());
            }
            (StatusCode::NO_CONTENT, Value::Null)
        }
        (m, ["webhooks", a, token, rest @ ..]) => {
            if *a != app {
                return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            }
            // The acknowledgement may still be in flight on the other connection.
            for _ in 0..50 {
                let acked = s
                    .interactions
                    .lock()
                    .unwrap()
                    .get(*token)
                    .map(|st| st.acked.is_some());
                match acked {
                    Some(true) => break,
                    None => return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
                    Some(false) => tokio::time::sleep(Duration::from_millis(20)).await,
                }
            }
            let mut map = s.interactions.lock().unwrap();
            let st = map.get_mut(*token).expect("checked above");
            if st.acked.is_none() {
                return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
            }
            match (m, rest) {
                ("POST", []) => {
                    let mut msg = body.clone();
                    msg["id"] = json!(id());
                    st.followups.push(msg.clone());
                    (StatusCode::OK, msg)
                }
                ("PATCH", ["messages", "@original"]) => {
                    if st.original_deleted {
                        return discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
                    }
                    let mut msg = st.original.clone().unwrap_or_else(|| json!({}));
                    if let (Some(m), Some(b)) = (msg.as_object_mut(), body.as_object()) {
                        for (k, v) in b {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                    msg["id"] = json!("500000000000000001");
                    st.original = Some(msg.clone());
                    (StatusCode::OK, msg)
                }
                ("DELETE", ["messages", "@original"]) => {
                    st.original_deleted = true;
                    (StatusCode::NO_CONTENT, Value::Null)
                }
                ("GET", ["messages", "@original"]) => match &st.original {
                    Some(m) if !st.original_deleted => (StatusCode::OK, m.clone()),
                    _ => discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
                },
                _ => discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
            }
        }
        ("POST", ["channels", channel, "messages"]) => {
            if body["content"].as_str().is_none_or(str::is_empty)
                && body["embeds"].as_array().is_none_or(Vec::is_empty)
                && body["components"].is_null()
            {
                return discord_error(
                    StatusCode::BAD_REQUEST,
                    50006,
                    "Cannot send an empty message",
                );
            }
            if body["content"]
                .as_str()
                .is_some_and(|c| c.chars().count() > 2000)
                || body["nonce"].as_str().is_some_and(|n| n.len() > 25)
            {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            }
            // enforce_nonce: the same nonce within a few minutes returns the first message.
            let nonce = body["nonce"].as_str().map(String::from);
            let enforce = body["enforce_nonce"] == Value::Bool(true);
            if let (Some(n), true) = (&nonce, enforce) {
                let mut nonces = s.nonces.lock().unwrap();
                nonces.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(300));
                if let Some((_, msg)) = nonces.get(n) {
                    return (StatusCode::OK, msg.clone());
                }
            }
            let mut msg = body.clone();
            if let Some(m) = msg.as_object_mut() {
                m.remove("enforce_nonce");
            }
            msg["id"] = json!(id());
            msg["channel_id"] = json!(channel);
            if let (Some(n), true) = (nonce, enforce) {
                s.nonces
                    .lock()
                    .unwrap()
                    .insert(n, (Instant::now(), msg.clone()));
            }
            s.messages
                .lock()
                .unwrap()
                .entry(channel.to_string())
                .or_default()
                .push(msg.clone());
            let _ = s.created.send((channel.to_string(), msg.clone()));
            (StatusCode::OK, msg)
        }
        ("GET", ["channels", channel, "messages"]) => {
            let mut list = s
                .messages
                .lock()
                .unwrap()
                .get(*channel)
                .cloned()
                .unwrap_or_default();
            list.reverse();
            list.truncate(100);
            (StatusCode::OK, Value::Array(list))
        }
        ("GET", ["applications", a, "activity-instances", i]) => {
            if *a != app {
                return discord_error(StatusCode::NOT_FOUND, 10002, "Unknown Application");
            }
            match s.instances.lock().unwrap().get(*i) {
                Some((channel, users)) => (
                    StatusCode::OK,
                    json!({"application_id": app, "instance_id": i, "launch_id": "1",
                           "location": {"id": format!("gc-{channel}"), "kind": "gc", "channel_id": channel},
                           "users": users}),
                ),
                None => discord_error(StatusCode::NOT_FOUND, 10070, "Unknown Activity instance"),
            }
        }
        ("GET", ["guilds", g, "channels"]) => {
            let channels = s.guilds.lock().unwrap().get(*g).map(|d| d.channels.clone());
            match channels {
                Some(list) => (
                    StatusCode::OK,
                    Value::Array(
                        list.iter()
                            .enumerate()
                            .map(|(i, (id, name))| json!({"id": id, "type": 0, "guild_id": g, "name": name, "position": i}))
                            .collect(),
                    ),
                ),
                None => discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild"),
            }
        }
        ("PATCH", ["channels", channel, "messages", mid]) => {
            let mut msg = body.clone();
            msg["id"] = json!(mid);
            msg["channel_id"] = json!(channel);
            (StatusCode::OK, msg)
        }
        ("PUT", ["channels", _, "messages", _, "reactions", _, "@me"]) => {
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("GET", ["gateway"]) => (
            StatusCode::OK,
            json!({"url": format!("ws://{}/gateway-ws", s.addr)}),
        ),
        ("GET", ["gateway", "bot"]) => (
            StatusCode::OK,
            json!({"url": format!("ws://{}/gateway-ws", s.addr), "shards": 1,
                   "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}}),
        ),
        _ => discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}
