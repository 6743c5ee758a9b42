//! The Activity client (`activity/`): its Vitest unit tests (the sync math), its build (type
//! check + Vite), and the end-to-end run in headless Chromium against the real host, as part
//! of `cargo test`. The README's test command installs its packages
//! (`npm ci --prefix activity`); Chromium is Debian's `chromium` (`.ci/run` installs it).

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

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

/// The client's unit tests, then its build, once for the tests of this file (two builds at
/// once would write over each other's `dist`).
fn tested_and_built() {
    static ONCE: OnceLock<Result<(), String>> = OnceLock::new();
    let result = ONCE.get_or_init(|| {
        let (ok, out) = npm(&["test", "--silent"]);
        if !ok || !out.contains("passed") {
            return Err(format!("vitest failed:\n{out}"));
        }
        let (ok, out) = npm(&["run", "build", "--silent"]);
        let dist = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity/dist/index.html");
        if !ok || !dist.exists() {
            return Err(format!("the Activity does not build:\n{out}"));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_is_tested_built_and_two_browsers_watch_in_sync() {
    tested_and_built();

    // Two people in headless Chromium against the real host (dev mode: the SDK's mock;
    // videos are searched in the Kaltura stand-in through the host API).
    let host = common::start_with_kaltura(|s| s.activity_dev = true).await;
    // The mock users have made-up ids: the guild lets anyone in, as a public server would.
    host.standin.set_open_membership(common::GUILD);
    let base = format!("{}/activity/?channel=200000000000000001", host.base);
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-artifacts");
    let text = e2e(
        "watch-together.mjs",
        &[&format!("{base}&instance=e2e")],
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
        &[&format!("{base}&instance=e2e-kaltura&player=kaltura")],
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

/// As inside Discord: the client stand-in frames the Activity, signs people in for real (the
/// host is not in dev mode), proxies the URL mappings the host hands out and enforces a
/// same-origin content security policy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inside_the_discord_client_two_people_sign_in_for_real_and_watch_through_the_mappings() {
    tested_and_built();
    let host = common::start_with_kaltura(|_| {}).await;
    let kal = host.kaltura.as_ref().unwrap();
    let (ann, bob, channel) = (
        "700000000000000031",
        "700000000000000032",
        "200000000000000001",
    );
    // Signed in to their Discord clients (the stand-in knows them), members of the server,
    // both in the instance.
    host.standin.add_oauth_user("session-ann", ann, "Ann");
    host.standin.add_oauth_user("session-bob", bob, "Bob");
    for user in [ann, bob] {
        host.standin.set_member(common::GUILD, user, &[]);
    }
    host.standin
        .set_activity_instance_in("i-discord-e2e", channel, &[ann, bob]);
    let mappings = [
        ("/kaltura-cdn", kal.url.as_str()),
        ("/kaltura-api", kal.url.as_str()),
    ];
    let client = testkit::DiscordClientStandIn::start(host.standin.clone(), &host.base, &mappings)
        .await
        .unwrap();
    let window = |user: &str, name: &str| {
        format!(
            "{}/_client/?user={user}&name={name}&instance=i-discord-e2e&channel={channel}&guild={}",
            client.url,
            common::GUILD
        )
    };
    let artifacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/e2e-artifacts");
    let text = e2e(
        "in-discord.mjs",
        &[&window(ann, "Ann"), &window(bob, "Bob")],
        &artifacts,
    )
    .await;
    assert!(text.contains("e2e in discord ok"), "{text}");
    // The host exchanged real codes (no mock).
    let exchanged = host
        .standin
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/oauth2/token") && r.status == 200)
        .count();
    assert_eq!(exchanged, 2, "one code exchange per person");
    println!("{text}");
}

/// Runs one end-to-end script with node; its output, or a panic with it.
async fn e2e(script: &str, args: &[&str], artifacts: &Path) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../activity");
    let out = tokio::process::Command::new("node")
        .arg(format!("e2e/{script}"))
        .args(args)
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
