//! What every backend of the durable store traits owes, checked against each: SQLite in
//! memory and PostgreSQL on a private server (a fresh database per check). A check is an
//! `async fn(Stores)`; `backends!` makes one test per backend of it. `shared.rs` does the
//! same for the runtime state (memory and Redis).

use std::sync::Arc;

use serde_json::json;

use super::{
    KvError, LaneLease, NewAuditEntry, NewMessage, OutboxCounts, Processed, Recorded, Stores,
};

mod shared;

/// Polls `check` until it answers; only a hang (two minutes) fails.
pub async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Polls an async `check` until it answers; only a hang (two minutes) fails.
pub async fn eventually_async<T, F>(what: &str, mut check: impl FnMut() -> F) -> T
where
    F: std::future::Future<Output = Option<T>>,
{
    let until = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            std::time::Instant::now() < until,
            "gave up waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A fresh, empty PostgreSQL database with the schema applied.
pub async fn postgres() -> (Stores, String) {
    let url = tokio::task::spawn_blocking(testkit::servers::fresh_database)
        .await
        .unwrap()
        .expect("a private PostgreSQL server (apt-get install -y postgresql)");
    let store = super::postgres::PostgresStore::connect(&url).await.unwrap();
    (Stores::all_in(Arc::new(store)), url)
}

macro_rules! backends {
    ($($check:ident),* $(,)?) => {$(
        mod $check {
            #[tokio::test]
            async fn sqlite() {
                super::$check(crate::store::Stores::in_memory().unwrap()).await;
            }
            #[tokio::test]
            async fn postgres() {
                super::$check(super::postgres().await.0).await;
            }
        }
    )*};
}

backends!(
    kv_is_namespaced_by_plugin_and_scope,
    kv_quota_counts_keys_and_values_and_overwrites,
    kv_running_total_follows_writes_overwrites_and_deletes,
    kv_lists_keys_by_prefix_sorted,
    kv_counters_add_and_refuse_what_is_not_a_counter,
    kv_concurrent_increments_add_up_exactly,
    kv_user_scopes_count_in_their_guild_and_are_exported_and_erased,
    kv_personal_values_are_pruned_by_age_and_the_rest_kept,
    audit_lists_and_tombstones_what_a_person_did,
    preferences_subscribe_within_the_limit_and_find_listeners,
    preferences_mutes_silence_and_a_persons_rows_are_exported_and_erased,
    preferences_subscribing_again_renews_and_retention_forgets_the_rest,
    inbox_dedupes_and_completes_once,
    inbox_claims_are_exclusive_until_they_run_out,
    inbox_completes_a_batch_in_order_and_once,
    inbox_claims_given_back_are_taken_at_once,
    outbox_guild_over_quota_gets_dead_letters,
    outbox_lanes_hand_out_their_oldest_message,
    outbox_leases_fence_results_after_a_takeover,
    meta_first_writer_wins,
);

async fn kv_is_namespaced_by_plugin_and_scope(s: Stores) {
    s.kv.set("a", "g1", "k", b"1", 100).await.unwrap();
    s.kv.set("b", "g1", "k", b"2", 100).await.unwrap();
    s.kv.set("a", "g2", "k", b"3", 100).await.unwrap();
    assert_eq!(s.kv.get("a", "g1", "k").await.unwrap().unwrap(), b"1");
    assert_eq!(s.kv.get("b", "g1", "k").await.unwrap().unwrap(), b"2");
    assert_eq!(s.kv.get("a", "g2", "k").await.unwrap().unwrap(), b"3");
    assert!(s.kv.delete("a", "g1", "k").await.unwrap());
    assert!(!s.kv.delete("a", "g1", "k").await.unwrap());
    assert_eq!(s.kv.get("a", "g1", "k").await.unwrap(), None);
}

async fn kv_user_scopes_count_in_their_guild_and_are_exported_and_erased(s: Stores) {
    use super::kv::user_scope;
    let (ann_g1, ann_g2, bob_g1) = (
        user_scope(Some("g1"), "71"),
        user_scope(Some("g2"), "71"),
        user_scope(Some("g1"), "72"),
    );
    s.kv.set("p", "g1", "shared", b"12", 20).await.unwrap(); // 8 bytes
    s.kv.set("p", &ann_g1, "pick", b"1234", 20).await.unwrap(); // 8 bytes
    // Ann's scope counts in g1's quota: Bob's write would take it past 20.
    assert_eq!(s.kv.used("p", "g1").await.unwrap(), 16);
    assert_eq!(s.kv.used("p", &bob_g1).await.unwrap(), 16);
    let err =
        s.kv.set("p", &bob_g1, "pick", b"12345", 20)
            .await
            .unwrap_err();
    assert!(matches!(err, KvError::Quota { used: 16, .. }), "{err}");
    s.kv.increment("p", &bob_g1, "n", 5, 20).await.unwrap(); // 2 bytes
    s.kv.set("q", &ann_g2, "x", b"y", 20).await.unwrap();
    s.kv.set("q", "dm:71", "d", b"m", 20).await.unwrap();
    // Someone whose id ends like Ann's is not Ann.
    s.kv.set("q", &user_scope(Some("g1"), "171"), "x", b"y", 20)
        .await
        .unwrap();

    let everywhere = s.kv.user_rows("71", None).await.unwrap();
    let seen: Vec<(&str, &str, &str)> = everywhere
        .iter()
        .map(|r| (r.plugin.as_str(), r.scope.as_str(), r.key.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("p", "g1/u/71", "pick"),
            ("q", "dm:71", "d"),
            ("q", "g2/u/71", "x")
        ]
    );
    assert_eq!(everywhere[0].value, b"1234");
    assert!(everywhere.iter().all(|r| r.updated_at > 0));
    let in_g2 = s.kv.user_rows("71", Some("g2")).await.unwrap();
    assert_eq!(in_g2.len(), 1);

    // Erasing in g2 leaves g1 and the DMs; erasing everywhere takes the rest, totals follow.
    assert_eq!(s.kv.erase_user("71", Some("g2")).await.unwrap(), 1);
    assert_eq!(s.kv.user_rows("71", None).await.unwrap().len(), 2);
    assert_eq!(s.kv.erase_user("71", None).await.unwrap(), 2);
    assert!(s.kv.user_rows("71", None).await.unwrap().is_empty());
    assert_eq!(s.kv.used("p", "g1").await.unwrap(), 8 + 2);
    assert_eq!(s.kv.used("q", "dm:71").await.unwrap(), 0);
    assert_eq!(s.kv.get("p", "g1", "shared").await.unwrap().unwrap(), b"12");
    assert_eq!(s.kv.user_rows("72", None).await.unwrap().len(), 1);
    assert_eq!(s.kv.user_rows("171", None).await.unwrap().len(), 1);
    assert_eq!(s.kv.erase_user("71", None).await.unwrap(), 0);
}

async fn kv_personal_values_are_pruned_by_age_and_the_rest_kept(s: Stores) {
    use super::kv::user_scope;
    s.kv.set("p", "g1", "guild", b"1", 100).await.unwrap();
    s.kv.set("p", &user_scope(Some("g1"), "71"), "a", b"1", 100)
        .await
        .unwrap();
    s.kv.set("p", "dm:71", "b", b"1", 100).await.unwrap();
    // Written just now: a day's retention keeps them.
    assert_eq!(s.kv.prune_personal(86_400_000).await.unwrap(), 0);
    // Anything written before the cut-off (a negative age puts it in the future) goes, but
    // only from personal scopes.
    assert_eq!(s.kv.prune_personal(-60_000).await.unwrap(), 2);
    assert_eq!(s.kv.get("p", "g1", "guild").await.unwrap().unwrap(), b"1");
    assert_eq!(s.kv.used("p", "g1").await.unwrap(), 6);
    assert_eq!(s.kv.used("p", "dm:71").await.unwrap(), 0);
}

async fn kv_quota_counts_keys_and_values_and_overwrites(s: Stores) {
    s.kv.set("p", "g", "k1", &[0; 8], 20).await.unwrap(); // 10 bytes
    s.kv.set("p", "g", "k1", &[0; 18], 20).await.unwrap(); // overwrite to 20: fits
    let err = s.kv.set("p", "g", "k2", &[0; 1], 20).await.unwrap_err();
    assert!(
        matches!(
            err,
            KvError::Quota {
                used: 20,
                quota: 20,
                needed: 3
            }
        ),
        "{err}"
    );
    // The refused write changed nothing.
    assert_eq!(s.kv.get("p", "g", "k2").await.unwrap(), None);
    assert_eq!(s.kv.used("p", "g").await.unwrap(), 20);
    // Another guild has its own quota.
    s.kv.set("p", "other", "k2", &[0; 1], 20).await.unwrap();
}

async fn kv_running_total_follows_writes_overwrites_and_deletes(s: Stores) {
    s.kv.set("p", "g", "ab", b"1234", 100).await.unwrap();
    s.kv.set("p", "g", "cd", b"12", 100).await.unwrap();
    assert_eq!(s.kv.used("p", "g").await.unwrap(), 6 + 4);
    s.kv.set("p", "g", "ab", b"1", 100).await.unwrap();
    assert_eq!(s.kv.used("p", "g").await.unwrap(), 3 + 4);
    assert!(s.kv.delete("p", "g", "cd").await.unwrap());
    assert!(!s.kv.delete("p", "g", "cd").await.unwrap());
    assert_eq!(s.kv.used("p", "g").await.unwrap(), 3);
    assert_eq!(s.kv.used("p", "other").await.unwrap(), 0);
    assert!(matches!(
        s.kv.set("p", "g", "big", &[0; 98], 100).await,
        Err(KvError::Quota { used: 3, .. })
    ));
}

async fn kv_lists_keys_by_prefix_sorted(s: Stores) {
    for k in ["vote:b", "vote:a", "other", "vote%", "vote:B"] {
        s.kv.set("p", "g", k, b"x", 1000).await.unwrap();
    }
    // Bytewise order: upper case before lower case; `%` is not a wildcard.
    assert_eq!(
        s.kv.list("p", "g", "vote:", 10).await.unwrap(),
        vec!["vote:B", "vote:a", "vote:b"]
    );
    assert_eq!(
        s.kv.list("p", "g", "vote:", 1).await.unwrap(),
        vec!["vote:B"]
    );
}

async fn kv_counters_add_and_refuse_what_is_not_a_counter(s: Stores) {
    assert_eq!(s.kv.increment("p", "g", "n", 5, 100).await.unwrap(), 5);
    assert_eq!(s.kv.increment("p", "g", "n", -7, 100).await.unwrap(), -2);
    assert_eq!(s.kv.get("p", "g", "n").await.unwrap().unwrap(), b"-2");
    assert_eq!(s.kv.used("p", "g").await.unwrap(), 1 + 2);
    s.kv.set("p", "g", "word", b"hello", 100).await.unwrap();
    let err = s.kv.increment("p", "g", "word", 1, 100).await.unwrap_err();
    assert!(
        matches!(err, KvError::NotACounter(ref m) if m.contains("not a decimal")),
        "{err}"
    );
    s.kv.set("p", "g", "big", i64::MAX.to_string().as_bytes(), 100)
        .await
        .unwrap();
    let err = s.kv.increment("p", "g", "big", 1, 100).await.unwrap_err();
    assert!(
        matches!(err, KvError::NotACounter(ref m) if m.contains("overflow")),
        "{err}"
    );
    // Values that failed stay as they were.
    assert_eq!(s.kv.get("p", "g", "word").await.unwrap().unwrap(), b"hello");
    // A counter that would not fit the quota is refused and unchanged.
    let err =
        s.kv.increment("p", "g", "n", 1_000_000_000, 30)
            .await
            .unwrap_err();
    assert!(matches!(err, KvError::Quota { .. }), "{err}");
    assert_eq!(s.kv.get("p", "g", "n").await.unwrap().unwrap(), b"-2");
}

async fn kv_concurrent_increments_add_up_exactly(s: Stores) {
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let kv = s.kv.clone();
            tokio::spawn(async move {
                for _ in 0..25 {
                    kv.increment("p", "g", "votes", 1, 1000).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.kv.get("p", "g", "votes").await.unwrap().unwrap(), b"200");
    assert_eq!(s.kv.used("p", "g").await.unwrap(), 5 + 3);
}

fn message(guild: &str, channel: &str, n: u32) -> NewMessage {
    NewMessage {
        guild_id: guild.into(),
        channel: channel.into(),
        body: json!({"content": n.to_string()}),
        source: "test".into(),
    }
}

async fn inbox_dedupes_and_completes_once(s: Stores) {
    let seq = s
        .inbox
        .insert("kaltura", "job:1", "{}")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        s.inbox.insert("kaltura", "job:1", "{}").await.unwrap(),
        None
    );
    assert!(s.inbox.contains("job:1").await.unwrap());
    assert!(s.inbox.pending().await.unwrap());
    let msg = message("1", "2", 1);
    let queued = s
        .inbox
        .complete(seq, std::slice::from_ref(&msg), 1000)
        .await;
    assert_eq!(queued.unwrap().unwrap().len(), 1);
    // A second completion (another instance that also worked on it) queues nothing.
    assert_eq!(s.inbox.complete(seq, &[msg], 1000).await.unwrap(), None);
    assert!(!s.inbox.pending().await.unwrap());
    assert_eq!(s.outbox.counts().await.unwrap().pending, 1);
    // Processed keys are forgotten after their age (then they dedupe no more).
    assert_eq!(s.inbox.prune(60_000).await.unwrap(), 0);
    assert_eq!(s.inbox.prune(-60_000).await.unwrap(), 1);
    assert!(!s.inbox.contains("job:1").await.unwrap());
}

async fn inbox_claims_are_exclusive_until_they_run_out(s: Stores) {
    for k in ["a", "b", "c"] {
        s.inbox.insert("kaltura", k, "{}").await.unwrap().unwrap();
    }
    let first = s.inbox.claim("A", 2, 60_000).await.unwrap();
    assert_eq!(first.len(), 2);
    assert!(first[0].seq < first[1].seq && first.iter().all(|r| r.attempts == 1));
    // B gets only what A does not hold.
    let second = s.inbox.claim("B", 10, 60_000).await.unwrap();
    assert_eq!(second.len(), 1);
    assert!(!first.iter().any(|r| r.seq == second[0].seq));
    // A takes its own again (a retry after a failed pass), counting the attempt.
    let again = s.inbox.claim("A", 10, -1).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|r| r.attempts == 2));
    // Those claims ran out at once (-1 ms): B takes them over (and its own again).
    let taken = s.inbox.claim("B", 10, 60_000).await.unwrap();
    assert_eq!(taken.len(), 3);
    let attempts: Vec<u32> = taken.iter().map(|r| r.attempts).collect();
    assert_eq!(attempts, vec![3, 3, 2]);
    for r in &taken {
        assert!(s.inbox.complete(r.seq, &[], 0).await.unwrap().is_some());
    }
    assert!(s.inbox.claim("A", 10, 60_000).await.unwrap().is_empty());
    assert!(!s.inbox.pending().await.unwrap());
}

