//! The Kaltura API v3 client: JSON format, typed errors from `KalturaAPIException` (which
//! arrives with HTTP 200), a deadline per call, retries with backoff for reads on network
//! errors and 5xx, and multirequest.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::error::KalturaError;
use crate::telemetry::METRICS;

/// Attempts for a read (writes get one: a lost answer must not create twice).
const READ_ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// Whether a call may be repeated after a network error or a 5xx.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotent {
    Read,
    Write,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    client_tag: String,
    deadline: Duration,
}

/// One sub-request of a multirequest.
#[derive(Clone)]
pub struct SubRequest {
    pub service: &'static str,
    pub action: &'static str,
    pub params: Value,
}

impl Client {
    pub fn new(service_url: &str, deadline: Duration) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(3))
            .user_agent(concat!("kdhost/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("static reqwest configuration");
        Self {
            http,
            base: service_url.trim_end_matches('/').to_string(),
            client_tag: concat!("kdhost:", env!("CARGO_PKG_VERSION")).to_string(),
            deadline,
        }
    }

    /// Calls `service.action` with `params` (a JSON object) under the session `ks`.
    pub async fn call(
        &self,
        service: &str,
        action: &str,
        params: Value,
        ks: &str,
        idempotent: Idempotent,
    ) -> Result<Value, KalturaError> {
        let url = format!("{}/api_v3/service/{service}/action/{action}", self.base);
        let body = self.body(params, ks);
        let answer = self
            .post(&format!("{service}.{action}"), &url, &body, idempotent)
            .await?;
        result(answer, ks)
    }

    /// Several calls in one round trip. Each sub-request succeeds or fails on its own.
    pub async fn multi(
        &self,
        requests: Vec<SubRequest>,
        ks: &str,
        idempotent: Idempotent,
    ) -> Result<Vec<Result<Value, KalturaError>>, KalturaError> {
        let n = requests.len();
        let mut numbered = Map::new();
        for (i, r) in requests.into_iter().enumerate() {
            let mut sub = match r.params {
                Value::Object(o) => o,
                _ => Map::new(),
            };
            sub.insert("service".into(), r.service.into());
            sub.insert("action".into(), r.action.into());
            numbered.insert((i + 1).to_string(), Value::Object(sub));
        }
        let url = format!("{}/api_v3/service/multirequest", self.base);
        let body = self.body(Value::Object(numbered), ks);
        let answer = self.post("multirequest", &url, &body, idempotent).await?;
        let Value::Array(items) = answer else {
            // A whole-request failure (bad KS...) comes back as one exception object.
            return Err(result(answer, ks).err().unwrap_or_else(|| {
                KalturaError::Decode("a multirequest answer that is not a list".into())
            }));
        };
        if items.len() != n {
            return Err(KalturaError::Decode(format!(
                "a multirequest of {n} calls answered with {} results",
                items.len()
            )));
        }
        Ok(items.into_iter().map(|v| result(v, ks)).collect())
    }

    fn body(&self, params: Value, ks: &str) -> Value {
        let mut body = match params {
            Value::Object(o) => o,
            _ => Map::new(),
        };
        body.insert("format".into(), json!(1));
        body.insert("clientTag".into(), json!(self.client_tag));
        if !ks.is_empty() {
            body.insert("ks".into(), json!(ks));
        }
        Value::Object(body)
    }

    async fn post(
        &self,
        label: &str,
        url: &str,
        body: &Value,
        idempotent: Idempotent,
    ) -> Result<Value, KalturaError> {
        let started = Instant::now();
        let attempts = match idempotent {
            Idempotent::Read => READ_ATTEMPTS,
            Idempotent::Write => 1,
        };
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 1;
        let outcome = loop {
            let left = self.deadline.saturating_sub(started.elapsed());
            let r = tokio::time::timeout(left, self.once(url, body)).await;
            let r = r.unwrap_or_else(|_| {
                Err(KalturaError::Network(format!(
                    "no answer within {} ms",
                    self.deadline.as_millis()
                )))
            });
            match r {
                Err(e)
                    if e.is_transient()
                        && attempt < attempts
                        && started.elapsed() + backoff < self.deadline =>
                {
                    tracing::debug!(call = label, attempt, error = %e, "retrying a Kaltura read");
                    tokio::time::sleep(backoff).await;
                    backoff *= 3;
                    attempt += 1;
                }
                other => break other,
            }
        };
        let status = match &outcome {
            Ok(_) => "ok",
            Err(KalturaError::Network(_)) => "network",
            Err(KalturaError::Http(_)) => "http",
            Err(_) => "error",
        };
        METRICS
            .kaltura_calls
            .with_label_values(&[label, status])
            .observe(started.elapsed().as_secs_f64());
        outcome
    }

    async fn once(&self, url: &str, body: &Value) -> Result<Value, KalturaError> {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| KalturaError::Network(e.without_url().to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(KalturaError::Http(status.as_u16()));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| KalturaError::Network(e.without_url().to_string()))?;
        serde_json::from_slice(&bytes).map_err(|e| KalturaError::Decode(e.to_string()))
    }
}

/// An answer or the exception it carries. The server may quote the KS back in a message;
/// it is cut out here so no error, log line or reply can carry it.
fn result(v: Value, ks: &str) -> Result<Value, KalturaError> {
    if v["objectType"] != "KalturaAPIException" {
        return Ok(v);
    }
    let scrub = |s: &str| {
        if ks.is_empty() {
            s.to_string()
        } else {
            s.replace(ks, "[session]")
        }
    };
    let mut args = v["args"].clone();
    if let Value::Object(o) = &mut args {
        for val in o.values_mut() {
            if let Value::String(s) = val {
                *s = scrub(s);
            }
        }
    }
    Err(KalturaError::Api {
        code: v["code"].as_str().unwrap_or("UNKNOWN").to_string(),
        message: scrub(v["message"].as_str().unwrap_or("no message")),
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exceptions_become_errors_without_the_session() {
        let v = json!({"objectType": "KalturaAPIException", "code": "INVALID_KS",
            "message": "Invalid KS \"djJ8secret\" Error \"-5,EXPIRED\"", "args": {"KSID": "djJ8secret"}});
        let e = result(v, "djJ8secret").unwrap_err();
        assert!(e.is_invalid_ks());
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("djJ8secret"), "{shown}");
        assert_eq!(result(json!({"id": "0_a"}), "k").unwrap()["id"], "0_a");
        assert_eq!(result(json!("a string"), "k").unwrap(), "a string");
    }
}
