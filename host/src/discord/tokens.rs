//! Interaction tokens, kept by the host so plugins follow up by interaction id and never
//! hold a token. Discord lets a token be used for 15 minutes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

#[derive(Default)]
pub struct InteractionTokens {
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

/// A token the host holds for a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub token: String,
    /// The first response went out; Discord accepts follow-ups only after it.
    pub answered: bool,
}

impl InteractionTokens {
    pub fn insert(&self, interaction_id: &str, token: &str, plugin: &str) {
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

    /// The interaction's first response has been handed to Discord.
    pub fn mark_answered(&self, interaction_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = inner.map.get_mut(interaction_id) {
            e.answered = true;
        }
    }

    /// The token of an interaction the plugin handled, if still valid.
    pub fn get(&self, interaction_id: &str, plugin: &str) -> Option<Held> {
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

    #[test]
    fn a_token_belongs_to_the_plugin_that_handled_it() {
        let t = InteractionTokens::default();
        t.insert("1", "tok", "a");
        assert_eq!(
            t.get("1", "a"),
            Some(Held {
                token: "tok".into(),
                answered: false
            })
        );
        t.mark_answered("1");
        assert!(t.get("1", "a").unwrap().answered);
        assert_eq!(t.get("1", "b"), None);
        assert_eq!(t.get("2", "a"), None);
    }
}
