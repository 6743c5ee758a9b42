//! The embedded backend: SQLite (bundled, WAL) in `DATA/kdhost.sqlite3`, one connection,
//! one process (several instances need PostgreSQL).
//! Every call runs on tokio's blocking pool ([`SqliteStore::call`]), so a slow disk never
//! stalls a runtime worker.

use std::path::Path;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use rusqlite::Connection;

mod audit;
mod inbox;
mod kv;
mod meta;
mod outbox;
mod preferences;

pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

/// Adds a column that a database made by an older version lacks.
fn add_column(conn: &Connection, table: &str, column: &str, decl: &str) -> rusqlite::Result<()> {
    let has: bool = conn
        .prepare(&format!(
            "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
        ))?
        .exists([column])?;
    if !has {
        conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {decl}"))?;
    }
    Ok(())
}

/// One process owns an SQLite database: claims and leases left by a previous run of it
/// (a crash) are void, so its work resumes at once instead of when they run out.
fn forget_claims(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "UPDATE inbox SET claimed_by = NULL, claimed_until = NULL WHERE processed_at IS NULL;
         UPDATE outbox_lanes SET owner = NULL, expires_at = 0 WHERE owner IS NOT NULL;",
    )
}

impl SqliteStore {
    /// Opens (or creates) `DIR/kdhost.sqlite3`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join("kdhost.sqlite3");
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        Self::init(conn)
    }

    /// A private in-memory database.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;",
        )
        .context("opening the database")?;
        conn.execute_batch(kv::SCHEMA)
            .and_then(|_| conn.execute_batch(meta::SCHEMA))
            .and_then(|_| conn.execute_batch(inbox::SCHEMA))
            .and_then(|_| conn.execute_batch(outbox::SCHEMA))
            .and_then(|_| conn.execute_batch(audit::SCHEMA))
            .and_then(|_| conn.execute_batch(preferences::SCHEMA))
            .and_then(|_| add_column(&conn, "inbox", "attempts", "INTEGER NOT NULL DEFAULT 0"))
            .and_then(|_| add_column(&conn, "inbox", "claimed_by", "TEXT"))
            .and_then(|_| add_column(&conn, "inbox", "claimed_until", "INTEGER"))
            .and_then(|_| outbox::lanes_once(&conn))
            .and_then(|_| forget_claims(&conn))
            .and_then(|_| kv::count_usage_once(&conn))
            .and_then(|_| add_column(&conn, "kv", "updated_at", "INTEGER NOT NULL DEFAULT 0"))
            .and_then(|_| kv::stamp_write_times(&conn))
            .context("initialising the database schema")?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool. A panic in `f` resumes here.
    async fn call<T, F>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let conn = self.conn.clone();
        let done = tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite inconsistent: use it.
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn)
        })
        .await;
        match done {
            Ok(v) => v,
            Err(e) => match e.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                Err(e) => panic!("a storage call was cancelled: {e}"),
            },
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::store::Stores;

    /// A fresh in-memory database.
    pub fn stores() -> Stores {
        Stores::in_memory().unwrap()
    }
}
