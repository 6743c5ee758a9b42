//! Small host metadata by key (the last command sync, the outbox's nonce prefix).

use anyhow::Result;
use async_trait::async_trait;

#[async_trait]
pub trait Meta: Send + Sync {
    async fn get(&self, key: &str) -> Result<Option<String>>;
    async fn set(&self, key: &str, value: &str) -> Result<()>;

    /// Stores `value` unless the key has one; returns the stored value either way (the
    /// first writer wins, even between instances).
    async fn get_or_insert(&self, key: &str, value: &str) -> Result<String>;
}
