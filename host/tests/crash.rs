//! The crash test: 1,000 Kaltura events posted to a real `kdhost serve` process, the process
//! killed with SIGKILL while it delivers, restarted on the same data folder: every message
//! reaches the Discord stand-in exactly once.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::processes::{free_port, post_notifications, serve_command, wait_healthy};
use serde_json::json;
use testkit::kaltura::notify::{encode, http_notification};
use testkit::{BodyFormat, DiscordStandIn, StandInOptions};

const GUILD: &str = "600000000000000001";
const CHANNEL: &str = "910000000000000001";
const SECRET: &str = "crash-test-admin-secret";
const EVENTS: u64 = 1000;

fn spawn_host(dir: &Path, port: u16, standin: &DiscordStandIn) -> Child {
    serve_command(dir, &dir.join("data"), port, standin, SECRET)
        // Delivery as fast as the stand-in's channel bucket allows.
        .env("DISCORD_GLOBAL_RATE_LIMIT", "5000")
        .stderr(Stdio::inherit())
        .spawn()
        .expect("kdhost starts")
}

/// Only catches a hang: every wait here is for the event itself.
const HANG: Duration = Duration::from_secs(120);

fn notification(job: u64) -> testkit::SignedNotification {
    let n = http_notification(
        job,
        3,
        "Entry Status Changed",
        json!({"objectType": "KalturaMediaEntry", "id": format!("0_e{job}"), "name": format!("Entry {job}"), "status": 2}),
    );
    encode(&n, BodyFormat::DataParam, SECRET, "sha256")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_delivery_then_restart_delivers_every_message_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("config/guilds")).unwrap();
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    // The operator lets the guild hear the partner's events.
    std::fs::write(
        dir.join("config/plugins.json"),
        json!({"kaltura": {"partner_events": [GUILD]}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config/guilds").join(format!("{GUILD}.json")),
        json!({"notifications": {"channel": CHANNEL, "templates": {"entry_ready": "{{entry_name}} ({{id}})"}}}).to_string(),
    )
    .unwrap();
    // Discord lets 200 messages a second into the channel: delivery takes a few seconds,
    // long enough to be interrupted.
    let standin = DiscordStandIn::start(
        "127.0.0.1:0".parse().unwrap(),
        StandInOptions {
            bucket_limit: 200,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // The host posts a guild's messages only to that guild's channels.
    standin.set_channels(GUILD, &[(CHANNEL, "recordings")]);

    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let url = format!("{base}/webhooks/kaltura");
    let mut host = spawn_host(dir, port, &standin);
    wait_healthy(&base).await;

    // Kill the host once 100 messages are out, whatever the poster is doing.
    let killed = Arc::new(AtomicBool::new(false));
    let pid = host.id() as i32;
    let killer = {
        let (standin, killed) = (standin.clone(), killed.clone());
        tokio::spawn(async move {
            loop {
                let n = standin.channel_messages(CHANNEL).len();
                if n >= 100 {
                    // SAFETY: sending a signal to our own child process.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                    killed.store(true, Ordering::SeqCst);
                    return n;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let unacknowledged = post_notifications(
        std::slice::from_ref(&url),
        (1..=EVENTS).collect(),
        notification,
    )
    .await;
    let at_kill = killer.await.unwrap();
    assert!(killed.load(Ordering::SeqCst));
    let _ = host.wait();
    let before_restart = standin.channel_messages(CHANNEL).len();
    assert!(
        before_restart < EVENTS as usize,
        "the kill came after everything was delivered ({before_restart}); the test proves nothing"
    );
    eprintln!(
        "killed at {at_kill} delivered; {before_restart} before restart; {} events unacknowledged",
        unacknowledged.len()
    );

    // Restart on the same data; Kaltura redelivers what was not acknowledged.
    host = spawn_host(dir, port, &standin);
    wait_healthy(&base).await;
    let still = post_notifications(std::slice::from_ref(&url), unacknowledged, notification).await;
    assert!(still.is_empty(), "the restarted host refused {still:?}");

    // Wait for the restarted host to finish: every event processed, every message's result
    // recorded (read from its database); after that nothing more can arrive.
    let db = dir.join("data/kdhost.sqlite3");
    let settled = || {
        let conn = rusqlite::Connection::open(&db).ok()?;
        let open: i64 = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM inbox WHERE processed_at IS NULL)
                      + (SELECT COUNT(*) FROM outbox WHERE state = 'pending')",
                [],
                |r| r.get(0),
            )
            .ok()?;
        (open == 0 && standin.channel_messages(CHANNEL).len() >= EVENTS as usize).then_some(())
    };
    let until = std::time::Instant::now() + HANG;
    while settled().is_none() {
        assert!(
            std::time::Instant::now() < until,
            "the restarted host did not finish in {HANG:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = host.kill();
    let _ = host.wait();

    let messages = standin.channel_messages(CHANNEL);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for m in &messages {
        *seen
            .entry(m["content"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let missing: Vec<u64> = (1..=EVENTS)
        .filter(|j| !seen.contains_key(&format!("Entry {j} (job:{j})")))
        .collect();
    let twice: Vec<(&String, &usize)> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    assert_eq!(messages.len(), EVENTS as usize);
}