async fn inbox_claims_given_back_are_taken_at_once(s: Stores) {
    for k in ["a", "b"] {
        s.inbox.insert("kaltura", k, "{}").await.unwrap().unwrap();
    }
    let held = s.inbox.claim("A", 10, 60_000).await.unwrap();
    assert_eq!(held.len(), 2);
    assert!(s.inbox.claim("B", 10, 60_000).await.unwrap().is_empty());
    // A stops cleanly: B takes its events at once, not when the claims run out.
    assert_eq!(s.inbox.release_claims("A").await.unwrap(), 2);
    assert_eq!(s.inbox.claim("B", 10, 60_000).await.unwrap().len(), 2);
    // Finished events are never handed back.
    s.inbox.complete(held[0].seq, &[], 0).await.unwrap();
    assert_eq!(s.inbox.release_claims("B").await.unwrap(), 1);
}

async fn inbox_completes_a_batch_in_order_and_once(s: Stores) {
    let mut seqs = Vec::new();
    for k in ["a", "b", "c"] {
        seqs.push(s.inbox.insert("kaltura", k, "{}").await.unwrap().unwrap());
    }
    // "b" was finished elsewhere already: the batch queues nothing for it.
    assert!(s.inbox.complete(seqs[1], &[], 0).await.unwrap().is_some());
    let batch = [
        Processed {
            seq: seqs[0],
            messages: vec![message("1", "x", 1), message("1", "x", 2)],
        },
        Processed {
            seq: seqs[1],
            messages: vec![message("1", "x", 3)],
        },
        Processed {
            seq: seqs[2],
            messages: vec![message("1", "x", 4), message("2", "y", 5)],
        },
    ];
    // The guild quota counts over the whole batch: guild 1's third message is refused.
    let answers = s.inbox.complete_all(&batch, 2).await.unwrap();
    let sizes: Vec<Option<usize>> = answers.iter().map(|a| a.as_ref().map(Vec::len)).collect();
    assert_eq!(sizes, vec![Some(2), None, Some(2)]);
    let third = &answers[2].as_ref().unwrap();
    assert!(third[0].refused.is_some() && third[1].refused.is_none());
    // The lane hands out the batch's messages in the order given.
    let first = &answers[0].as_ref().unwrap();
    assert!(first[0].id < first[1].id && first[1].id < third[0].id);
    assert_eq!(s.outbox.head("1/x").await.unwrap().unwrap().id, first[0].id);
    assert_eq!(
        s.outbox.head("1/x").await.unwrap().unwrap().body,
        json!({"content": "1"})
    );
    assert_eq!(s.outbox.head("2/y").await.unwrap().unwrap().id, third[1].id);
    // Done is done: the same batch again queues nothing.
    let again = s.inbox.complete_all(&batch, 2).await.unwrap();
    assert!(again.iter().all(Option::is_none));
    assert!(!s.inbox.pending().await.unwrap());
    assert_eq!(
        s.outbox.counts().await.unwrap(),
        OutboxCounts {
            pending: 3,
            dead: 1
        }
    );
}

