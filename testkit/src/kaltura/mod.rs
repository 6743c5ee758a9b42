//! A Kaltura stand-in on loopback that answers like the real API v3 server for the calls
//! the host makes: `session.start`, KS validation exactly as the server does it (v1 and v2,
//! expiry, the partner's secrets), media list/get, eSearch, users, categories, scheduled
//! events (meetings) and multirequest; errors as HTTP 200 + `KalturaAPIException`.
//!
//! Parameters are read the way the server reads them (query string, form body with flat
//! `filter:freeText=...` keys, or a JSON body). Faults can be injected (latency, 5xx,
//! dropped connections, expired KS, any API error), by code or over HTTP
//! (`POST /_testkit/faults`); every call is recorded (`GET /_testkit/requests`).

mod accounts;
mod media;
pub mod notify;
mod pages;
pub mod params;
mod rooms;
mod schedule;
mod virtual_events;
mod xml;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

pub use kaltura_ks::SessionType;

/// The seed data: media entries, categories and users, as Kaltura objects.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fixtures {
    #[serde(default)]
    pub entries: Vec<Value>,
    #[serde(default)]
    pub categories: Vec<Value>,
    #[serde(default)]
    pub users: Vec<Value>,
}

impl Fixtures {
    /// The realistic set shipped with the testkit (57 entries, 11 categories — one private —, 3 users).
    pub fn bundled() -> Self {
        serde_json::from_str(include_str!("../../fixtures/kaltura.json"))
            .expect("bundled fixtures parse")
    }

    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        crate::read_fixtures(path)
    }
}

#[derive(Debug, Clone)]
pub struct KalturaOptions {
    pub partner_id: u64,
    /// The partner's admin secrets (any of them signs and validates).
    pub admin_secrets: Vec<String>,
    pub fixtures: Fixtures,
    /// When false, eSearch answers SERVICE_FORBIDDEN (accounts without the plugin).
    pub esearch: bool,
}

impl Default for KalturaOptions {
    fn default() -> Self {
        Self {
            partner_id: 1234567,
            admin_secrets: vec!["standin-admin-secret-0123456789ab".into()],
            fixtures: Fixtures::bundled(),
            esearch: true,
        }
    }
}

/// What to do to matching calls.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Wait before answering.
    Latency { ms: u64 },
    /// Answer with this HTTP status and no API body.
    Status { status: u16 },
    /// Send the headers, then drop the connection mid-body.
    Drop,
    /// Treat the KS as expired (INVALID_KS / EXPIRED).
    ExpireKs,
    /// Answer with this KalturaAPIException.
    Error { code: String, message: String },
}

/// A fault for the next `count` calls whose `service.action` contains `action`
/// (empty matches everything; `multirequest` matches the multirequest itself).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KalturaFault {
    #[serde(default)]
    pub action: String,
    #[serde(flatten)]
    pub kind: FaultKind,
    #[serde(default = "one")]
    pub count: u32,
}

fn one() -> u32 {
    1
}

/// One API call the stand-in answered (sub-requests of a multirequest each count).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Call {
    pub service: String,
    pub action: String,
    /// 0 user, 2 admin, when a valid KS came with the call.
    pub ks_type: Option<u8>,
    pub ks_user: Option<String>,
    pub ks_privileges: Option<String>,
    pub client_tag: Option<String>,
    /// The exception code, when the call failed.
    pub error: Option<String>,
    /// Inside a multirequest.
    pub multi: bool,
    pub at_ms: u64,
}

/// An API error as the server sends it (HTTP 200).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: String,
    pub message: String,
    pub args: Value,
}

impl ApiError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            args: json!([]),
        }
    }

    pub fn with_args(mut self, args: Value) -> Self {
        self.args = args;
        self
    }

    pub fn to_json(&self) -> Value {
        json!({
            "objectType": "KalturaAPIException",
            "code": self.code,
            "message": self.message,
            "args": self.args,
        })
    }
}

pub type ApiResult = Result<Value, ApiError>;

/// Mutable account data.
#[derive(Default)]
struct Data {
    entries: Vec<Value>,
    /// Lower-cased name, description and tags of each entry (what searches look at).
    lowered: Vec<[String; 3]>,
    categories: Vec<Value>,
    users: BTreeMap<String, Value>,
    events: BTreeMap<i64, Value>,
    next_event_id: i64,
    virtual_events: BTreeMap<i64, Value>,
    next_virtual_event_id: i64,
    rooms: BTreeMap<String, Value>,
    next_room: u64,
}

struct Inner {
    opts: KalturaOptions,
    started: Instant,
    data: Mutex<Data>,
    faults: Mutex<Vec<KalturaFault>>,
    calls: Mutex<Vec<Call>>,
    esearch: std::sync::atomic::AtomicBool,
}

