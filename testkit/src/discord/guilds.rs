//! Guilds: the bot's and a user's guild lists, a guild, its roles, members and channels.

use std::collections::HashMap;

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use super::{Inner, discord_error, not_found};

/// A guild as the stand-in knows it: owner, roles (with permissions), members' roles.
#[derive(Default, Clone)]
pub(super) struct GuildData {
    pub(super) name: String,
    pub(super) owner_id: String,
    pub(super) roles: Vec<Value>,
    pub(super) members: HashMap<String, Vec<String>>,
    /// Everyone who asks is a member without roles (a public demo server, where the
    /// Activity's mock users get made-up ids).
    pub(super) open: bool,
    /// (id, name) of its text channels.
    pub(super) channels: Vec<(String, String)>,
}

/// A guild as `GET /users/@me/guilds` lists it (a partial guild, with the member's
/// permissions computed from their roles).
pub(super) fn partial_guild(id: &str, d: &GuildData, user: &str) -> Value {
    let roles = d.members.get(user).cloned().unwrap_or_default();
    let owner = d.owner_id == user;
    let permissions: u64 = if owner {
        u64::MAX >> 11
    } else {
        d.roles
            .iter()
            .filter(|r| r["id"] == id || roles.iter().any(|m| r["id"] == m.as_str()))
            .filter_map(|r| {
                r["permissions"]
                    .as_str()
                    .and_then(|p| p.parse::<u64>().ok())
            })
            .fold(0, |a, p| a | p)
    };
    json!({"id": id, "name": if d.name.is_empty() { "Stand-in guild" } else { d.name.as_str() },
           "icon": null, "owner": owner, "permissions": permissions.to_string(), "features": []})
}

pub(super) fn route(
    s: &Inner,
    method: &Method,
    seg: &[&str],
    body: &Value,
    app: &str,
) -> (StatusCode, Value) {
    match (method.as_str(), seg) {
        ("GET", ["users", "@me"]) => (
            StatusCode::OK,
            json!({"id": app, "username": "standin-bot", "bot": true, "discriminator": "0", "global_name": null, "avatar": null}),
        ),
        ("POST", ["users", "@me", "channels"]) => {
            let Some(user) = body["recipient_id"].as_str() else {
                return discord_error(StatusCode::BAD_REQUEST, 50035, "Invalid Form Body");
            };
            let id = s
                .dms
                .lock()
                .unwrap()
                .entry(user.to_string())
                .or_insert_with(|| s.next_snowflake())
                .clone();
            (
                StatusCode::OK,
                json!({"id": id, "type": 1, "last_message_id": null,
                    "recipients": [{"id": user, "username": format!("user{user}"), "discriminator": "0", "global_name": null, "avatar": null}]}),
            )
        }
        ("GET", ["users", "@me", "guilds"]) => {
            // The bot's guilds: every guild the stand-in knows.
            let guilds = s.guilds.lock().unwrap();
            let mut list: Vec<Value> = guilds
                .iter()
                .map(|(id, d)| partial_guild(id, d, app))
                .collect();
            list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
            (StatusCode::OK, Value::Array(list))
        }
        ("GET", ["guilds", g]) => match s.guilds.lock().unwrap().get(*g) {
            Some(d) => (
                StatusCode::OK,
                json!({"id": g, "name": if d.name.is_empty() { "Stand-in guild" } else { d.name.as_str() }, "owner_id": d.owner_id, "roles": d.roles}),
            ),
            None => discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild"),
        },
        ("GET", ["guilds", g, "roles"]) => {
            let roles = s.guilds.lock().unwrap().get(*g).map(|d| d.roles.clone());
            (
                StatusCode::OK,
                Value::Array(roles.unwrap_or_else(|| {
                    vec![json!({"id": g, "name": "@everyone", "permissions": "0", "position": 0})]
                })),
            )
        }
        ("GET", ["guilds", g, "members", u]) => {
            let roles = s
                .guilds
                .lock()
                .unwrap()
                .get(*g)
                .and_then(|d| d.members.get(*u).cloned().or(d.open.then(Vec::new)));
            match roles {
                Some(roles) => (
                    StatusCode::OK,
                    json!({"user": {"id": u, "username": format!("user{u}")}, "roles": roles, "joined_at": "2026-01-01T00:00:00Z", "deaf": false, "mute": false}),
                ),
                None => discord_error(StatusCode::NOT_FOUND, 10007, "Unknown Member"),
            }
        }
        ("GET", ["guilds", g, "channels"]) => {
            let channels = s.guilds.lock().unwrap().get(*g).map(|d| d.channels.clone());
            match channels {
                Some(list) => (
                    StatusCode::OK,
                    Value::Array(
                        list.iter()
                            .enumerate()
                            .map(|(i, (id, name))| json!({"id": id, "type": 0, "guild_id": g, "name": name, "position": i}))
                            .collect(),
                    ),
                ),
                None => discord_error(StatusCode::NOT_FOUND, 10004, "Unknown Guild"),
            }
        }
        _ => not_found(),
    }
}
