//! The [activity] load benchmark, printed as JSON lines: N WebSocket clients in rooms of 10
//! on loopback (host and clients in one process); each room's host seeks (a forced state)
//! several times; the time from sending the seek to its arrival at every follower, p50/p99;
//! and the process's memory growth per connection (client and server side together).
//!
//! `cargo bench -p kdhost --bench activity` (env BENCH_CLIENTS="1000,5000" to change sizes).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use kdhost::api::auth::{Jwt, SubjectKind};
use kdhost::config::secret::Secret;
use kdhost::config::settings::{ActivitySettings, ApiSettings, Settings};
use serde_json::{Value, json};
use testkit::{DiscordStandIn, StandInOptions};
use tokio_tungstenite::tungstenite::Message;

mod support;
use support::{HostFiles, stats};

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123";
const ROOM_SIZE: usize = 10;
const ROUNDS: usize = 5;

type Sent = Arc<Mutex<HashMap<u64, Instant>>>;

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
    let host = support::start_host_with(&discord, HostFiles::default(), settings).await;
    let jwt = Jwt::new(&Secret::new(JWT_SECRET), Duration::from_secs(3600));
    for (run, &n) in sizes.iter().enumerate() {
        run_size(&host.addr.to_string(), &jwt, n, run).await;
    }
}

async fn run_size(addr: &str, jwt: &Jwt, n: usize, run: usize) {
    let rooms = n / ROOM_SIZE;
    let rss_before = support::rss_kib();
    let sent: Sent = Default::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Default::default();
    let mut hosts = Vec::with_capacity(rooms);
    let connect_started = Instant::now();
    for room in 0..rooms {
        let mut host_sink = None;
        for seat in 0..ROOM_SIZE {
            let user = format!("7{run:02}{room:05}{seat:02}0000000");
            let (token, _) = jwt.issue(&user, SubjectKind::Discord, "bench").unwrap();
            let url = format!(
                "ws://{addr}/api/v1/activity/sync?instance_id=bench-{run}-{room}&token={token}"
            );
            let (ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
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
                let (sent, latencies) = (sent.clone(), latencies.clone());
                tokio::spawn(async move {
                    let _keep = sink;
                    while let Some(Ok(msg)) = stream.next().await {
                        let Message::Text(t) = msg else { continue };
                        if !t.contains("\"state\"") {
                            continue;
                        }
                        let arrived = Instant::now();
                        let v: Value = serde_json::from_str(&t).unwrap_or(Value::Null);
                        let key =
                            (v["state"]["position"].as_f64().unwrap_or(-1.0) * 10.0).round() as u64;
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
    stats(
        &format!("host_action_to_follower_{n}_clients"),
        lat,
        started.elapsed(),
    );
    println!(
        "{}",
        json!({"bench": format!("activity_{n}_clients"), "rooms": rooms, "arrivals": got, "expected": expected,
               "connect_s": connected_in.as_secs_f64(),
               "rss_growth_kib": rss_after.saturating_sub(rss_before),
               "rss_per_connection_kib": rss_after.saturating_sub(rss_before) as f64 / n as f64})
    );
    // Close this size's connections before the next.
    for mut h in hosts {
        let _ = h.close().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
}
