//! Hot reload under a steady stream of interactions, and command sync against the stand-in.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;
use testkit::{DiscordStandIn, Fault, StandInOptions};

/// Atomically replaces `dest` (write aside, then rename), as a deploy would.
fn install(src: &std::path::Path, dest: &std::path::Path) {
    let tmp = dest.with_extension("tmp");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_swaps_without_failed_requests_and_keeps_the_old_on_a_bad_file() {
    let host = Arc::new(Host::start(Setup {
        plugins: vec![("swap.wasm", "kd_fixture_swap_a")],
        plugins_json: Some(json!({"rate_limits": {"per_user_per_minute": 100000, "per_guild_per_minute": 100000}}).to_string()),
        ..Default::default()
    })
    .await);
    assert_eq!(host.command_text("swap").await, "version A");

    // A steady stream of /swap while the file is replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen_b = Arc::new(std::sync::Mutex::new(None::<Instant>));
    let stream = {
        let (host, stop, ok, failed, seen_b) = (
            host.clone(),
            stop.clone(),
            ok.clone(),
            failed.clone(),
            seen_b.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, body) = host.command("swap", json!([])).await;
                let text = text_of(&body);
                if status == 200 && (text == "version A" || text == "version B") {
                    ok.fetch_add(1, Ordering::Relaxed);
                    if text == "version B" {
                        seen_b.lock().unwrap().get_or_insert_with(Instant::now);
                    }
                } else {
                    eprintln!("failed request during reload: {status} {body}");
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let served = |n: usize| {
        let ok = ok.clone();
        async move {
            let target = ok.load(Ordering::SeqCst) + n;
            eventually("answers from the stream", || {
                (ok.load(Ordering::SeqCst) >= target).then_some(())
            })
            .await
        }
    };
    served(5).await;
    let swapped_at = Instant::now();
    install(
        &guest("kd_fixture_swap_b"),
        &host.dir.join("plugins/swap.wasm"),
    );
    let took = eventually("the new version to answer", || {
        seen_b.lock().unwrap().map(|t| t - swapped_at)
    })
    .await;
    eprintln!("new version answered {took:?} after the swap");

    // A broken file: refused, version B keeps serving.
    let refused = || {
        kdhost::telemetry::METRICS
            .plugin_loads
            .with_label_values(&["refused"])
            .get()
    };
    let refused_before = refused();
    std::fs::write(host.dir.join("plugins/swap.tmp"), b"\0asm broken").unwrap();
    std::fs::rename(
        host.dir.join("plugins/swap.tmp"),
        host.dir.join("plugins/swap.wasm"),
    )
    .unwrap();
    eventually("the broken file to be refused", || {
        (refused() > refused_before).then_some(())
    })
    .await;
    served(10).await;
    stop.store(true, Ordering::Relaxed);
    stream.await.unwrap();
    assert_eq!(host.command_text("swap").await, "version B");
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "requests failed during the reload"
    );
    assert!(ok.load(Ordering::Relaxed) > 15);
    let metrics = kdhost::telemetry::render();
    assert!(metrics.contains("kd_plugin_loads_total{result=\"refused\"}"));

    // Removing the file unloads the plugin.
    std::fs::remove_file(host.dir.join("plugins/swap.wasm")).unwrap();
    eventually("the plugin to unload", || {
        host.app_registry
            .snapshot()
            .get("swap")
            .is_none()
            .then_some(())
    })
    .await;
    assert!(host.command_text("swap").await.contains("not available"));
}

/// Finished command sync passes recorded in the host's data folder.
fn sync_passes(dir: &std::path::Path) -> u64 {
    let db = dir.join("data/kdhost.sqlite3");
    if !db.exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(
        "SELECT value FROM meta WHERE key = ?1",
        [kdhost::discord::commands::SYNC_PASSES],
        |r| r.get::<_, String>(0),
    )
    .ok()
    .and_then(|v| v.parse().ok())
    .unwrap_or(0)
}

/// Waits until a command sync pass after the `before`-th has finished.
async fn wait_for_pass(host: &Host, before: u64) {
    eventually("a command sync pass", || {
        (sync_passes(&host.dir) > before).then_some(())
    })
    .await
}

fn command_puts(s: &DiscordStandIn) -> Vec<testkit::Recorded> {
    s.requests()
        .into_iter()
        .filter(|r| r.method == "PUT" && r.path.ends_with("/commands"))
        .collect()
}

#[tokio::test]
async fn command_sync_registers_once_and_only_on_change() {
    let standin = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let setup = |plugins: Vec<(&'static str, &'static str)>| Setup {
        plugins,
        dir: Some(dir.clone()),
        standin: Some(standin.clone()),
        ..Default::default()
    };

    // First start registers once.
    let host = Host::start(setup(vec![])).await;
    let put = standin
        .wait_for(HANG, |r| r.method == "PUT")
        .await
        .expect("first start syncs");
    assert_eq!(put.status, 200);
    let names: Vec<&str> = put
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "about",
            "help",
            "kaltura-config-reset",
            "kaltura-config-update",
            "kaltura-config-view",
            "kaltura-end",
            "kaltura-get-ks",
            "kaltura-join",
            "kaltura-list",
            "kaltura-notify",
            "kaltura-privacy",
            "kaltura-privacy-member",
            "kaltura-start",
            "kaltura-video-search"
        ]
    );
    host.stop().await;

    // Restart with the same plugins: the first pass finds nothing to send.
    let passes = sync_passes(&dir);
    let host = Host::start(setup(vec![])).await;
    wait_for_pass(&host, passes).await;
    assert_eq!(
        command_puts(&standin).len(),
        1,
        "a restart with unchanged commands must not sync"
    );

    // A new command (hot-loaded plugin): exactly one PUT.
    let passes = sync_passes(&dir);
    install(&guest("kd_fixture_swap_a"), &dir.join("plugins/swap.wasm"));
    standin
        .wait_for(HANG, |r| {
            r.method == "PUT" && r.body.to_string().contains("\"swap\"")
        })
        .await
        .expect("resync after change");
    wait_for_pass(&host, passes).await;
    assert_eq!(command_puts(&standin).len(), 2);

    // The same command set again (swap-b only changes the reply): a pass, no PUT.
    let a_hash = host
        .app_registry
        .snapshot()
        .get("swap")
        .unwrap()
        .hash
        .clone();
    let passes = sync_passes(&dir);
    install(&guest("kd_fixture_swap_b"), &dir.join("plugins/swap.wasm"));
    eventually("swap-b to load", || {
        let set = host.app_registry.snapshot();
        (set.get("swap")?.hash != a_hash).then_some(())
    })
    .await;
    wait_for_pass(&host, passes).await;
    assert_eq!(
        command_puts(&standin).len(),
        2,
        "changing code but not commands must not sync"
    );
    host.stop().await;
}

#[tokio::test]
async fn discord_429_is_waited_out_and_retried() {
    let standin = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    standin.inject(Fault {
        path_contains: "/commands".into(),
        status: 429,
        count: 2,
        retry_after: 0.2,
        delay_ms: 0,
    });
    let host = Host::start(Setup {
        standin: Some(standin.clone()),
        ..Default::default()
    })
    .await;
    standin
        .wait_for(HANG, |r| r.method == "PUT" && r.status == 200)
        .await
        .expect("sync succeeds after 429s");
    let statuses: Vec<u16> = command_puts(&standin).iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 429, 200]);
    host.stop().await;
}

#[tokio::test]
async fn a_dev_guild_gets_its_own_bulk_overwrite() {
    let host = Host::start(Setup {
        dev_guild: Some("600000000000000042".into()),
        ..Default::default()
    })
    .await;
    let put = host
        .standin
        .wait_for(HANG, |r| r.method == "PUT")
        .await
        .expect("dev guild sync");
    assert_eq!(
        put.path,
        format!(
            "/api/v10/applications/{}/guilds/600000000000000042/commands",
            host.standin.application_id()
        )
    );
    assert_eq!(put.status, 200);
    assert!(put.authorized, "command sync uses the bot token");
    host.stop().await;
}
