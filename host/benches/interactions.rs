//! Benchmarks named by the [core] issue, printed as JSON (one object per measurement):
//!
//! 1. signed interaction → trivial plugin → response on loopback, concurrency 32, next to a
//!    bare axum handler returning the same JSON in the same run (same client, same signing);
//!    ([people]) a deprecated command (`/poll`, answered with the one-line notice) next to
//!    a current one of the same plugin (`/vote`), same host, alternated;
//! 2. instantiate + call of a trivial plugin, in process;
//! 3. host RSS with 10 plugins loaded;
//! 4. ([scale]) signed interactions at concurrency 32 round-robin over three instances
//!    sharing a private PostgreSQL and Redis (Debian's packages; skipped with a note when
//!    not installed), next to all of them sent to one of those instances. All in this
//!    process on this machine's cores: the ratio is the cost of the shared state, not the
//!    gain of more machines.
//!
//! `cargo bench -p kdhost --bench interactions` (env BENCH_REQUESTS to change the count).

use std::time::{Duration, Instant};

use kdhost::plugins::builtin::GUEST_WASM_DIR;
use kdhost::plugins::caps::Capabilities;
use kdhost::plugins::grants::GrantsConfig;
use kdhost::plugins::{Call, CallScope, Runtime, Source, loader};
use serde_json::json;
use testkit::{DiscordStandIn, StandInOptions};

mod support;
use support::{Signed, drive, post_signed_round_robin, sign_all, stats};

const CONCURRENCY: usize = 32;

/// Sends pre-signed interactions with 32 in flight; returns per-request latencies.
async fn load(url: &str, bodies: Signed, expect: &'static str) -> (Vec<Duration>, Duration) {
    load_over(&[url.to_string()], bodies, expect).await
}