async fn outbox_guild_over_quota_gets_dead_letters(s: Stores) {
    let msgs = [
        message("1", "9", 1),
        message("1", "9", 2),
        message("1", "9", 3),
        message("2", "9", 4),
    ];
    let queued = s.outbox.push(&msgs, 2).await.unwrap();
    assert!(queued[2].refused.is_some() && queued[3].refused.is_none());
    let ids: Vec<i64> = queued.iter().map(|q| q.id).collect();
    let third = s.outbox.get(ids[2]).await.unwrap().unwrap();
    assert_eq!(third.state, "dead");
    assert!(
        third
            .last_error
            .unwrap()
            .contains("already has 2 messages waiting")
    );
    assert_eq!(
        s.outbox.get(ids[3]).await.unwrap().unwrap().state,
        "pending"
    );
    assert_eq!(
        s.outbox.counts().await.unwrap(),
        OutboxCounts {
            pending: 3,
            dead: 1
        }
    );
    // Dead letters are kept for their retention, then forgotten.
    assert_eq!(s.outbox.prune(60_000, 60_000).await.unwrap(), 0);
    assert_eq!(s.outbox.prune(60_000, -60_000).await.unwrap(), 1);
    let entry = NewAuditEntry {
        guild_id: "1".into(),
        outcome: "ok".into(),
        after: Some(json!({"a": 1})),
        ..Default::default()
    };
    let id = s.audit.add(entry).await.unwrap();
    let listed = s.audit.list("1", 10, None).await.unwrap();
    assert_eq!(
        (listed[0].id, listed[0].after.clone()),
        (id, Some(json!({"a": 1})))
    );
    assert_eq!(s.audit.prune(60_000).await.unwrap(), 0);
    assert_eq!(s.audit.prune(-60_000).await.unwrap(), 1);
}

