//! A stand-in for the Discord client running an Activity, so the Activity can be tested the
//! way it runs inside Discord: one origin (like `https://{app}.discordsays.com`) that
//!
//! - serves the client's window at `/_client/?user=&name=&instance=&channel=&guild=`, which
//!   frames the app's root URL with Discord's query parameters and answers the Embedded App
//!   SDK's postMessage RPC (`discord_client.html`): READY, AUTHORIZE with a real OAuth2 code
//!   from the Discord stand-in, AUTHENTICATE checked against it, SUBSCRIBE, the instance's
//!   participants;
//! - proxies the Activity's URL mappings: a path under a mapped prefix goes to that target,
//!   everything else to the app's root (`/` → the host), WebSockets included, and adds a
//!   content security policy to the app's pages that allows this origin only, as Discord's
//!   does: a request that escapes the mappings fails.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message as AxMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as TMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame as TCloseFrame;

use crate::DiscordStandIn;

/// What Discord enforces on an Activity's pages: only its own origin (the mappings).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self'; frame-ancestors 'self'";

pub struct DiscordClientStandIn {
    /// The Activity's origin, e.g. `http://127.0.0.1:PORT`.
    pub url: String,
    pub addr: SocketAddr,
}

struct Inner {
    discord: DiscordStandIn,
    /// The root mapping (`/`): the app's server.
    root: String,
    /// (prefix, target base URL), longest prefix first.
    mappings: Vec<(String, String)>,
    http: reqwest::Client,
    codes: AtomicU64,
}

impl DiscordClientStandIn {
    /// `root`: the app's server (`/` maps there); `mappings`: (prefix, target base URL), e.g.
    /// `("/kaltura-cdn", "http://127.0.0.1:4100")`.
    pub async fn start(
        discord: DiscordStandIn,
        root: &str,
        mappings: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let mut mappings: Vec<(String, String)> = mappings
            .iter()
            .map(|(p, t)| (p.trim_end_matches('/').to_string(), t.to_string()))
            .collect();
        mappings.sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        let inner = Arc::new(Inner {
            discord,
            root: root.trim_end_matches('/').to_string(),
            mappings,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
            codes: AtomicU64::new(1),
        });
        let app = Router::new()
            .route("/_client/", axum::routing::get(window))
            .route("/_client/api/authorize", axum::routing::post(authorize))
            .route(
                "/_client/api/authenticate",
                axum::routing::post(authenticate),
            )
            .route(
                "/_client/api/participants",
                axum::routing::post(participants),
            )
            .fallback(proxy)
            .with_state(inner);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            addr,
        })
    }
}

async fn window(State(s): State<Arc<Inner>>) -> Html<String> {
    Html(
        include_str!("discord_client.html")
            .replace("__APPLICATION_ID__", s.discord.application_id()),
    )
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message}))).into_response()
}

#[derive(Deserialize)]
struct AuthorizeArgs {
    user: String,
    scope: Vec<String>,
}

/// The client's side of `authorize`: the signed-in user consents and Discord issues a code.
async fn authorize(State(s): State<Arc<Inner>>, Json(a): Json<AuthorizeArgs>) -> Response {
    if !a.scope.iter().any(|x| x == "identify") {
        return refuse(StatusCode::BAD_REQUEST, "scope must include identify");
    }
    let Some(user) = s.discord.known_user(&a.user) else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "no such user signed in to this client",
        );
    };
    let n = s.codes.fetch_add(1, Ordering::Relaxed);
    let (code, token) = (format!("client-code-{n}"), format!("client-token-{n}"));
    s.discord.add_oauth_user(
        &token,
        &a.user,
        user["username"].as_str().unwrap_or_default(),
    );
    if let Some(avatar) = user["avatar"].as_str() {
        s.discord.set_oauth_avatar(&token, avatar);
    }
    s.discord.add_oauth_code(&code, &token);
    Json(json!({"code": code})).into_response()
}

#[derive(Deserialize)]
struct AuthenticateArgs {
    access_token: String,
}

async fn authenticate(State(s): State<Arc<Inner>>, Json(a): Json<AuthenticateArgs>) -> Response {
    match s.discord.oauth_user(&a.access_token) {
        Some(user) => Json(user).into_response(),
        None => refuse(StatusCode::UNAUTHORIZED, "invalid access token"),
    }
}

#[derive(Deserialize)]
struct ParticipantsArgs {
    instance: String,
}

