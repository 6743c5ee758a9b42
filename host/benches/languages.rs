//! The [authoring] benchmark: instantiate + call of the same `/poll` command in Rust,
//! JavaScript and Python (in process, the real sandbox, kv in SQLite in memory), and the
//! component size of each; ratios against Rust from the same run.
//!
//! `cargo bench -p kdhost --bench languages` (needs the README's test setup: the JS and
//! Python toolchains; the examples are built with `kdhost plugin build`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kdhost::plugins::builtin::GUEST_WASM_DIR;
use kdhost::plugins::caps::Capabilities;
use kdhost::plugins::grants::GrantsConfig;
use kdhost::plugins::{Call, CallScope, Output, Runtime, Source, loader};
use serde_json::{Value, json};
use testkit::{DiscordStandIn, StandInOptions};

mod support;
use support::stats;

fn build_example(dir: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["plugin", "build"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.join("poll.wasm")
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    println!(
        "{}",
        json!({"machine": support::machine(), "calls_per_language": n})
    );
    let components = [
        (
            "rust",
            PathBuf::from(format!("{GUEST_WASM_DIR}/kd_plugin_rust_poll.wasm")),
        ),
        ("javascript", build_example("examples/js-poll")),
        ("python", build_example("examples/python-poll")),
    ];
    let rt = Runtime::new(Capabilities::offline()).unwrap();
    let grants =
        GrantsConfig::parse(r#"{"plugins":{"*":{"grants":["kv"], "kv_quota_bytes": 1000000000}}}"#)
            .unwrap();
    let standin = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    let mut results: Vec<(&str, Value)> = Vec::new();
    for (lang, path) in &components {
        let bytes = std::fs::read(path).unwrap();
        let size = bytes.len();
        let t = Instant::now();
        let p = loader::load(&rt, bytes, Source::File(path.clone()), &grants, None)
            .await
            .unwrap();
        let compile = t.elapsed();
        let mut lat: Vec<Duration> = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n + 50 {
            let payload = standin.command(
                "poll",
                json!([{"name": "question", "type": 3, "value": "Lunch?"}, {"name": "options", "type": 3, "value": "Pizza, Sushi, Salad"}]),
                "1",
                "2",
                &[],
            );
            let ix: kdhost::discord::model::Interaction = serde_json::from_value(payload).unwrap();
            let input = ix.command_input().unwrap();
            let scope = CallScope {
                guild_id: Some("1".into()),
                user_id: Some("2".into()),
                interaction_id: Some(ix.id.clone()),
                ..Default::default()
            };
            let t = Instant::now();
            let out = p.call(&rt, scope, Call::Command(input)).await.unwrap();
            if i >= 50 {
                lat.push(t.elapsed());
            }
            assert!(
                matches!(out, Output::Response(Ok(_))),
                "{lang}: the call failed"
            );
        }
        let s = stats(
            &format!("poll_instantiate_and_call_{lang}"),
            lat,
            started.elapsed(),
        );
        println!(
            "{}",
            json!({"bench": format!("poll_component_{lang}"), "bytes": size, "compile_ms": compile.as_secs_f64() * 1e3})
        );
        results.push((lang, s));
    }
    let rust = results[0].1.clone();
    for (lang, s) in &results[1..] {
        support::ratio(&format!("poll_{lang}_vs_rust"), s, &rust);
    }
}