async fn audit_lists_and_tombstones_what_a_person_did(s: Stores) {
    let by = |guild: &str, actor: &str, target: &str| NewAuditEntry {
        guild_id: guild.into(),
        actor: actor.into(),
        action: "config.update".into(),
        target: target.into(),
        outcome: "ok".into(),
        after: Some(json!(1)),
        ..Default::default()
    };
    s.audit.add(by("g1", "discord:71", "$.a")).await.unwrap();
    s.audit.add(by("g2", "discord:71", "$.b")).await.unwrap();
    s.audit.add(by("g1", "discord:72", "$.c")).await.unwrap();
    s.audit.add(by("g1", "discord:711", "$.d")).await.unwrap();
    let all = s.audit.by_actor("discord:71", None).await.unwrap();
    let targets: Vec<&str> = all.iter().map(|e| e.target.as_str()).collect();
    assert_eq!(targets, ["$.a", "$.b"]);
    assert_eq!(
        s.audit
            .by_actor("discord:71", Some("g2"))
            .await
            .unwrap()
            .len(),
        1
    );
    // Erasing in g1: the entry stays, its actor is the tombstone.
    assert_eq!(
        s.audit
            .tombstone_actor("discord:71", Some("g1"), "erased")
            .await
            .unwrap(),
        1
    );
    let g1 = s.audit.list("g1", 10, None).await.unwrap();
    let actors: Vec<&str> = g1.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["discord:711", "discord:72", "erased"]);
    assert_eq!(g1[2].after, Some(json!(1)));
    assert_eq!(
        s.audit
            .tombstone_actor("discord:71", None, "erased")
            .await
            .unwrap(),
        1
    );
    assert!(
        s.audit
            .by_actor("discord:71", None)
            .await
            .unwrap()
            .is_empty()
    );
}

