//! The Watch Together sync server over real WebSockets: join, host election, transfer,
//! leave, resync, and every bad input.

mod common;

use common::sync_socket::{self, Ws, next, send};
use common::*;
use futures::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ANN: &str = "700000000000000011";
const BOB: &str = "700000000000000012";
const EVE: &str = "700000000000000013";

/// A host token for a user, through the real sign-in (the stand-in's OAuth2).
async fn token(host: &Host, user: &str, name: &str) -> String {
    token_with_avatar(host, user, name, None).await
}

async fn token_with_avatar(host: &Host, user: &str, name: &str, avatar: Option<&str>) -> String {
    let (code, at) = (format!("code-{user}"), format!("at-{user}"));
    host.standin.add_oauth_user(&at, user, name);
    if let Some(a) = avatar {
        host.standin.set_oauth_avatar(&at, a);
    }
    host.standin.add_oauth_code(&code, &at);
    let (status, v) = host.activity_token(json!({"code": code})).await;
    assert_eq!(status, 200, "{v}");
    v["token"].as_str().unwrap().to_string()
}

async fn connect(host: &Host, instance: &str, token: &str) -> Ws {
    sync_socket::connect(&host.base, instance, token).await
}

/// Connects offering these subprotocols (the page offers `kd-sync, <token>`).
async fn connect_offering(host: &Host, instance: &str, protocols: &str) -> Ws {
    sync_socket::connect_offering(&host.base, instance, protocols).await
}