/// A running Kaltura stand-in.
#[derive(Clone)]
pub struct KalturaStandIn {
    /// The service URL to give a client (`KALTURA_SERVICE_URL`).
    pub url: String,
    pub addr: SocketAddr,
    inner: Arc<Inner>,
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl KalturaStandIn {
    /// Binds `addr` (port 0 for any) and serves in the background.
    pub async fn start(addr: SocketAddr, opts: KalturaOptions) -> anyhow::Result<Self> {
        anyhow::ensure!(
            !opts.admin_secrets.is_empty(),
            "the Kaltura stand-in needs at least one admin secret"
        );
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let data = media::seed(&opts, &base_url);
        let inner = Arc::new(Inner {
            esearch: opts.esearch.into(),
            opts,
            started: Instant::now(),
            data: Mutex::new(data),
            faults: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route(
                "/api_v3/service/{service}/action/{action}",
                axum::routing::any(single),
            )
            .route("/api_v3/service/multirequest", axum::routing::any(multi))
            .route("/virtualEvent/launch", axum::routing::get(pages::launch))
            .route("/room/launch", axum::routing::get(pages::room_launch))
            .route(
                "/p/{pid}/embedPlaykitJs/uiconf_id/{uiconf}",
                axum::routing::get(pages::player),
            )
            .route(
                "/p/{pid}/sp/{sp}/playManifest/{*rest}",
                axum::routing::get(
                    |s: State<Arc<Inner>>,
                     UrlPath((pid, _sp, rest)): UrlPath<(u64, String, String)>,
                     q,
                     req| pages::play_manifest(s, UrlPath((pid, rest)), q, req),
                ),
            )
            .route(
                "/_testkit/requests",
                axum::routing::get(|State(s): State<Arc<Inner>>| async move {
                    axum::Json(s.calls.lock().unwrap().clone())
                }),
            )
            .route(
                "/_testkit/faults",
                axum::routing::post(
                    |State(s): State<Arc<Inner>>, axum::Json(f): axum::Json<KalturaFault>| async move {
                        s.faults.lock().unwrap().push(f);
                        StatusCode::NO_CONTENT
                    },
                ),
            )
            // Kaltura's API and CDN answer any origin (players call them from the page).
            .layer(tower_http::cors::CorsLayer::permissive())
            .with_state(inner.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: base_url,
            addr,
            inner,
        })
    }

    pub fn partner_id(&self) -> u64 {
        self.inner.opts.partner_id
    }

    pub fn admin_secret(&self) -> &str {
        &self.inner.opts.admin_secrets[0]
    }

    pub fn inject(&self, fault: KalturaFault) {
        self.inner.faults.lock().unwrap().push(fault);
    }

    /// Every call answered so far.
    pub fn calls(&self) -> Vec<Call> {
        self.inner.calls.lock().unwrap().clone()
    }

    pub fn clear_calls(&self) {
        self.inner.calls.lock().unwrap().clear();
    }

    /// Turns the eSearch service on or off (off: SERVICE_FORBIDDEN, as for accounts
    /// without the Elasticsearch plugin).
    pub fn set_esearch(&self, on: bool) {
        self.inner
            .esearch
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The scheduled events (meetings) as stored, including cancelled ones.
    pub fn events(&self) -> Vec<Value> {
        self.inner
            .data
            .lock()
            .unwrap()
            .events
            .values()
            .cloned()
            .collect()
    }

    /// The virtual events as stored, including deleted ones.
    pub fn virtual_events(&self) -> Vec<Value> {
        let data = self.inner.data.lock().unwrap();
        data.virtual_events.values().cloned().collect()
    }

    /// The room entries as stored, including deleted ones.
    pub fn rooms(&self) -> Vec<Value> {
        let data = self.inner.data.lock().unwrap();
        data.rooms.values().cloned().collect()
    }

    /// What Kaltura's recording pipeline does after a room session: records it to a new
    /// READY entry (named after the room) and attaches that entry to the room
    /// (`room.attachRecordedEntry`). Returns the recorded entry's id.
    pub fn record_room(&self, room_id: &str) -> anyhow::Result<String> {
        let mut data = self.inner.data.lock().unwrap();
        let room = data
            .rooms
            .get(room_id)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no room {room_id}"))?;
        let entry_id = format!("1_rec{:05}", data.entries.len());
        let entry = json!({
            "objectType": "KalturaMediaEntry",
            "id": entry_id,
            "name": format!("{} (recording)", room["name"].as_str().unwrap_or("Room")),
            "status": 2,
            "mediaType": 1,
            "partnerId": self.inner.opts.partner_id,
            "userId": room["userId"],
            "createdAt": now(),
        });
        media::push(&mut data, entry);
        rooms::attach_recorded_entry(
            &mut data,
            &json!({"roomId": room_id, "recordedEntryId": entry_id}),
        )
        .map_err(|e| anyhow::anyhow!("{}: {}", e.code, e.message))?;
        Ok(entry_id)
    }

    pub fn user(&self, id: &str) -> Option<Value> {
        self.inner.data.lock().unwrap().users.get(id).cloned()
    }

    /// Adds a media entry (`id`, `name`, ...) as if it had just been uploaded.
    pub fn add_entry(&self, entry: Value) {
        let mut data = self.inner.data.lock().unwrap();
        let mut entry = entry;
        entry["partnerId"] = serde_json::json!(self.inner.opts.partner_id);
        media::push(&mut data, entry);
    }

    /// The ids of the READY entries, in fixture order.
    pub fn ready_entry_ids(&self) -> Vec<String> {
        self.inner
            .data
            .lock()
            .unwrap()
            .entries
            .iter()
            .filter(|e| params::int(&e["status"]) == Some(2))
            .filter_map(|e| e["id"].as_str().map(String::from))
            .collect()
    }
}

impl Inner {
    fn ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Takes one use of the first fault matching `key` whose kind passes `which`.
    fn take_fault(&self, key: &str, which: impl Fn(&FaultKind) -> bool) -> Option<FaultKind> {
        let mut faults = self.faults.lock().unwrap();
        let i = faults
            .iter()
            .position(|f| f.count > 0 && key.contains(&f.action) && which(&f.kind))?;
        faults[i].count -= 1;
        let kind = faults[i].kind.clone();
        if faults[i].count == 0 {
            faults.remove(i);
        }
        Some(kind)
    }

    /// Transport faults (latency, status, drop) for the HTTP request as a whole.
    async fn transport_fault(&self, key: &str) -> Option<Response> {
        while let Some(f) = self.take_fault(key, |k| matches!(k, FaultKind::Latency { .. })) {
            if let FaultKind::Latency { ms } = f {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
        }
        match self.take_fault(key, |k| {
            matches!(k, FaultKind::Status { .. } | FaultKind::Drop)
        })? {
            FaultKind::Status { status } => {
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
                Some((status, "Service temporarily unavailable").into_response())
            }
            _ => {
                let broken = futures::stream::iter([Err::<Bytes, std::io::Error>(
                    std::io::Error::other("dropped by the stand-in"),
                )]);
                Some(
                    Response::builder()
                        .header(header::CONTENT_TYPE, "application/json")
                        .body(Body::from_stream(broken))
                        .expect("static response"),
                )
            }
        }
    }

    /// Runs one action (also a multirequest's sub-request) and records it.
    fn call(&self, service: &str, action: &str, p: &Value, multi: bool) -> Value {
        let key = format!("{service}.{action}");
        let mut record = Call {
            service: service.into(),
            action: action.into(),
            ks_type: None,
            ks_user: None,
            ks_privileges: None,
            client_tag: params::text(&p["clientTag"]),
            error: None,
            multi,
            at_ms: self.ms(),
        };
        let result = self.run(&key, service, action, p, &mut record);
        let out = match result {
            Ok(v) => v,
            Err(e) => {
                record.error = Some(e.code.clone());
                e.to_json()
            }
        };
        self.calls.lock().unwrap().push(record);
        out
    }

    fn run(
        &self,
        key: &str,
        service: &str,
        action: &str,
        p: &Value,
        record: &mut Call,
    ) -> ApiResult {
        if let Some(FaultKind::Error { code, message }) =
            self.take_fault(key, |k| matches!(k, FaultKind::Error { .. }))
        {
            return Err(ApiError::new(&code, message));
        }
        if (service, action) == ("session", "start") {
            return accounts::start_session(&self.opts, p);
        }
        let expire = self
            .take_fault(key, |k| matches!(k, FaultKind::ExpireKs))
            .is_some();
        let ks = accounts::check_ks(&self.opts, p, expire)?;
        record.ks_type = Some(ks.session_type.code());
        record.ks_user = Some(ks.user_id.clone());
        record.ks_privileges = Some(ks.privileges.clone());
        let admin = ks.session_type == SessionType::Admin;
        let forbidden = || {
            ApiError::new(
                "SERVICE_FORBIDDEN",
                format!("The access to service [{service}->{action}] is forbidden"),
            )
        };
        let who = media::Entitlement::of(&ks);
        let mut data = self.data.lock().unwrap();
        match (service, action) {
            ("media" | "baseentry" | "baseEntry", "get") => media::get(&data, p, &who),
            ("media" | "baseentry" | "baseEntry", "list") => media::list(&data, p, &who),
            ("elasticsearch_esearch", "searchEntry") => {
                if !self.esearch.load(std::sync::atomic::Ordering::Relaxed) {
                    return Err(forbidden());
                }
                media::esearch(&data, p, &who)
            }
            ("category", "list") => media::categories(&data, p),
            ("user", "get") => accounts::get_user(&data, p),
            ("user", "add") if admin => accounts::add_user(&mut data, &self.opts, p),
            ("schedule_scheduleevent", "get") => schedule::get(&data, p),
            ("schedule_scheduleevent", "list") => schedule::list(&data, p),
            ("schedule_scheduleevent", "add") if admin => {
                schedule::add(&mut data, self.opts.partner_id, p)
            }
            ("schedule_scheduleevent", "update") if admin => schedule::update(&mut data, p),
            ("schedule_scheduleevent", "cancel") if admin => {
                schedule::set_status(&mut data, p, schedule::CANCELLED)
            }
            ("schedule_scheduleevent", "delete") if admin => {
                schedule::set_status(&mut data, p, schedule::DELETED)
            }
            ("virtualevent_virtualevent", "get") => virtual_events::get(&data, p),
            ("virtualevent_virtualevent", "list") => virtual_events::list(&data, p),
            ("virtualevent_virtualevent", "add") if admin => {
                virtual_events::add(&mut data, self.opts.partner_id, p)
            }
            ("virtualevent_virtualevent", "update") if admin => {
                virtual_events::update(&mut data, p)
            }
            ("virtualevent_virtualevent", "delete") if admin => {
                virtual_events::delete(&mut data, p)
            }
            ("room_room", "get") => rooms::get(&mut data, p),
            ("room_room", "list") => rooms::list(&data, p),
            ("room_room", "add") if admin => rooms::add(&mut data, self.opts.partner_id, p),
            ("room_room", "update") if admin => rooms::update(&mut data, p),
            ("room_room", "delete") if admin => rooms::delete(&mut data, p),
            ("room_room", "attachRecordedEntry") if admin => {
                rooms::attach_recorded_entry(&mut data, p)
            }
            ("user" | "schedule_scheduleevent" | "virtualevent_virtualevent" | "room_room", _) => {
                Err(forbidden())
            }
            _ => Err(ApiError::new(
                "SERVICE_DOES_NOT_EXISTS",
                format!(
                    "Service [{service}] does not exists or action [{action}] is not supported"
                ),
            )),
        }
    }
}

fn content_type(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
}

fn api_json(v: &Value) -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(v).unwrap_or_default(),
    )
        .into_response()
}

/// The answer in the format the caller asked for: JSON (`format=1`, and by default here),
/// or XML (`format=2`, Kaltura's own default and what its official clients read).
fn answer(p: &Value, v: &Value, started: std::time::Instant) -> Response {
    if params::int(&p["format"]) == Some(2) {
        return (
            [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
            xml::document(v, started.elapsed().as_secs_f64()),
        )
            .into_response();
    }
    api_json(v)
}

async fn single(
    State(s): State<Arc<Inner>>,
    UrlPath((service, action)): UrlPath<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let key = format!("{service}.{action}");
    if let Some(r) = s.transport_fault(&key).await {
        return r;
    }
    let p = match params::collect(uri.query(), content_type(&headers), &body) {
        Ok(p) => p,
        Err(e) => return api_json(&ApiError::new("INVALID_JSON", e).to_json()),
    };
    if service == "multirequest" {
        return run_multi(&s, &p, started);
    }
    answer(&p, &s.call(&service, &action, &p, false), started)
}

async fn multi(State(s): State<Arc<Inner>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = s.transport_fault("multirequest").await {
        return r;
    }
    match params::collect(uri.query(), content_type(&headers), &body) {
        Ok(p) => run_multi(&s, &p, std::time::Instant::now()),
        Err(e) => api_json(&ApiError::new("INVALID_JSON", e).to_json()),
    }
}

/// Numbered sub-requests run in order; `{N:result:...}` refers to an earlier result; a
/// failed sub-request becomes an exception object and the others still run.
fn run_multi(s: &Inner, p: &Value, started: std::time::Instant) -> Response {
    let mut numbered: Vec<(usize, Value)> = match p {
        Value::Object(o) => o
            .iter()
            .filter_map(|(k, v)| Some((k.parse::<usize>().ok()?, v.clone())))
            .collect(),
        _ => Vec::new(),
    };
    numbered.sort_by_key(|(n, _)| *n);
    let mut results: Vec<Value> = Vec::new();
    for (_, mut sub) in numbered {
        params::resolve_refs(&mut sub, &results);
        for shared in ["ks", "clientTag", "partnerId"] {
            if sub.get(shared).is_none() && !p[shared].is_null() {
                sub[shared] = p[shared].clone();
            }
        }
        let service = params::text(&sub["service"]).unwrap_or_default();
        let action = params::text(&sub["action"]).unwrap_or_default();
        results.push(s.call(&service, &action, &sub, true));
    }
    answer(p, &Value::Array(results), started)
}
