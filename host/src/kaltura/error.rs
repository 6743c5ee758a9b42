//! What can go wrong talking to Kaltura, in words safe to log and show.

use serde_json::Value;

#[derive(Debug, Clone, thiserror::Error)]
pub enum KalturaError {
    /// A `KalturaAPIException` (sent with HTTP 200). The message never carries a KS: the
    /// client replaces the session it sent before building this.
    #[error("Kaltura refused the call ({code}): {message}")]
    Api {
        code: String,
        message: String,
        args: Value,
    },
    #[error("Kaltura is unreachable: {0}")]
    Network(String),
    #[error("Kaltura answered HTTP {0}")]
    Http(u16),
    #[error("Kaltura sent an answer this host cannot read: {0}")]
    Decode(String),
    /// Kaltura is not set up (on the host or for the guild); the text says what to set.
    #[error("{0}")]
    NotConfigured(String),
    /// The caller may not do this (e.g. end someone else's meeting).
    #[error("{0}")]
    Denied(String),
    /// The request itself is wrong (empty title, DM-only context...).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
}

/// Codes that mean "no such thing".
const NOT_FOUND: &[&str] = &[
    "ENTRY_ID_NOT_FOUND",
    "INVALID_OBJECT_ID",
    "INVALID_USER_ID",
    "CATEGORY_NOT_FOUND",
    "INVALID_ENTRY_ID",
];

impl KalturaError {
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The session was refused (expired or not valid): re-sign and try again.
    pub fn is_invalid_ks(&self) -> bool {
        self.code() == Some("INVALID_KS")
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_)) || self.code().is_some_and(|c| NOT_FOUND.contains(&c))
    }

    /// Worth another attempt for a read: the network or the server failed, not the call.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Http(s) => *s >= 500,
            _ => false,
        }
    }

    /// The service or feature is not enabled on the account (e.g. eSearch).
    pub fn is_forbidden_service(&self) -> bool {
        matches!(
            self.code(),
            Some("SERVICE_FORBIDDEN" | "FEATURE_FORBIDDEN" | "SERVICE_DOES_NOT_EXISTS")
        )
    }
}

/// What to tell a person when Kaltura could not do it.
pub const TRY_AGAIN: &str = "Kaltura is unavailable, try again in a minute.";
