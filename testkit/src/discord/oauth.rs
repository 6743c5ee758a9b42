//! OAuth2: the code exchange, and the routes a user's access token opens (`users/@me`,
//! `users/@me/guilds`, `oauth2/@me`).

use std::collections::HashMap;

use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::guilds::partial_guild;
use super::{Inner, discord_error};

/// `POST /oauth2/token`, form-encoded, as Discord answers it (errors in OAuth2's shape).
pub(super) fn oauth_token(s: &Inner, body: &Value) -> (StatusCode, Value) {
    let text = body.as_str().unwrap_or_default();
    let form: HashMap<String, String> = url::form_urlencoded::parse(text.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("client_id") != s.opts.application_id || field("client_secret") != s.opts.client_secret
    {
        return (StatusCode::UNAUTHORIZED, json!({"error": "invalid_client"}));
    }
    if field("grant_type") != "authorization_code" {
        return (
            StatusCode::BAD_REQUEST,
            json!({"error": "unsupported_grant_type"}),
        );
    }
    match s.codes.lock().unwrap().remove(field("code")) {
        Some(token) => (
            StatusCode::OK,
            json!({"access_token": token, "token_type": "Bearer", "expires_in": 604800,
                   "refresh_token": format!("refresh-{token}"), "scope": "identify guilds"}),
        ),
        None => (
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": "Invalid \"code\" in request."}),
        ),
    }
}

/// The answer to a route called with `Authorization: Bearer <access token>`, if it is one.
pub(super) fn bearer_route(
    s: &Inner,
    seg: &[&str],
    headers: &HeaderMap,
) -> Option<(StatusCode, Value)> {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let (["users", "@me", "guilds"], Some(bearer)) = (seg, bearer) {
        // A user's guilds (scope `guilds`): those the stand-in lists them in.
        let Some(user) = s.oauth.lock().unwrap().get(bearer).cloned() else {
            let (st, b) = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
            return Some((st, b));
        };
        let uid = user["id"].as_str().unwrap_or_default().to_string();
        let guilds = s.guilds.lock().unwrap();
        let mut list: Vec<Value> = guilds
            .iter()
            .filter(|(_, d)| d.members.contains_key(&uid) || d.open)
            .map(|(id, d)| partial_guild(id, d, &uid))
            .collect();
        list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
        return Some((StatusCode::OK, Value::Array(list)));
    }
    if let (["users", "@me"] | ["oauth2", "@me"], Some(bearer)) = (seg, bearer) {
        let Some(user) = s.oauth.lock().unwrap().get(bearer).cloned() else {
            let (st, b) = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
            return Some((st, b));
        };
        if seg[0] == "users" {
            return Some((StatusCode::OK, user));
        }
        // The current authorization, as Discord describes it: which application the
        // token was issued to, its scopes and the user.
        let app = s
            .oauth_foreign
            .lock()
            .unwrap()
            .get(bearer)
            .cloned()
            .unwrap_or_else(|| s.opts.application_id.clone());
        let body = json!({
            "application": {"id": app, "name": "Stand-in app", "icon": null, "description": "", "bot_public": true, "bot_require_code_grant": false, "verify_key": "0"},
            "scopes": ["identify", "guilds"],
            "expires": "2100-01-01T00:00:00+00:00",
            "user": user,
        });
        return Some((StatusCode::OK, body));
    }
    None
}
