//! The audit log in SQLite: one row per entry, indexed by guild.

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, params};
use serde_json::Value;

use super::SqliteStore;
use crate::store::audit::{AuditEntry, AuditLog, NewAuditEntry};
use crate::store::now_ms;

pub(super) const SCHEMA: &str = "
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

/// Entries `filter` picks (with `args`), in the order `order` says.
fn select(
    conn: &Connection,
    filter: &str,
    order: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, at, guild_id, actor, action, target, before, after, outcome FROM audit
         WHERE {filter} ORDER BY {order}"
    ))?;
    let json = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
    let rows = stmt
        .query_map(args, |r| {
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
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// An actor's entries, in one guild (`?2`) or everywhere (`?2` NULL).
const BY_ACTOR: &str = "actor = ?1 AND (?2 IS NULL OR guild_id = ?2)";

#[async_trait]
impl AuditLog for SqliteStore {
    async fn add(&self, e: NewAuditEntry) -> Result<i64> {
        self.call(move |c| {
            c.execute(
                "INSERT INTO audit (at, guild_id, actor, action, target, before, after, outcome)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    now_ms(),
                    e.guild_id,
                    e.actor,
                    e.action,
                    e.target,
                    e.before.as_ref().map(Value::to_string),
                    e.after.as_ref().map(Value::to_string),
                    e.outcome
                ],
            )?;
            Ok(c.last_insert_rowid())
        })
        .await
    }

    async fn list(
        &self,
        guild_id: &str,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditEntry>> {
        let guild_id = guild_id.to_owned();
        self.call(move |c| {
            select(
                c,
                "guild_id = ?1 AND id < ?2",
                "id DESC LIMIT ?3",
                params![guild_id, before_id.unwrap_or(i64::MAX), limit as i64],
            )
        })
        .await
    }

    async fn prune(&self, age_ms: i64) -> Result<usize> {
        self.call(move |c| {
            Ok(c.execute(
                "DELETE FROM audit WHERE at < ?1",
                params![now_ms() - age_ms],
            )?)
        })
        .await
    }

    async fn by_actor(&self, actor: &str, guild: Option<&str>) -> Result<Vec<AuditEntry>> {
        let (actor, guild) = (actor.to_owned(), guild.map(str::to_owned));
        self.call(move |c| select(c, BY_ACTOR, "id", params![actor, guild]))
            .await
    }

    async fn tombstone_actor(
        &self,
        actor: &str,
        guild: Option<&str>,
        tombstone: &str,
    ) -> Result<usize> {
        let (actor, guild, tomb) = (
            actor.to_owned(),
            guild.map(str::to_owned),
            tombstone.to_owned(),
        );
        self.call(move |c| {
            Ok(c.execute(
                &format!("UPDATE audit SET actor = ?3 WHERE {BY_ACTOR}"),
                params![actor, guild, tomb],
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(guild: &str, actor: &str, action: &str, target: &str) -> NewAuditEntry {
        NewAuditEntry {
            guild_id: guild.into(),
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            outcome: "ok".into(),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn entries_are_per_guild_newest_first() {
        let s = crate::store::sqlite::tests::stores();
        s.audit
            .add(NewAuditEntry {
                after: Some(json!(1)),
                ..entry("1", "discord:5", "config.update", "$.a")
            })
            .await
            .unwrap();
        s.audit
            .add(entry("2", "discord:5", "config.update", "$.a"))
            .await
            .unwrap();
        let id = s
            .audit
            .add(NewAuditEntry {
                before: Some(json!({"a": 1})),
                outcome: "refused: not a guild admin".into(),
                ..entry("1", "discord:6", "config.reset", "all")
            })
            .await
            .unwrap();
        let list = s.audit.list("1", 10, None).await.unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].id, id);
        assert_eq!(list[0].before, Some(json!({"a": 1})));
        assert_eq!(list[1].after, Some(json!(1)));
        assert_eq!(s.audit.list("1", 10, Some(id)).await.unwrap().len(), 1);
    }
}
