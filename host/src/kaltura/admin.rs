//! Calls under an ADMIN session: the session is signed here and never leaves the host;
//! an `INVALID_KS` answer re-signs and retries once.

use kaltura_ks::SessionType;
use serde_json::Value;

use super::client::{Client, Idempotent, SubRequest};
use super::error::KalturaError;
use super::sessions::{Sessions, SignedKs};

/// How long the host's own (ADMIN) API sessions live; cached until 80% of that.
const API_SESSION_TTL: i64 = 3600;

/// A handle for calls under an ADMIN session; an `INVALID_KS` answer re-signs and retries once.
pub struct Admin<'a> {
    client: &'a Client,
    sessions: &'a Sessions,
    user: String,
    privileges: String,
}

impl<'a> Admin<'a> {
    pub fn new(client: &'a Client, sessions: &'a Sessions, user: &str, privileges: String) -> Self {
        Self {
            client,
            sessions,
            user: user.to_string(),
            privileges,
        }
    }

    pub async fn call(
        &self,
        service: &str,
        action: &str,
        params: Value,
        idempotent: Idempotent,
    ) -> Result<Value, KalturaError> {
        let mut resigned = false;
        loop {
            let s = self.session();
            match self
                .client
                .call(service, action, params.clone(), s.ks.expose(), idempotent)
                .await
            {
                Err(e) if e.is_invalid_ks() && !resigned => {
                    tracing::info!(call = %format!("{service}.{action}"), "Kaltura refused the session; signing a new one");
                    self.invalidate();
                    resigned = true;
                }
                other => return other,
            }
        }
    }

    pub async fn multi(
        &self,
        requests: Vec<SubRequest>,
        idempotent: Idempotent,
    ) -> Result<Vec<Result<Value, KalturaError>>, KalturaError> {
        let mut resigned = false;
        loop {
            let s = self.session();
            let answer = self
                .client
                .multi(requests.clone(), s.ks.expose(), idempotent)
                .await;
            let refused = match &answer {
                Err(e) => e.is_invalid_ks(),
                Ok(items) => items
                    .iter()
                    .any(|r| r.as_ref().is_err_and(|e| e.is_invalid_ks())),
            };
            if refused && !resigned {
                self.invalidate();
                resigned = true;
                continue;
            }
            return answer;
        }
    }

    fn session(&self) -> SignedKs {
        self.sessions.get(
            &self.user,
            SessionType::Admin,
            &self.privileges,
            API_SESSION_TTL,
        )
    }

    fn invalidate(&self) {
        self.sessions.invalidate(
            &self.user,
            SessionType::Admin,
            &self.privileges,
            API_SESSION_TTL,
        );
    }
}
