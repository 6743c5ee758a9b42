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

    // Two people in headless Chromium against the real host (dev mode: the SDK's mock).
    let host = common::Host::start(common::Setup {
        activity_dev: true,
        ..Default::default()
    })
    .await;
    let url = format!(
        "{}/activity/?instance=e2e&channel=200000000000000001",
        host.base
    );
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-artifacts");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity");
    let out = tokio::process::Command::new("node")
        .arg("e2e/watch-together.mjs")
        .arg(&url)
        .arg(&artifacts)
        .current_dir(&dir)
        .output()
        .await
        .expect("node runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && text.contains("e2e ok"), "{text}");
    for shot in ["host.png", "follower.png", "follower-now-host.png"] {
        assert!(artifacts.join(shot).exists(), "no screenshot {shot}");
    }
    println!("{text}");
}