fn sub(
    guild: &str,
    user: &str,
    topic: super::preferences::Topic,
    value: &str,
) -> super::preferences::Subscription {
    super::preferences::Subscription {
        guild_id: guild.into(),
        user_id: user.into(),
        topic,
        value: value.into(),
        created_at: 1,
    }
}

async fn preferences_subscribe_within_the_limit_and_find_listeners(s: Stores) {
    use super::preferences::{Offer, Subscribed, Topic};
    let p = &s.preferences;
    let add = |g, u, t, v| async move { p.subscribe(&sub(g, u, t, v), 2).await.unwrap() };
    assert_eq!(
        add("g1", "71", Topic::Category, "training").await,
        Subscribed::Added
    );
    assert_eq!(
        add("g1", "71", Topic::Category, "training").await,
        Subscribed::Already
    );
    assert_eq!(add("g1", "71", Topic::Live, "").await, Subscribed::Added);
    assert_eq!(
        add("g1", "71", Topic::Tag, "rust").await,
        Subscribed::TooMany(2)
    );
    // Another guild counts apart.
    assert_eq!(add("g2", "71", Topic::Tag, "rust").await, Subscribed::Added);
    assert_eq!(add("g1", "72", Topic::Tag, "rust").await, Subscribed::Added);
    assert_eq!(
        add("g1", "73", Topic::Category, "training>security").await,
        Subscribed::Added
    );

    let offer = |categories: &[&str], tags: &[&str], live| Offer {
        categories: categories.iter().map(|c| c.to_string()).collect(),
        tags: tags.iter().map(|t| t.to_string()).collect(),
        live,
    };
    let who = |o: Offer| async move { p.listeners("g1", &o, 0).await.unwrap() };
    assert_eq!(
        who(offer(&["training", "training>security"], &[], false)).await,
        ["71", "73"]
    );
    assert_eq!(who(offer(&[], &["rust", "go"], false)).await, ["72"]);
    assert_eq!(who(offer(&[], &["rust"], true)).await, ["71", "72"]);
    assert!(who(offer(&["other"], &[], false)).await.is_empty());
    assert_eq!(
        p.listeners("g2", &offer(&[], &["rust"], false), 0)
            .await
            .unwrap(),
        ["71"]
    );

    assert!(p.unsubscribe("g1", "71", Topic::Live, "").await.unwrap());
    assert!(!p.unsubscribe("g1", "71", Topic::Live, "").await.unwrap());
    let mine = p.list("g1", "71").await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0].topic, mine[0].value.as_str()),
        (Topic::Category, "training")
    );
}

