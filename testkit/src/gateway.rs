//! A minimal Discord gateway: Hello, Identify (token checked), READY, heartbeats, and
//! dispatches pushed by tests (INTERACTION_CREATE). Text frames, JSON, v10.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::Response;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Gateway state shared with the REST stand-in.
pub struct Gateway {
    pub token: Option<String>,
    pub application_id: String,
    /// (event name, data) to dispatch to every identified session.
    pub dispatches: broadcast::Sender<(String, Value)>,
    /// Sessions that completed Identify.
    pub identified: AtomicUsize,
    seq: AtomicU64,
}

impl Gateway {
    pub fn new(token: Option<String>, application_id: String) -> Arc<Self> {
        Arc::new(Self {
            token,
            application_id,
            dispatches: broadcast::channel(1024).0,
            identified: AtomicUsize::new(0),
            seq: AtomicU64::new(1),
        })
    }
}

pub async fn upgrade(State(gw): State<Arc<Gateway>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(gw, socket))
}

async fn send(ws: &mut futures::stream::SplitSink<WebSocket, Message>, v: Value) -> bool {
    ws.send(Message::Text(v.to_string().into())).await.is_ok()
}

async fn session(gw: Arc<Gateway>, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let mut events = gw.dispatches.subscribe();
    if !send(
        &mut tx,
        json!({"op": 10, "d": {"heartbeat_interval": 41250}, "s": null, "t": null}),
    )
    .await
    {
        return;
    }
    let mut identified = false;
    loop {
        tokio::select! {
            msg = rx.next() => {
                let Some(Ok(msg)) = msg else { break };
                let text = match msg {
                    Message::Text(t) => t.to_string(),
                    Message::Close(_) => break,
                    _ => continue,
                };
                let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
                match v["op"].as_u64() {
                    Some(1) => {
                        let _ = send(&mut tx, json!({"op": 11, "d": null, "s": null, "t": null})).await;
                    }
                    Some(2) => {
                        let token = v["d"]["token"].as_str().unwrap_or_default();
                        let ok = gw.token.as_deref().is_none_or(|t| token == t || token == format!("Bot {t}"));
                        if !ok {
                            let _ = tx.send(Message::Close(Some(CloseFrame { code: 4004, reason: "Authentication failed.".into() }))).await;
                            break;
                        }
                        let s = gw.seq.fetch_add(1, Ordering::Relaxed);
                        let ready = json!({"op": 0, "s": s, "t": "READY", "d": {
                            "v": 10,
                            "user": {"id": gw.application_id, "username": "standin-bot", "discriminator": "0",
                                     "global_name": null, "avatar": null, "bot": true, "verified": true,
                                     "mfa_enabled": false, "flags": 0},
                            "guilds": [],
                            "session_id": "standin-session",
                            "resume_gateway_url": "ws://127.0.0.1:1",
                            "shard": [0, 1],
                            "application": {"id": gw.application_id, "flags": 0}
                        }});
                        if !send(&mut tx, ready).await { break; }
                        identified = true;
                        gw.identified.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            ev = events.recv(), if identified => {
                let Ok((t, d)) = ev else { continue };
                let s = gw.seq.fetch_add(1, Ordering::Relaxed);
                if !send(&mut tx, json!({"op": 0, "s": s, "t": t, "d": d})).await { break; }
            }
        }
    }
    if identified {
        gw.identified.fetch_sub(1, Ordering::Relaxed);
    }
}
