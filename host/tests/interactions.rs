//! Signed interactions over real HTTP on loopback, against plugins built from this repo.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn ping_gets_pong_and_help_lists_commands_with_versions() {
    let host = Host::start(Setup {
        plugins: vec![("hello.wasm", "kd_plugin_rust_hello")],
        ..Default::default()
    })
    .await;
    let ping = json!({"id": "1", "application_id": host.standin.application_id(), "type": 1, "token": "t", "version": 1});
    assert_eq!(
        host.standin
            .send_interaction(&host.url, &ping)
            .await
            .unwrap(),
        (200, json!({"type": 1}))
    );
    // [harden] low: the same signed interaction sent again (a replay within the signature's
    // window) is refused, not run twice.
    let p = host.standin.command("help", json!([]), GUILD, USER, &[]);
    assert_eq!(
        host.standin
            .send_interaction(&host.url, &p)
            .await
            .unwrap()
            .0,
        200
    );
    let (status, body) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("replayed")),
        "{body}"
    );

    let (status, body) = host.command("help", json!([])).await;
    assert_eq!(status, 200);
    assert_eq!(body["type"], 4);
    assert!(is_ephemeral(&body));
    let fields = body["data"]["embeds"][0]["fields"].as_array().unwrap();
    let names: Vec<&str> = fields.iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec![
            "core v0.1.0",
            "hello v0.1.0",
            "kaltura-meetings v0.1.0",
            "kaltura-videos v0.1.0"
        ]
    );
    assert!(
        fields[1]["value"]
            .as_str()
            .unwrap()
            .contains("`/hello` — Greet someone")
    );
    host.stop().await;
}

#[tokio::test]
async fn hello_command_and_its_button_round_trip() {
    let host = Host::start(Setup {
        plugins: vec![("hello.wasm", "kd_plugin_rust_hello")],
        ..Default::default()
    })
    .await;
    let (_, body) = host
        .command("hello", json!([{"name": "who", "type": 6, "value": "42"}]))
        .await;
    assert_eq!(
        body["data"]["embeds"][0]["description"],
        "Hi <@42>, welcome."
    );
    let button = &body["data"]["components"][0]["components"][0];
    assert_eq!(button["custom_id"], "hello:wave");
    assert_eq!(
        body["data"]["allowed_mentions"],
        json!({"parse": ["users"]})
    );

    let press = host.standin.button("hello:wave", GUILD, USER);
    let (status, body) = host
        .standin
        .send_interaction(&host.url, &press)
        .await
        .unwrap();
    assert_eq!(status, 200);
    assert_eq!(body["data"]["content"], format!("<@{USER}> waves back 👋"));
    host.stop().await;
}

#[tokio::test]
async fn bad_signatures_are_refused_and_nothing_is_dispatched() {
    // The witness: `caps` counts its calls in kv, so a dispatched request would show.
    let grants = json!({"plugins": {"caps": {"grants": ["kv", "discord"]}}}).to_string();
    let host = Host::start(Setup {
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(grants),
        ..Default::default()
    })
    .await;
    let payload = host.standin.command("count", json!([]), GUILD, USER, &[]);
    let id = payload["id"].as_str().unwrap().to_string();
    let body = serde_json::to_vec(&payload).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let good = host.standin.signer.sign(&now.to_string(), &body);
    let stale_ts = (now - 3600).to_string();
    let stale = host.standin.signer.sign(&stale_ts, &body);
    let other = testkit::signing::InteractionSigner::random().sign(&now.to_string(), &body);
    let cases: Vec<(&str, String, String)> = vec![
        ("wrong key", now.to_string(), other),
        ("stale", stale_ts, stale),
        ("malformed", now.to_string(), "not-hex".into()),
        ("empty", String::new(), String::new()),
        ("tampered timestamp", (now + 1).to_string(), good.clone()),
    ];
    for (what, ts, sig) in cases {
        let (status, reply) = host
            .standin
            .send_signed(&host.url, body.clone(), &ts, &sig, &payload)
            .await
            .unwrap();
        assert_eq!(status, 401, "{what}: {reply}");
        assert_eq!(reply["error"]["code"], "bad_signature", "{what}");
    }
    // No headers at all.
    let r = reqwest::Client::new()
        .post(&host.url)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(
        host.shared.tokens.get(&id, "caps").await.is_none(),
        "a refused request reached the dispatcher"
    );
    assert_eq!(
        host.stores.kv.get("caps", GUILD, "count").await.unwrap(),
        None,
        "a refused request ran the guest"
    );
    // The same request, correctly signed, does run: the witness works.
    let (status, reply) = host
        .standin
        .send_signed(&host.url, body, &now.to_string(), &good, &payload)
        .await
        .unwrap();
    assert_eq!((status, text_of(&reply).as_str()), (200, "count=1"));
    assert!(host.shared.tokens.get(&id, "caps").await.is_some());
    host.stop().await;
}