async fn participants(State(s): State<Arc<Inner>>, Json(a): Json<ParticipantsArgs>) -> Response {
    let users = s
        .discord
        .activity_instance(&a.instance)
        .map(|(_, users)| users)
        .unwrap_or_default();
    let list: Vec<Value> = users
        .iter()
        .map(|id| {
            let u = s.discord.known_user(id).unwrap_or(json!({"username": id}));
            json!({"id": id, "username": u["username"], "global_name": u["global_name"],
                   "discriminator": "0", "avatar": u["avatar"], "flags": 0, "bot": false})
        })
        .collect();
    Json(json!({"participants": list})).into_response()
}

impl Inner {
    /// Where a path goes: (target base, the path there, whether it is the app's root).
    fn route<'a>(&'a self, path: &'a str) -> (&'a str, &'a str, bool) {
        for (prefix, target) in &self.mappings {
            if let Some(rest) = path.strip_prefix(prefix.as_str())
                && (rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'))
            {
                return (target, rest, false);
            }
        }
        (&self.root, path, true)
    }
}

async fn proxy(State(s): State<Arc<Inner>>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let (base, rest, is_root) = s.route(&path);
    let url = format!("{base}{rest}");
    let is_ws = req
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"websocket"));
    if is_ws {
        let (mut parts, _) = req.into_parts();
        let up = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
            Ok(up) => up,
            Err(e) => return e.into_response(),
        };
        // Like Discord's proxy: the upstream sees the client's subprotocols, and the client
        // gets the one the upstream chose.
        let url = url.replacen("http", "ws", 1);
        let mut upstream_req = match url.as_str().into_client_request() {
            Ok(r) => r,
            Err(e) => return refuse(StatusCode::BAD_GATEWAY, &e.to_string()),
        };
        if let Some(p) = parts.headers.get(header::SEC_WEBSOCKET_PROTOCOL) {
            upstream_req
                .headers_mut()
                .insert(header::SEC_WEBSOCKET_PROTOCOL, p.clone());
        }
        let (upstream, answer) = match tokio_tungstenite::connect_async(upstream_req).await {
            Ok(u) => u,
            Err(e) => return refuse(StatusCode::BAD_GATEWAY, &format!("{url}: {e}")),
        };
        let chosen = answer
            .headers()
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let up = match chosen {
            Some(p) => up.protocols([p]),
            None => up,
        };
        return up.on_upgrade(move |client| pump(client, upstream));
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, 16 * 1024 * 1024).await {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let mut out = s.http.request(parts.method, &url).body(body);
    for (name, value) in &parts.headers {
        if !matches!(name.as_str(), "host" | "connection" | "content-length") {
            out = out.header(name, value);
        }
    }
    let answer = match out.send().await {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_GATEWAY, &format!("{url}: {e}")),
    };
    let mut resp = Response::builder().status(answer.status());
    let html = answer
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    for (name, value) in answer.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            resp = resp.header(name, value);
        }
    }
    if html && is_root {
        resp = resp.header(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    resp.body(Body::from(bytes))
        .unwrap_or_else(|e| refuse(StatusCode::BAD_GATEWAY, &e.to_string()))
}

/// Relays one WebSocket both ways, close codes included.
async fn pump(
    client: WebSocket,
    upstream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) {
    let (mut up_tx, mut up_rx) = upstream.split();
    let (mut cl_tx, mut cl_rx) = client.split();
    let to_upstream = async {
        while let Some(Ok(m)) = cl_rx.next().await {
            let m = match m {
                AxMessage::Text(t) => TMessage::text(t.as_str()),
                AxMessage::Binary(b) => TMessage::binary(b),
                AxMessage::Ping(b) => TMessage::Ping(b),
                AxMessage::Pong(b) => TMessage::Pong(b),
                AxMessage::Close(f) => TMessage::Close(f.map(|f| TCloseFrame {
                    code: f.code.into(),
                    reason: f.reason.as_str().into(),
                })),
            };
            if up_tx.send(m).await.is_err() {
                break;
            }
        }
    };
    let to_client = async {
        while let Some(Ok(m)) = up_rx.next().await {
            let m = match m {
                TMessage::Text(t) => AxMessage::text(t.as_str()),
                TMessage::Binary(b) => AxMessage::binary(b),
                TMessage::Ping(b) => AxMessage::Ping(b),
                TMessage::Pong(b) => AxMessage::Pong(b),
                TMessage::Close(f) => AxMessage::Close(f.map(|f| CloseFrame {
                    code: f.code.into(),
                    reason: f.reason.as_str().into(),
                })),
                TMessage::Frame(_) => continue,
            };
            if cl_tx.send(m).await.is_err() {
                break;
            }
        }
    };
    tokio::select! {
        _ = to_upstream => {}
        _ = to_client => {}
    }
}
