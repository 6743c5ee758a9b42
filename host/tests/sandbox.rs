//! Hostile guests: each one's call ends with a clear ephemeral error, within its budget,
//! while other plugins keep answering.

mod common;

use common::*;
use serde_json::json;

fn setup() -> Setup {
    Setup {
        plugins: vec![
            ("hostile.wasm", "kd_fixture_hostile"),
            ("hello.wasm", "kd_plugin_rust_hello"),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn each_hostile_call_ends_with_a_clear_error_and_the_host_keeps_serving() {
    let host = Host::start(setup()).await;
    let cases = [
        ("spin", "used up its CPU budget of 300 ms"),
        ("hog", "exceeded its memory limit of 16 MiB"),
        // The guest's shadow stack in linear memory runs out first: a memory trap.
        ("recurse", "crashed: wasm trap"),
        ("panic", "panicked"),
        (
            "huge",
            "an answer Discord would reject: content is 5000 characters (Discord allows 2000)",
        ),
        (
            "sneak",
            "denied: the `http` capability is not granted to plugin `hostile`",
        ),
    ];
    for (cmd, expected) in cases {
        let (status, body) = host.command(cmd, json!([])).await;
        assert_eq!(status, 200, "/{cmd}: {body}");
        assert!(is_ephemeral(&body), "/{cmd}: {body}");
        let text = text_of(&body);
        assert!(
            text.contains(expected),
            "/{cmd}: expected `{expected}` in `{text}`"
        );
        if cmd != "sneak" {
            assert!(
                text.contains("`hostile`"),
                "/{cmd}: the error must name the plugin: {text}"
            );
        }
    }
    assert_eq!(host.command_text("fine").await, "fine");
    // Log flooding is cut at 100 lines per call; the call itself succeeds.
    assert_eq!(host.command_text("chatty").await, "logged");
    let metrics = kdhost::telemetry::render();
    for m in [
        "kd_plugin_deadline_kills_total{plugin=\"hostile\"}",
        "kd_plugin_memory_kills_total{plugin=\"hostile\"}",
        "kd_plugin_traps_total{plugin=\"hostile\"}",
        "kd_capability_denied_total{capability=\"http\",plugin=\"hostile\"}",
        "kd_plugin_log_lines_dropped_total{plugin=\"hostile\"} 900",
    ] {
        assert!(metrics.contains(m), "missing {m}");
    }
    host.stop().await;
}

#[tokio::test]
async fn other_plugins_answer_while_a_guest_spins() {
    let host = Host::start(setup()).await;
    let spinners: Vec<_> = (0..4)
        .map(|_| {
            let p = host.standin.command("spin", json!([]), GUILD, USER, &[]);
            let (s, url) = (host.standin.clone(), host.url.clone());
            tokio::spawn(async move { s.send_interaction(&url, &p).await.unwrap() })
        })
        .collect();
    // While four guests burn their CPU budget, hello still answers with its normal reply.
    for _ in 0..5 {
        let (status, body) = host.command("hello", json!([])).await;
        assert_eq!(status, 200);
        assert_eq!(body["data"]["embeds"][0]["title"], "Hello!");
    }
    for s in spinners {
        let (_, body) = s.await.unwrap();
        assert!(text_of(&body).contains("CPU budget"), "{body}");
    }
    host.stop().await;
}

#[tokio::test]
async fn slow_guest_is_deferred_and_its_answer_arrives_as_a_follow_up() {
    let host = Host::start(setup()).await;
    let p = host.standin.command("slow", json!([]), GUILD, USER, &[]);
    let token = p["token"].as_str().unwrap().to_string();
    let (status, body) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"type": 5}),
        "the host must defer a guest that runs past 2.5 s"
    );
    let edit = host
        .standin
        .wait_for(HANG, |r| {
            r.method == "PATCH" && r.path.ends_with(&format!("{token}/messages/@original"))
        })
        .await
        .expect("the deferred answer reaches Discord as an edit of the original response");
    assert_eq!(edit.status, 200);
    assert_eq!(edit.body["content"], "slow answer");
    assert_eq!(
        host.standin.interaction(&token).unwrap().original.unwrap()["content"],
        "slow answer"
    );
    host.stop().await;
}

#[tokio::test]
async fn refused_components_are_reported_with_file_and_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let plugins = tmp.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::write(plugins.join("garbage.wasm"), b"definitely not wasm").unwrap();
    std::fs::write(plugins.join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let host = Host::start(Setup {
        plugins: vec![
            ("liar.wasm", "kd_fixture_liar"),
            ("clash.wasm", "kd_fixture_clash"),
        ],
        dir: Some(tmp.path().to_path_buf()),
        ..Default::default()
    })
    .await;
    let reason = |file: &str| host.refusal(file);
    assert!(reason("liar.wasm").contains("imports capabilities its manifest does not request: kv"));
    assert!(reason("clash.wasm").contains("command /help is already provided by plugin `core`"));
    assert!(reason("garbage.wasm").contains("not a WebAssembly component"));
    assert!(reason("core-module.wasm").contains("core WebAssembly module, not a component"));
    assert!(host.command_text("help").await.contains("Commands"));
    host.stop().await;
}

#[tokio::test]
async fn invalid_manifests_and_future_contracts_are_refused_at_load() {
    let host = Host::start(Setup {
        plugins: vec![
            ("bad.wasm", "kd_fixture_bad_manifest"),
            ("future.wasm", "kd_fixture_future_contract"),
        ],
        ..Default::default()
    })
    .await;
    let reason = |file: &str| host.refusal(file);
    assert!(
        reason("bad.wasm")
            .contains("invalid manifest: command `toomany`: 26 options (Discord allows 25)"),
        "{:?}",
        host.load_failures
    );
    assert!(
        reason("future.wasm")
            .contains("built for contract kaltura-discord:plugin@0.2.0, a different major version"),
        "{:?}",
        host.load_failures
    );
    host.stop().await;
}

#[tokio::test]
async fn a_folder_plugin_overrides_the_built_in_and_removing_it_restores_the_built_in() {
    let host = Host::start(Setup {
        plugins: vec![("core.wasm", "kd_fixture_core_override")],
        ..Default::default()
    })
    .await;
    assert_eq!(host.command_text("help").await, "overridden help");
    std::fs::remove_file(host.dir.join("plugins/core.wasm")).unwrap();
    eventually("the built-in core to come back", || {
        let set = host.app_registry.snapshot();
        (set.get("core")?.manifest.version != "9.9.9").then_some(())
    })
    .await;
    assert!(host.command_text("help").await.contains("Commands"));
    host.stop().await;
}
