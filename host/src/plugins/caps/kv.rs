//! The `kv` capability: the plugin's own storage in the calling guild (outside guilds, the
//! calling user's), and the calling person's own scope in it (`user-*`, contract 0.1.2),
//! both within the plugin's byte quota for the guild.

use std::sync::Arc;

use crate::plugins::bindings::kaltura_discord::plugin::kv::Host;
use crate::plugins::bindings::types::{CapError, Capability};
use crate::plugins::state::PluginState;
use crate::store::kv::user_scope;
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

impl PluginState {
    /// The guild's (or DM's) scope.
    fn shared_scope(&self) -> Result<String, CapError> {
        self.require(Capability::Kv)?;
        Ok(self.scope.kv_scope())
    }

    /// The person's own scope; `invalid` when the call is for no one.
    fn person_scope(&self) -> Result<String, CapError> {
        self.require(Capability::Kv)?;
        let user = self.scope.user_id.as_deref().ok_or_else(|| {
            CapError::Invalid(
                "this call is for no one (an event): user-* kv calls need a person".into(),
            )
        })?;
        Ok(user_scope(self.scope.guild_id.as_deref(), user))
    }

    async fn kv_get(&mut self, scope: String, key: String) -> Result<Option<Vec<u8>>, CapError> {
        check_key(&key)?;
        let store = &self.caps.kv.store;
        store.get(&self.plugin, &scope, &key).await.map_err(db_err)
    }

    async fn kv_set(&mut self, scope: String, key: String, value: Vec<u8>) -> Result<(), CapError> {
        check_key(&key)?;
        let quota = self.grants.limits.kv_quota_bytes;
        let store = &self.caps.kv.store;
        store
            .set(&self.plugin, &scope, &key, &value, quota)
            .await
            .map_err(db_err)
    }

    async fn kv_delete(&mut self, scope: String, key: String) -> Result<bool, CapError> {
        check_key(&key)?;
        let store = &self.caps.kv.store;
        store
            .delete(&self.plugin, &scope, &key)
            .await
            .map_err(db_err)
    }

    async fn kv_increment(
        &mut self,
        scope: String,
        key: String,
        delta: i64,
    ) -> Result<i64, CapError> {
        check_key(&key)?;
        let quota = self.grants.limits.kv_quota_bytes;
        let store = &self.caps.kv.store;
        store
            .increment(&self.plugin, &scope, &key, delta, quota)
            .await
            .map_err(db_err)
    }

    async fn kv_list(&mut self, scope: String, prefix: String) -> Result<Vec<String>, CapError> {
        let store = &self.caps.kv.store;
        store
            .list(&self.plugin, &scope, &prefix, MAX_LIST)
            .await
            .map_err(db_err)
    }
}

impl Host for PluginState {
    async fn get(&mut self, key: String) -> Result<Option<Vec<u8>>, CapError> {
        self.kv_get(self.shared_scope()?, key).await
    }

    async fn set(&mut self, key: String, value: Vec<u8>) -> Result<(), CapError> {
        self.kv_set(self.shared_scope()?, key, value).await
    }

    async fn delete(&mut self, key: String) -> Result<bool, CapError> {
        self.kv_delete(self.shared_scope()?, key).await
    }

    async fn increment(&mut self, key: String, delta: i64) -> Result<i64, CapError> {
        self.kv_increment(self.shared_scope()?, key, delta).await
    }

    async fn list_keys(&mut self, prefix: String) -> Result<Vec<String>, CapError> {
        self.kv_list(self.shared_scope()?, prefix).await
    }

    async fn user_get(&mut self, key: String) -> Result<Option<Vec<u8>>, CapError> {
        self.kv_get(self.person_scope()?, key).await
    }

    async fn user_set(&mut self, key: String, value: Vec<u8>) -> Result<(), CapError> {
        self.kv_set(self.person_scope()?, key, value).await
    }

    async fn user_delete(&mut self, key: String) -> Result<bool, CapError> {
        self.kv_delete(self.person_scope()?, key).await
    }

    async fn user_increment(&mut self, key: String, delta: i64) -> Result<i64, CapError> {
        self.kv_increment(self.person_scope()?, key, delta).await
    }

    async fn user_list_keys(&mut self, prefix: String) -> Result<Vec<String>, CapError> {
        self.kv_list(self.person_scope()?, prefix).await
    }
}
