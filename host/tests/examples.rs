//! The example plugins end to end: signed interactions against the stand-in; the polls
//! keep each person's vote in their own kv scope, so a person's export shows it, deleting
//! their data (through Discord or the API) removes it, and the plugins hear
//! `privacy.erase` (they forget the person as a poll's author).

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
    let poll_id = ids[0].split(':').nth(2).unwrap().to_string();
    votes_are_personal_data(&host, &poll_id).await;
    host.stop().await;
}

/// The file a `/kaltura-privacy export` sent as a follow-up (the host defers, then posts
/// the JSON as an attachment), downloaded from the stand-in's CDN.
async fn exported_file(host: &Host, token: &str) -> Value {
    let url = eventually("the export's follow-up with its file", || {
        host.standin.requests().into_iter().find_map(|r| {
            (r.method == "POST" && r.path.ends_with(token))
                .then(|| r.body["attachments"][0]["url"].as_str().map(String::from))
                .flatten()
        })
    })
    .await;
    reqwest::get(url).await.unwrap().json().await.unwrap()
}

fn votes_in(export: &Value) -> Vec<(String, String, String)> {
    export["plugin_data"]
        .as_array()
        .unwrap_or_else(|| panic!("no plugin_data: {export}"))
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("plugin"), s("key"), s("value"))
        })
        .collect()
}

async fn votes_are_personal_data(host: &Host, poll_id: &str) {
    let vote_key = format!("poll:{poll_id}:vote");
    // Through Discord: an ephemeral deferral, then the file.
    let p = host.standin.command(
        "kaltura-privacy",
        json!([{"type": 1, "name": "export", "options": []}]),
        GUILD,
        USER,
        &[],
    );
    let token = p["token"].as_str().unwrap().to_string();
    let (status, ack) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!((status, ack["type"].as_u64()), (200, Some(5)), "{ack}");
    assert_eq!(ack["data"]["flags"], 64, "only the person sees it: {ack}");
    let export = exported_file(host, &token).await;
    assert_eq!(export["user"], USER);
    assert_eq!(
        votes_in(&export),
        [("poll".to_string(), vote_key.clone(), "1".to_string())],
        "{export}"
    );

    // Through the API, for the other voter.
    host.standin.add_oauth_user("oauth-other", OTHER, "Bob");
    let http = reqwest::Client::new();
    let bearer = host.api_token("oauth-other").await;
    let me = async |method: reqwest::Method| -> Value {
        let url = format!("{}/api/v1/me/data", host.base);
        let r = http.request(method, url).bearer_auth(&bearer).send().await;
        r.unwrap().json().await.unwrap()
    };
    let theirs = me(reqwest::Method::GET).await;
    assert_eq!(votes_in(&theirs)[0].1, vote_key, "{theirs}");

    // USER deletes through Discord: their vote goes, the counts stay, and the plugin hears
    // `privacy.erase` in the server where they had data and forgets them as the author.
    let (_, done) = host
        .command(
            "kaltura-privacy",
            json!([{"type": 1, "name": "delete", "options": [{"name": "confirm", "type": 5, "value": true}]}]),
        )
        .await;
    assert!(is_ephemeral(&done), "{done}");
    assert!(text_of(&done).contains("Deleted: 1 value(s)"), "{done}");
    let kv = &host.stores.kv;
    let poll_key = format!("poll:{poll_id}");
    eventually_async("the plugin forgetting the erased author", || async {
        let raw = kv.get("poll", GUILD, &poll_key).await.unwrap()?;
        let poll: Value = serde_json::from_slice(&raw).unwrap();
        poll["owner"].is_null().then_some(())
    })
    .await;
    assert!(kv.user_rows(USER, None).await.unwrap().is_empty());
    let count = kv
        .get("poll", GUILD, &format!("poll:{poll_id}:count:1"))
        .await
        .unwrap();
    assert_eq!(count.as_deref(), Some(&b"2"[..]), "the tally stays");

    // OTHER deletes through the API; their export is empty after.
    let erased = me(reqwest::Method::DELETE).await;
    assert_eq!(erased["plugin_values"], 1, "{erased}");
    assert_eq!(erased["plugins_told"], true, "{erased}");
    let after = me(reqwest::Method::GET).await;
    assert!(votes_in(&after).is_empty(), "{after}");
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
