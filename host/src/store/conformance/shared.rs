//! What every backend of the runtime-state traits owes, checked against each: this
//! process's memory and Redis (a private server per check, two instances on it where the
//! point is sharing). Then what the Redis backends do while Redis is away.

use std::sync::Arc;
use std::time::Duration;

use crate::store::discord_limits::DiscordLimits;
use crate::store::launches::Launches;
use crate::store::rates::{CommandRates, Limited};
use crate::store::redis::{
    Redis, RedisCommandRates, RedisDiscordLimits, RedisRoomClaims, RedisTokens,
};
use crate::store::rooms::{Claim, RoomClaims};
use crate::store::tokens::InteractionTokens;
use crate::store::voice::VoiceStates;

/// A private Redis server (it stops when dropped) and two connections to it: two
/// instances.
async fn redis() -> (testkit::servers::RedisServer, Redis, Redis) {
    let server = testkit::servers::RedisServer::start()
        .expect("a private Redis server (apt-get install -y redis-server)");
    let a = Redis::connect(&server.url()).await.unwrap();
    let b = Redis::connect(&server.url()).await.unwrap();
    (server, a, b)
}

macro_rules! backends {
    ($($check:ident: $memory:expr, $redis:expr;)*) => {$(
        mod $check {
            #[tokio::test]
            async fn memory() {
                let one = std::sync::Arc::new($memory);
                super::$check(one.clone(), one).await;
            }
            #[tokio::test]
            async fn redis() {
                let (_server, a, b) = super::redis().await;
                let make = $redis;
                super::$check(std::sync::Arc::new(make(a)), std::sync::Arc::new(make(b))).await;
            }
        }
    )*};
}

backends! {
    tokens_belong_to_their_plugin_and_are_seen_by_every_instance:
        crate::store::memory::MemoryTokens::default(), crate::store::redis::RedisTokens::new;
    launches_are_kept_per_channel_and_user_for_every_instance:
        crate::store::memory::MemoryLaunches::default(), crate::store::redis::RedisLaunches::new;
    voice_states_are_unknown_until_described_then_followed:
        crate::store::memory::MemoryVoice::default(), crate::store::redis::RedisVoice::new;
    rooms_have_one_owner_and_keep_only_their_owners_snapshots:
        crate::store::memory::MemoryRoomClaims::default(), crate::store::redis::RedisRoomClaims::new;
    command_allowances_are_spent_together:
        crate::store::memory::MemoryCommandRates::with_clock(2, 3, governor::clock::FakeRelativeClock::default()),
        |r| crate::store::redis::RedisCommandRates::frozen(r, 2, 3);
}

async fn tokens_belong_to_their_plugin_and_are_seen_by_every_instance(
    a: Arc<impl InteractionTokens>,
    b: Arc<impl InteractionTokens>,
) {
    a.insert("i1", "tok-1", "poll").await;
    let held = b.get("i1", "poll").await.unwrap();
    assert_eq!((held.token.as_str(), held.answered), ("tok-1", false));
    // Another plugin cannot use it; an unknown interaction has none.
    assert!(b.get("i1", "other").await.is_none());
    assert!(b.get("i2", "poll").await.is_none());
    a.mark_answered("i1").await;
    assert!(b.get("i1", "poll").await.unwrap().answered);
    // Marking a token nobody holds makes none.
    b.mark_answered("i3").await;
    assert!(a.get("i3", "poll").await.is_none());
}

async fn launches_are_kept_per_channel_and_user_for_every_instance(
    a: Arc<impl Launches>,
    b: Arc<impl Launches>,
) {
    assert!(b.latest_in("c1").await.is_none());
    a.record("c1", "u1", "watch:play:0_a").await;
    a.record("c1", "u2", "watch:play:0_b").await;
    assert_eq!(b.get("c1", "u1").await.unwrap().custom_id, "watch:play:0_a");
    let (who, what) = b.latest_in("c1").await.unwrap();
    assert_eq!(
        (who.as_str(), what.custom_id.as_str()),
        ("u2", "watch:play:0_b")
    );
    assert!(b.get("c2", "u1").await.is_none());
}

