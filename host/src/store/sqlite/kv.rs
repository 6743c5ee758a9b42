//! Plugin kv in SQLite: rows per (plugin, scope, key) and a running total per (plugin,
//! scope) kept in the same transactions, so a quota check costs two key lookups.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::kv::{KvError, KvRow, KvStore, UserScopes, quota_scope};
use crate::store::now_ms;

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

/// Moves the running total of a plugin's space in a scope's quota by `delta` bytes.
fn add_usage(conn: &Connection, plugin: &str, scope: &str, delta: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO kv_usage (plugin, scope, bytes) VALUES (?1, ?2, ?3)
         ON CONFLICT (plugin, scope) DO UPDATE SET bytes = bytes + excluded.bytes",
        params![plugin, quota_scope(scope), delta],
    )?;
    Ok(())
}

/// A database from before write times: its values count as written now (so the
/// retention of personal values starts from the upgrade, not from 1970).
pub(super) fn stamp_write_times(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE kv SET updated_at = ?1 WHERE updated_at = 0",
        [now_ms()],
    )?;
    Ok(())
}

/// The rows of a person's scopes (`?1` exact, or ending in `?2`).
const USER_ROWS: &str = "scope = ?1 OR (?2 IS NOT NULL AND substr(scope, -length(?2)) = ?2)";

fn user_rows(conn: &Connection, who: &UserScopes) -> Result<Vec<KvRow>, KvError> {
    let mut stmt = conn.prepare(&format!(
        "SELECT plugin, scope, key, value, updated_at FROM kv WHERE {USER_ROWS}
         ORDER BY plugin, scope, key"
    ))?;
    let rows = stmt
        .query_map(params![who.exact, who.suffix], |r| {
            Ok(KvRow {
                plugin: r.get(0)?,
                scope: r.get(1)?,
                key: r.get(2)?,
                value: r.get(3)?,
                updated_at: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Deletes the rows `filter` picks (with `args`), the running totals moved in the same
/// transaction; how many.
fn delete_where(
    conn: &mut Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<usize, KvError> {
    let tx = conn.transaction()?;
    let gone: Vec<(String, String, i64)> = tx
        .prepare(&format!(
            "DELETE FROM kv WHERE {filter} RETURNING plugin, scope, LENGTH(key) + LENGTH(value)"
        ))?
        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    for (plugin, scope, n) in &gone {
        add_usage(&tx, plugin, scope, -n)?;
    }
    tx.commit()?;
    Ok(gone.len())
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
            params![plugin, quota_scope(scope)],
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
        "INSERT INTO kv (plugin, scope, key, value, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (plugin, scope, key) DO UPDATE
             SET value = excluded.value, updated_at = excluded.updated_at",
        params![plugin, scope, key, value, now_ms()],
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
    let filter = "plugin = ?1 AND scope = ?2 AND key = ?3";
    Ok(delete_where(conn, filter, params![plugin, scope, key])? > 0)
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
                    params![p, quota_scope(&s)],
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

    async fn user_rows(&self, user: &str, guild: Option<&str>) -> Result<Vec<KvRow>, KvError> {
        let who = UserScopes::of(user, guild);
        self.call(move |c| user_rows(c, &who)).await
    }

    async fn erase_user(&self, user: &str, guild: Option<&str>) -> Result<usize, KvError> {
        let who = UserScopes::of(user, guild);
        self.call(move |c| delete_where(c, USER_ROWS, params![who.exact, who.suffix]))
            .await
    }

    async fn prune_personal(&self, age_ms: i64) -> Result<usize, KvError> {
        let before = now_ms().saturating_sub(age_ms);
        self.call(move |c| {
            delete_where(
                c,
                "updated_at < ?1 AND (scope LIKE 'dm:%' OR instr(scope, '/u/') > 0)",
                [before],
            )
        })
        .await
    }
}
