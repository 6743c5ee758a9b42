//! `kdhost db import --sqlite DIR`: a single instance's SQLite data moved into an empty
//! PostgreSQL database, in one transaction (all or nothing), keeping ids (pending
//! messages keep their nonces, so one sent just before the move is not sent twice).

use std::path::Path;

use anyhow::{Context, Result, bail};
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;
use tokio_postgres::types::ToSql;

use super::PostgresStore;
use crate::store::sqlite::SqliteStore;

/// Rows read from SQLite per round.
const CHUNK: i64 = 2000;

/// Rows moved, per table.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Imported {
    pub kv: u64,
    pub meta: u64,
    pub inbox: u64,
    pub outbox: u64,
    pub audit: u64,
    /// Notification subscriptions and mutes.
    pub preferences: u64,
}

/// How a column is read from SQLite and written to PostgreSQL.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Int4,
    Text,
    Blob,
    /// JSON kept as text in SQLite, JSONB in PostgreSQL.
    Json,
}

/// One value on its way.
enum Cell {
    Int(Option<i64>),
    Int4(Option<i32>),
    Text(Option<String>),
    Blob(Option<Vec<u8>>),
    Json(Option<Value>),
}

impl Cell {
    fn read(r: &rusqlite::Row<'_>, i: usize, col: Col) -> rusqlite::Result<Cell> {
        Ok(match col {
            Col::Int => Cell::Int(r.get(i)?),
            Col::Int4 => Cell::Int4(r.get(i)?),
            Col::Text => Cell::Text(r.get(i)?),
            Col::Blob => Cell::Blob(r.get(i)?),
            // Unreadable JSON (never written by the host) becomes `null`, not a failure.
            Col::Json => Cell::Json(
                r.get::<_, Option<String>>(i)?
                    .map(|s| serde_json::from_str(&s).unwrap_or(Value::Null)),
            ),
        })
    }

    fn param(&self) -> &(dyn ToSql + Sync) {
        match self {
            Cell::Int(v) => v,
            Cell::Int4(v) => v,
            Cell::Text(v) => v,
            Cell::Blob(v) => v,
            Cell::Json(v) => v,
        }
    }
}

/// A table to move: its columns, the integer key it is read in chunks by (none: at once),
/// and which rows.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Col)],
    chunk_by: Option<&'static str>,
    filter: &'static str,
}

const TABLES: [Table; 7] = [
    Table {
        name: "kv",
        columns: &[
            ("plugin", Col::Text),
            ("scope", Col::Text),
            ("key", Col::Text),
            ("value", Col::Blob),
            ("updated_at", Col::Int),
        ],
        chunk_by: None,
        filter: "TRUE",
    },
    Table {
        name: "meta",
        columns: &[("key", Col::Text), ("value", Col::Text)],
        chunk_by: None,
        // SQLite's own bookkeeping.
        filter: "key <> 'kv_usage_counted'",
    },
    Table {
        name: "inbox",
        columns: &[
            ("seq", Col::Int),
            ("source", Col::Text),
            ("dedupe_key", Col::Text),
            ("received_at", Col::Int),
            ("event", Col::Text),
            ("processed_at", Col::Int),
            ("attempts", Col::Int4),
        ],
        chunk_by: Some("seq"),
        filter: "TRUE",
    },
    Table {
        name: "outbox",
        columns: &[
            ("id", Col::Int),
            ("guild_id", Col::Text),
            ("channel", Col::Text),
            ("lane", Col::Text),
            ("body", Col::Json),
            ("source", Col::Text),
            ("created_at", Col::Int),
            ("state", Col::Text),
            ("attempts", Col::Int),
            ("next_at", Col::Int),
            ("last_error", Col::Text),
            ("message_id", Col::Text),
            ("done_at", Col::Int),
        ],
        chunk_by: Some("id"),
        filter: "TRUE",
    },
    Table {
        name: "audit",
        columns: &[
            ("id", Col::Int),
            ("at", Col::Int),
            ("guild_id", Col::Text),
            ("actor", Col::Text),
            ("action", Col::Text),
            ("target", Col::Text),
            ("before", Col::Json),
            ("after", Col::Json),
            ("outcome", Col::Text),
        ],
        chunk_by: Some("id"),
        filter: "TRUE",
    },
    Table {
        name: "subscriptions",
        columns: &[
            ("guild_id", Col::Text),
            ("user_id", Col::Text),
            ("topic", Col::Text),
            ("value", Col::Text),
            ("created_at", Col::Int),
        ],
        chunk_by: None,
        filter: "TRUE",
    },
    Table {
        name: "mutes",
        columns: &[
            ("guild_id", Col::Text),
            ("user_id", Col::Text),
            ("until_ms", Col::Int),
        ],
        chunk_by: None,
        filter: "TRUE",
    },
];