async fn voice_states_are_unknown_until_described_then_followed(
    a: Arc<impl VoiceStates>,
    b: Arc<impl VoiceStates>,
) {
    assert_eq!(b.in_voice("g", "u1").await, None);
    a.replace_guild("g", vec![("u1".into(), "v1".into())]).await;
    assert_eq!(b.in_voice("g", "u1").await, Some(true));
    assert_eq!(b.in_voice("g", "u2").await, Some(false));
    a.set("g", "u2", Some("v1")).await;
    a.set("g", "u1", None).await;
    assert_eq!(b.in_voice("g", "u1").await, Some(false));
    assert_eq!(b.in_voice("g", "u2").await, Some(true));
    // A new description replaces the old one.
    a.replace_guild("g", vec![]).await;
    assert_eq!(b.in_voice("g", "u2").await, Some(false));
}

async fn rooms_have_one_owner_and_keep_only_their_owners_snapshots(
    a: Arc<impl RoomClaims>,
    b: Arc<impl RoomClaims>,
) {
    let Claim::Owned { epoch } = a.claim("r", "A").await else {
        panic!("a free room is claimed")
    };
    assert_eq!(a.claim("r", "A").await, Claim::Owned { epoch }, "renewed");
    assert_eq!(
        b.claim("r", "B").await,
        Claim::Elsewhere { owner: "A".into() }
    );
    // Only the owner, at its epoch, keeps a snapshot.
    a.save("r", "A", epoch, "one").await;
    b.save("r", "B", epoch, "not B's").await;
    a.save("r", "A", epoch + 1, "not this epoch's").await;
    assert_eq!(b.snapshot("r").await.as_deref(), Some("one"));
    // Given up: the next owner has a higher epoch, and no stale snapshot.
    b.release("r", "B").await;
    assert!(matches!(b.claim("r", "B").await, Claim::Elsewhere { .. }));
    a.release("r", "A").await;
    assert_eq!(b.snapshot("r").await, None);
    match b.claim("r", "B").await {
        Claim::Owned { epoch: next } => assert!(next > epoch),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_room_whose_owner_stops_renewing_passes_to_another_with_its_snapshot() {
    let (_server, a, b) = redis().await;
    let (a, b) = (RedisRoomClaims::new(a), RedisRoomClaims::new(b));
    let Claim::Owned { epoch } = a.claim("r", "A").await else {
        panic!("a free room is claimed")
    };
    a.save("r", "A", epoch, "state").await;
    // A dies (it renews no more): its claim runs out and B takes the room, epoch bumped.
    let next = crate::store::conformance::eventually_async("the claim to run out", || async {
        match b.claim("r", "B").await {
            Claim::Owned { epoch } => Some(epoch),
            _ => None,
        }
    })
    .await;
    assert!(next > epoch);
    assert_eq!(b.snapshot("r").await.as_deref(), Some("state"));
    // A stale owner writes nothing any more.
    a.save("r", "A", epoch, "stale").await;
    assert_eq!(b.snapshot("r").await.as_deref(), Some("state"));
}

#[tokio::test]
async fn the_relay_carries_envelopes_to_the_instance_they_are_addressed_to() {
    let (_server, a, b) = redis().await;
    let (a, b) = (RedisRoomClaims::new(a), RedisRoomClaims::new(b));
    let (to_a, to_b) = (a.relay().unwrap(), b.relay().unwrap());
    let mut inbox_b = to_b.inbox("B");
    // Subscribing takes a moment: sent until someone listens.
    crate::store::conformance::eventually_async("B to listen", || async {
        to_a.send("B", "hello".into()).await.then_some(())
    })
    .await;
    let got = tokio::time::timeout(Duration::from_secs(120), inbox_b.recv())
        .await
        .unwrap();
    assert_eq!(got.as_deref(), Some("hello"));
    assert!(!to_a.send("nobody", "lost".into()).await, "nobody listens");
}

async fn command_allowances_are_spent_together(
    a: Arc<impl CommandRates>,
    b: Arc<impl CommandRates>,
) {
    // Two a minute per member, three per guild; time stands still.
    assert!(a.take(Some("u"), Some("g")).await.is_ok());
    assert!(b.take(Some("u"), Some("g")).await.is_ok());
    assert!(matches!(
        a.take(Some("u"), Some("g")).await,
        Err(Limited::User { retry_secs }) if retry_secs >= 1
    ));
    assert!(b.take(Some("v"), Some("g")).await.is_ok());
    assert!(matches!(
        a.take(Some("w"), Some("g")).await,
        Err(Limited::Guild { .. })
    ));
    assert!(b.take(None, None).await.is_ok());
    b.forget_quiet().await;
}

#[tokio::test]
async fn the_bots_global_limit_and_buckets_are_one_for_every_instance() {
    let (_server, ra, rb) = redis().await;
    // Grants count for a minute here, so nothing leaves the window while the test runs.
    let a = RedisDiscordLimits::with_window(ra, 3, Duration::from_secs(60));
    let b = RedisDiscordLimits::with_window(rb, 3, Duration::from_secs(60));
    assert_eq!(a.grant_once("channels/1/messages", true).await, 0);
    assert_eq!(b.grant_once("channels/2/messages", true).await, 0);
    assert_eq!(a.grant_once("channels/3/messages", true).await, 0);
    // The fourth bot call in the window waits, whichever instance makes it...
    assert!(b.grant_once("channels/4/messages", true).await > 0);
    assert!(a.grant_once("channels/4/messages", true).await > 0);
    // ...but interaction callbacks are not bound by the global limit.
    assert_eq!(b.grant_once("interactions/9/tok/callback", false).await, 0);
    // A bucket one instance learned is empty for the other; other routes are not.
    a.learn_bucket("webhooks/5/tok", 0, Duration::from_secs(60))
        .await;
    assert!(b.grant_once("webhooks/5/tok", false).await > 0);
    assert_eq!(b.grant_once("webhooks/6/tok", false).await, 0);
    // A bucket with room is spent one grant at a time across instances.
    a.learn_bucket("webhooks/7/tok", 2, Duration::from_secs(60))
        .await;
    assert_eq!(a.grant_once("webhooks/7/tok", false).await, 0);
    assert_eq!(b.grant_once("webhooks/7/tok", false).await, 0);
    assert!(a.grant_once("webhooks/7/tok", false).await > 0);
    // A global 429 seen by one pauses the bot everywhere.
    b.pause_bot(Duration::from_secs(60)).await;
    assert!(a.grant_once("interactions/8/tok/callback", true).await > 50_000);
    // A guild's share of the global rate is one over every instance; other guilds have
    // their own.
    assert_eq!(a.guild_share_once("g1", 2).await, 0);
    assert_eq!(b.guild_share_once("g1", 2).await, 0);
    assert!(a.guild_share_once("g1", 2).await > 0);
    assert_eq!(a.guild_share_once("g2", 2).await, 0);
    // Invalid answers are counted together.
    a.record_answer(401, false).await;
    b.record_answer(403, false).await;
    b.record_answer(429, true).await;
    b.record_answer(404, false).await;
    assert_eq!(a.invalid_count().await, 2);
}

#[tokio::test]
async fn while_redis_is_away_bot_calls_wait_and_the_rest_falls_back_then_recovers() {
    let (mut server, ra, _) = redis().await;
    let tokens = RedisTokens::new(ra.clone());
    let rates = RedisCommandRates::new(ra.clone(), 1000, 1000);
    let limits = Arc::new(RedisDiscordLimits::new(ra.clone(), 50));
    tokens.insert("i1", "tok-1", "poll").await;
    server.stop();

    // Tokens this instance took still serve follow-ups; allowances are enforced here.
    assert_eq!(tokens.get("i1", "poll").await.unwrap().token, "tok-1");
    tokens.insert("i2", "tok-2", "poll").await;
    assert!(rates.take(Some("u"), Some("g")).await.is_ok());
    // Interaction callbacks go on; a bot call waits until Redis answers again.
    limits.until_ready("interactions/1/t/callback", false).await;
    let paused = crate::telemetry::METRICS.discord_paused.get();
    let waiting = {
        let limits = limits.clone();
        tokio::spawn(async move { limits.until_ready("channels/1/messages", true).await })
    };
    crate::store::conformance::eventually("a bot call to be held back", || {
        (crate::telemetry::METRICS.discord_paused.get() > paused).then_some(())
    })
    .await;
    assert!(
        !waiting.is_finished(),
        "a bot call went out while Redis was away"
    );

    server.resume().unwrap();
    tokio::time::timeout(Duration::from_secs(120), waiting)
        .await
        .expect("the bot call goes once Redis is back")
        .unwrap();
    // Everything is shared again (a token taken while Redis was away is still served).
    assert_eq!(tokens.get("i2", "poll").await.unwrap().token, "tok-2");
    tokens.insert("i3", "tok-3", "poll").await;
    let other = RedisTokens::new(ra);
    assert_eq!(other.get("i3", "poll").await.unwrap().token, "tok-3");
}