/// [`load`] round-robin over several instances.
async fn load_over(
    urls: &[String],
    bodies: Signed,
    expect: &'static str,
) -> (Vec<Duration>, Duration) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .unwrap();
    drive(
        bodies.len(),
        CONCURRENCY,
        post_signed_round_robin(&client, urls.to_vec(), bodies, expect),
    )
    .await
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let wasm = |name: &str| std::fs::read(format!("{GUEST_WASM_DIR}/{name}.wasm")).unwrap();
    println!(
        "{}",
        json!({"machine": support::machine(), "requests": n, "concurrency": CONCURRENCY})
    );

    // ---------------------------------------------------------------- 2. instantiate + call
    {
        let rt = Runtime::new(Capabilities::offline()).unwrap();
        let grants = GrantsConfig::parse(r#"{"plugins":{"*":{"grants":["log"]}}}"#).unwrap();
        let p = loader::load(
            &rt,
            wasm("kd_fixture_swap_a"),
            Source::Builtin,
            &grants,
            None,
        )
        .await
        .unwrap();
        let standin =
            DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
                .await
                .unwrap();
        let ix: kdhost::discord::model::Interaction =
            serde_json::from_value(standin.command("swap", json!([]), "1", "2", &[])).unwrap();
        let input = ix.command_input().unwrap();
        let mut lat = Vec::with_capacity(n);
        let started = Instant::now();
        for i in 0..n + 1000 {
            let t = Instant::now();
            let out = p
                .call(&rt, CallScope::default(), Call::Command(input.clone()))
                .await
                .unwrap();
            if i >= 1000 {
                lat.push(t.elapsed());
            }
            assert!(matches!(out, kdhost::plugins::Output::Response(Ok(_))));
        }
        stats(
            "instantiate_and_call_trivial_plugin",
            lat,
            started.elapsed(),
        );
    }

    // ---------------------------------------------------------------- part of 1: the signature check alone
    {
        let standin =
            DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
                .await
                .unwrap();
        let v = kdhost::discord::verify::InteractionVerifier::from_hex(&standin.public_key_hex())
            .unwrap();
        let body = serde_json::to_vec(&standin.command("swap", json!([]), "1", "2", &[])).unwrap();
        let sig = standin.signer.sign("1700000000", &body);
        let mut lat = Vec::with_capacity(5000);
        let started = Instant::now();
        for _ in 0..5000 {
            let t = Instant::now();
            v.verify(Some(&sig), Some("1700000000"), &body, 1_700_000_000)
                .unwrap();
            lat.push(t.elapsed());
        }
        stats("ed25519_verify_interaction_body", lat, started.elapsed());
    }

    // ---------------------------------------------------------------- 1. loopback, c=32
    let standin = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    let host = support::start_host(
        &standin,
        &[
            ("swap.wasm", wasm("kd_fixture_swap_a")),
            ("versions.wasm", wasm("kd_fixture_versions")),
        ],
        None,
        Default::default(),
    )
    .await;
    let host_url = host.interactions_url();

    // The bare baseline: the same JSON the plugin path produces, no verification, no guest.
    let canned = {
        let p = standin.command("swap", json!([]), "1", "2", &[]);
        standin.send_interaction(&host_url, &p).await.unwrap().1
    };
    let bare_url = support::bare_interactions(canned).await;

    let sign_all = |count: usize| {
        sign_all(
            &standin,
            (0..count).map(|_| standin.command("swap", json!([]), "1", "2", &[])),
        )
    };
    // Warm up both, then alternate: bare, host, bare, host (the machine is shared and noisy).
    load(&bare_url, sign_all(2000), "version A").await;
    load(&host_url, sign_all(2000), "version A").await;
    let mut results = Vec::new();
    for round in 0..2 {
        let (lat, wall) = load(&bare_url, sign_all(n / 2), "version A").await;
        results.push((
            "bare",
            stats(&format!("bare_axum_same_json_c32_round{round}"), lat, wall),
        ));
        let (lat, wall) = load(&host_url, sign_all(n / 2), "version A").await;
        results.push((
            "host",
            stats(
                &format!("signed_interaction_trivial_plugin_c32_round{round}"),
                lat,
                wall,
            ),
        ));
    }
    let avg = |who: &str, key: &str| {
        let v: Vec<f64> = results
            .iter()
            .filter(|(w, _)| *w == who)
            .map(|(_, r)| r[key].as_f64().unwrap())
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    println!(
        "{}",
        json!({
            "bench": "interaction_vs_bare_ratio",
            "median_ratio": avg("host", "median_us") / avg("bare", "median_us"),
            "p99_ratio": avg("host", "p99_us") / avg("bare", "p99_us"),
            "throughput_ratio": avg("host", "throughput_rps") / avg("bare", "throughput_rps"),
        })
    );

    // ------------------------------------------- 1b. a deprecated command vs a current one
    let asking = |name: &'static str| {
        let standin = &standin;
        move |count: usize| {
            support::sign_all(
                standin,
                (0..count).map(|_| {
                    standin.command(
                        name,
                        json!([{"name": "question", "type": 3, "value": "Lunch?"}]),
                        "1",
                        "2",
                        &[],
                    )
                }),
            )
        }
    };
    let (current, deprecated) = (asking("vote"), asking("poll"));
    load(&host_url, deprecated(500), "is deprecated").await;
    for round in 0..2 {
        let (lat, wall) = load(&host_url, current(n / 2), "/vote asked").await;
        let base = stats(&format!("current_command_c32_round{round}"), lat, wall);
        let (lat, wall) = load(&host_url, deprecated(n / 2), "is deprecated").await;
        let subject = stats(
            &format!("deprecated_command_with_notice_c32_round{round}"),
            lat,
            wall,
        );
        support::ratio(
            &format!("deprecated_vs_current_command_round{round}"),
            &subject,
            &base,
        );
    }

    // ---------------------------------------------------------------- 3. RSS with 10 plugins
    let before = support::rss_kib();
    let rt = Runtime::new(Capabilities::offline()).unwrap();
    let grants = GrantsConfig::default();
    let names = [
        "kd_plugin_core",
        "kd_plugin_rust_hello",
        "kd_fixture_hostile",
        "kd_fixture_swap_a",
        "kd_fixture_swap_b",
    ];
    let mut loaded = Vec::new();
    for i in 0..10 {
        loaded.push(
            loader::load(
                &rt,
                wasm(names[i % names.len()]),
                Source::Builtin,
                &grants,
                None,
            )
            .await
            .unwrap(),
        );
    }
    println!(
        "{}",
        json!({"bench": "rss_with_10_plugins", "plugins": loaded.len(), "process_rss_kib": support::rss_kib(), "added_by_10_plugins_kib": support::rss_kib().saturating_sub(before)})
    );
    drop(loaded);

    // ---------------------------------------------------------------- 4. three instances vs one
    three_instances_vs_one(n, wasm("kd_fixture_swap_a")).await;
}

async fn three_instances_vs_one(n: usize, swap: Vec<u8>) {
    let servers = testkit::servers::PostgresServer::start()
        .and_then(|pg| Ok((testkit::servers::RedisServer::start()?, pg)));
    let (redis, pg) = match servers {
        Ok(s) => s,
        Err(e) => {
            println!(
                "{}",
                json!({"skipped": "three instances", "why": format!("{e:#}")})
            );
            return;
        }
    };
    let database_url = pg.create_database("bench").unwrap();
    let standin = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    let plugins = [("swap.wasm", swap)];
    let mut hosts = Vec::new();
    for _ in 0..3 {
        let files = support::HostFiles {
            plugins: &plugins,
            database_url: Some(database_url.clone()),
            redis_url: Some(redis.url()),
            ..Default::default()
        };
        hosts.push(support::start_host_with(&standin, files, Default::default()).await);
    }
    let urls: Vec<String> = hosts.iter().map(|h| h.interactions_url()).collect();
    let sign = |count: usize| {
        sign_all(
            &standin,
            (0..count).map(|_| standin.command("swap", json!([]), "1", "2", &[])),
        )
    };
    load_over(&urls, sign(2000), "version A").await;
    let (lat, wall) = load_over(&urls[..1], sign(n / 2), "version A").await;
    let one = stats(
        "signed_interaction_c32_one_instance_of_the_cluster",
        lat,
        wall,
    );
    let (lat, wall) = load_over(&urls, sign(n / 2), "version A").await;
    let three = stats(
        "signed_interaction_c32_round_robin_three_instances",
        lat,
        wall,
    );
    support::ratio("three_instances_vs_one", &three, &one);
    drop(hosts);
}
