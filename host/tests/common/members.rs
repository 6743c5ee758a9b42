//! Members using the Kaltura commands: signed interactions from a guild member with given
//! roles and permissions, and what their answers carry (buttons, links, sessions).

use serde_json::{Value, json};

use super::{GUILD, Host, buttons};

/// SEND_MESSAGES only: a member without admin permissions.
pub const PLAIN: &str = "2048";
/// Another member of the guild.
pub const OTHER: &str = "700000000000000002";

/// A member without admin permissions, with these roles.
pub fn member(mut p: Value, user: &str, roles: &[&str], permissions: &str) -> Value {
    p["member"]["user"]["id"] = json!(user);
    p["member"]["roles"] = json!(roles);
    p["member"]["permissions"] = json!(permissions);
    p
}

/// Sends a signed interaction and returns the (200) answer.
pub async fn send(host: &Host, p: &Value) -> Value {
    let (status, body) = host.standin.send_interaction(&host.url, p).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

pub async fn command(host: &Host, name: &str, options: Value, user: &str, perms: &str) -> Value {
    let p = host.standin.command(name, options, GUILD, user, &[]);
    send(host, &member(p, user, &[], perms)).await
}

pub async fn button(
    host: &Host,
    custom_id: &str,
    user: &str,
    roles: &[&str],
    perms: &str,
) -> Value {
    let p = host.standin.button(custom_id, GUILD, user);
    send(host, &member(p, user, roles, perms)).await
}

/// The custom id of the answer's button whose id contains `marker`.
pub fn button_id(body: &Value, marker: &str) -> String {
    buttons(body)
        .iter()
        .filter_map(|b| b["custom_id"].as_str())
        .find(|id| id.contains(marker))
        .unwrap_or_else(|| panic!("no button with {marker} in {body}"))
        .to_string()
}

/// The meeting id a `/kaltura-start` answer shows.
pub fn started_id(started: &Value) -> String {
    started["data"]["embeds"][0]["fields"][2]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("no meeting id in {started}"))
        .trim_matches('`')
        .to_string()
}

/// The answer's link button URL.
pub fn link(body: &Value) -> String {
    buttons(body)
        .iter()
        .find_map(|b| b["url"].as_str().map(String::from))
        .unwrap_or_else(|| panic!("no link button in {body}"))
}

/// The `ks` parameter of a URL.
pub fn ks_in(url: &str) -> String {
    let q = url.split_once('?').unwrap().1;
    url::form_urlencoded::parse(q.as_bytes())
        .find(|(k, _)| k == "ks")
        .map(|(_, v)| v.to_string())
        .expect("a ks parameter")
}
