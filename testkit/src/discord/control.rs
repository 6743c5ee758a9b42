//! The stand-in's own routes (`/_testkit/…`): send a command to the host, read and clear
//! recorded requests, inject faults, read interactions.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Fault, Inner};

/// `POST /_testkit/send {"command": "help", "options": [...], "guild_id": "...", "user_id": "..."}`:
/// sign and deliver a slash command to the host, like Discord, and return its answer.
pub(super) async fn send_route(s: &Inner, body: Value) -> (StatusCode, axum::Json<Value>) {
    let Some(target) = s.target.lock().unwrap().clone() else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "no target host: start the stand-in with --target URL"})),
        );
    };
    let Some(name) = body["command"].as_str() else {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"message": "body needs {\"command\": \"name\"}"})),
        );
    };
    let options = if body["options"].is_array() {
        body["options"].clone()
    } else {
        json!([])
    };
    let guild = body["guild_id"].as_str().unwrap_or("600000000000000001");
    let user = body["user_id"].as_str().unwrap_or("700000000000000001");
    let payload = s.command(name, options, guild, user, &[]);
    match s.send_interaction(&target, &payload).await {
        Ok((status, reply)) => (
            StatusCode::OK,
            axum::Json(json!({"status": status, "response": reply, "interaction": payload})),
        ),
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"message": format!("could not reach {target}: {e}")})),
        ),
    }
}

pub(super) fn testkit_route(
    s: &Inner,
    method: &Method,
    rest: &str,
    body: Value,
) -> (StatusCode, axum::Json<Value>) {
    match (method.as_str(), rest) {
        ("GET", "requests") => (
            StatusCode::OK,
            axum::Json(json!(*s.requests.lock().unwrap())),
        ),
        ("DELETE", "requests") => {
            s.requests.lock().unwrap().clear();
            (StatusCode::OK, axum::Json(json!({"cleared": true})))
        }
        ("POST", "faults") => match serde_json::from_value::<Fault>(body) {
            Ok(f) => {
                s.faults.lock().unwrap().push(f);
                (StatusCode::OK, axum::Json(json!({"ok": true})))
            }
            Err(e) => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({"message": e.to_string()})),
            ),
        },
        ("GET", "interactions") => (
            StatusCode::OK,
            axum::Json(json!(
                s.interactions
                    .lock()
                    .unwrap()
                    .values()
                    .cloned()
                    .collect::<Vec<_>>()
            )),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "unknown testkit route"})),
        ),
    }
}