async fn start() -> Host {
    Host::start(Setup {
        activity_dev: true,
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn two_people_share_a_room_and_the_host_drives_it() {
    let host = start().await;
    let (ta, tb) = (
        token(&host, ANN, "Ann").await,
        token(&host, BOB, "Bob").await,
    );
    let mut ann = connect(&host, "i-1", &ta).await;
    let w = next(&mut ann, "welcome").await;
    assert_eq!(
        (w["you"].as_str(), w["host"].as_str(), w["v"].as_u64()),
        (Some(ANN), Some(ANN), Some(1))
    );
    let mut bob = connect(&host, "i-1", &tb).await;
    let w = next(&mut bob, "welcome").await;
    assert_eq!(w["host"], ANN);
    assert_eq!(w["participants"].as_array().unwrap().len(), 2);

    // Clock sampling.
    send(&mut bob, json!({"type": "ping", "id": 7, "t0": 123.5})).await;
    let p = next(&mut bob, "pong").await;
    assert_eq!((p["id"].as_u64(), p["t0"].as_f64()), (Some(7), Some(123.5)));
    assert!(p["server_time"].as_i64().unwrap() > 1_700_000_000_000);

    // The host plays: everyone gets the stamped state.
    send(&mut ann, json!({"type": "load", "entry_id": "1_abcdefgh"})).await;
    send(&mut ann, json!({"type": "play", "position": 12.0})).await;
    let s = loop {
        let s = next(&mut bob, "state").await;
        if s["state"]["playing"] == true {
            break s;
        }
    };
    assert_eq!(s["state"]["entry_id"], "1_abcdefgh");
    assert_eq!(
        (s["state"]["position"].as_f64(), s["by"].as_str()),
        (Some(12.0), Some(ANN))
    );

    // A follower may not drive: told, nothing changes.
    send(&mut bob, json!({"type": "pause", "position": 1.0})).await;
    let e = next(&mut bob, "error").await;
    assert_eq!(e["code"], "not_host");

    // Transfer: Bob hosts now and can seek; seeks force a re-apply.
    send(&mut ann, json!({"type": "transfer", "to": BOB})).await;
    // (Earlier participant lists may still be queued: wait for the change.)
    for _ in 0..10 {
        if next(&mut ann, "participants").await["host"] == BOB {
            break;
        }
    }
    send(&mut ann, json!({"type": "play", "position": 1.0})).await;
    assert_eq!(next(&mut ann, "error").await["code"], "not_host");
    send(&mut bob, json!({"type": "seek", "position": 30.0})).await;
    let s = loop {
        let s = next(&mut ann, "state").await;
        if s["by"] == BOB {
            break s;
        }
    };
    assert_eq!(
        (s["state"]["position"].as_f64(), s["force"].as_bool()),
        (Some(30.0), Some(true))
    );
    send(&mut bob, json!({"type": "sync_all"})).await;
    assert_eq!(next(&mut ann, "state").await["force"], true);

    // A late joiner gets the current state at once.
    let te = token(&host, EVE, "Eve").await;
    let mut eve = connect(&host, "i-1", &te).await;
    let w = next(&mut eve, "welcome").await;
    assert_eq!(
        (w["state"]["playing"].as_bool(), w["host"].as_str()),
        (Some(true), Some(BOB))
    );

    // The host leaves with a goodbye: re-elected at once (the earliest remaining).
    bob.close(None).await.unwrap();
    let p = loop {
        let p = next(&mut ann, "participants").await;
        if p["host"] != BOB {
            break p;
        }
    };
    assert_eq!(p["host"], ANN);
}

#[tokio::test]
async fn a_host_vanishing_without_a_close_keeps_the_seat_and_resumes_within_the_grace() {
    // A grace far longer than any reconnect here: the verdict never races the clock.
    let host = Host::start(Setup {
        activity_dev: true,
        activity_grace: Some(HANG),
        ..Default::default()
    })
    .await;
    let (ta, tb) = (
        token(&host, ANN, "Ann").await,
        token(&host, BOB, "Bob").await,
    );
    let mut ann = connect(&host, "i-2", &ta).await;
    next(&mut ann, "welcome").await;
    let mut bob = connect(&host, "i-2", &tb).await;
    next(&mut bob, "welcome").await;
    // Ann's connection dies (no close frame): she is away but still host for the grace
    // period; reconnecting within it resumes her seat.
    drop(ann);
    let p = away(&mut bob).await;
    assert_eq!(p["host"], ANN);
    let mut ann = connect(&host, "i-2", &ta).await;
    assert_eq!(next(&mut ann, "welcome").await["host"], ANN);
}

#[tokio::test]
async fn a_host_vanishing_without_a_close_is_replaced_after_the_grace_period() {
    let host = start().await;
    let (ta, tb) = (
        token(&host, ANN, "Ann").await,
        token(&host, BOB, "Bob").await,
    );
    let mut ann = connect(&host, "i-2b", &ta).await;
    next(&mut ann, "welcome").await;
    let mut bob = connect(&host, "i-2b", &tb).await;
    next(&mut bob, "welcome").await;
    drop(ann);
    // First she is away (host still), then, after the grace period (400 ms), Bob hosts.
    assert_eq!(away(&mut bob).await["host"], ANN);
    let p = loop {
        let p = next(&mut bob, "participants").await;
        if p["host"] == BOB {
            break p;
        }
    };
    assert_eq!(p["participants"].as_array().unwrap().len(), 1);
}

/// The first participants list in which someone is away.
async fn away(ws: &mut Ws) -> Value {
    loop {
        let p = next(ws, "participants").await;
        if p["participants"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["presence"] == "away")
        {
            return p;
        }
    }
}

#[tokio::test]
async fn bad_input_is_told_limited_or_dropped_and_the_room_goes_on() {
    let host = start().await;
    let ta = token(&host, ANN, "Ann").await;
    // No token, a bad token: closed with 4001.
    let url = format!(
        "{}/api/v1/activity/sync?instance_id=i-3",
        host.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let c = next(&mut ws, "none").await;
    assert_eq!(c["close"], 4001);
    let mut ws = connect(&host, "i-3", "not-a-token").await;
    assert_eq!(next(&mut ws, "none").await["close"], 4001);
    // [harden] 7: the token never rides in the URL (proxies log URLs): refused, saying so.
    let url = format!(
        "{}/api/v1/activity/sync?instance_id=i-3&token={ta}",
        host.base.replace("http://", "ws://")
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let c = next(&mut ws, "none").await;
    assert_eq!(c["close"], 4001);
    assert!(
        c["reason"].as_str().unwrap().contains("never in the URL"),
        "{c}"
    );
    // An API token is not an Activity token.
    host.standin.add_oauth_user("oauth-ann", ANN, "Ann");
    let api_token = host.api_token("oauth-ann").await;
    let mut ws = connect(&host, "i-3", &api_token).await;
    let c = next(&mut ws, "none").await;
    assert_eq!(c["close"], 4001);
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("not an Activity token"),
        "{c}"
    );

    let mut ann = connect(&host, "i-3", &ta).await;
    next(&mut ann, "welcome").await;
    // Malformed: told, still connected.
    ann.send(Message::Text("{nope".into())).await.unwrap();
    assert_eq!(next(&mut ann, "error").await["code"], "bad_message");
    send(&mut ann, json!({"type": "seek", "position": -5})).await;
    assert_eq!(next(&mut ann, "error").await["code"], "invalid");
    send(&mut ann, json!({"type": "ping", "id": 1, "t0": 0})).await;
    next(&mut ann, "pong").await;
    // Too frequent: rate limited, then dropped with 4008. (Far more than the burst allows,
    // sent back to back; the host drains what comes after its close frame.)
    for i in 0..400 {
        if ann
            .send(Message::Text(
                json!({"type": "ping", "id": i, "t0": 0}).to_string().into(),
            ))
            .await
            .is_err()
        {
            break;
        }
    }
    let mut saw_limit = false;
    let closed = loop {
        let v = next(&mut ann, "error").await;
        if v["code"] == "rate_limited" {
            saw_limit = true;
        }
        if v["close"].is_number() {
            break v;
        }
    };
    assert!(saw_limit);
    assert_eq!(closed["close"], 4008);

    // Oversized: 4009.
    let mut ann = connect(&host, "i-3", &ta).await;
    next(&mut ann, "welcome").await;
    let big = json!({"type": "load", "entry_id": "x".repeat(5000)}).to_string();
    ann.send(Message::Text(big.into())).await.unwrap();
    assert_eq!(next(&mut ann, "none").await["close"], 4009);
}

#[tokio::test]
async fn participants_show_their_discord_avatar_and_nothing_else_gets_through() {
    let host = start().await;
    let hash = "a_0123456789abcdef0123456789abcdef";
    let ta = token_with_avatar(&host, ANN, "Ann", Some(hash)).await;
    // Bob's "avatar" is markup: it must not reach Ann's page.
    let tb = token_with_avatar(&host, BOB, "Bob", Some("x\"><img src=x onerror=alert(1)>")).await;
    let mut ann = connect(&host, "i-avatar", &ta).await;
    next(&mut ann, "welcome").await;
    let mut bob = connect(&host, "i-avatar", &tb).await;
    let w = next(&mut bob, "welcome").await;
    let by_id = |id: &str| {
        w["participants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap()
    };
    assert_eq!(
        by_id(ANN)["avatar"],
        format!("https://cdn.discordapp.com/avatars/{ANN}/{hash}.png?size=64")
    );
    assert_eq!(by_id(BOB)["avatar"], Value::Null);
}

#[tokio::test]
async fn outside_dev_mode_only_participants_of_the_instance_get_in() {
    let host = Host::start(Setup::default()).await;
    let (ta, tb) = (
        token(&host, ANN, "Ann").await,
        token(&host, BOB, "Bob").await,
    );
    host.standin.set_activity_instance("i-4", &[ANN]);
    let mut ann = connect(&host, "i-4", &ta).await;
    assert_eq!(next(&mut ann, "welcome").await["you"], ANN);
    let mut bob = connect(&host, "i-4", &tb).await;
    let c = next(&mut bob, "welcome").await;
    assert_eq!(c["close"], 4003, "{c}");
    let mut nowhere = connect(&host, "i-unknown", &ta).await;
    assert_eq!(next(&mut nowhere, "welcome").await["close"], 4003);
}

#[tokio::test]
async fn the_room_opens_on_what_was_launched_in_the_instances_channel_and_the_launcher_hosts() {
    let host = Host::start(Setup::default()).await;
    let (ta, tb) = (
        token(&host, ANN, "Ann").await,
        token(&host, BOB, "Bob").await,
    );
    let (here, elsewhere) = ("200000000000000001", "200000000000000002");
    // Ann pressed Watch Together under a video in this channel; someone else elsewhere.
    let launches = &host.shared.launches;
    launches
        .record(
            here,
            ANN,
            "kaltura-videos:kaltura-video-search:watch:1_launched",
        )
        .await;
    launches
        .record(
            elsewhere,
            EVE,
            "kaltura-videos:kaltura-video-search:watch:1_other",
        )
        .await;
    host.standin
        .set_activity_instance_in("i-launch", here, &[ANN, BOB]);

    // Bob arrives first, claiming the other channel: Discord's word about the instance wins.
    let mut bob = connect_offering(
        &host,
        &format!("i-launch&channel_id={elsewhere}"),
        &format!("kd-sync, {tb}"),
    )
    .await;
    let w = next(&mut bob, "welcome").await;
    assert_eq!(w["state"]["entry_id"], "1_launched", "{w}");
    assert_eq!(
        w["host"], BOB,
        "the first to join hosts until the launcher comes"
    );
    let mut ann = connect(&host, "i-launch", &ta).await;
    assert_eq!(
        next(&mut ann, "welcome").await["host"],
        ANN,
        "the launcher hosts"
    );
}

#[tokio::test]
async fn a_room_another_instance_owns_is_not_opened_here_and_a_closed_room_is_given_up() {
    use kdhost::store::rooms::Claim;
    let host = start().await;
    let ta = token(&host, ANN, "Ann").await;
    let claims = &host.shared.rooms;
    // Another instance holds `i-owned`: this one sends the page away to reconnect.
    assert!(matches!(
        claims.claim("i-owned", "another-instance").await,
        Claim::Owned { .. }
    ));
    let mut ws = connect(&host, "i-owned", &ta).await;
    let c = next(&mut ws, "welcome").await;
    assert_eq!(c["close"], 4012, "{c}");
    // A room opened here is claimed by this instance, and given up when its last
    // member leaves.
    let mut ann = connect(&host, "i-mine", &ta).await;
    next(&mut ann, "welcome").await;
    assert!(matches!(
        claims.claim("i-mine", "another-instance").await,
        Claim::Elsewhere { .. }
    ));
    ann.close(None).await.unwrap(); // a goodbye: the seat goes at once
    eventually_async("the closed room's claim to be given up", || async {
        matches!(
            claims.claim("i-mine", "another-instance").await,
            Claim::Owned { .. }
        )
        .then_some(())
    })
    .await;
    host.stop().await;
}