#[tokio::test]
async fn malformed_and_oversized_bodies() {
    let host = Host::start(Setup::default()).await;
    let send_raw = |body: Vec<u8>| {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            .to_string();
        let sig = host.standin.signer.sign(&ts, &body);
        (body, ts, sig)
    };
    let (b, ts, sig) = send_raw(b"this is not json".to_vec());
    let (status, reply) = host
        .standin
        .send_signed(&host.url, b, &ts, &sig, &Value::Null)
        .await
        .unwrap();
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"]["code"], "bad_body");

    let (b, ts, sig) = send_raw(vec![b' '; 2 << 20]);
    let (status, _) = host
        .standin
        .send_signed(&host.url, b, &ts, &sig, &Value::Null)
        .await
        .unwrap();
    assert_eq!(status, 413);

    // Unknown interaction type and unknown command: clear ephemeral replies.
    let mut p = host.standin.command("help", json!([]), GUILD, USER, &[]);
    p["type"] = json!(42);
    let (status, reply) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(status, 200);
    assert!(is_ephemeral(&reply));
    assert!(text_of(&reply).contains("type 42"), "{reply}");
    let (_, reply) = host.command("nope", json!([])).await;
    assert!(is_ephemeral(&reply));
    assert!(
        text_of(&reply).contains("/nope is not available"),
        "{reply}"
    );
    // The host keeps serving.
    assert!(host.command_text("help").await.contains("Commands"));
    host.stop().await;
}

#[tokio::test]
async fn guild_policy_and_rate_limits_are_enforced_before_the_guest_runs() {
    let grants = json!({
        "rate_limits": {"per_user_per_minute": 3},
        "plugins": {"core": {"grants": ["host"]}}
    });
    let host = Host::start(Setup {
        plugins: vec![("hello.wasm", "kd_plugin_rust_hello")],
        plugins_json: Some(grants.to_string()),
        guild_configs: vec![(GUILD.into(), json!({"plugins": {"hello": {"enabled": false}}, "commands": {"about": {"allowed_roles": ["999"]}}}))],
        ..Default::default()
    })
    .await;
    let text = host.command_text("hello").await;
    assert!(
        text.contains("`hello` plugin is disabled on this server"),
        "{text}"
    );
    let text = host.command_text("about").await;
    assert!(text.contains("Your roles may not use /about"), "{text}");
    // Refused calls do not use up the quota: three /help pass, the fourth is limited.
    for _ in 0..3 {
        assert!(host.command_text("help").await.contains("Commands"));
    }
    let text = host.command_text("help").await;
    assert!(text.contains("going too fast"), "{text}");
    // Each refusal is counted by its reason.
    let metrics = host.metrics().await;
    for reason in ["plugin_disabled", "command_roles", "user_rate"] {
        let line = format!("kd_policy_denials_total{{reason=\"{reason}\"}}");
        assert!(metrics.contains(&line), "{reason} not counted:\n{metrics}");
    }
    host.stop().await;
}

#[tokio::test]
async fn healthz_readyz_and_metrics() {
    let host = Host::start(Setup::default()).await;
    host.command_text("help").await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(format!("{}/healthz", host.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let ready: Value = c
        .get(format!("{}/readyz", host.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["backends"]["database"]["kind"], "sqlite");
    assert_eq!(ready["backends"]["database"]["reachable"], true);
    let metrics = host.metrics().await;
    assert!(
        metrics.contains(r#"kd_plugin_calls_total{entry="command",outcome="ok",plugin="core"}"#),
        "{metrics}"
    );
    assert!(metrics.contains("kd_http_requests_total"));
    // [harden] 10: not for strangers: without the operator's token, 401; labels carry
    // route templates (no guild or channel id in a series).
    let r = c
        .get(format!("{}/metrics", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let ids = regex::Regex::new(r#"="[^"]*\d{15,}[^"]*""#).unwrap();
    assert!(
        !ids.is_match(&metrics),
        "an id in a label: {:?}",
        ids.find(&metrics)
    );
    host.stop().await;
}

#[tokio::test]
async fn the_gateway_transport_feeds_the_same_dispatcher_and_defers_too() {
    let mut host = Host::start(Setup {
        plugins: vec![
            ("hello.wasm", "kd_plugin_rust_hello"),
            ("hostile.wasm", "kd_fixture_hostile"),
        ],
        ..Default::default()
    })
    .await;
    host.start_gateway();
    host.gateway_connected().await;
    assert_eq!(
        host.standin.gateway_sessions(),
        1,
        "the host's gateway did not identify"
    );

    let p = host.standin.command("hello", json!([]), GUILD, USER, &[]);
    let token = p["token"].as_str().unwrap().to_string();
    host.standin.send_gateway_interaction(&p);
    let cb = host
        .standin
        .wait_for(HANG, |r| r.path.ends_with(&format!("{token}/callback")))
        .await
        .expect("the gateway interaction is answered through the callback route");
    assert_eq!(cb.status, 204);
    assert_eq!(cb.body["type"], 4);
    assert_eq!(cb.body["data"]["embeds"][0]["title"], "Hello!");

    // Auto-defer on the gateway transport: type 5 callback, then the edit.
    let p = host.standin.command("slow", json!([]), GUILD, USER, &[]);
    let token = p["token"].as_str().unwrap().to_string();
    host.standin.send_gateway_interaction(&p);
    let edit = host
        .standin
        .wait_for(HANG, |r| r.method == "PATCH" && r.path.contains(&token))
        .await
        .expect("deferred answer delivered");
    assert_eq!(edit.body["content"], "slow answer");
    let state = host.standin.interaction(&token).unwrap();
    assert_eq!(state.acked, Some(5));
    host.stop().await;
}
