//! Channels: creating (with `enforce_nonce`), listing and editing messages, reactions.

use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Inner, discord_error, not_found};

pub(super) fn route(s: &Inner, method: &Method, seg: &[&str], body: &Value) -> (StatusCode, Value) {
    match (method.as_str(), seg) {
        ("POST", ["channels", channel, "messages"]) => {
            let refuses = s
                .dms
                .lock()
                .unwrap()
                .iter()
                .any(|(user, c)| c == channel && s.dm_refusers.lock().unwrap().contains(user));
            if refuses {
                return discord_error(
                    StatusCode::FORBIDDEN,
                    50007,
                    "Cannot send messages to this user",
                );
            }
            if body["content"].as_str().is_none_or(str::is_empty)
                && body["embeds"].as_array().is_none_or(Vec::is_empty)
                && body["components"].is_null()
            {
                return discord_error(
                    StatusCode::BAD_REQUEST,
                    50006,
                    "Cannot send an empty message",
                );
            }
            if body["content"]
                .as_str()
                .is_some_and(|c| c.chars().count() > 2000)
                || body["nonce"].as_str().is_some_and(|n| n.len() > 25)
            {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            }
            // enforce_nonce: the same nonce within a few minutes returns the first message.
            let nonce = body["nonce"].as_str().map(String::from);
            let enforce = body["enforce_nonce"] == Value::Bool(true);
            if let (Some(n), true) = (&nonce, enforce) {
                let mut nonces = s.nonces.lock().unwrap();
                nonces.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(300));
                if let Some((_, msg)) = nonces.get(n) {
                    return (StatusCode::OK, msg.clone());
                }
            }
            let mut msg = body.clone();
            if let Some(m) = msg.as_object_mut() {
                m.remove("enforce_nonce");
            }
            msg["id"] = json!(s.next_snowflake());
            msg["channel_id"] = json!(channel);
            if let (Some(n), true) = (nonce, enforce) {
                s.nonces
                    .lock()
                    .unwrap()
                    .insert(n, (Instant::now(), msg.clone()));
            }
            s.messages
                .lock()
                .unwrap()
                .entry(channel.to_string())
                .or_default()
                .push(msg.clone());
            let _ = s.created.send((channel.to_string(), msg.clone()));
            (StatusCode::OK, msg)
        }
        ("GET", ["channels", channel, "messages"]) => {
            let mut list = s
                .messages
                .lock()
                .unwrap()
                .get(*channel)
                .cloned()
                .unwrap_or_default();
            list.reverse();
            list.truncate(100);
            (StatusCode::OK, Value::Array(list))
        }
        ("PATCH", ["channels", channel, "messages", mid]) => {
            let mut msg = body.clone();
            msg["id"] = json!(mid);
            msg["channel_id"] = json!(channel);
            (StatusCode::OK, msg)
        }
        ("PUT", ["channels", _, "messages", _, "reactions", _, "@me"]) => {
            (StatusCode::NO_CONTENT, Value::Null)
        }
        _ => not_found(),
    }
}
