//! Benchmarks of [people] 1, printed as JSON lines: a person's export and erasure with 100
//! plugin values (across 5 servers and their DMs), 20 audit entries and 5 notification
//! subscriptions, on SQLite and on PostgreSQL (a private server, skipped with a note when
//! Debian's `postgresql` is missing); the baseline in the same run is one plain kv read.
//!
//! `cargo bench -p kdhost --bench privacy` (env BENCH_PEOPLE to change the count).

use std::sync::Arc;
use std::time::Instant;

use kdhost::privacy::{ErasureNotices, Privacy, Requester};
use kdhost::store::kv::user_scope;
use kdhost::store::preferences::{Subscription, Topic};
use kdhost::store::{NewAuditEntry, Stores};
use serde_json::json;

mod support;
use support::{ratio, stats};

/// Erasures are announced nowhere here: the bench measures the stores.
struct Nobody;

#[async_trait::async_trait]
impl ErasureNotices for Nobody {
    async fn announce(&self, _: &kdhost::events::PrivacyErase) -> anyhow::Result<()> {
        Ok(())
    }
}

fn user(i: usize) -> String {
    format!("7000000000{i:08}")
}

async fn seed(stores: &Stores, people: usize) {
    for i in 0..people {
        let u = user(i);
        for v in 0..100 {
            let guild = (v % 6 != 5).then(|| format!("60000000000000000{}", v % 6));
            let scope = user_scope(guild.as_deref(), &u);
            stores
                .kv
                .set("poll", &scope, &format!("vote:{v}"), b"1", 1 << 30)
                .await
                .unwrap();
        }
        for a in 0..20 {
            stores
                .audit
                .add(NewAuditEntry {
                    guild_id: "600000000000000000".into(),
                    actor: format!("discord:{u}"),
                    action: "config.update".into(),
                    target: format!("$.x{a}"),
                    outcome: "ok".into(),
                    after: Some(json!(a)),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
        for t in 0..5 {
            let s = Subscription {
                guild_id: "600000000000000000".into(),
                user_id: u.clone(),
                topic: Topic::Tag,
                value: format!("t{t}"),
                created_at: 1,
            };
            stores.preferences.subscribe(&s, 10).await.unwrap();
        }
    }
}

async fn run(label: &str, stores: Stores, people: usize) {
    seed(&stores, people).await;
    let p = Privacy {
        kv: stores.kv.clone(),
        preferences: stores.preferences.clone(),
        audit: stores.audit.clone(),
        kaltura: None,
        notices: Arc::new(Nobody),
    };
    // One timing per person, each step over every person before the next step.
    macro_rules! each {
        ($name:expr, |$i:ident| $body:expr) => {{
            let mut lat = Vec::with_capacity(people);
            let started = Instant::now();
            for $i in 0..people {
                let t = Instant::now();
                $body;
                lat.push(t.elapsed());
            }
            stats(&format!("{label}/{}", $name), lat, started.elapsed())
        }};
    }
    let base = each!("kv_get_one_value", |i| {
        let scope = user_scope(Some("600000000000000000"), &user(i));
        stores
            .kv
            .get("poll", &scope, "vote:0")
            .await
            .unwrap()
            .unwrap()
    });
    let export = each!("export_100_values_20_audit_5_subscriptions", |i| {
        let e = p.export(&user(i)).await.unwrap();
        assert_eq!((e.plugin_data.len(), e.audit.len()), (100, 20));
    });
    ratio(&format!("{label}/export_vs_one_kv_get"), &export, &base);
    let erase = each!("erase_everywhere", |i| {
        let e = p
            .erase(&user(i), None, Requester::Themselves)
            .await
            .unwrap();
        assert_eq!(
            (e.plugin_values, e.audit_entries, e.preferences),
            (100, 20, 5)
        );
    });
    ratio(&format!("{label}/erase_vs_one_kv_get"), &erase, &base);
}

#[tokio::main]
async fn main() {
    let people: usize = std::env::var("BENCH_PEOPLE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!(
        "{}",
        json!({"machine": support::machine(), "people": people})
    );
    let dir = tempfile::tempdir().unwrap();
    run("sqlite", Stores::sqlite(dir.path()).unwrap(), people).await;
    match testkit::servers::PostgresServer::start() {
        Ok(pg) => {
            let url = pg.create_database("bench").unwrap();
            let store = kdhost::store::postgres::PostgresStore::connect(&url)
                .await
                .unwrap();
            run("postgresql", Stores::all_in(Arc::new(store)), people).await;
        }
        Err(e) => println!(
            "{}",
            json!({"skipped": "postgresql", "why": format!("{e:#}")})
        ),
    }
}
