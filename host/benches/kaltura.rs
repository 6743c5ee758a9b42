//! Benchmarks named by the [kaltura] issue, printed as JSON lines:
//!
//! 1. KS signatures per second (local v2 signing), and the stand-in's validation;
//! 2. meeting creation end to end: signed `/kaltura-start` → host → `kaltura-meetings`
//!    plugin → Kaltura stand-in → reply, at concurrency 1 and 32, next to a bare axum
//!    handler returning the same JSON (same client, same signing) in the same run;
//! 3. `GET /api/v1/videos?q=` at concurrency 32 (zero stand-in latency), next to the
//!    stand-in's own eSearch answering the same searches directly; `/api/v2/videos` with
//!    the same searches, and its second page by cursor next to v1's `page=2`;
//! 4. meeting creation on each backend at concurrency 32: a webinar on virtual events (three
//!    Kaltura calls) and a meeting on rooms (one), next to a meeting on scheduled events, in
//!    the same run.
//!
//! `cargo bench -p kdhost --bench kaltura` (env BENCH_REQUESTS to change the count).

use std::time::{Duration, Instant};

use axum::Json;
use axum::routing::get;
use kdhost::api::auth::{Jwt, SubjectKind};
use kdhost::config::secret::Secret;
use kdhost::config::settings::{ApiSettings, Settings};
use kdhost::kaltura::ks::{KsRequest, SessionType};
use serde_json::{Value, json};
use testkit::{DiscordStandIn, KalturaOptions, KalturaStandIn, StandInOptions};

mod support;
use support::{drive, post_signed, ratio, sign_all, stats};

const JWT_SECRET: &str = "bench-jwt-secret-0123456789abcdef0123";
const QUERIES: [&str; 8] = [
    "security",
    "talk",
    "all hands",
    "webinar",
    "rust",
    "onboarding",
    "video",
    "culture",
];

