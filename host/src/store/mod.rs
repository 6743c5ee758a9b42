//! Embedded storage: SQLite (bundled, WAL) under the data directory.
//!
//! One narrow API for everything the host persists: plugin kv, small host metadata (such
//! as the hash of the last command sync), the webhook inbox (dedupe), the delivery outbox
//! and the audit log. Calls are short and synchronous.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use rusqlite::{Connection, OptionalExtension, params};

pub mod audit;
pub mod inbox;
pub mod outbox;

/// Milliseconds since the Unix epoch (the stored timestamps).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

pub struct Store {
    conn: Mutex<Connection>,
    /// Messages one guild may have waiting in the outbox (`KD_DELIVERY_GUILD_QUOTA`).
    guild_quota: std::sync::atomic::AtomicU64,
}

/// Why a kv write was refused.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("quota exceeded: {used} of {quota} bytes used, this write needs {needed} more")]
    Quota { used: u64, quota: u64, needed: u64 },
    #[error("storage error: {0}")]
    Db(#[from] rusqlite::Error),
    /// A counter operation on a value that is not a decimal integer, or that would overflow.
    #[error("{0}")]
    NotACounter(String),
}

/// Moves the running total of a plugin's space in a scope by `delta` bytes.
fn add_usage(conn: &Connection, plugin: &str, scope: &str, delta: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO kv_usage (plugin, scope, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (plugin, scope) DO UPDATE SET bytes = bytes + excluded.bytes",
        params![plugin, scope, delta],
    )?;
    Ok(())
}

