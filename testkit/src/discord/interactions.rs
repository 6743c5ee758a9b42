//! Interactions: the stand-in signs and sends them like Discord, then takes the host's
//! callback and its follow-ups and edits through the interaction's webhook.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Inner, InteractionState, discord_error, not_found, now_secs};

impl Inner {
    /// Snowflake-shaped ids for created things (messages, commands).
    pub(super) fn next_snowflake(&self) -> String {
        (1_200_000_000_000_000_000u64 + self.ids.fetch_add(1, Ordering::Relaxed)).to_string()
    }

    fn next_id(&self) -> String {
        // Snowflake-shaped ids.
        (1_100_000_000_000_000_000u64 + self.ids.fetch_add(1, Ordering::Relaxed)).to_string()
    }

    pub(super) fn command(
        &self,
        name: &str,
        options: Value,
        guild_id: &str,
        user_id: &str,
        roles: &[&str],
    ) -> Value {
        let id = self.next_id();
        json!({
            "id": id,
            "application_id": self.opts.application_id,
            "type": 2,
            "token": format!("tok-{id}"),
            "version": 1,
            "guild_id": guild_id,
            "channel_id": "200000000000000001",
            "locale": "en-US",
            "app_permissions": "2147483647",
            "context": 0,
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id},
            "member": {
                "user": {"id": user_id, "username": "tester", "discriminator": "0", "global_name": "Tester", "avatar": null},
                "roles": roles, "permissions": "2147483647", "nick": null, "avatar": null,
                "joined_at": "2026-01-01T00:00:00.000000+00:00", "deaf": false, "mute": false,
                "flags": 0, "pending": false, "premium_since": null
            },
            "data": {"id": "300000000000000001", "name": name, "type": 1, "options": options}
        })
    }

    pub(super) async fn send_interaction(
        &self,
        url: &str,
        payload: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let body = serde_json::to_vec(payload)?;
        let ts = now_secs().to_string();
        let sig = self.signer.sign(&ts, &body);
        self.send_signed(url, body, &ts, &sig, payload).await
    }

    pub(super) async fn send_signed(
        &self,
        url: &str,
        body: Vec<u8>,
        ts: &str,
        sig: &str,
        payload: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        let token = payload["token"].as_str().unwrap_or_default().to_string();
        if !token.is_empty() {
            self.interactions.lock().unwrap().insert(
                token.clone(),
                InteractionState {
                    id: payload["id"].as_str().unwrap_or_default().into(),
                    ..Default::default()
                },
            );
        }
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", sig)
            .header("x-signature-timestamp", ts)
            .header(
                "user-agent",
                "Discord-Interactions/1.0 (+https://discord.com)",
            )
            .body(body)
            .send()
            .await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status == 200
            && let Some(s) = self.interactions.lock().unwrap().get_mut(&token)
        {
            s.acked = value["type"].as_u64();
            if s.acked == Some(4) {
                s.original = Some(value["data"].clone());
            }
        }
        Ok((status, value))
    }
}

pub(super) async fn route(
    s: &Inner,
    method: &Method,
    seg: &[&str],
    body: &Value,
    app: &str,
) -> (StatusCode, Value) {
    match (method.as_str(), seg) {
        ("POST", ["interactions", _iid, token, "callback"]) => {
            let mut map = s.interactions.lock().unwrap();
            let Some(st) = map.get_mut(*token) else {
                return discord_error(StatusCode::NOT_FOUND, 10062, "Unknown interaction");
            };
            if st.acked.is_some() {
                return discord_error(
                    StatusCode::BAD_REQUEST,
                    40060,
                    "Interaction has already been acknowledged.",
                );
            }
            st.acked = body["type"].as_u64();
            if st.acked == Some(4) {
                st.original = Some(body["data"].clone());
            }
            (StatusCode::NO_CONTENT, Value::Null)
        }
        (m, ["webhooks", a, token, rest @ ..]) if *a == app => {
            webhook(s, m, token, rest, body).await
        }
        (_, ["webhooks", ..]) => discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
        _ => not_found(),
    }
}

/// The interaction's webhook: follow-ups and the original response (edit, delete, read).
async fn webhook(
    s: &Inner,
    method: &str,
    token: &str,
    rest: &[&str],
    body: &Value,
) -> (StatusCode, Value) {
    // The acknowledgement may still be in flight on the other connection.
    for _ in 0..50 {
        let acked = s
            .interactions
            .lock()
            .unwrap()
            .get(token)
            .map(|st| st.acked.is_some());
        match acked {
            Some(true) => break,
            None => return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook"),
            Some(false) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
    let mut map = s.interactions.lock().unwrap();
    let st = map.get_mut(token).expect("checked above");
    if st.acked.is_none() {
        return discord_error(StatusCode::NOT_FOUND, 10015, "Unknown Webhook");
    }
    match (method, rest) {
        ("POST", []) => {
            let mut msg = body.clone();
            msg["id"] = json!(s.next_snowflake());
            st.followups.push(msg.clone());
            (StatusCode::OK, msg)
        }
        ("PATCH", ["messages", "@original"]) => {
            if st.original_deleted {
                return discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message");
            }
            let mut msg = st.original.clone().unwrap_or_else(|| json!({}));
            if let (Some(m), Some(b)) = (msg.as_object_mut(), body.as_object()) {
                for (k, v) in b {
                    m.insert(k.clone(), v.clone());
                }
            }
            msg["id"] = json!("500000000000000001");
            st.original = Some(msg.clone());
            (StatusCode::OK, msg)
        }
        ("DELETE", ["messages", "@original"]) => {
            st.original_deleted = true;
            (StatusCode::NO_CONTENT, Value::Null)
        }
        ("GET", ["messages", "@original"]) => match &st.original {
            Some(m) if !st.original_deleted => (StatusCode::OK, m.clone()),
            _ => discord_error(StatusCode::NOT_FOUND, 10008, "Unknown Message"),
        },
        _ => discord_error(StatusCode::NOT_FOUND, 0, "404: Not Found"),
    }
}