pub async fn import_sqlite(
    pg: &PostgresStore,
    dir: &Path,
    mut progress: impl FnMut(&str, u64),
) -> Result<Imported> {
    let file = dir.join("kdhost.sqlite3");
    if !file.is_file() {
        bail!(
            "no SQLite database at {} (the instance's KD_DATA folder holds kdhost.sqlite3)",
            file.display()
        );
    }
    // Brings an older database's schema up to date first (the instance must be stopped).
    SqliteStore::open(dir)?;
    let lite = Connection::open_with_flags(&file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", file.display()))?;
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let mut held = Vec::new();
    for t in &TABLES {
        let n: i64 = tx
            .query_one(&format!("SELECT COUNT(*) FROM {}", t.name), &[])
            .await?
            .get(0);
        if n > 0 {
            held.push(format!("{n} {} rows", t.name));
        }
    }
    if !held.is_empty() {
        bail!(
            "the database at {} already holds data ({}): import into an empty database (create it, then `kdhost db migrate`)",
            pg.target(),
            held.join(", ")
        );
    }
    let mut done = Imported::default();
    for t in &TABLES {
        let n = copy(&lite, &tx, t, &mut progress).await?;
        match t.name {
            "kv" => done.kv = n,
            "meta" => done.meta = n,
            "inbox" => done.inbox = n,
            "outbox" => done.outbox = n,
            "audit" => done.audit = n,
            _ => done.preferences += n,
        }
    }
    // Lanes with pending messages, and new rows numbered after the imported ones.
    tx.batch_execute(
        "INSERT INTO outbox_lanes (lane) SELECT DISTINCT lane FROM outbox WHERE state = 'pending'
             ON CONFLICT DO NOTHING;
         SELECT setval(pg_get_serial_sequence('inbox', 'seq'), GREATEST((SELECT MAX(seq) FROM inbox), 1));
         SELECT setval(pg_get_serial_sequence('outbox', 'id'), GREATEST((SELECT MAX(id) FROM outbox), 1));
         SELECT setval(pg_get_serial_sequence('audit', 'id'), GREATEST((SELECT MAX(id) FROM audit), 1));",
    )
    .await?;
    tx.commit().await.context("committing the import")?;
    Ok(done)
}

/// Moves one table's rows; returns how many.
async fn copy(
    lite: &Connection,
    tx: &deadpool_postgres::Transaction<'_>,
    t: &Table,
    progress: &mut impl FnMut(&str, u64),
) -> Result<u64> {
    let names: Vec<&str> = t.columns.iter().map(|c| c.0).collect();
    let placeholders: Vec<String> = (1..=names.len()).map(|i| format!("${i}")).collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {} ({}) VALUES ({})",
            t.name,
            names.join(", "),
            placeholders.join(", ")
        ))
        .await?;
    let mut after = i64::MIN;
    let mut moved = 0u64;
    loop {
        let select = match t.chunk_by {
            Some(key) => format!(
                "SELECT {} FROM {} WHERE {} AND {key} > {after} ORDER BY {key} LIMIT {CHUNK}",
                names.join(", "),
                t.name,
                t.filter
            ),
            None => format!(
                "SELECT {} FROM {} WHERE {}",
                names.join(", "),
                t.name,
                t.filter
            ),
        };
        let rows: Vec<Vec<Cell>> = {
            let mut stmt = lite.prepare(&select)?;
            stmt.query_map([], |r| {
                t.columns
                    .iter()
                    .enumerate()
                    .map(|(i, (_, col))| Cell::read(r, i, *col))
                    .collect()
            })?
            .collect::<Result<_, _>>()
            .with_context(|| format!("reading SQLite table {}", t.name))?
        };
        if rows.is_empty() {
            if moved == 0 {
                progress(t.name, 0);
            }
            break;
        }
        for row in &rows {
            let params: Vec<&(dyn ToSql + Sync)> = row.iter().map(Cell::param).collect();
            tx.execute(&insert, &params)
                .await
                .with_context(|| format!("writing table {}", t.name))?;
        }
        moved += rows.len() as u64;
        progress(t.name, moved);
        match (t.chunk_by, rows.last().and_then(|r| r.first())) {
            (Some(_), Some(Cell::Int(Some(last)))) => after = *last,
            _ => break,
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::store::{NewAuditEntry, NewMessage, Recorded, Stores};

    #[tokio::test]
    async fn a_single_instance_moves_in_whole_and_only_into_an_empty_database() {
        let dir = tempfile::tempdir().unwrap();
        let lite = Stores::sqlite(dir.path()).unwrap();
        lite.kv
            .set("poll", "g1", "q", b"Lunch?", 1000)
            .await
            .unwrap();
        lite.kv
            .increment("poll", "g1", "votes", 7, 1000)
            .await
            .unwrap();
        let prefix = crate::delivery::nonce_prefix(lite.meta.as_ref())
            .await
            .unwrap();
        let seq = lite
            .inbox
            .insert("kaltura", "job:1", "{}")
            .await
            .unwrap()
            .unwrap();
        let msg = |n: u32| NewMessage {
            guild_id: "1".into(),
            channel: "c".into(),
            body: json!({"content": n.to_string()}),
            source: "test".into(),
        };
        let queued = lite
            .inbox
            .complete(seq, &[msg(1), msg(2)], 100)
            .await
            .unwrap()
            .unwrap();
        let lease = lite
            .outbox
            .claim_lanes("old", 60_000, 10)
            .await
            .unwrap()
            .remove(0);
        assert_eq!(
            lite.outbox.sent(queued[0].id, "m1", &lease).await.unwrap(),
            Recorded::Done(())
        );
        lite.audit
            .add(NewAuditEntry {
                guild_id: "1".into(),
                actor: "discord:5".into(),
                action: "config.update".into(),
                after: Some(json!({"x": 1})),
                outcome: "ok".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        drop(lite);

        let (pg, url) = crate::store::conformance::postgres().await;
        let store = super::PostgresStore::connect(&url).await.unwrap();
        assert!(
            super::super::migrations::apply(&store)
                .await
                .unwrap()
                .is_empty()
        );
        let mut seen = Vec::new();
        let done = super::import_sqlite(&store, dir.path(), |t, n| seen.push((t.to_string(), n)))
            .await
            .unwrap();
        assert_eq!((done.kv, done.inbox, done.outbox, done.audit), (2, 1, 2, 1));
        assert!(seen.contains(&("outbox".to_string(), 2)));

        assert_eq!(
            pg.kv.get("poll", "g1", "q").await.unwrap().unwrap(),
            b"Lunch?"
        );
        assert_eq!(
            pg.kv
                .increment("poll", "g1", "votes", 1, 1000)
                .await
                .unwrap(),
            8
        );
        assert_eq!(pg.kv.used("poll", "g1").await.unwrap(), (1 + 6) + (5 + 1));
        // The nonce prefix moved: the pending message keeps its nonce.
        assert_eq!(
            crate::delivery::nonce_prefix(pg.meta.as_ref())
                .await
                .unwrap(),
            prefix
        );
        assert!(pg.inbox.contains("job:1").await.unwrap());
        assert!(!pg.inbox.pending().await.unwrap());
        // The pending message is the head of its lane, with its id; new ids come after.
        let lease = pg
            .outbox
            .claim_lanes("new", 60_000, 10)
            .await
            .unwrap()
            .remove(0);
        let head = pg.outbox.head(&lease.lane).await.unwrap().unwrap();
        assert_eq!(
            (head.id, head.body.clone()),
            (queued[1].id, json!({"content": "2"}))
        );
        let next = pg.outbox.push(&[msg(3)], 100).await.unwrap();
        assert!(next[0].id > queued[1].id);
        let audit = pg.audit.list("1", 10, None).await.unwrap();
        assert_eq!(audit[0].after, Some(json!({"x": 1})));

        // A second import is refused and changes nothing.
        let err = super::import_sqlite(&store, dir.path(), |_, _| {})
            .await
            .unwrap_err();
        assert!(err.to_string().contains("already holds data"), "{err}");
        assert_eq!(pg.outbox.counts().await.unwrap().pending, 2);
    }
}
