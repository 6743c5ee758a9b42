//! The [activity] load benchmark, printed as JSON lines: N WebSocket clients in rooms of 10
//! on loopback (host and clients in one process); each room's host seeks (a forced state)
//! several times; the time from sending the seek to its arrival at every follower, p50/p99;
//! and the live heap per connection (client and server side together; the baseline has the
//! same client side, so the difference is the server's), plus RSS growth.
//! Baseline, same process and clients: a bare axum WebSocket fan-out (each room a tokio
//! broadcast, messages relayed verbatim: no token, no JSON, no room logic).
//!
//! Then across instances ([scale]): two hosts sharing a private Redis server (Debian's
//! `redis-server`; skipped with a note when it is not installed), each room's host on one
//! and its followers on the other (relayed to the room's owner), next to the same rooms
//! with everyone on one of them.
//!
//! `cargo bench -p kdhost --bench activity` (env BENCH_CLIENTS="1000,5000" to change sizes,
//! BENCH_CLUSTER_CLIENTS="1000" for the instances' run).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use kdhost::api::auth::{Audience, Jwt, SubjectKind};
use kdhost::config::secret::Secret;
use kdhost::config::settings::{ActivitySettings, ApiSettings, Settings};
use serde_json::{Value, json};
use testkit::{DiscordStandIn, StandInOptions};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

mod support;
use support::{HostFiles, stats};

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123";
const ROOM_SIZE: usize = 10;
const ROUNDS: usize = 5;

type Sent = Arc<Mutex<HashMap<u64, Instant>>>;

/// Live heap bytes, counted by the allocator: unlike RSS it is not fooled by memory freed
/// by an earlier run and reused (RSS growth is only meaningful for the first run).
static LIVE_HEAP: AtomicIsize = AtomicIsize::new(0);

struct CountingAllocator;

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is kept.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE_HEAP.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE_HEAP.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE_HEAP.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[tokio::main]
async fn main() {
    let sizes: Vec<usize> = std::env::var("BENCH_CLIENTS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![1000, 5000]);
    println!(
        "{}",
        json!({"machine": support::machine(), "clients": sizes, "room_size": ROOM_SIZE})
    );
    let discord = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    let settings = Settings {
        api: ApiSettings {
            jwt_secret: Some(Secret::new(JWT_SECRET)),
            ..Default::default()
        },
        activity: ActivitySettings {
            dev_mode: true,
            grace: None,
        },
        ..Default::default()
    };
    let host = support::start_host_with(&discord, HostFiles::default(), settings.clone()).await;
    let jwt = Jwt::new(&Secret::new(JWT_SECRET), Duration::from_secs(3600));
    let bare = bare_fanout().await;
    for (run, &n) in sizes.iter().enumerate() {
        let addr = host.addr.to_string();
        let url =
            |room: usize, _seat: usize, user: &str| sync_request(&jwt, &addr, run, room, user);
        run_size("activity", &url, n, run).await;
        let url = |room: usize, _seat: usize, _: &str| {
            format!("ws://{bare}/ws/{run}-{room}")
                .into_client_request()
                .unwrap()
        };
        run_size("baseline_bare_fanout", &url, n, run).await;
    }
    across_instances(&discord, &jwt, settings, sizes.len()).await;
}

/// A seat's request to a host's sync endpoint, with its token in the subprotocol (as the
/// page sends it).
fn sync_request(jwt: &Jwt, addr: &str, run: usize, room: usize, user: &str) -> Request {
    let (token, _) = jwt
        .issue_for(
            Audience::Activity,
            user,
            SubjectKind::Discord,
            "bench",
            None,
            Duration::from_secs(3600),
        )
        .unwrap();
    let mut req = format!("ws://{addr}/api/v1/activity/sync?instance_id=bench-{run}-{room}")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        format!("kd-sync, {token}").parse().unwrap(),
    );
    req
}

