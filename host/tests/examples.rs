//! The example plugins end to end: signed interactions against the stand-in.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::{Value, json};

const OTHER: &str = "700000000000000002";

fn counts(body: &Value) -> Vec<String> {
    body["data"]["embeds"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            f["value"]
                .as_str()
                .unwrap()
                .rsplit(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Builds an example project with `kdhost plugin build` and returns the component.
fn build_example(dir: &str, wasm: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(dir);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["plugin", "build"])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kdhost plugin build {dir} failed (the README's test command installs the toolchains):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    root.join(wasm)
}

/// `/poll`, votes from two people (one changes their mind), a refused and an accepted close.
async fn exercise_poll(file: &'static str, component: PathBuf) {
    let host = Host::start(Setup {
        plugin_files: vec![(file, component)],
        plugins_json: Some(json!({"plugins": {"poll": {"grants": ["kv"]}}}).to_string()),
        ..Default::default()
    })
    .await;
    assert!(host.load_failures.is_empty(), "{:?}", host.load_failures);
    let (status, body) = host
        .command(
            "poll",
            json!([{"name": "question", "type": 3, "value": "Lunch?"}, {"name": "options", "type": 3, "value": "Pizza, Sushi, Salad"}]),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["embeds"][0]["title"], "Lunch?");
    let ids = button_ids(&body);
    assert_eq!(ids.len(), 4, "three options and Close: {ids:?}");
    let press = |id: &str, user: &str| {
        let p = host.standin.button(id, GUILD, user);
        let url = host.url.clone();
        let standin = host.standin.clone();
        async move { standin.send_interaction(&url, &p).await.unwrap().1 }
    };
    let after = press(&ids[0], USER).await;
    assert_eq!(after["type"], 7, "the poll message updates: {after}");
    assert_eq!(counts(&after), ["1", "0", "0"]);
    press(&ids[1], OTHER).await;
    let after = press(&ids[1], USER).await; // USER moves to Sushi
    assert_eq!(counts(&after), ["0", "2", "0"]);
    assert!(
        after["data"]["embeds"][0]["footer"]
            .to_string()
            .contains("2 votes")
    );

    // A plugin that throws (a forged control): an ephemeral error naming the plugin.
    let forged = ids[0].rsplit_once(':').unwrap().0.to_string() + ":not-a-number";
    let thrown = press(&forged, USER).await;
    assert!(is_ephemeral(&thrown), "{thrown}");
    assert!(text_of(&thrown).contains("`poll`"), "{thrown}");
    let refused = press(&ids[3], OTHER).await;
    assert!(
        text_of(&refused).contains("Only the poll's author"),
        "{refused}"
    );
    let closed = press(&ids[3], USER).await;
    assert!(
        closed["data"]["embeds"][0]["footer"]
            .to_string()
            .contains("closed")
    );
    assert!(
        button_ids(&closed).is_empty(),
        "no buttons on a closed poll"
    );
    let late = press(&ids[0], OTHER).await;
    assert!(text_of(&late).contains("closed"), "{late}");

    let (_, bad) = host
        .command(
            "poll",
            json!([{"name": "question", "type": 3, "value": "?"}, {"name": "options", "type": 3, "value": "only one"}]),
        )
        .await;
    assert!(
        is_ephemeral(&bad) && text_of(&bad).contains("2 to 10 options"),
        "{bad}"
    );
    host.stop().await;
}

#[tokio::test]
async fn rust_poll() {
    exercise_poll("poll.wasm", guest("kd_plugin_rust_poll")).await;
}

#[tokio::test]
async fn js_poll() {
    exercise_poll("poll.wasm", build_example("examples/js-poll", "poll.wasm")).await;
}

#[tokio::test]
async fn python_poll() {
    exercise_poll(
        "poll.wasm",
        build_example("examples/python-poll", "poll.wasm"),
    )
    .await;
}
