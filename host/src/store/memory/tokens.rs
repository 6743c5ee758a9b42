//! Interaction tokens in this process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use crate::store::tokens::{Held, InteractionTokens, TOKEN_LIFETIME};

#[derive(Default)]
pub struct MemoryTokens {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    inserts_since_prune: usize,
}

/// Expired tokens are swept after this many inserts (amortised, never per call).
const PRUNE_EVERY: usize = 1024;

struct Entry {
    token: String,
    plugin: String,
    issued: Instant,
    answered: bool,
}

#[async_trait]
impl InteractionTokens for MemoryTokens {
    async fn insert(&self, interaction_id: &str, token: &str, plugin: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.inserts_since_prune += 1;
        if inner.inserts_since_prune >= PRUNE_EVERY {
            inner.inserts_since_prune = 0;
            inner.map.retain(|_, e| e.issued.elapsed() < TOKEN_LIFETIME);
        }
        inner.map.insert(
            interaction_id.to_string(),
            Entry {
                token: token.to_string(),
                plugin: plugin.to_string(),
                issued: Instant::now(),
                answered: false,
            },
        );
    }

    async fn mark_answered(&self, interaction_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = inner.map.get_mut(interaction_id) {
            e.answered = true;
        }
    }

    async fn get(&self, interaction_id: &str, plugin: &str) -> Option<Held> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .map
            .get(interaction_id)
            .filter(|e| e.plugin == plugin && e.issued.elapsed() < TOKEN_LIFETIME)
            .map(|e| Held {
                token: e.token.clone(),
                answered: e.answered,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_belongs_to_the_plugin_that_handled_it() {
        let t = MemoryTokens::default();
        t.insert("1", "tok", "a").await;
        assert_eq!(
            t.get("1", "a").await,
            Some(Held {
                token: "tok".into(),
                answered: false
            })
        );
        t.mark_answered("1").await;
        assert!(t.get("1", "a").await.unwrap().answered);
        assert_eq!(t.get("1", "b").await, None);
        assert_eq!(t.get("2", "a").await, None);
    }
}