async fn preferences_subscribing_again_renews_and_retention_forgets_the_rest(s: Stores) {
    use super::preferences::{Subscribed, Topic};
    let p = &s.preferences;
    for (user, value) in [("71", "rust"), ("72", "rust"), ("72", "go")] {
        let added = p.subscribe(&sub("g1", user, Topic::Tag, value), 5).await;
        assert_eq!(added.unwrap(), Subscribed::Added);
    }
    // 71 subscribes to `rust` again later: renewed, not added twice.
    let mut again = sub("g1", "71", Topic::Tag, "rust");
    again.created_at = 50;
    assert_eq!(p.subscribe(&again, 5).await.unwrap(), Subscribed::Already);
    assert_eq!(p.list("g1", "71").await.unwrap()[0].created_at, 50);
    // Made (or renewed) before 2: forgotten.
    assert_eq!(p.prune_subscriptions(2).await.unwrap(), 2);
    assert!(p.list("g1", "72").await.unwrap().is_empty());
    assert_eq!(p.list("g1", "71").await.unwrap().len(), 1);
    assert_eq!(p.prune_subscriptions(2).await.unwrap(), 0);
}

async fn preferences_mutes_silence_and_a_persons_rows_are_exported_and_erased(s: Stores) {
    use super::preferences::{Offer, Topic};
    let p = &s.preferences;
    for (g, u) in [("g1", "71"), ("g2", "71"), ("g1", "72")] {
        p.subscribe(&sub(g, u, Topic::Live, ""), 10).await.unwrap();
    }
    let live = Offer {
        live: true,
        ..Default::default()
    };
    p.mute("g1", "71", 5_000).await.unwrap();
    assert_eq!(p.muted_until("g1", "71").await.unwrap(), Some(5_000));
    assert_eq!(p.listeners("g1", &live, 4_999).await.unwrap(), ["72"]);
    // A mute ends by itself.
    assert_eq!(p.listeners("g1", &live, 5_000).await.unwrap(), ["71", "72"]);
    p.mute("g1", "71", 0).await.unwrap();
    assert_eq!(p.muted_until("g1", "71").await.unwrap(), None);
    p.mute("g1", "71", 9_000).await.unwrap();
    p.mute("g1", "72", 1_000).await.unwrap();
    // Ended mutes are forgotten; running ones stay.
    assert_eq!(p.prune_ended_mutes(5_000).await.unwrap(), 1);
    assert_eq!(p.muted_until("g1", "72").await.unwrap(), None);

    let all = p.user_rows("71", None).await.unwrap();
    assert_eq!(all.subscriptions.len(), 2);
    assert_eq!(all.mutes, [("g1".to_string(), 9_000)]);
    assert_eq!(
        p.user_rows("71", Some("g2"))
            .await
            .unwrap()
            .subscriptions
            .len(),
        1
    );
    // Erasing in g1: the subscription and the mute; g2 stays; then everywhere.
    assert_eq!(p.erase_user("71", Some("g1")).await.unwrap(), 2);
    assert_eq!(
        p.user_rows("71", None).await.unwrap().subscriptions.len(),
        1
    );
    assert_eq!(p.erase_user("71", None).await.unwrap(), 1);
    assert!(
        p.user_rows("71", None)
            .await
            .unwrap()
            .subscriptions
            .is_empty()
    );
    assert_eq!(p.list("g1", "72").await.unwrap().len(), 1);
}

