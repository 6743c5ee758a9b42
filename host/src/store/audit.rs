//! The audit log: who changed what in which guild (config, rules), with before and after,
//! and the refusals too.

use anyhow::Result;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;

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

/// The actor of entries whose person asked to be erased.
pub const ERASED_ACTOR: &str = "erased";

/// The guild of operator-wide changes in the audit log (global rules, published plugins).
pub const OPERATOR_WIDE: &str = "*";

/// An entry to record (the log stamps its id and time).
#[derive(Debug, Clone, Default)]
pub struct NewAuditEntry {
    pub guild_id: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    pub outcome: String,
}

impl NewAuditEntry {
    /// A change the operator made with a `kdhost` verb (`config.import`, `script.import`,
    /// `plugin.publish`...).
    pub fn by_operator(guild_id: &str, action: &str, target: &str, after: Option<Value>) -> Self {
        Self {
            guild_id: guild_id.to_string(),
            actor: "operator".into(),
            action: action.into(),
            target: target.into(),
            before: None,
            after,
            outcome: "ok".into(),
        }
    }
}

#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Records an entry and returns its id.
    async fn add(&self, entry: NewAuditEntry) -> Result<i64>;

    /// A guild's entries, newest first, before `before_id` (paging).
    async fn list(
        &self,
        guild_id: &str,
        limit: usize,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditEntry>>;

    /// Forgets entries older than `age_ms`.
    async fn prune(&self, age_ms: i64) -> Result<usize>;

    /// The entries `actor` caused, in one guild or everywhere, oldest first.
    async fn by_actor(&self, actor: &str, guild: Option<&str>) -> Result<Vec<AuditEntry>>;

    /// Puts `tombstone` in place of `actor` in those entries (what was done stays, who
    /// did it goes); how many.
    async fn tombstone_actor(
        &self,
        actor: &str,
        guild: Option<&str>,
        tombstone: &str,
    ) -> Result<usize>;
}
