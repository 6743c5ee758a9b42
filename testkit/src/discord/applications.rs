//! Applications: command registration, Activity instances, and the gateway's address.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Inner, discord_error, not_found};

pub(super) fn route(
    s: &Inner,
    method: &Method,
    seg: &[&str],
    body: &Value,
    app: &str,
) -> (StatusCode, Value) {
    match (method.as_str(), seg) {
        ("PUT", ["applications", a, "commands"])
        | ("PUT", ["applications", a, "guilds", _, "commands"]) => {
            if *a != app {
                return discord_error(StatusCode::NOT_FOUND, 10002, "Unknown Application");
            }
            let Some(list) = body.as_array() else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            if let Some(bad) = list.iter().find(|c| {
                c["name"]
                    .as_str()
                    .is_none_or(|n| n.is_empty() || n.chars().count() > 32)
            }) {
                return (
                    StatusCode::BAD_REQUEST,
                    json!({"message": "Invalid Form Body", "code": 50035, "errors": {"name": bad["name"]}}),
                );
            }
            let out: Vec<Value> = list
                .iter()
                .map(|c| {
                    let mut c = c.clone();
                    c["id"] = json!(s.next_snowflake());
                    c["application_id"] = json!(app);
                    c["version"] = json!(s.next_snowflake());
                    c
                })
                .collect();
            (StatusCode::OK, Value::Array(out))
        }
        ("GET", ["applications", a, "activity-instances", i]) => {
            if *a != app {
                return discord_error(StatusCode::NOT_FOUND, 10002, "Unknown Application");
            }
            match s.instances.lock().unwrap().get(*i) {
                Some((channel, users)) => (
                    StatusCode::OK,
                    json!({"application_id": app, "instance_id": i, "launch_id": "1",
                           "location": {"id": format!("gc-{channel}"), "kind": "gc", "channel_id": channel},
                           "users": users}),
                ),
                None => discord_error(StatusCode::NOT_FOUND, 10070, "Unknown Activity instance"),
            }
        }
        ("GET", ["gateway"]) => (
            StatusCode::OK,
            json!({"url": format!("ws://{}/gateway-ws", s.addr)}),
        ),
        ("GET", ["gateway", "bot"]) => {
            let g = &s.gateway;
            let started = g.identifies.lock().unwrap().len() as u64;
            (
                StatusCode::OK,
                json!({"url": format!("ws://{}/gateway-ws", s.addr),
                       "shards": g.recommended_shards.load(std::sync::atomic::Ordering::Relaxed),
                       "session_start_limit": {"total": 1000, "remaining": 1000u64.saturating_sub(started),
                           "reset_after": 14400000,
                           "max_concurrency": g.max_concurrency.load(std::sync::atomic::Ordering::Relaxed)}}),
            )
        }
        _ => not_found(),
    }
}