fn now() -> i64 {
    kdhost::kaltura::sessions::now()
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::var("BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4000);
    println!("{}", json!({"machine": support::machine(), "requests": n}));

    // ------------------------------------------------------------ 1. KS signing
    {
        let secret = "0123456789abcdef0123456789abcdef";
        let req = KsRequest {
            partner_id: 1234567,
            user_id: "discord_700000000000000001",
            session_type: SessionType::User,
            expiry: now() + 3600,
            privileges: "sview:1_abcdefgh,privacycontext:discord",
        };
        let count = 50_000;
        let mut lat = Vec::with_capacity(count);
        let started = Instant::now();
        let mut last = String::new();
        for _ in 0..count {
            let t = Instant::now();
            last = req.sign(secret);
            lat.push(t.elapsed());
        }
        let wall = started.elapsed();
        let s = stats("ks_v2_sign", lat, wall);
        println!(
            "{}",
            json!({"bench": "ks_signatures_per_second", "per_second": count as f64 / wall.as_secs_f64(), "median_us": s["median_us"]})
        );
        let mut lat = Vec::with_capacity(count);
        let started = Instant::now();
        for _ in 0..count {
            let t = Instant::now();
            kdhost::kaltura::ks::verify(&last, 1234567, &[secret], now()).unwrap();
            lat.push(t.elapsed());
        }
        stats("ks_v2_verify", lat, started.elapsed());
    }

    // ------------------------------------------------------------ the host, wired to stand-ins
    const BENCH_GUILD: &str = "600000000000000001";
    let discord = DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), StandInOptions::default())
        .await
        .unwrap();
    let kaltura = KalturaStandIn::start("127.0.0.1:0".parse().unwrap(), KalturaOptions::default())
        .await
        .unwrap();
    let settings = Settings {
        kaltura: Some(kdhost::cli::standin::kaltura_settings(&kaltura).unwrap()),
        api: ApiSettings {
            jwt_secret: Some(Secret::new(JWT_SECRET)),
            ..Default::default()
        },
        ..Default::default()
    };
    // Meetings on scheduled events, webinars on virtual events, classrooms on rooms.
    let kaltura_on = json!({"kaltura": {"enabled": true,
        "meetings": {"webinar": "virtual_events", "classroom": "rooms"}}});
    // With the bot token: the API checks the caller's membership with Discord (cached).
    let files = support::HostFiles {
        default_config: Some(kaltura_on),
        bot_token: true,
        ..Default::default()
    };
    let host = support::start_host_with(&discord, files, settings).await;
    let addr = host.addr;
    let host_url = host.interactions_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();

    // ------------------------------------------------------------ 2. meeting creation
    let start_of = |kind: &'static str| {
        let discord = &discord;
        move |i: usize| {
            let title = format!("Bench {kind} {i}");
            discord.command(
                "kaltura-start",
                json!([{"name": "type", "type": 3, "value": kind}, {"name": "title", "type": 3, "value": title}]),
                "600000000000000001",
                "700000000000000001",
                &[],
            )
        }
    };
    let start_payload = start_of("meeting");
    let sign_all = |count: usize| sign_all(&discord, (0..count).map(start_payload));
    let canned = discord
        .send_interaction(&host_url, &start_payload(0))
        .await
        .unwrap()
        .1;
    assert!(
        canned.to_string().contains("Your meeting is ready"),
        "{canned}"
    );
    let bare_url = support::bare_interactions(canned).await;

    const READY: &str = "Your meeting is ready";
    // Warm up, then baseline and subject alternately at each concurrency.
    drive(
        200,
        8,
        post_signed(&client, &host_url, sign_all(200), READY),
    )
    .await;
    for concurrency in [1usize, 32] {
        let count = if concurrency == 1 { n / 4 } else { n };
        let (lat, wall) = drive(
            count,
            concurrency,
            post_signed(&client, &bare_url, sign_all(count), READY),
        )
        .await;
        let base = stats(&format!("bare_axum_same_reply_c{concurrency}"), lat, wall);
        let (lat, wall) = drive(
            count,
            concurrency,
            post_signed(&client, &host_url, sign_all(count), READY),
        )
        .await;
        let subject = stats(
            &format!("meeting_creation_end_to_end_c{concurrency}"),
            lat,
            wall,
        );
        ratio(
            &format!("meeting_creation_vs_bare_c{concurrency}"),
            &subject,
            &base,
        );
    }
    println!(
        "{}",
        json!({"bench": "meetings_created_in_standin", "count": kaltura.events().len()})
    );

    // ------------------------------------------------------------ 4. per backend
    let count = n / 2;
    let run_kind = |kind: &'static str| {
        let payloads: Vec<Value> = (0..count).map(start_of(kind)).collect();
        let signed = support::sign_all(&discord, payloads.into_iter());
        drive(count, 32, post_signed(&client, &host_url, signed, READY))
    };
    for round in 1..=2 {
        let (lat, wall) = run_kind("meeting").await;
        let base = stats(
            &format!("scheduled_events_meeting_c32_round{round}"),
            lat,
            wall,
        );
        let (lat, wall) = run_kind("webinar").await;
        let webinar = stats(
            &format!("virtual_events_webinar_c32_round{round}"),
            lat,
            wall,
        );
        let (lat, wall) = run_kind("classroom").await;
        let rooms = stats(&format!("rooms_classroom_c32_round{round}"), lat, wall);
        ratio(
            &format!("virtual_events_vs_scheduled_round{round}"),
            &webinar,
            &base,
        );
        ratio(&format!("rooms_vs_scheduled_round{round}"), &rooms, &base);
    }
    println!(
        "{}",
        json!({"bench": "backends_created_in_standin", "virtual_events": kaltura.virtual_events().len(), "rooms": kaltura.rooms().len()})
    );

    // ------------------------------------------------------------ 3. GET /api/v1/videos?q=
    let jwt = Jwt::new(&Secret::new(JWT_SECRET), Duration::from_secs(3600));
    let (token, _) = jwt
        .issue("700000000000000001", SubjectKind::Discord, "bench")
        .unwrap();
    // Videos are read in a server the caller belongs to (checked, then cached, per call).
    discord.set_member(BENCH_GUILD, "700000000000000001", &[]);
    // `path` with `params`, plus one of QUERIES as `q` when `text`.
    let api_get = |path: &str, params: Vec<(&'static str, String)>, text: bool| {
        let (client, url, token) = (
            client.clone(),
            format!("http://{addr}{path}"),
            token.clone(),
        );
        move |i: usize| {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            let mut params = params.clone();
            params.push(("guild_id", BENCH_GUILD.to_string()));
            if text {
                params.push(("q", QUERIES[i % QUERIES.len()].to_string()));
            }
            async move {
                let r = client
                    .get(&url)
                    .query(&params)
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                let v: Value = r.json().await.unwrap();
                assert!(v["videos"].is_array());
            }
        }
    };
    let ten = || vec![("limit", "10".to_string())];
    let search = api_get("/api/v1/videos", ten(), true);
    let search_v2 = api_get("/api/v2/videos", ten(), true);
    // The newest videos' second page: v1 by page number, v2 by the first page's cursor.
    let v1_page2 = api_get(
        "/api/v1/videos",
        vec![("limit", "10".into()), ("page", "2".into())],
        false,
    );
    let first: Value = client
        .get(format!("http://{addr}/api/v2/videos"))
        .query(&[("limit", "10"), ("guild_id", BENCH_GUILD)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cursor = first["next_cursor"]
        .as_str()
        .unwrap_or_else(|| panic!("no second page: {first}"))
        .to_string();
    let v2_page2 = api_get("/api/v2/videos", vec![("cursor", cursor)], false);
    // Baseline: the stand-in's eSearch, asked directly with the same searches.
    let admin_ks = KsRequest {
        partner_id: kaltura.partner_id(),
        user_id: "bench",
        session_type: SessionType::Admin,
        expiry: now() + 3600,
        privileges: "",
    }
    .sign(kaltura.admin_secret());
    let esearch_url = format!(
        "{}/api_v3/service/elasticsearch_esearch/action/searchEntry",
        kaltura.url
    );
    let direct = {
        let client = client.clone();
        move |i: usize| {
            let (client, url, ks) = (client.clone(), esearch_url.clone(), admin_ks.clone());
            async move {
                let mut body =
                    kdhost::kaltura::media::esearch_params(QUERIES[i % QUERIES.len()], 10, 1);
                body["ks"] = json!(ks);
                body["format"] = json!(1);
                let v: Value = client
                    .post(&url)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                assert!(v["objects"].is_array());
            }
        }
    };
    let bare_videos = axum::Router::new().route(
        "/api/v1/videos",
        get(|| async { Json(json!({"total": 0, "videos": [], "engine": "none"})) }),
    );
    let bv_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bv_url = format!("http://{}/api/v1/videos", bv_listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(bv_listener, bare_videos).await.unwrap() });
    let bare_get = {
        let client = client.clone();
        move |_i: usize| {
            let (client, url) = (client.clone(), bv_url.clone());
            async move {
                let r = client.get(&url).send().await.unwrap();
                assert_eq!(r.status(), 200);
                r.bytes().await.unwrap();
            }
        }
    };
    drive(500, 32, search.clone()).await;
    for round in 0..2 {
        let (lat, wall) = drive(n, 32, bare_get.clone()).await;
        let bare = stats(&format!("bare_axum_get_c32_round{round}"), lat, wall);
        let (lat, wall) = drive(n, 32, direct.clone()).await;
        let base = stats(
            &format!("standin_esearch_direct_c32_round{round}"),
            lat,
            wall,
        );
        let (lat, wall) = drive(n, 32, search.clone()).await;
        let subject = stats(&format!("api_v1_videos_search_c32_round{round}"), lat, wall);
        let (lat, wall) = drive(n, 32, search_v2.clone()).await;
        let v2 = stats(&format!("api_v2_videos_search_c32_round{round}"), lat, wall);
        ratio(&format!("api_v2_vs_v1_search_round{round}"), &v2, &subject);
        let (lat, wall) = drive(n, 32, v1_page2.clone()).await;
        let page = stats(&format!("api_v1_videos_page2_c32_round{round}"), lat, wall);
        let (lat, wall) = drive(n, 32, v2_page2.clone()).await;
        let cursor = stats(&format!("api_v2_videos_cursor_c32_round{round}"), lat, wall);
        ratio(
            &format!("api_v2_cursor_vs_v1_page_round{round}"),
            &cursor,
            &page,
        );
        ratio(
            &format!("api_videos_vs_standin_direct_round{round}"),
            &subject,
            &base,
        );
        ratio(
            &format!("api_videos_vs_bare_axum_round{round}"),
            &subject,
            &bare,
        );
    }
}
