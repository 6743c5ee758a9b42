//! Every capability through the real sandbox: granted, narrowed and denied.

mod common;

use common::*;
use serde_json::json;

fn grants(http_host: &str) -> String {
    grants_with(http_host, json!({}))
}

/// The caps fixture's grants, with more `http` settings for it (`http_ports`, ...).
fn grants_with(http_host: &str, http: serde_json::Value) -> String {
    let mut caps = json!({"grants": ["kv", "http", "discord", "config", "kaltura"], "http_hosts": [http_host], "kv_quota_bytes": 64});
    caps.as_object_mut()
        .unwrap()
        .extend(http.as_object().unwrap().clone());
    json!({
        "limits": {"http_response_max_bytes": 1000},
        "plugins": {"core": {"grants": ["host"]}, "caps": caps}
    })
    .to_string()
}

fn port_of(base: &str) -> u16 {
    base.rsplit(':').next().unwrap().parse().unwrap()
}

async fn serve_bytes(n: usize) -> String {
    let app = axum::Router::new()
        .route("/small", axum::routing::get(|| async { "hello" }))
        .route(
            "/big",
            axum::routing::get(move || async move { "x".repeat(n) }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

fn opt(name: &str, value: &str) -> serde_json::Value {
    json!([{"name": name, "type": 3, "value": value}])
}

#[tokio::test]
async fn kv_is_per_guild_and_quota_bound() {
    let host = Host::start(Setup {
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(grants("x")),
        ..Default::default()
    })
    .await;
    assert_eq!(host.command_text("count").await, "count=1");
    assert_eq!(host.command_text("count").await, "count=2");
    let other = host
        .standin
        .command("count", json!([]), "600000000000000002", USER, &[]);
    let (_, body) = host
        .standin
        .send_interaction(&host.url, &other)
        .await
        .unwrap();
    assert_eq!(text_of(&body), "count=1", "another guild has its own kv");
    let v = host
        .stores
        .kv
        .get("caps", GUILD, "count")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u64::from_le_bytes(v.try_into().unwrap()), 2);
    // 64-byte quota: fill it from the host side, then the guest's write is refused, typed.
    host.stores
        .kv
        .set("caps", GUILD, "filler", &[0; 50], 1 << 20)
        .await
        .unwrap();
    let text = host.command_text("count").await;
    assert!(text.contains("QuotaExceeded"), "{text}");
    host.stop().await;
}

#[tokio::test]
async fn http_only_to_granted_hosts_with_a_size_cap() {
    let base = serve_bytes(5000).await;
    // A local service: the operator grants its address, its port and private addresses.
    let host = Host::start(Setup {
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(grants_with(
            "127.0.0.1",
            json!({"http_ports": [port_of(&base)], "http_private": true}),
        )),
        ..Default::default()
    })
    .await;
    let (_, body) = host
        .command("fetch", opt("url", &format!("{base}/small")))
        .await;
    assert_eq!(text_of(&body), "status=200 bytes=5");
    let (_, body) = host
        .command("fetch", opt("url", &format!("{base}/big")))
        .await;
    assert!(text_of(&body).contains("over 1000 bytes"), "{body}");
    let (_, body) = host
        .command("fetch", opt("url", &base.replace("127.0.0.1", "localhost")))
        .await;
    assert!(
        text_of(&body).contains("Denied(\"host `localhost` is not granted"),
        "{body}"
    );
    let (_, body) = host
        .command("fetch", opt("url", "file:///etc/passwd"))
        .await;
    assert!(text_of(&body).contains("only http and https"), "{body}");
    host.stop().await;
}

#[tokio::test]
async fn discord_config_kaltura_and_follow_ups() {
    let host = Host::start(Setup {
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(grants("x")),
        guild_configs: vec![(
            GUILD.into(),
            json!({"plugins": {"caps": {"settings": {"greeting": {"text": "hi"}}}}}),
        )],
        ..Default::default()
    })
    .await;
    host.standin.set_channels(
        GUILD,
        &[
            ("200000000000000009", "general"),
            ("200000000000000010", "announcements"),
        ],
    );
    host.standin
        .set_channels("600000000000000002", &[("200000000000000011", "elsewhere")]);
    // discord.send-message goes to the stand-in with the bot token.
    let (_, body) = host
        .command("announce", opt("channel", "200000000000000009"))
        .await;
    assert!(text_of(&body).starts_with("sent "), "{body}");
    let sent = host
        .standin
        .wait_for(HANG, |r| {
            r.path.ends_with("/channels/200000000000000009/messages")
        })
        .await
        .unwrap();
    assert!(sent.authorized);
    assert_eq!(sent.body["content"], "announcement");
    // Channel messages go through the outbox: no pings unless the guild allows them.
    assert_eq!(
        sent.body["allowed_mentions"],
        json!({"parse": [], "roles": []})
    );
    assert!(sent.body["nonce"].is_string() && sent.body["enforce_nonce"] == true);
    let (_, body) = host.command("announce", opt("channel", "general")).await;
    assert!(text_of(&body).contains("is not a Discord id"), "{body}");
    // Another guild's channel (the bot is in both): refused, typed, nothing sent.
    let (_, body) = host
        .command("announce", opt("channel", "200000000000000011"))
        .await;
    assert!(
        text_of(&body).contains("Denied(\"channel 200000000000000011 is not in this guild"),
        "{body}"
    );
    assert!(
        host.standin
            .channel_messages("200000000000000011")
            .is_empty(),
        "nothing reached the other guild"
    );
    // A guild may narrow the plugin to some channels (by id or name).
    host.guilds
        .write_guild(
            &host.dir.join("config"),
            GUILD,
            Some(json!({"plugins": {"caps": {"channels": ["#announcements"], "settings": {"greeting": {"text": "hi"}}}}})),
        )
        .unwrap();
    let (_, body) = host
        .command("announce", opt("channel", "200000000000000009"))
        .await;
    assert!(text_of(&body).contains("only in #announcements"), "{body}");
    let (_, body) = host
        .command("announce", opt("channel", "200000000000000010"))
        .await;
    assert!(text_of(&body).starts_with("sent "), "{body}");

    // config.get reads this plugin's guild settings.
    let (_, body) = host.command("setting", opt("path", "greeting.text")).await;
    assert_eq!(text_of(&body), r#"setting="hi""#);
    let (_, body) = host.command("setting", opt("path", "missing")).await;
    assert_eq!(text_of(&body), "setting=none");

    // Granted kaltura on a host without a Kaltura account: typed `unavailable`, naming
    // what the operator sets.
    let (_, body) = host.command("video", json!([])).await;
    assert!(
        text_of(&body).contains("Unavailable(\"Kaltura is not configured on this host")
            && text_of(&body).contains("KALTURA_PARTNER_ID"),
        "{body}"
    );

    // A plugin that deferred finishes later with a follow-up, by interaction id.
    let p = host.standin.command("later", json!([]), GUILD, USER, &[]);
    let (id, token) = (
        p["id"].as_str().unwrap().to_string(),
        p["token"].as_str().unwrap().to_string(),
    );
    let (_, body) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(body, json!({"type": 5, "data": {"flags": 0}}));
    let press = host
        .standin
        .button(&format!("caps:finish:{id}"), GUILD, USER);
    let (_, body) = host
        .standin
        .send_interaction(&host.url, &press)
        .await
        .unwrap();
    assert_eq!(text_of(&body), "followed up");
    assert_eq!(
        host.standin.interaction(&token).unwrap().followups[0]["content"],
        "finished later"
    );
    // Following up before the first response went out is refused, clearly.
    let (_, body) = host.command("early", json!([])).await;
    assert!(
        text_of(&body).contains("has not been answered yet"),
        "{body}"
    );
    // Another plugin's interaction (or an unknown one) cannot be followed up.
    let press = host.standin.button("caps:finish:123", GUILD, USER);
    let (_, body) = host
        .standin
        .send_interaction(&host.url, &press)
        .await
        .unwrap();
    assert!(
        text_of(&body).contains("was not handled by this plugin"),
        "{body}"
    );
    host.stop().await;
}

#[tokio::test]
async fn capabilities_outside_the_grant_are_denied_not_trapped() {
    let no_grants = json!({"plugins": {"core": {"grants": ["host"]}}}).to_string();
    let host = Host::start(Setup {
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(no_grants),
        ..Default::default()
    })
    .await;
    for (cmd, opts, cap) in [
        ("count", json!([]), "kv"),
        ("fetch", opt("url", "http://127.0.0.1:9/"), "http"),
        ("announce", opt("channel", "1"), "discord"),
        ("setting", opt("path", "x"), "config"),
        ("video", json!([]), "kaltura"),
    ] {
        let (status, body) = host.command(cmd, opts).await;
        assert_eq!(status, 200);
        let text = text_of(&body);
        assert!(
            text.contains(&format!(
                "Denied(\"the `{cap}` capability is not granted to plugin `caps`"
            )),
            "/{cmd}: {text}"
        );
    }
    host.stop().await;
}

async fn fetch(host: &Host, url: String) -> String {
    text_of(&host.command("fetch", opt("url", &url)).await.1)
}

/// [harden] 8: a granted name or address that is not public reaches nothing, ports are 80
/// and 443 unless granted, and a guest cannot set `Host` or the connection's headers.
#[tokio::test]
async fn http_reaches_only_public_addresses_and_granted_ports() {
    let base = serve_bytes(10).await;
    let port = port_of(&base);
    // A granted name that resolves to loopback (DNS can say anything): refused when the
    // connection is made, whatever port is granted.
    let h = Host::start(Setup {
        plugins: vec![("caps.wasm", "kd_fixture_caps")],
        plugins_json: Some(grants_with("localhost", json!({"http_ports": [port]}))),
        ..Default::default()
    })
    .await;
    let said = fetch(&h, format!("http://localhost:{port}/small")).await;
    assert!(said.contains("no public address"), "{said}");
    // A port that is not granted: refused before anything is resolved.
    let said = fetch(&h, "http://localhost:8081/small".into()).await;
    assert!(said.contains("port 8081 is not granted"), "{said}");
    h.stop().await;
    // Addresses written in the URL: the metadata service and loopback.
    for ip in ["169.254.169.254", "127.0.0.1", "[::1]"] {
        let h = Host::start(Setup {
            plugins: vec![("caps.wasm", "kd_fixture_caps")],
            plugins_json: Some(grants_with(ip.trim_matches(['[', ']']), json!({}))),
            ..Default::default()
        })
        .await;
        let said = fetch(&h, format!("http://{ip}/latest/meta-data/")).await;
        assert!(said.contains("is not a public address"), "{ip}: {said}");
        h.stop().await;
    }
}

/// [harden] 9: one plugin cannot take every slot: past its own concurrency limit a person
/// is told at once that it is busy, while other plugins keep answering.
#[tokio::test]
async fn a_plugin_past_its_concurrency_limit_is_busy_and_others_still_answer() {
    // A server that holds its answer until the test lets it go, and says when it is asked.
    let (asked_tx, mut asked_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let app = {
        let release = release.clone();
        axum::Router::new().route(
            "/hold",
            axum::routing::get(move || {
                let (release, asked) = (release.clone(), asked_tx.clone());
                async move {
                    let _ = asked.send(());
                    release.notified().await;
                    "released"
                }
            }),
        )
    };
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let host = std::sync::Arc::new(
        Host::start(Setup {
            plugins: vec![
                ("caps.wasm", "kd_fixture_caps"),
                ("hello.wasm", "kd_plugin_rust_hello"),
            ],
            plugins_json: Some(grants_with(
                "127.0.0.1",
                json!({"http_ports": [port_of(&base)], "http_private": true, "concurrency": 1, "timeout_ms": 60000}),
            )),
            ..Default::default()
        })
        .await,
    );
    // The first call waits inside the plugin (on the held request)...
    let first = {
        let (host, url) = (host.clone(), format!("{base}/hold"));
        tokio::spawn(async move { fetch(&host, url).await })
    };
    asked_rx
        .recv()
        .await
        .expect("the first call reached the server");
    // ...so the second is refused at once, saying why; another plugin answers normally.
    let said = fetch(&host, format!("{base}/hold")).await;
    assert!(said.contains("is busy (1 calls in flight"), "{said}");
    assert!(!host.command_text("hello").await.is_empty());
    release.notify_one();
    let done = first.await.unwrap();
    assert!(done.contains("status=200"), "{done}");
}
