//! The Activity client (`activity/`): its Vitest unit tests (the sync math), its build (type
//! check + Vite), and the end-to-end run in headless Chromium against the real host, as part
//! of `cargo test`. The README's test command installs its packages
//! (`npm ci --prefix activity`); Chromium is Debian's `chromium` (`.ci/run` installs it).

mod common;

use std::path::Path;
use std::process::Command;

fn npm(args: &[&str]) -> (bool, String) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity");
    assert!(
        dir.join("node_modules").is_dir(),
        "activity/node_modules is missing: run `npm ci --prefix activity` (the README's test command does)"
    );
    let out = Command::new("npm")
        .args(args)
        .current_dir(&dir)
        .env("CI", "1")
        .output()
        .expect("npm runs (Node 20 + npm are part of the set-up)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_is_tested_built_and_two_browsers_watch_in_sync() {
    let (ok, out) = npm(&["test", "--silent"]);
    assert!(ok, "vitest failed:\n{out}");
    assert!(out.contains("passed"), "{out}");
    let (ok, out) = npm(&["run", "build", "--silent"]);
    assert!(ok, "the Activity does not build:\n{out}");
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity/dist/index.html");
    assert!(dist.exists(), "{out}");

    // Two people in headless Chromium against the real host (dev mode: the SDK's mock;
    // videos are searched in the Kaltura stand-in through the host API).
    let host = common::start_with_kaltura(|s| s.activity_dev = true).await;
    let base = format!("{}/activity/?channel=200000000000000001", host.base);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-artifacts");
    let text = e2e(
        "watch-together.mjs",
        &format!("{base}&instance=e2e"),
        &artifacts,
    )
    .await;
    assert!(text.contains("e2e ok"), "{text}");
    for shot in ["host.png", "follower.png", "follower-now-host.png"] {
        assert!(artifacts.join(shot).exists(), "no screenshot {shot}");
    }
    println!("{text}");

    // The same with Kaltura Player v7 (the stand-in's script and media): every page plays
    // with its own USER session scoped to the entry, which the player uses for its API call.
    let text = e2e(
        "kaltura-player.mjs",
        &format!("{base}&instance=e2e-kaltura&player=kaltura"),
        &artifacts,
    )
    .await;
    assert!(text.contains("e2e kaltura ok"), "{text}");
    let entry = text
        .split("kaltura player loaded ")
        .nth(1)
        .and_then(|t| t.split_whitespace().next())
        .expect("the script names the entry");
    let kal = host.kaltura.as_ref().unwrap();
    let player_reads: Vec<_> = kal
        .calls()
        .into_iter()
        .filter(|c| {
            c.service == "baseEntry" && c.client_tag.as_deref() == Some("html5:v7-stand-in")
        })
        .collect();
    assert_eq!(player_reads.len(), 2, "one read per page: {player_reads:?}");
    for c in player_reads {
        assert_eq!(c.ks_type, Some(0), "a USER session: {c:?}");
        assert!(
            c.ks_privileges
                .as_deref()
                .is_some_and(|p| p.starts_with(&format!("sview:{entry}"))),
            "scoped to the entry: {c:?}"
        );
    }
    println!("{text}");
}

/// Runs one end-to-end script with node; its output, or a panic with it.
async fn e2e(script: &str, url: &str, artifacts: &Path) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity");
    let out = tokio::process::Command::new("node")
        .arg(format!("e2e/{script}"))
        .arg(url)
        .arg(artifacts)
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{script} failed:\n{text}");
    text
}
