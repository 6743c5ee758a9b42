//! `kdhost demo`: the host and the Discord stand-in on one machine, a few real signed
//! interactions with their answers printed, then serving on for a person to try more.
//! Also `kdhost standin discord`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};
use testkit::{DiscordStandIn, StandInOptions};

use crate::app::App;
use crate::config::settings::{DiscordSettings, ServeOptions};
use crate::plugins::builtin;
use crate::telemetry::LogFormat;

/// Fixed seed: the demo's public key is the same every run.
const DEMO_SEED: [u8; 32] = *b"kaltura-discord demo signing key";

pub async fn standin(listen: SocketAddr, target: Option<String>) -> anyhow::Result<ExitCode> {
    let s = DiscordStandIn::start(
        listen,
        StandInOptions {
            seed: Some(DEMO_SEED),
            ..Default::default()
        },
    )
    .await?;
    if let Some(t) = &target {
        s.set_target(t);
    }
    println!("Discord stand-in on {}", s.base_url);
    println!("  DISCORD_API_BASE={}", s.base_url);
    println!("  DISCORD_PUBLIC_KEY={}", s.public_key_hex());
    println!("  DISCORD_APPLICATION_ID={}", s.application_id());
    println!("  DISCORD_BOT_TOKEN=standin-bot-token");
    println!(
        "  requests it received: GET {}/_testkit/requests",
        s.base_url
    );
    match &target {
        Some(t) => println!(
            "  send a command to {t}: curl -s -XPOST {}/_testkit/send -d '{{\"command\":\"help\"}}'",
            s.base_url
        ),
        None => println!(
            "  (start with --target http://HOST/interactions to send commands with POST /_testkit/send)"
        ),
    }
    crate::serve::shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

fn summarize(v: &Value) -> String {
    let data = &v["data"];
    let mut parts = vec![format!("type {}", v["type"])];
    if let Some(c) = data["content"].as_str() {
        parts.push(format!("content {c:?}"));
    }
    for e in data["embeds"].as_array().into_iter().flatten() {
        parts.push(format!("embed {:?}", e["title"].as_str().unwrap_or("")));
        for f in e["fields"].as_array().into_iter().flatten() {
            parts.push(format!(
                "  {}: {}",
                f["name"].as_str().unwrap_or(""),
                f["value"].as_str().unwrap_or("").replace('\n', " | ")
            ));
        }
    }
    for row in data["components"].as_array().into_iter().flatten() {
        for c in row["components"].as_array().into_iter().flatten() {
            parts.push(format!(
                "button {:?} → {}",
                c["label"].as_str().unwrap_or(""),
                c["custom_id"].as_str().unwrap_or("")
            ));
        }
    }
    parts.join("\n      ")
}

pub async fn run(listen: SocketAddr, once: bool) -> anyhow::Result<ExitCode> {
    let standin = DiscordStandIn::start(
        "127.0.0.1:0".parse()?,
        StandInOptions {
            seed: Some(DEMO_SEED),
            ..Default::default()
        },
    )
    .await?;
    let root = PathBuf::from("data/demo");
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins)?;
    // The example plugin joins the built-in ones, from the folder (so it hot-reloads).
    let hello = PathBuf::from(builtin::GUEST_WASM_DIR).join("kd_plugin_rust_hello.wasm");
    if hello.exists() {
        std::fs::copy(&hello, plugins.join("hello.wasm"))?;
    }
    let opts = ServeOptions {
        listen,
        config: PathBuf::from("config"),
        plugins: plugins.clone(),
        data: root.clone(),
        log_format: LogFormat::Text,
    };
    let discord = DiscordSettings {
        public_key: Some(standin.public_key_hex()),
        application_id: Some(standin.application_id().to_string()),
        bot_token: Some(crate::config::secret::Secret::new("standin-bot-token")),
        api_base: standin.base_url.clone(),
        dev_guild: None,
        activities: false,
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    let app = App::build(&opts, discord).await?;
    crate::serve::print_report(&app, &addr.to_string());
    app.start_gateway();
    let url = format!("http://{addr}/interactions");
    standin.set_target(&url);
    let server = tokio::spawn(app.serve(listener, crate::serve::shutdown_signal()));

    println!(
        "\n== kdhost demo: Discord stand-in at {}, host at http://{addr}\n",
        standin.base_url
    );
    let guild = "600000000000000001";
    let user = "700000000000000001";
    let script: Vec<(&str, Value)> = vec![
        (
            "/help",
            standin.command("help", json!([]), guild, user, &[]),
        ),
        (
            "/about",
            standin.command("about", json!([]), guild, user, &[]),
        ),
        (
            "/hello who:@you",
            standin.command(
                "hello",
                json!([{"name": "who", "type": 6, "value": user}]),
                guild,
                user,
                &[],
            ),
        ),
        (
            "[Wave back] button",
            standin.button("hello:wave", guild, user),
        ),
        (
            "/nope (unknown)",
            standin.command("nope", json!([]), guild, user, &[]),
        ),
    ];
    for (label, payload) in script {
        let (status, body) = standin.send_interaction(&url, &payload).await?;
        println!("→ {label}\n  ← HTTP {status}: {}\n", summarize(&body));
    }
    // The command sync runs in the background: show what Discord received.
    let synced = standin
        .wait_for(Duration::from_secs(3), |r| r.method == "PUT")
        .await;
    if synced.is_none() {
        println!("Commands unchanged since the last run: nothing was sent to Discord.");
    }
    for r in standin.requests() {
        let n = r.body.as_array().map(|a| a.len()).unwrap_or(0);
        println!(
            "Discord stand-in received {} {} → {} ({n} commands)",
            r.method, r.path, r.status
        );
    }
    if once {
        return Ok(ExitCode::SUCCESS);
    }
    println!("\nServing. Try more:");
    println!(
        "  curl -s -XPOST {}/_testkit/send -d '{{\"command\":\"about\"}}'",
        standin.base_url
    );
    println!("  curl -s http://{addr}/metrics | grep kd_plugin_calls");
    println!(
        "  drop a .wasm into {} and it loads at once. Ctrl-C stops.",
        plugins.display()
    );
    server.await??;
    Ok(ExitCode::SUCCESS)
}
