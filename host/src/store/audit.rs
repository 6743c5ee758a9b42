//! The audit log: who changed what in which guild (config, rules), with before and after,
//! and the refusals too.

use anyhow::Result;
use rusqlite::params;
use serde::Serialize;
use serde_json::Value;

use super::{Store, now_ms};

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    guild_id TEXT NOT NULL,
    actor    TEXT NOT NULL,
    action   TEXT NOT NULL,
    target   TEXT NOT NULL,
    before   TEXT,
    after    TEXT,
    outcome  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_guild ON audit (guild_id, id);
";

/// One audited action. `outcome` is `ok` or `refused: <why>`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    /// Unix milliseconds.
    pub at: i64,
    pub guild_id: String,
    /// `discord:<user id>`, `service:<name>`, `operator` ...
    pub actor: String,
    /// `config.update`, `config.replace`, `config.reset`, `script.put`, `script.delete`, ...
    pub action: String,
    /// The JSON path or the rule's name.
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: String,
}

impl Store {
    #[allow(clippy::too_many_arguments)]
    pub fn audit_add(
        &self,
        guild_id: &str,
        actor: &str,
        action: &str,
        target: &str,
        before: Option<&Value>,
        after: Option<&Value>,
        outcome: &str,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO audit (at, guild_id, actor, action, target, before, after, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                now_ms(),
                guild_id,
                actor,
                action,
                target,
                before.map(Value::to_string),
                after.map(Value::to_string),
                outcome
            ],
        )?;
        Ok(conn.last_insert_rowid())
    }

    /// Forgets entries older than `age_ms`.
    pub fn audit_prune(&self, age_ms: i64) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM audit WHERE at < ?1",
            params![now_ms() - age_ms],
        )?)
    }

    /// A guild's entries, newest first, before `before_id` (paging).
    pub fn audit_list(
        &self,
        guild_id: &str,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT id, at, guild_id, actor, action, target, before, after, outcome FROM audit
             WHERE guild_id = ?1 AND id < ?2 ORDER BY id DESC LIMIT ?3",
        )?;
        let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        let rows = stmt
            .query_map(
                params![guild_id, before_id.unwrap_or(i64::MAX), limit as i64],
                |r| {
                    Ok(AuditEntry {
                        id: r.get(0)?,
                        at: r.get(1)?,
                        guild_id: r.get(2)?,
                        actor: r.get(3)?,
                        action: r.get(4)?,
                        target: r.get(5)?,
                        before: json(r.get(6)?),
                        after: json(r.get(7)?),
                        outcome: r.get(8)?,
                    })
                },
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn entries_are_per_guild_newest_first() {
        let s = Store::in_memory().unwrap();
        s.audit_add(
            "1",
            "discord:5",
            "config.update",
            "$.a",
            None,
            Some(&json!(1)),
            "ok",
        )
        .unwrap();
        s.audit_add("2", "discord:5", "config.update", "$.a", None, None, "ok")
            .unwrap();
        let id = s
            .audit_add(
                "1",
                "discord:6",
                "config.reset",
                "all",
                Some(&json!({"a": 1})),
                None,
                "refused: not a guild admin",
            )
            .unwrap();
        let list = s.audit_list("1", 10, None).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, id);
        assert_eq!(list[0].before, Some(json!({"a": 1})));
        assert_eq!(list[1].after, Some(json!(1)));
        assert_eq!(s.audit_list("1", 10, Some(id)).unwrap().len(), 1);
    }
}
