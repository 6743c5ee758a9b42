//! `POST /webhooks/kaltura`: Kaltura's HTTP event notifications. Verified against the
//! partner's admin secret(s) over the exact raw body, decoded, classified, persisted (deduped
//! by `eventNotificationJobId`, else a hash of the body), and only then answered 200.
//! Processing happens after the answer (see `events::process`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::notification::{classify, decode};
use crate::config::secret::Secret;
use crate::store::Inbox;
use crate::telemetry::METRICS;

/// Kaltura's notification bodies are small; anything bigger is not one.
pub const MAX_BODY: usize = 1024 * 1024;

pub struct WebhookIntake {
    /// The partner's admin secrets (any one signs); empty when Kaltura is not configured.
    pub secrets: Vec<Secret>,
    pub inbox: Arc<dyn Inbox>,
    /// Signalled when an event is accepted (whoever processes the inbox listens).
    pub accepted: Arc<tokio::sync::Notify>,
}

/// `hex(hash(secret + body))` with the algorithm Kaltura names (sha1 when it names none).
pub fn sign(algo: &str, secret: &str, body: &[u8]) -> Option<String> {
    fn digest<D: Digest>(secret: &str, body: &[u8]) -> String {
        let mut d = D::new();
        d.update(secret.as_bytes());
        d.update(body);
        hex::encode(d.finalize())
    }
    Some(match algo.to_ascii_lowercase().as_str() {
        "" | "sha1" => digest::<Sha1>(secret, body),
        "sha256" => digest::<Sha256>(secret, body),
        "sha512" => digest::<Sha512>(secret, body),
        _ => return None,
    })
}

/// Checks `X-KALTURA-SIGNATURE` against every secret in constant time.
pub fn verify(secrets: &[Secret], headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let Some(given) = header("x-kaltura-signature").filter(|s| !s.is_empty()) else {
        return Err("missing X-KALTURA-SIGNATURE".into());
    };
    let algo = header("x-kaltura-hash-algo").unwrap_or("sha1");
    let given = given.to_ascii_lowercase();
    let mut ok = false;
    for secret in secrets {
        let expected = sign(algo, secret.expose(), body).ok_or_else(|| {
            format!("unsupported X-KALTURA-HASH-ALGO `{algo}` (sha1, sha256, sha512)")
        })?;
        // Every secret is checked, so timing does not say which one matched.
        ok |= bool::from(expected.as_bytes().ct_eq(given.as_bytes()));
    }
    if ok {
        Ok(())
    } else {
        Err("the signature does not match".into())
    }
}

/// The API's error envelope (`{"error": {"code", "message"}}`).
fn error(status: StatusCode, code: &'static str, message: &str) -> Response {
    crate::api::error::ApiError::new(status, code, message).into_response()
}

pub async fn receive(
    State(w): State<Arc<WebhookIntake>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let count = |result: &str| METRICS.webhooks.with_label_values(&[result]).inc();
    if w.secrets.is_empty() {
        count("error");
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "Kaltura is not configured on this host (KALTURA_PARTNER_ID, KALTURA_ADMIN_SECRET)",
        );
    }
    if let Err(why) = verify(&w.secrets, &headers, &body) {
        count("bad_signature");
        tracing::warn!(reason = %why, "Kaltura webhook refused");
        return error(StatusCode::UNAUTHORIZED, "bad_signature", &why);
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let notification = match decode(content_type, &body) {
        Ok(n) => n,
        Err(e) => {
            count("bad_body");
            return error(StatusCode::BAD_REQUEST, "bad_body", &e.to_string());
        }
    };
    let Some(event) = classify(&notification, &body) else {
        count("ignored");
        return axum::Json(
            json!({"status": "ignored", "reason": "not an event this host handles"}),
        )
        .into_response();
    };
    let text = serde_json::to_string(&event).expect("events serialize");
    match w.inbox.insert("kaltura", &event.id, &text).await {
        Ok(Some(seq)) => {
            count("accepted");
            w.accepted.notify_one();
            tracing::debug!(seq, kind = event.kind.key(), id = %event.id, "Kaltura event accepted");
            axum::Json(json!({"status": "accepted", "kind": event.kind.key()})).into_response()
        }
        Ok(None) => {
            count("duplicate");
            axum::Json(json!({"status": "duplicate"})).into_response()
        }
        Err(e) => {
            // Not stored, so not acknowledged: Kaltura retries.
            count("error");
            tracing::error!(error = %e, "Kaltura webhook could not be stored");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "storage",
                "the event could not be stored; retry",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(sig: &str, algo: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-kaltura-signature", sig.parse().unwrap());
        if let Some(a) = algo {
            h.insert("x-kaltura-hash-algo", a.parse().unwrap());
        }
        h
    }

    #[test]
    fn signatures_per_algorithm_and_rotation() {
        let secrets = [Secret::new("old"), Secret::new("new")];
        let body = b"data=%7B%7D";
        for algo in ["sha1", "sha256", "sha512"] {
            let sig = sign(algo, "new", body).unwrap();
            assert!(verify(&secrets, &headers(&sig, Some(algo)), body).is_ok());
            assert!(verify(&secrets, &headers(&sig.to_uppercase(), Some(algo)), body).is_ok());
            assert!(verify(&secrets, &headers(&sig, Some(algo)), b"tampered").is_err());
        }
        // sha1 is the default.
        let sig = sign("sha1", "old", body).unwrap();
        assert!(verify(&secrets, &headers(&sig, None), body).is_ok());
        // Known answer: sha1("s" + "b") as Python's hashlib computes it.
        assert_eq!(
            sign("sha1", "s", b"b").unwrap(),
            "b70482a9c35b236639019cd8b2ecb03a9ee7db09"
        );
        assert!(
            verify(&secrets, &HeaderMap::new(), body)
                .unwrap_err()
                .contains("missing")
        );
        assert!(
            verify(&secrets, &headers("ab", Some("md5")), body)
                .unwrap_err()
                .contains("unsupported")
        );
    }
}
