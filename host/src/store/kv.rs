//! Plugin kv: values per (plugin, scope, key), a byte quota per (plugin, scope) counted
//! as a running total, and atomic counters. A person's own scope in a guild
//! (`<guild>/u/<user>`) counts in the guild's quota, so per-user data cannot grow a
//! plugin's space past what the operator allows; it is what a person's export lists and
//! their erasure deletes (with their DM scope, `dm:<user>`).

use async_trait::async_trait;
use serde::Serialize;

/// Why a kv call failed.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    #[error("quota exceeded: {used} of {quota} bytes used, this write needs {needed} more")]
    Quota { used: u64, quota: u64, needed: u64 },
    /// A counter operation on a value that is not a decimal integer, or that would overflow.
    #[error("{0}")]
    NotACounter(String),
    #[error("storage error: {0}")]
    Backend(#[source] anyhow::Error),
}

/// The scope of one person's values: in a guild, counted in that guild's quota; outside
/// guilds, their DM scope.
pub fn user_scope(guild: Option<&str>, user: &str) -> String {
    match guild {
        Some(g) => format!("{g}{USER_MARK}{user}"),
        None => format!("dm:{user}"),
    }
}

/// What separates a guild from the person in a user scope.
const USER_MARK: &str = "/u/";

/// The scope whose quota a scope's bytes count in: a user scope counts in its guild's.
pub fn quota_scope(scope: &str) -> &str {
    guild_of(scope).unwrap_or(scope)
}

/// The guild of a user scope (`None` for a DM scope or any other).
pub fn guild_of(scope: &str) -> Option<&str> {
    scope.split_once(USER_MARK).map(|(g, _)| g)
}

/// Which scopes hold a person's values: `exact` (their scope in one guild, or their DM
/// scope) and, across every guild, the scopes ending in `suffix`.
pub struct UserScopes {
    pub exact: String,
    pub suffix: Option<String>,
}

impl UserScopes {
    pub fn of(user: &str, guild: Option<&str>) -> Self {
        match guild {
            Some(_) => Self {
                exact: user_scope(guild, user),
                suffix: None,
            },
            None => Self {
                exact: user_scope(None, user),
                suffix: Some(format!("{USER_MARK}{user}")),
            },
        }
    }
}

/// Whether a scope holds one person's values (a user scope or a DM scope).
pub fn is_personal(scope: &str) -> bool {
    scope.starts_with("dm:") || scope.contains(USER_MARK)
}

/// One stored value, as a person's export shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvRow {
    pub plugin: String,
    pub scope: String,
    pub key: String,
    pub value: Vec<u8>,
    /// Unix milliseconds of the last write (0: before this was recorded).
    pub updated_at: i64,
}

#[async_trait]
pub trait KvStore: Send + Sync {
    async fn get(&self, plugin: &str, scope: &str, key: &str) -> Result<Option<Vec<u8>>, KvError>;

    /// Writes a value unless the (plugin, scope) would then hold more than `quota` bytes
    /// (keys and values counted).
    async fn set(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        value: &[u8],
        quota: u64,
    ) -> Result<(), KvError>;

    /// Adds `delta` to the decimal integer stored at `key` (absent = 0) atomically and
    /// returns the new value; the value stays decimal text, readable with `get`.
    async fn increment(
        &self,
        plugin: &str,
        scope: &str,
        key: &str,
        delta: i64,
        quota: u64,
    ) -> Result<i64, KvError>;

    /// Whether there was a value to delete.
    async fn delete(&self, plugin: &str, scope: &str, key: &str) -> Result<bool, KvError>;

    /// Bytes a plugin keeps in a scope's quota (keys and values; a guild's includes its
    /// user scopes), from the running total.
    async fn used(&self, plugin: &str, scope: &str) -> Result<u64, KvError>;

    /// Keys with the prefix, sorted, at most `limit`.
    async fn list(
        &self,
        plugin: &str,
        scope: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, KvError>;

    /// A person's values in every plugin: in one guild, or everywhere (DMs included).
    async fn user_rows(&self, user: &str, guild: Option<&str>) -> Result<Vec<KvRow>, KvError>;

    /// Deletes those values (the running totals follow); how many there were.
    async fn erase_user(&self, user: &str, guild: Option<&str>) -> Result<usize, KvError>;

    /// Deletes personal values (user and DM scopes) not written for `age_ms`.
    async fn prune_personal(&self, age_ms: i64) -> Result<usize, KvError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_scopes_count_in_their_guild() {
        let s = user_scope(Some("600"), "700");
        assert_eq!((s.as_str(), quota_scope(&s)), ("600/u/700", "600"));
        assert_eq!(quota_scope("600"), "600");
        assert_eq!(quota_scope("dm:700"), "dm:700");
        assert!(is_personal(&s) && is_personal("dm:700") && !is_personal("600"));
        let all = UserScopes::of("700", None);
        assert_eq!(
            (all.exact.as_str(), all.suffix.as_deref()),
            ("dm:700", Some("/u/700"))
        );
    }
}
