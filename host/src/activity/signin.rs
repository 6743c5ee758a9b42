//! The Activity's OAuth2 sign-in: the `code` from the Embedded App SDK's `authorize` is
//! exchanged with Discord (form-encoded, with the client secret) for an access token. In
//! dev/demo mode `mock_code` stands for a person the page names. The API handler
//! (`POST /api/v1/activity/token`) verifies the user and issues the host token.

use serde_json::{Value, json};

use crate::config::secret::Secret;
use crate::discord::rest::{DiscordRest, RestError};

/// The code that stands for a mock user in dev/demo mode.
pub const MOCK_CODE: &str = "mock_code";

/// What Discord granted (handed to the page for the SDK's `authenticate`).
pub struct Grant {
    pub access_token: String,
    pub token_type: String,
    /// Seconds.
    pub expires_in: u64,
    pub scope: String,
}

#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    #[error("mock_code is only accepted in dev/demo mode (KD_ACTIVITY_DEV=true)")]
    MockOff,
    #[error("mock_code needs `mock_user` {{id, username}}")]
    NoMockUser,
    #[error("mock_user.id must be a Discord id (digits)")]
    BadMockUser,
    #[error(
        "the Activity cannot sign people in: the operator sets DISCORD_APPLICATION_ID and DISCORD_CLIENT_SECRET"
    )]
    NotConfigured,
    /// Discord refused the code (its words).
    #[error("Discord refused the code: {0}")]
    CodeRefused(String),
    #[error("Discord could not be reached to sign you in; try again")]
    Unavailable,
    #[error("Discord answered without an access token")]
    NoAccessToken,
}

/// Dev/demo mode: a grant and a user for the person the page names (`id`, `username`).
pub fn mock(dev: bool, user: Option<(&str, &str)>) -> Result<(Grant, Value), SignInError> {
    if !dev {
        return Err(SignInError::MockOff);
    }
    let (id, username) = user.ok_or(SignInError::NoMockUser)?;
    if !crate::discord::model::is_snowflake(id) {
        return Err(SignInError::BadMockUser);
    }
    let grant = Grant {
        access_token: "mock_token".into(),
        token_type: "Bearer".into(),
        expires_in: 604_800,
        scope: "identify guilds".into(),
    };
    let user = json!({"id": id, "username": username, "global_name": username, "avatar": null});
    Ok((grant, user))
}

/// Exchanges the code with Discord.
pub async fn exchange(
    rest: Option<&DiscordRest>,
    client_secret: Option<&Secret>,
    code: &str,
) -> Result<Grant, SignInError> {
    let (Some(rest), Some(secret)) = (rest, client_secret) else {
        return Err(SignInError::NotConfigured);
    };
    let grant = rest
        .exchange_code(secret, code)
        .await
        .map_err(|e| match e {
            RestError::Api {
                status: 400..=499,
                message,
                ..
            } => SignInError::CodeRefused(message),
            other => {
                tracing::warn!(error = %other, "OAuth2 code exchange failed");
                SignInError::Unavailable
            }
        })?;
    let access_token = grant["access_token"].as_str().unwrap_or_default();
    if access_token.is_empty() {
        return Err(SignInError::NoAccessToken);
    }
    Ok(Grant {
        access_token: access_token.to_string(),
        token_type: grant["token_type"].as_str().unwrap_or("Bearer").to_string(),
        expires_in: grant["expires_in"].as_u64().unwrap_or(0),
        scope: grant["scope"].as_str().unwrap_or_default().to_string(),
    })
}

/// The user's avatar hash, when it looks like one (only such a hash reaches other
/// people's pages).
pub fn avatar_of(user: &Value) -> Option<&str> {
    user["avatar"].as_str().filter(|h| {
        (1..=64).contains(&h.len()) && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_sign_in_only_in_dev_mode_and_for_a_discord_id() {
        assert!(matches!(
            mock(false, Some(("1", "a"))),
            Err(SignInError::MockOff)
        ));
        assert!(matches!(mock(true, None), Err(SignInError::NoMockUser)));
        assert!(matches!(
            mock(true, Some(("x", "a"))),
            Err(SignInError::BadMockUser)
        ));
        let (grant, user) = mock(true, Some(("42", "ann"))).unwrap();
        assert_eq!(grant.access_token, "mock_token");
        assert_eq!(user["global_name"], "ann");
        assert_eq!(avatar_of(&json!({"avatar": "a_1b"})), Some("a_1b"));
        assert_eq!(avatar_of(&json!({"avatar": "../x"})), None);
    }
}