/// The one lease a claim gave.
async fn claim_one(s: &Stores, owner: &str, lease_ms: i64) -> LaneLease {
    let mut leases = s.outbox.claim_lanes(owner, lease_ms, 10).await.unwrap();
    assert_eq!(leases.len(), 1, "{leases:?}");
    leases.pop().unwrap()
}

async fn outbox_lanes_hand_out_their_oldest_message(s: Stores) {
    let msgs = [
        message("1", "a", 1),
        message("1", "b", 2),
        message("1", "a", 3),
    ];
    let ids: Vec<i64> = s
        .outbox
        .push(&msgs, 1000)
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    let mut leases = s.outbox.claim_lanes("A", 60_000, 10).await.unwrap();
    leases.sort_by(|x, y| x.lane.cmp(&y.lane));
    let lanes: Vec<&str> = leases.iter().map(|l| l.lane.as_str()).collect();
    assert_eq!(lanes, vec!["1/a", "1/b"]);
    let a = &leases[0];
    assert_eq!(s.outbox.head("1/a").await.unwrap().unwrap().id, ids[0]);
    // A failed head stays the head.
    assert_eq!(
        s.outbox.retry(ids[0], "503", 0, true, a).await.unwrap(),
        Recorded::Done(1)
    );
    assert_eq!(s.outbox.head("1/a").await.unwrap().unwrap().id, ids[0]);
    assert_eq!(
        s.outbox.sent(ids[0], "999", a).await.unwrap(),
        Recorded::Done(())
    );
    assert_eq!(s.outbox.head("1/a").await.unwrap().unwrap().id, ids[2]);
    s.outbox
        .dead(ids[2], "403 Missing Access", a)
        .await
        .unwrap();
    assert!(s.outbox.head("1/a").await.unwrap().is_none());
    assert_eq!(
        s.outbox.counts().await.unwrap(),
        OutboxCounts {
            pending: 1,
            dead: 1
        }
    );
    let dead = s.outbox.list("1", Some("dead"), 10, None).await.unwrap();
    assert_eq!(dead[0].last_error.as_deref(), Some("403 Missing Access"));
    assert_eq!(s.outbox.list("1", None, 10, None).await.unwrap().len(), 3);
    let sent = s.outbox.get(ids[0]).await.unwrap().unwrap();
    assert_eq!((sent.state.as_str(), sent.attempts), ("sent", 2));
    assert_eq!(sent.message_id.as_deref(), Some("999"));
    assert_eq!(sent.body, json!({"content": "1"}));
    // Pruning forgets sent messages only; a fresh one is kept.
    assert_eq!(s.outbox.prune(60_000, 60_000).await.unwrap(), 0);
    assert_eq!(s.outbox.prune(-60_000, 60_000).await.unwrap(), 1);
    assert!(s.outbox.get(ids[0]).await.unwrap().is_none());
    assert_eq!(s.outbox.counts().await.unwrap().dead, 1);
}