/// Two instances sharing rooms through Redis: hosts on A and followers on B, next to
/// everyone on A (same process, same clients, same Redis).
async fn across_instances(
    discord: &DiscordStandIn,
    jwt: &Jwt,
    settings: Settings,
    first_run: usize,
) {
    let n: usize = std::env::var("BENCH_CLUSTER_CLIENTS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(1000);
    let redis = match testkit::servers::RedisServer::start() {
        Ok(r) => r,
        Err(e) => {
            println!(
                "{}",
                json!({"skipped": "activity across instances", "why": format!("{e:#}")})
            );
            return;
        }
    };
    let files = || HostFiles {
        redis_url: Some(redis.url()),
        ..Default::default()
    };
    let a = support::start_host_with(discord, files(), settings.clone()).await;
    let b = support::start_host_with(discord, files(), settings).await;
    let (a, b) = (a.addr.to_string(), b.addr.to_string());
    let run = first_run;
    let same = |room: usize, _seat: usize, user: &str| sync_request(jwt, &a, run, room, user);
    let same_run = run_size("activity_same_instance", &same, n, run).await;
    let run = first_run + 1;
    let across = |room: usize, seat: usize, user: &str| {
        let at = if seat == 0 { &a } else { &b };
        sync_request(jwt, at, run, room, user)
    };
    let across_run = run_size("activity_across_instances", &across, n, run).await;
    support::ratio(
        "activity_across_instances_vs_same_instance",
        &across_run,
        &same_run,
    );
}

/// The baseline server: `/ws/{room}`, a welcome, then every text relayed to the room.
async fn bare_fanout() -> std::net::SocketAddr {
    use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
    use axum::extract::{Path, State};
    type Rooms = Arc<Mutex<HashMap<String, tokio::sync::broadcast::Sender<String>>>>;
    async fn ws(
        State(rooms): State<Rooms>,
        Path(room): Path<String>,
        up: WebSocketUpgrade,
    ) -> axum::response::Response {
        let tx = rooms
            .lock()
            .unwrap()
            .entry(room)
            .or_insert_with(|| tokio::sync::broadcast::channel(256).0)
            .clone();
        up.read_buffer_size(8 * 1024)
            .write_buffer_size(8 * 1024)
            .on_upgrade(move |socket| async move {
                let (mut out, mut inp) = socket.split();
                let mut rx = tx.subscribe();
                let _ = out
                    .send(WsMessage::Text(r#"{"type":"welcome"}"#.into()))
                    .await;
                let relay = tokio::spawn(async move {
                    while let Ok(t) = rx.recv().await {
                        if out.send(WsMessage::Text(t.into())).await.is_err() {
                            break;
                        }
                    }
                });
                while let Some(Ok(m)) = inp.next().await {
                    if let WsMessage::Text(t) = m {
                        let _ = tx.send(t.to_string());
                    }
                }
                relay.abort(); // the client left: let its socket go
            })
    }
    let app = axum::Router::new()
        .route("/ws/{room}", axum::routing::get(ws))
        .with_state(Rooms::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// One size against one server; `url(room, user)` is where a seat connects.
/// Returns the latency stats.
async fn run_size(
    name: &str,
    url: &dyn Fn(usize, usize, &str) -> Request,
    n: usize,
    run: usize,
) -> Value {
    let rooms = n / ROOM_SIZE;
    let rss_before = support::rss_kib();
    let heap_before = LIVE_HEAP.load(Ordering::Relaxed);
    let sent: Sent = Default::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Default::default();
    let mut hosts = Vec::with_capacity(rooms);
    let mut followers = Vec::with_capacity(n);
    let connect_started = Instant::now();
    for room in 0..rooms {
        let mut host_sink = None;
        for seat in 0..ROOM_SIZE {
            let user = format!("7{run:02}{room:05}{seat:02}0000000");
            // Clients with the server's small buffers, so the heap is mostly the server's.
            let small = WebSocketConfig::default()
                .read_buffer_size(8 * 1024)
                .write_buffer_size(8 * 1024);
            let (ws, _) = tokio_tungstenite::connect_async_with_config(
                url(room, seat, &user),
                Some(small),
                false,
            )
            .await
            .unwrap_or_else(|e| {
                panic!("{name}: connection {} of {n}: {e}", room * ROOM_SIZE + seat)
            });
            let (sink, mut stream) = ws.split();
            // Welcome first: the first in the room hosts.
            loop {
                if let Some(Ok(Message::Text(t))) = stream.next().await
                    && t.contains("\"welcome\"")
                {
                    break;
                }
            }
            if seat == 0 {
                host_sink = Some(sink);
                tokio::spawn(async move { while stream.next().await.is_some() {} });
            } else {
                // Followers: note when each host seek arrives (positions are unique keys).
                followers.push(sink);
                let (sent, latencies) = (sent.clone(), latencies.clone());
                tokio::spawn(async move {
                    while let Some(Ok(msg)) = stream.next().await {
                        let Message::Text(t) = msg else { continue };
                        // The room's `state`, or the baseline's relayed `seek`.
                        if !t.contains("\"state\"") && !t.contains("\"seek\"") {
                            continue;
                        }
                        let arrived = Instant::now();
                        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                        let position = v["state"]["position"].as_f64().or(v["position"].as_f64());
                        let key = (position.unwrap_or(-1.0) * 10.0).round() as u64;
                        if let Some(at) = sent.lock().unwrap().get(&key) {
                            latencies.lock().unwrap().push(arrived - *at);
                        }
                    }
                });
            }
        }
        hosts.push(host_sink.unwrap());
    }
    let connected_in = connect_started.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after = support::rss_kib();
    let heap_per_connection_kib =
        (LIVE_HEAP.load(Ordering::Relaxed) - heap_before) as f64 / 1024.0 / n as f64;

    // Each round, every room's host seeks once; rooms are paced over 200 ms per round.
    let expected = ROUNDS * rooms * (ROOM_SIZE - 1);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let gap = Duration::from_micros(200_000 / rooms.max(1) as u64);
        for (room, sink) in hosts.iter_mut().enumerate() {
            let key = (round * 10_000 + room) as u64;
            let msg = json!({"type": "seek", "position": key as f64 / 10.0}).to_string();
            sent.lock().unwrap().insert(key, Instant::now());
            sink.send(Message::Text(msg.into())).await.unwrap();
            tokio::time::sleep(gap).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while latencies.lock().unwrap().len() < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let lat = latencies.lock().unwrap().clone();
    let got = lat.len();
    let latency = stats(
        &format!("{name}_host_action_to_follower_{n}_clients"),
        lat,
        started.elapsed(),
    );
    println!(
        "{}",
        json!({"bench": format!("{name}_{n}_clients"), "rooms": rooms, "arrivals": got, "expected": expected,
               "connect_s": connected_in.as_secs_f64(),
               "heap_per_connection_kib": heap_per_connection_kib,
               "rss_growth_kib": rss_after.saturating_sub(rss_before),
               "rss_per_connection_kib": rss_after.saturating_sub(rss_before) as f64 / n as f64})
    );
    // Close this size's connections before the next.
    for mut c in hosts.into_iter().chain(followers) {
        let _ = c.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    latency
}
