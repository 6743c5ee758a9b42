//! Plugin kv: values per (plugin, scope, key), a byte quota per (plugin, scope) counted
//! as a running total, and atomic counters.

use async_trait::async_trait;

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

    /// Bytes a plugin keeps in a scope (keys and values), from the running total.
    async fn used(&self, plugin: &str, scope: &str) -> Result<u64, KvError>;

    /// Keys with the prefix, sorted, at most `limit`.
    async fn list(
        &self,
        plugin: &str,
        scope: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<String>, KvError>;
}
