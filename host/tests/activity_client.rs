//! The Activity client (`activity/`): its Vitest unit tests (the sync math) and its build
//! (type check + Vite) run as part of `cargo test`. The README's test command installs its
//! packages (`npm ci --prefix activity`).

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

#[test]
fn the_sync_math_unit_tests_pass_and_the_client_builds() {
    let (ok, out) = npm(&["test", "--silent"]);
    assert!(ok, "vitest failed:\n{out}");
    assert!(out.contains("passed"), "{out}");
    let (ok, out) = npm(&["run", "build", "--silent"]);
    assert!(ok, "the Activity does not build:\n{out}");
    let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity/dist/index.html");
    assert!(dist.exists(), "{out}");
}
