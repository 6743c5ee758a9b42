//! Interaction tokens, kept by the host so plugins follow up by interaction id and never
//! hold a token. Discord lets a token be used for 15 minutes; in a cluster a follow-up may
//! come from any instance, so the tokens live behind this trait.

use std::time::Duration;

use async_trait::async_trait;

/// How long Discord accepts an interaction token.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// A token the host holds for a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    pub token: String,
    /// The first response went out; Discord accepts follow-ups only after it.
    pub answered: bool,
}

#[async_trait]
pub trait InteractionTokens: Send + Sync {
    /// Keeps the token of an interaction `plugin` handles.
    async fn insert(&self, interaction_id: &str, token: &str, plugin: &str);
    /// The interaction's first response has been handed to Discord.
    async fn mark_answered(&self, interaction_id: &str);
    /// The token of an interaction the plugin handled, if still valid.
    async fn get(&self, interaction_id: &str, plugin: &str) -> Option<Held>;
}