/// Upserts one value if the plugin's space in this scope stays within `quota` bytes.
fn write_within_quota(
    tx: &rusqlite::Transaction<'_>,
    plugin: &str,
    scope: &str,
    key: &str,
    value: &[u8],
    quota: u64,
) -> Result<(), KvError> {
    // A running total per (plugin, scope), kept in the same transactions as the rows: a
    // write costs two key lookups, not a sum over every row the plugin has.
    let used: u64 = tx
        .query_row(
            "SELECT bytes FROM kv_usage WHERE plugin = ?1 AND scope = ?2",
            params![plugin, scope],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0) as u64;
    let old: u64 = tx
        .query_row(
            "SELECT LENGTH(key) + LENGTH(value) FROM kv WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
            params![plugin, scope, key],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .unwrap_or(0) as u64;
    let new = (key.len() + value.len()) as u64;
    if used - old + new > quota {
        return Err(KvError::Quota {
            used,
            quota,
            needed: new.saturating_sub(old),
        });
    }
    tx.execute(
        "INSERT INTO kv (plugin, scope, key, value) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (plugin, scope, key) DO UPDATE SET value = excluded.value",
        params![plugin, scope, key, value],
    )?;
    add_usage(tx, plugin, scope, new as i64 - old as i64)?;
    Ok(())
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

/// A database from before the running totals: count them once.
fn count_usage_once(conn: &Connection) -> rusqlite::Result<()> {
    let counted: bool = conn
        .prepare("SELECT 1 FROM meta WHERE key = 'kv_usage_counted'")?
        .exists([])?;
    if !counted {
        conn.execute_batch(
            "DELETE FROM kv_usage;
             INSERT INTO kv_usage (plugin, scope, bytes)
                 SELECT plugin, scope, SUM(LENGTH(key) + LENGTH(value)) FROM kv GROUP BY plugin, scope;
             INSERT INTO meta (key, value) VALUES ('kv_usage_counted', '1');",
        )?;
    }
    Ok(())
}

impl Store {
    /// Opens (or creates) `DIR/kdhost.sqlite3`.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating data directory {}", dir.display()))?;
        let path = dir.join("kdhost.sqlite3");
        let conn =
            Connection::open(&path).with_context(|| format!("opening {}", path.display()))?;
        Self::init(conn)
    }

    /// A private in-memory database (tests, `plugin check`).
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS kv (
                 plugin TEXT NOT NULL,
                 scope  TEXT NOT NULL,
                 key    TEXT NOT NULL,
                 value  BLOB NOT NULL,
                 PRIMARY KEY (plugin, scope, key)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS kv_usage (
                 plugin TEXT NOT NULL,
                 scope  TEXT NOT NULL,
                 bytes  INTEGER NOT NULL,
                 PRIMARY KEY (plugin, scope)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS meta (
                 key   TEXT PRIMARY KEY,
                 value TEXT NOT NULL
             );",
        )
        .context("initialising the database schema")?;
        conn.execute_batch(inbox::SCHEMA)
            .and_then(|_| conn.execute_batch(outbox::SCHEMA))
            .and_then(|_| conn.execute_batch(audit::SCHEMA))
            .and_then(|_| add_column(&conn, "inbox", "attempts", "INTEGER NOT NULL DEFAULT 0"))
            .and_then(|_| count_usage_once(&conn))
            .context("initialising the database schema")?;
        Ok(Self {
            conn: Mutex::new(conn),
            guild_quota: std::sync::atomic::AtomicU64::new(1000),
        })
    }

    /// Sets how many messages one guild may have waiting in the outbox.
    pub fn set_guild_quota(&self, n: u64) {
        self.guild_quota
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn guild_quota(&self) -> u64 {
        self.guild_quota.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        // A panic while holding the lock cannot leave SQLite inconsistent: use the connection.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn kv_get(&self, plugin: &str, scope: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT value FROM kv WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
                params![plugin, scope, key],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Writes a value unless the (plugin, scope) would then hold more than `quota` bytes
    /// (keys and values counted).
    pub fn kv_set(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), KvError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        write_within_quota(&tx, plugin, scope, key, value, quota)?;
        tx.commit()?;
        Ok(())
    }

    /// Adds `delta` to the decimal integer stored at `key` (absent = 0) in one transaction
    /// and returns the new value; the value stays decimal text, readable with `kv_get`.
    pub fn kv_increment(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        delta: i64,
        quota: u64,
    ) -> Result<i64, KvError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let old: Option<Vec<u8>> = tx
            .query_row(
                "SELECT value FROM kv WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
                params![plugin, scope, key],
                |r| r.get(0),
            )
            .optional()?;
        let current = match old {
            None => 0,
            Some(v) => std::str::from_utf8(&v)
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .ok_or_else(|| {
                    KvError::NotACounter(format!(
                        "`{key}` holds a value that is not a decimal integer"
                    ))
                })?,
        };
        let new = current.checked_add(delta).ok_or_else(|| {
            KvError::NotACounter(format!("`{key}` would overflow a 64-bit integer"))
        })?;
        write_within_quota(&tx, plugin, scope, key, new.to_string().as_bytes(), quota)?;
        tx.commit()?;
        Ok(new)
    }

    pub fn kv_delete(&self, plugin: &str, scope: &str, key: &str) -> Result<bool, KvError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let size: Option<i64> = tx
            .query_row(
                "DELETE FROM kv WHERE plugin = ?1 AND scope = ?2 AND key = ?3
                 RETURNING LENGTH(key) + LENGTH(value)",
                params![plugin, scope, key],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(n) = size {
            add_usage(&tx, plugin, scope, -n)?;
        }
        tx.commit()?;
        Ok(size.is_some())
    }

    /// Bytes a plugin keeps in a scope (keys and values), from the running total.
    pub fn kv_used(&self, plugin: &str, scope: &str) -> Result<u64, KvError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT bytes FROM kv_usage WHERE plugin = ?1 AND scope = ?2",
                params![plugin, scope],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .unwrap_or(0)
            .max(0) as u64)
    }

    /// Keys with the prefix, sorted, at most `limit`.
    pub fn kv_list(
        &self,
        plugin: &str,
        scope: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, KvError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT key FROM kv WHERE plugin = ?1 AND scope = ?2 AND substr(key, 1, length(?3)) = ?3
             ORDER BY key LIMIT ?4",
        )?;
        let keys = stmt
            .query_map(params![plugin, scope, prefix, limit as i64], |r| r.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        Ok(keys)
    }

    pub fn meta_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    pub fn meta_set(&self, key: &str, value: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_running_total_follows_writes_overwrites_and_deletes() {
        let s = Store::in_memory().unwrap();
        s.kv_set("p", "g", "ab", b"1234", 100).unwrap();
        s.kv_set("p", "g", "cd", b"12", 100).unwrap();
        assert_eq!(s.kv_used("p", "g").unwrap(), 6 + 4);
        s.kv_set("p", "g", "ab", b"1", 100).unwrap();
        assert_eq!(s.kv_used("p", "g").unwrap(), 3 + 4);
        assert!(s.kv_delete("p", "g", "cd").unwrap());
        assert!(!s.kv_delete("p", "g", "cd").unwrap());
        assert_eq!(s.kv_used("p", "g").unwrap(), 3);
        assert_eq!(s.kv_used("p", "other").unwrap(), 0);
        assert!(matches!(
            s.kv_set("p", "g", "big", &[0; 98], 100),
            Err(KvError::Quota { used: 3, .. })
        ));
    }

    use super::*;

    #[test]
    fn kv_is_namespaced_by_plugin_and_scope() {
        let s = Store::in_memory().unwrap();
        s.kv_set("a", "g1", "k", b"1", 100).unwrap();
        s.kv_set("b", "g1", "k", b"2", 100).unwrap();
        s.kv_set("a", "g2", "k", b"3", 100).unwrap();
        assert_eq!(s.kv_get("a", "g1", "k").unwrap().unwrap(), b"1");
        assert_eq!(s.kv_get("b", "g1", "k").unwrap().unwrap(), b"2");
        assert_eq!(s.kv_get("a", "g2", "k").unwrap().unwrap(), b"3");
        assert!(s.kv_delete("a", "g1", "k").unwrap());
        assert!(!s.kv_delete("a", "g1", "k").unwrap());
        assert_eq!(s.kv_get("a", "g1", "k").unwrap(), None);
    }

    #[test]
    fn quota_counts_keys_and_values_and_overwrites() {
        let s = Store::in_memory().unwrap();
        s.kv_set("p", "g", "k1", &[0; 8], 20).unwrap(); // 10 bytes
        s.kv_set("p", "g", "k1", &[0; 18], 20).unwrap(); // overwrite to 20: fits
        let err = s.kv_set("p", "g", "k2", &[0; 1], 20).unwrap_err();
        assert!(
            matches!(
                err,
                KvError::Quota {
                    used: 20,
                    quota: 20,
                    ..
                }
            ),
            "{err}"
        );
        // Another guild has its own quota.
        s.kv_set("p", "other", "k2", &[0; 1], 20).unwrap();
    }

    #[test]
    fn list_keys_by_prefix_is_sorted() {
        let s = Store::in_memory().unwrap();
        for k in ["vote:b", "vote:a", "other", "vote%"] {
            s.kv_set("p", "g", k, b"x", 1000).unwrap();
        }
        assert_eq!(
            s.kv_list("p", "g", "vote:", 10).unwrap(),
            vec!["vote:a", "vote:b"]
        );
    }
}
