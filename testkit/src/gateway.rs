//! A minimal Discord gateway: Hello, Identify (token checked), READY, heartbeats, and
//! dispatches pushed by tests (INTERACTION_CREATE). Text frames, JSON, v10.
//!
//! Sharded as Discord shards: IDENTIFY's `shard: [id, count]` picks a shard, and each
//! guild's events go to the sessions of shard `(guild_id >> 22) % count` only (events
//! without a guild to shard 0). Every IDENTIFY is logged with its time, so tests can check
//! `max_concurrency` (one IDENTIFY per 5 s per bucket `id % max_concurrency`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// The shard count `GET /gateway/bot` recommends.
    pub recommended_shards: AtomicU32,
    /// `session_start_limit.max_concurrency`.
    pub max_concurrency: AtomicU32,
    /// Identified sessions per shard id.
    pub shard_sessions: Mutex<HashMap<u32, usize>>,
    /// Every IDENTIFY: (shard id, shard count, ms since the gateway started).
    pub identifies: Mutex<Vec<(u32, u32, u64)>>,
    started: Instant,
}

/// The shard a guild's events go to.
pub fn shard_of(guild_id: &str, count: u32) -> u32 {
    let id: u64 = guild_id.parse().unwrap_or(0);
    ((id >> 22) % u64::from(count.max(1))) as u32
}

impl Gateway {
    pub fn new(token: Option<String>, application_id: String) -> Arc<Self> {
        Arc::new(Self {
            token,
            application_id,
            dispatches: broadcast::channel(1024).0,
            identified: AtomicUsize::new(0),
            seq: AtomicU64::new(1),
            recommended_shards: AtomicU32::new(1),
            max_concurrency: AtomicU32::new(1),
            shard_sessions: Mutex::new(HashMap::new()),
            identifies: Mutex::new(Vec::new()),
            started: Instant::now(),
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
    // (shard id, shard count) once identified.
    let mut shard = (0u32, 1u32);
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
                        let id = v["d"]["shard"][0].as_u64().unwrap_or(0) as u32;
                        let count = v["d"]["shard"][1].as_u64().unwrap_or(1).max(1) as u32;
                        if id >= count {
                            let _ = tx.send(Message::Close(Some(CloseFrame { code: 4010, reason: "Invalid shard.".into() }))).await;
                            break;
                        }
                        shard = (id, count);
                        gw.identifies.lock().unwrap().push((id, count, gw.started.elapsed().as_millis() as u64));
                        let s = gw.seq.fetch_add(1, Ordering::Relaxed);
                        let ready = json!({"op": 0, "s": s, "t": "READY", "d": {
                            "v": 10,
                            "user": {"id": gw.application_id, "username": "standin-bot", "discriminator": "0",
                                     "global_name": null, "avatar": null, "bot": true, "verified": true,
                                     "mfa_enabled": false, "flags": 0},
                            "guilds": [],
                            "session_id": "standin-session",
                            "resume_gateway_url": "ws://127.0.0.1:1",
                            "shard": [shard.0, shard.1],
                            "application": {"id": gw.application_id, "flags": 0}
                        }});
                        if !send(&mut tx, ready).await { break; }
                        identified = true;
                        gw.identified.fetch_add(1, Ordering::Relaxed);
                        *gw.shard_sessions.lock().unwrap().entry(shard.0).or_default() += 1;
                    }
                    _ => {}
                }
            }
            ev = events.recv(), if identified => {
                let Ok((t, d)) = ev else { continue };
                // Each guild's events on its shard only; the rest on shard 0.
                let target = d["guild_id"].as_str().map(|g| shard_of(g, shard.1)).unwrap_or(0);
                if target != shard.0 {
                    continue;
                }
                let s = gw.seq.fetch_add(1, Ordering::Relaxed);
                if !send(&mut tx, json!({"op": 0, "s": s, "t": t, "d": d})).await { break; }
            }
        }
    }
    if identified {
        gw.identified.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = gw.shard_sessions.lock().unwrap().get_mut(&shard.0) {
            *n = n.saturating_sub(1);
        }
    }
}
