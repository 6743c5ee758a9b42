//! The `kv` capability: the plugin's own storage in the calling guild (outside guilds, the
//! calling user's), within the plugin's byte quota.

use std::sync::Arc;

use crate::plugins::bindings::kaltura_discord::plugin::kv::Host;
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::state::PluginState;
use crate::store::{KvError, KvStore};

/// What the `kv` capability needs: the store.
pub struct KvCap {
    pub store: Arc<dyn KvStore>,
}

const MAX_KEY_BYTES: usize = 256;
const MAX_LIST: usize = 1000;

fn check_key(key: &str) -> Result<(), CapError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(CapError::Invalid(format!(
            "kv keys are 1-{MAX_KEY_BYTES} bytes (got {})",
            key.len()
        )));
    }
    Ok(())
}

fn db_err(e: KvError) -> CapError {
    match e {
        KvError::Quota { .. } => CapError::QuotaExceeded(e.to_string()),
        KvError::NotACounter(m) => CapError::Invalid(m),
        KvError::Backend(e) => {
            tracing::error!(error = %e, "kv storage error");
            CapError::Failed("storage error".into())
        }
    }
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, CapError> {
        self.require(Capability::Kv)?;
        check_key(&key)?;
        self.caps
            .kv
            .store
            .get(&self.plugin, &self.scope.kv_scope(), &key)
            .await
            .map_err(db_err)
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), CapError> {
        self.require(Capability::Kv)?;
        check_key(&key)?;
        let quota = self.grants.limits.kv_quota_bytes;
        self.caps
            .kv
            .store
            .set(&self.plugin, &self.scope.kv_scope(), &key, &value, quota)
            .await
            .map_err(db_err)
    }

    async fn delete(&mut self, key: String) -> Result<bool, CapError> {
        self.require(Capability::Kv)?;
        check_key(&key)?;
        self.caps
            .kv
            .store
            .delete(&self.plugin, &self.scope.kv_scope(), &key)
            .await
            .map_err(db_err)
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, CapError> {
        self.require(Capability::Kv)?;
        check_key(&key)?;
        let quota = self.grants.limits.kv_quota_bytes;
        self.caps
            .kv
            .store
            .increment(&self.plugin, &self.scope.kv_scope(), &key, delta, quota)
            .await
            .map_err(db_err)
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, CapError> {
        self.require(Capability::Kv)?;
        self.caps
            .kv
            .store
            .list(&self.plugin, &self.scope.kv_scope(), &prefix, MAX_LIST)
            .await
            .map_err(db_err)
    }
}
