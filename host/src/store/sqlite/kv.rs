//! Plugin kv in SQLite: rows per (plugin, scope, key) and a running total per (plugin,
//! scope) kept in the same transactions, so a quota check costs two key lookups.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::kv::{KvError, KvStore};

pub(super) const SCHEMA: &str = "
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
";

impl From<rusqlite::Error> for KvError {
    fn from(e: rusqlite::Error) -> Self {
        KvError::Backend(e.into())
    }
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

/// A database from before the running totals: count them once.
pub(super) fn count_usage_once(conn: &Connection) -> rusqlite::Result<()> {
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

fn read(
    conn: &Connection,
    plugin: &str,
    scope: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, KvError> {
    Ok(conn
        .query_row(
            "SELECT value FROM kv WHERE plugin = ?1 AND scope = ?2 AND key = ?3",
            params![plugin, scope, key],
            |r| r.get(0),
        )
        .optional()?)
}

fn increment(
    conn: &mut Connection,
    plugin: &str,
    scope: &str,
    key: &str,
    delta: i64,
    quota: u64,
) -> Result<i64, KvError> {
    let tx = conn.transaction()?;
    let current = match read(&tx, plugin, scope, key)? {
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
    let new = current
        .checked_add(delta)
        .ok_or_else(|| KvError::NotACounter(format!("`{key}` would overflow a 64-bit integer")))?;
    write_within_quota(&tx, plugin, scope, key, new.to_string().as_bytes(), quota)?;
    tx.commit()?;
    Ok(new)
}

fn delete(conn: &mut Connection, plugin: &str, scope: &str, key: &str) -> Result<bool, KvError> {
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

fn list(
    conn: &Connection,
    plugin: &str,
    scope: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<String>, KvError> {
    let mut stmt = conn.prepare_cached(
        "SELECT key FROM kv WHERE plugin = ?1 AND scope = ?2 AND substr(key, 1, length(?3)) = ?3
         ORDER BY key LIMIT ?4",
    )?;
    let keys = stmt
        .query_map(params![plugin, scope, prefix, limit as i64], |r| r.get(0))?
        .collect::<Result<Vec<String>, _>>()?;
    Ok(keys)
}

#[async_trait]
impl KvStore for SqliteStore {
    async fn get(&self, plugin: &str, scope: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let (p, s, k) = (plugin.to_owned(), scope.to_owned(), key.to_owned());
        self.call(move |c| read(c, &p, &s, &k)).await
    }

    async fn set(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), KvError> {
        let (p, s, k, v) = (
            plugin.to_owned(),
            scope.to_owned(),
            key.to_owned(),
            value.to_vec(),
        );
        self.call(move |c| {
            let tx = c.transaction()?;
            write_within_quota(&tx, &p, &s, &k, &v, quota)?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn increment(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        delta: i64,
        quota: u64,
    ) -> Result<i64, KvError> {
        let (p, s, k) = (plugin.to_owned(), scope.to_owned(), key.to_owned());
        self.call(move |c| increment(c, &p, &s, &k, delta, quota))
            .await
    }

    async fn delete(&self, plugin: &str, scope: &str, key: &str) -> Result<bool, KvError> {
        let (p, s, k) = (plugin.to_owned(), scope.to_owned(), key.to_owned());
        self.call(move |c| delete(c, &p, &s, &k)).await
    }

    async fn used(&self, plugin: &str, scope: &str) -> Result<u64, KvError> {
        let (p, s) = (plugin.to_owned(), scope.to_owned());
        self.call(move |c| {
            let bytes: Option<i64> = c
                .query_row(
                    "SELECT bytes FROM kv_usage WHERE plugin = ?1 AND scope = ?2",
                    params![p, s],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(bytes.unwrap_or(0).max(0) as u64)
        })
        .await
    }

    async fn list(
        &self,
        plugin: &str,
        scope: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, KvError> {
        let (p, s, x) = (plugin.to_owned(), scope.to_owned(), prefix.to_owned());
        self.call(move |c| list(c, &p, &s, &x, limit)).await
    }
}

#[cfg(test)]
mod tests {

    #[tokio::test]
    async fn the_running_total_follows_writes_overwrites_and_deletes() {
        let s = crate::store::sqlite::tests::stores();
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

    use super::*;

    #[tokio::test]
    async fn kv_is_namespaced_by_plugin_and_scope() {
        let s = crate::store::sqlite::tests::stores();
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

    #[tokio::test]
    async fn quota_counts_keys_and_values_and_overwrites() {
        let s = crate::store::sqlite::tests::stores();
        s.kv.set("p", "g", "k1", &[0; 8], 20).await.unwrap(); // 10 bytes
        s.kv.set("p", "g", "k1", &[0; 18], 20).await.unwrap(); // overwrite to 20: fits
        let err = s.kv.set("p", "g", "k2", &[0; 1], 20).await.unwrap_err();
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
        s.kv.set("p", "other", "k2", &[0; 1], 20).await.unwrap();
    }

    #[tokio::test]
    async fn list_keys_by_prefix_is_sorted() {
        let s = crate::store::sqlite::tests::stores();
        for k in ["vote:b", "vote:a", "other", "vote%"] {
            s.kv.set("p", "g", k, b"x", 1000).await.unwrap();
        }
        assert_eq!(
            s.kv.list("p", "g", "vote:", 10).await.unwrap(),
            vec!["vote:a", "vote:b"]
        );
    }
}
