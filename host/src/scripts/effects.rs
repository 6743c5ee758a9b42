//! What a rule run produces. Rules never act: they return effects, and the host carries
//! them out (or, in a dry run, prints them).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::events::template::truncate;

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Effect {
    /// Post a message to a channel (through the outbox).
    Notify { channel: String, message: Value },
    /// Answer the command that ran the rule.
    Reply { message: Value, ephemeral: bool },
    /// Store a value in the guild's rule storage.
    KvSet { key: String, value: Value },
}

const EMBED_KEYS: &[&str] = &[
    "title",
    "description",
    "url",
    "color",
    "thumbnail",
    "image",
    "footer",
    "fields",
    "author",
];

/// A Discord message body from what a rule passed: text, a message map (`content`,
/// `embeds`/`embed`) or an embed map. Errors say what was wrong.
pub fn message_from(v: &Value) -> Result<Value, String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => {
            Ok(json!({"content": truncate(s.trim(), 2000)}))
        }
        Value::String(_) => Err("the message is empty".into()),
        Value::Object(o)
            if o.contains_key("content") || o.contains_key("embeds") || o.contains_key("embed") =>
        {
            let mut msg = Map::new();
            if let Some(c) = o.get("content") {
                let c = c.as_str().ok_or("`content` must be a string")?;
                msg.insert("content".into(), json!(truncate(c, 2000)));
            }
            let mut embeds = Vec::new();
            if let Some(e) = o.get("embed") {
                embeds.push(embed_from(e)?);
            }
            for e in o
                .get("embeds")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                embeds.push(embed_from(e)?);
            }
            if embeds.len() > 10 {
                return Err("at most 10 embeds".into());
            }
            if !embeds.is_empty() {
                msg.insert("embeds".into(), Value::Array(embeds));
            }
            if let Some(k) = o
                .keys()
                .find(|k| !matches!(k.as_str(), "content" | "embed" | "embeds"))
            {
                return Err(format!(
                    "unknown message field `{k}` (content, embed, embeds)"
                ));
            }
            Ok(Value::Object(msg))
        }
        Value::Object(_) => Ok(json!({"embeds": [embed_from(v)?]})),
        other => Err(format!("expected text or a map, got {}", kind(other))),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (())",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "a map",
    }
}

fn embed_from(v: &Value) -> Result<Value, String> {
    let o = v.as_object().ok_or("an embed must be a map")?;
    if let Some(k) = o.keys().find(|k| !EMBED_KEYS.contains(&k.as_str())) {
        return Err(format!(
            "unknown embed field `{k}` ({})",
            EMBED_KEYS.join(", ")
        ));
    }
    let text = |k: &str, max: usize| -> Result<Option<String>, String> {
        match o.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(truncate(s, max))),
            Some(other) => Err(format!("embed `{k}` must be text, got {}", kind(other))),
        }
    };
    let mut e = Map::new();
    if let Some(t) = text("title", 256)? {
        e.insert("title".into(), json!(t));
    }
    if let Some(t) = text("description", 4096)? {
        e.insert("description".into(), json!(t));
    }
    if let Some(t) = text("url", 2048)? {
        e.insert("url".into(), json!(t));
    }
    if let Some(c) = o.get("color") {
        let c = c
            .as_u64()
            .filter(|c| *c <= 0xFF_FFFF)
            .ok_or("embed `color` must be 0 to 0xFFFFFF")?;
        e.insert("color".into(), json!(c));
    }
    for k in ["thumbnail", "image"] {
        if let Some(u) = text(k, 2048)?
            && !u.is_empty()
        {
            e.insert(k.into(), json!({"url": u}));
        }
    }
    if let Some(t) = text("footer", 2048)? {
        e.insert("footer".into(), json!({"text": t}));
    }
    if let Some(t) = text("author", 256)? {
        e.insert("author".into(), json!({"name": t}));
    }
    if let Some(fields) = o.get("fields") {
        let list = fields.as_array().ok_or("embed `fields` must be an array")?;
        if list.len() > 25 {
            return Err("at most 25 embed fields".into());
        }
        let mut out = Vec::new();
        for f in list {
            let name = f["name"].as_str().ok_or("each field needs a `name`")?;
            let value = match &f["value"] {
                Value::String(s) => s.clone(),
                Value::Null => return Err("each field needs a `value`".into()),
                other => other.to_string(),
            };
            out.push(
                json!({"name": truncate(name, 256), "value": truncate(&value, 1024),
                "inline": f["inline"].as_bool().unwrap_or(false)}),
            );
        }
        e.insert("fields".into(), Value::Array(out));
    }
    let total: usize = ["title", "description"]
        .iter()
        .filter_map(|k| e.get(*k).and_then(Value::as_str))
        .map(|s| s.chars().count())
        .sum();
    if total > 6000 {
        return Err("the embed is longer than Discord's 6000 characters".into());
    }
    Ok(Value::Object(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_messages_and_embeds() {
        assert_eq!(
            message_from(&json!("hi")).unwrap(),
            json!({"content": "hi"})
        );
        let m = message_from(
            &json!({"title": "T", "thumbnail": "https://x/t.jpg", "color": 255,
            "fields": [{"name": "a", "value": 3}]}),
        )
        .unwrap();
        assert_eq!(m["embeds"][0]["thumbnail"]["url"], "https://x/t.jpg");
        assert_eq!(m["embeds"][0]["fields"][0]["value"], "3");
        let m = message_from(&json!({"content": "c", "embed": {"title": "T"}})).unwrap();
        assert_eq!(m, json!({"content": "c", "embeds": [{"title": "T"}]}));
        assert!(
            message_from(&json!({"titel": "x"}))
                .unwrap_err()
                .contains("unknown embed field `titel`")
        );
        assert!(message_from(&json!(5)).unwrap_err().contains("a number"));
        assert!(message_from(&json!("  ")).is_err());
        assert_eq!(
            message_from(&json!("x".repeat(3000))).unwrap()["content"]
                .as_str()
                .unwrap()
                .chars()
                .count(),
            2000
        );
    }
}