async fn outbox_leases_fence_results_after_a_takeover(s: Stores) {
    let ids: Vec<i64> = s
        .outbox
        .push(&[message("1", "c", 1), message("1", "c", 2)], 1000)
        .await
        .unwrap()
        .iter()
        .map(|q| q.id)
        .collect();
    // A holds the lane (a lease that has already run out, as if A stalled).
    let a = claim_one(&s, "A", -1).await;
    // A's claim again keeps its epoch; B cannot have it while A holds it...
    let b_too_early = s.outbox.claim_lanes("B", 60_000, 10).await.unwrap();
    assert!(b_too_early.is_empty() || b_too_early[0].epoch > a.epoch);
    let b = match b_too_early.into_iter().next() {
        Some(b) => b,
        None => claim_one(&s, "B", 60_000).await,
    };
    assert_eq!(b.epoch, a.epoch + 1);
    // ...and once B has it, A's results are not recorded.
    assert_eq!(
        s.outbox.sent(ids[0], "x", &a).await.unwrap(),
        Recorded::LeaseLost
    );
    assert_eq!(
        s.outbox.retry(ids[0], "e", 0, true, &a).await.unwrap(),
        Recorded::LeaseLost
    );
    assert_eq!(
        s.outbox.dead(ids[0], "e", &a).await.unwrap(),
        Recorded::LeaseLost
    );
    assert_eq!(
        s.outbox.get(ids[0]).await.unwrap().unwrap().state,
        "pending"
    );
    // A cannot release or renew what it lost; B renews and records.
    s.outbox.release(&a).await.unwrap();
    assert!(s.outbox.renew("A", 60_000).await.unwrap().is_empty());
    assert_eq!(s.outbox.renew("B", 60_000).await.unwrap(), vec![b.clone()]);
    assert!(
        s.outbox
            .claim_lanes("A", 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.outbox.sent(ids[0], "m1", &b).await.unwrap(),
        Recorded::Done(())
    );
    // A lease is for its own lane only.
    let other = LaneLease {
        lane: "1/other".into(),
        ..b.clone()
    };
    assert_eq!(
        s.outbox.sent(ids[1], "m2", &other).await.unwrap(),
        Recorded::LeaseLost
    );
    // Released, the lane goes to whoever claims it next, with a new epoch.
    s.outbox.release(&b).await.unwrap();
    let a2 = claim_one(&s, "A", 60_000).await;
    assert_eq!(a2.epoch, b.epoch + 1);
    assert_eq!(
        s.outbox.sent(ids[1], "m2", &a2).await.unwrap(),
        Recorded::Done(())
    );
    // Nothing pending: nothing to claim.
    s.outbox.release(&a2).await.unwrap();
    assert!(
        s.outbox
            .claim_lanes("B", 60_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn meta_first_writer_wins(s: Stores) {
    assert_eq!(s.meta.get("k").await.unwrap(), None);
    assert_eq!(s.meta.get_or_insert("k", "first").await.unwrap(), "first");
    assert_eq!(s.meta.get_or_insert("k", "second").await.unwrap(), "first");
    s.meta.set("k", "third").await.unwrap();
    assert_eq!(s.meta.get("k").await.unwrap().as_deref(), Some("third"));
    let prefix = crate::delivery::nonce_prefix(s.meta.as_ref())
        .await
        .unwrap();
    assert_eq!(
        prefix,
        crate::delivery::nonce_prefix(s.meta.as_ref())
            .await
            .unwrap()
    );
}
