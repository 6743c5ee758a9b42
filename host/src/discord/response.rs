//! Plugin responses → Discord JSON, validated against Discord's limits first.
//!
//! Every violation becomes a message that names the rule, so the user sees a clear ephemeral
//! error naming the plugin instead of Discord's 50035 after the fact. Custom ids are prefixed
//! with the plugin name (`plugin:id`) so components and modals route back to their owner.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::plugins::bindings::types::{
    ButtonStyle, Choice, ChoiceValue, Component, Embed, Message, Modal, Response, TextInputStyle,
};

/// Which kind of interaction is being answered (what responses are valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answering {
    Command,
    Component,
    Autocomplete,
    Modal,
}

pub const EPHEMERAL: u64 = 1 << 6;

/// `plugin:id`, the custom id Discord sees.
pub fn namespaced(plugin: &str, id: &str) -> String {
    format!("{plugin}:{id}")
}

/// Splits a custom id from Discord into (plugin, the plugin's own id).
pub fn split_custom_id(custom_id: &str) -> Option<(&str, &str)> {
    custom_id.split_once(':')
}

fn len(s: &str) -> usize {
    s.chars().count()
}

fn limit(what: &str, s: &str, min: usize, max: usize) -> Result<(), String> {
    let n = len(s);
    if n < min || n > max {
        return Err(if min > 0 {
            format!("{what} must be {min}-{max} characters (it is {n})")
        } else {
            format!("{what} is {n} characters (Discord allows {max})")
        });
    }
    Ok(())
}

fn custom_id(
    plugin: &str,
    what: &str,
    id: &str,
    seen: &mut HashSet<String>,
) -> Result<String, String> {
    let full = namespaced(plugin, id);
    if id.is_empty() || len(&full) > 100 {
        return Err(format!(
            "{what}: custom id `{id}` must be 1-{} characters",
            100 - len(plugin) - 1
        ));
    }
    if !seen.insert(full.clone()) {
        return Err(format!(
            "{what}: custom id `{id}` is used twice in one message"
        ));
    }
    Ok(full)
}

fn embed_json(i: usize, e: &Embed, total: &mut usize) -> Result<Value, String> {
    let at = |f: &str| format!("embed {}: {f}", i + 1);
    let mut o = serde_json::Map::new();
    let mut text = |key: &str, v: &Option<String>, max: usize| -> Result<(), String> {
        if let Some(s) = v {
            limit(&at(key), s, 0, max)?;
            *total += len(s);
            o.insert(key.into(), json!(s));
        }
        Ok(())
    };
    text("title", &e.title, 256)?;
    text("description", &e.description, 4096)?;
    if let Some(u) = &e.url {
        limit(&at("url"), u, 1, 2048)?;
        o.insert("url".into(), json!(u));
    }
    if let Some(c) = e.color {
        if c > 0xFF_FFFF {
            return Err(at("color must be a 24-bit RGB value"));
        }
        o.insert("color".into(), json!(c));
    }
    if e.fields.len() > 25 {
        return Err(at(&format!(
            "{} fields (Discord allows 25)",
            e.fields.len()
        )));
    }
    let mut fields = Vec::new();
    for (j, f) in e.fields.iter().enumerate() {
        limit(&at(&format!("field {} name", j + 1)), &f.name, 1, 256)?;
        limit(&at(&format!("field {} value", j + 1)), &f.value, 1, 1024)?;
        *total += len(&f.name) + len(&f.value);
        fields.push(json!({"name": f.name, "value": f.value, "inline": f.inline}));
    }
    if !fields.is_empty() {
        o.insert("fields".into(), Value::Array(fields));
    }
    if let Some(a) = &e.author {
        limit(&at("author"), a, 1, 256)?;
        *total += len(a);
        o.insert("author".into(), json!({"name": a}));
    }
    if let Some(f) = &e.footer {
        limit(&at("footer"), f, 1, 2048)?;
        *total += len(f);
        o.insert("footer".into(), json!({"text": f}));
    }
    if let Some(u) = &e.image_url {
        o.insert("image".into(), json!({"url": u}));
    }
    if let Some(u) = &e.thumbnail_url {
        o.insert("thumbnail".into(), json!({"url": u}));
    }
    if let Some(t) = &e.timestamp {
        o.insert("timestamp".into(), json!(t));
    }
    Ok(Value::Object(o))
}

/// One component, checked against Discord's limits. Long by nature: one arm per kind
/// of component.
fn component_json(
    plugin: &str,
    r: usize,
    c: &Component,
    seen: &mut HashSet<String>,
) -> Result<Value, String> {
    let at = |f: &str| format!("row {}: {f}", r + 1);
    match c {
        Component::Button(b) => {
            let mut o = json!({"type": 2, "disabled": b.disabled});
            let style = match b.style {
                ButtonStyle::Primary => 1,
                ButtonStyle::Secondary => 2,
                ButtonStyle::Success => 3,
                ButtonStyle::Danger => 4,
                ButtonStyle::Link => 5,
            };
            o["style"] = json!(style);
            if let Some(l) = &b.label {
                limit(&at("button label"), l, 0, 80)?;
                o["label"] = json!(l);
            }
            if b.label.is_none() && b.emoji.is_none() {
                return Err(at("a button needs a label or an emoji"));
            }
            if let Some(e) = &b.emoji {
                o["emoji"] = match e.split_once(':') {
                    Some((name, id)) => json!({"name": name, "id": id}),
                    None => json!({"name": e}),
                };
            }
            if style == 5 {
                let url = b
                    .url
                    .as_deref()
                    .ok_or_else(|| at("a link button needs a url"))?;
                limit(&at("button url"), url, 1, 512)?;
                if b.custom_id.is_some() {
                    return Err(at("a link button cannot have a custom id"));
                }
                o["url"] = json!(url);
            } else {
                let id = b
                    .custom_id
                    .as_deref()
                    .ok_or_else(|| at("a button needs a custom id"))?;
                o["custom_id"] = json!(custom_id(plugin, &at("button"), id, seen)?);
                if b.url.is_some() {
                    return Err(at("only link buttons have a url"));
                }
            }
            Ok(o)
        }
        Component::Select(s) => {
            let id = custom_id(plugin, &at("select"), &s.custom_id, seen)?;
            if s.options.is_empty() || s.options.len() > 25 {
                return Err(at(&format!(
                    "a select menu needs 1-25 options (it has {})",
                    s.options.len()
                )));
            }
            if s.max_values as usize > s.options.len()
                || s.min_values > s.max_values
                || s.max_values == 0
            {
                return Err(at(
                    "select min/max values must satisfy 0 <= min <= max <= options, max >= 1",
                ));
            }
            let mut options = Vec::new();
            for o in &s.options {
                limit(&at("select option label"), &o.label, 1, 100)?;
                limit(&at("select option value"), &o.value, 1, 100)?;
                let mut v = json!({"label": o.label, "value": o.value, "default": o.selected});
                if let Some(d) = &o.description {
                    limit(&at("select option description"), d, 0, 100)?;
                    v["description"] = json!(d);
                }
                options.push(v);
            }
            let mut o = json!({"type": 3, "custom_id": id, "options": options,
                "min_values": s.min_values, "max_values": s.max_values, "disabled": s.disabled});
            if let Some(p) = &s.placeholder {
                limit(&at("select placeholder"), p, 0, 150)?;
                o["placeholder"] = json!(p);
            }
            Ok(o)
        }
    }
}

/// The `data` of a message (interaction reply, follow-up or channel message).
pub fn message_json(plugin: &str, m: &Message) -> Result<Value, String> {
    let mut o = serde_json::Map::new();
    if let Some(c) = &m.content {
        limit("content", c, 0, 2000)?;
        o.insert("content".into(), json!(c));
    }
    if m.embeds.len() > 10 {
        return Err(format!("{} embeds (Discord allows 10)", m.embeds.len()));
    }
    let mut total = 0;
    let embeds = m
        .embeds
        .iter()
        .enumerate()
        .map(|(i, e)| embed_json(i, e, &mut total))
        .collect::<Result<Vec<_>, _>>()?;
    if total > 6000 {
        return Err(format!(
            "the embeds hold {total} characters together (Discord allows 6000)"
        ));
    }
    if m.content.as_deref().is_none_or(str::is_empty)
        && embeds.is_empty()
        && m.components.is_empty()
    {
        return Err("the message is empty (no content, embeds or components)".into());
    }
    if m.components.len() > 5 {
        return Err(format!(
            "{} component rows (Discord allows 5)",
            m.components.len()
        ));
    }
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (r, row) in m.components.iter().enumerate() {
        let selects = row
            .components
            .iter()
            .filter(|c| matches!(c, Component::Select(_)))
            .count();
        if row.components.is_empty()
            || row.components.len() > 5
            || (selects > 0 && row.components.len() > 1)
        {
            return Err(format!(
                "row {}: a row holds 1-5 buttons or one select menu",
                r + 1
            ));
        }
        let comps = row
            .components
            .iter()
            .map(|c| component_json(plugin, r, c, &mut seen))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(json!({"type": 1, "components": comps}));
    }
    if !embeds.is_empty() {
        o.insert("embeds".into(), Value::Array(embeds));
    }
    if !rows.is_empty() {
        o.insert("components".into(), Value::Array(rows));
    }
    if m.ephemeral {
        o.insert("flags".into(), json!(EPHEMERAL));
    }
    // Plugin text may ping users it names, never @everyone/@here or roles.
    o.insert("allowed_mentions".into(), json!({"parse": ["users"]}));
    Ok(Value::Object(o))
}

fn modal_json(plugin: &str, m: &Modal) -> Result<Value, String> {
    let mut seen = HashSet::new();
    let id = custom_id(plugin, "modal", &m.custom_id, &mut seen)?;
    limit("modal title", &m.title, 1, 45)?;
    if m.inputs.is_empty() || m.inputs.len() > 5 {
        return Err(format!(
            "a modal holds 1-5 text inputs (it has {})",
            m.inputs.len()
        ));
    }
    let mut rows = Vec::new();
    for (i, t) in m.inputs.iter().enumerate() {
        let at = format!("modal input {}", i + 1);
        limit(&format!("{at} label"), &t.label, 1, 45)?;
        limit(&format!("{at} custom id"), &t.custom_id, 1, 100)?;
        if !seen.insert(t.custom_id.clone()) {
            return Err(format!("{at}: custom id `{}` is used twice", t.custom_id));
        }
        let mut o = json!({
            "type": 4,
            "custom_id": t.custom_id,
            "label": t.label,
            "style": match t.style { TextInputStyle::Short => 1, TextInputStyle::Paragraph => 2 },
            "required": t.required,
        });
        if let Some(p) = &t.placeholder {
            limit(&format!("{at} placeholder"), p, 0, 100)?;
            o["placeholder"] = json!(p);
        }
        if let Some(v) = &t.value {
            limit(&format!("{at} value"), v, 0, 4000)?;
            o["value"] = json!(v);
        }
        if let Some(n) = t.min_length {
            o["min_length"] = json!(n.min(4000));
        }
        if let Some(n) = t.max_length {
            o["max_length"] = json!(n.clamp(1, 4000));
        }
        rows.push(json!({"type": 1, "components": [o]}));
    }
    Ok(json!({"custom_id": id, "title": m.title, "components": rows}))
}

fn choices_json(choices: &[Choice]) -> Result<Value, String> {
    if choices.len() > 25 {
        return Err(format!(
            "{} autocomplete choices (Discord allows 25)",
            choices.len()
        ));
    }
    let list = choices
        .iter()
        .map(|c| {
            limit("choice name", &c.name, 1, 100)?;
            Ok(json!({"name": c.name, "value": match &c.value {
                ChoiceValue::Text(s) => { limit("choice value", s, 1, 100)?; json!(s) }
                ChoiceValue::Integer(i) => json!(i),
                ChoiceValue::Number(n) => json!(n),
            }}))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(json!({"choices": list}))
}

/// An interaction callback: what the host answers Discord with, typed until it is
/// serialized once at the transport (`{type, data}`).
#[derive(Debug, Clone, PartialEq)]
pub enum Callback {
    /// 1: the answer to a PING.
    Pong,
    /// 4: a message (its `data`).
    Message(Value),
    /// 5: "thinking…"; the answer follows as an edit of the original. `ephemeral` is
    /// what the plugin asked for; the host's own deferral says nothing (`None`).
    DeferMessage { ephemeral: Option<bool> },
    /// 6: a control acknowledged; its message stays as it is.
    DeferUpdate,
    /// 7: the control's message replaced (its `data`).
    UpdateMessage(Value),
    /// 8: autocomplete choices (`{choices: [...]}`).
    Choices(Value),
    /// 9: a modal (its `data`).
    Modal(Value),
    /// 12: open the app's Activity.
    LaunchActivity,
    /// A message with files. Discord takes files only as multipart, so the dispatcher
    /// acknowledges with a deferral and sends this as a follow-up; on the wire it is never
    /// seen (serialized, it is its message without the files).
    Files {
        data: Value,
        files: Vec<super::rest::Upload>,
    },
}

impl Callback {
    /// An ephemeral text reply (see [`ephemeral_message`]).
    pub fn ephemeral(text: &str) -> Self {
        Callback::Message(ephemeral_message(text))
    }

    /// Discord's response type number.
    pub fn kind(&self) -> u8 {
        match self {
            Callback::Pong => 1,
            Callback::Message(_) | Callback::Files { .. } => 4,
            Callback::DeferMessage { .. } => 5,
            Callback::DeferUpdate => 6,
            Callback::UpdateMessage(_) => 7,
            Callback::Choices(_) => 8,
            Callback::Modal(_) => 9,
            Callback::LaunchActivity => 12,
        }
    }

    /// An acknowledgement whose answer comes later.
    pub fn is_deferral(&self) -> bool {
        matches!(self, Callback::DeferMessage { .. } | Callback::DeferUpdate)
    }

    /// The body Discord reads, as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("callbacks serialize")
    }
}

/// `{type, data}`, serialized from the callback without copying its data.
impl serde::Serialize for Callback {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use std::borrow::Cow;
        #[derive(serde::Serialize)]
        struct Wire<'a> {
            #[serde(rename = "type")]
            kind: u8,
            #[serde(skip_serializing_if = "Option::is_none")]
            data: Option<Cow<'a, Value>>,
        }
        let data = match self {
            Callback::Message(d)
            | Callback::Files { data: d, .. }
            | Callback::UpdateMessage(d)
            | Callback::Choices(d)
            | Callback::Modal(d) => Some(Cow::Borrowed(d)),
            Callback::DeferMessage {
                ephemeral: Some(eph),
            } => Some(Cow::Owned(
                json!({"flags": if *eph { EPHEMERAL } else { 0 }}),
            )),
            Callback::DeferMessage { ephemeral: None }
            | Callback::Pong
            | Callback::DeferUpdate
            | Callback::LaunchActivity => None,
        };
        Wire {
            kind: self.kind(),
            data,
        }
        .serialize(s)
    }
}

/// An ephemeral text message, cut to what Discord takes (mentions never ping).
pub fn ephemeral_message(text: &str) -> Value {
    json!({
        "content": crate::events::template::truncate(text, 1901),
        "flags": EPHEMERAL,
        "allowed_mentions": {"parse": []}
    })
}

/// The interaction callback for a plugin's response.
pub fn callback(plugin: &str, answering: Answering, r: &Response) -> Result<Callback, String> {
    use Answering::*;
    let wrong = |what: &str| Err(format!("{what} is not a valid answer to this interaction"));
    match (r, answering) {
        (Response::Choices(c), Autocomplete) => Ok(Callback::Choices(choices_json(c)?)),
        (_, Autocomplete) => wrong("only autocomplete choices; this"),
        (Response::Choices(_), _) => wrong("autocomplete choices"),
        (Response::Message(m), _) => Ok(Callback::Message(message_json(plugin, m)?)),
        (Response::UpdateMessage(m), Component | Modal) => {
            Ok(Callback::UpdateMessage(message_json(plugin, m)?))
        }
        (Response::UpdateMessage(_), _) => wrong("update-message (components only)"),
        (Response::Modal(m), Command | Component) => Ok(Callback::Modal(modal_json(plugin, m)?)),
        (Response::Modal(_), _) => wrong("a modal"),
        (Response::Defer(eph), _) => Ok(Callback::DeferMessage {
            ephemeral: Some(*eph),
        }),
        (Response::DeferUpdate, Component | Modal) => Ok(Callback::DeferUpdate),
        (Response::DeferUpdate, _) => wrong("defer-update (components only)"),
        (Response::LaunchActivity, _) => Ok(Callback::LaunchActivity),
    }
}

/// An ephemeral error reply; for autocomplete, an empty choice list.
pub fn error_reply(answering: Answering, text: &str) -> Callback {
    if answering == Answering::Autocomplete {
        return no_choices();
    }
    Callback::ephemeral(text)
}

/// Autocomplete with nothing to suggest.
pub fn no_choices() -> Callback {
    Callback::Choices(json!({"choices": []}))
}

/// A guest's output as the callback Discord gets, and, when it went wrong, what went
/// wrong in words for the plugin's author (the member reads the callback).
pub struct Rendered {
    pub callback: Callback,
    pub problem: Option<String>,
}

/// One rendering of a guest's output for the dispatcher and `kdhost plugin test`.
pub fn render(
    plugin: &str,
    answering: Answering,
    out: Result<crate::plugins::Output, crate::plugins::CallError>,
) -> Rendered {
    use crate::plugins::Output;
    let failed = |member: String, problem: String| Rendered {
        callback: error_reply(answering, &member),
        problem: Some(problem),
    };
    match out {
        Ok(Output::Response(Ok(r))) => match callback(plugin, answering, &r) {
            Ok(callback) => Rendered {
                callback,
                problem: None,
            },
            Err(why) => {
                tracing::warn!(plugin, %why, "plugin response violates Discord's limits");
                failed(
                    format!("The `{plugin}` plugin gave an answer Discord would reject: {why}."),
                    format!("Discord would reject the answer: {why}"),
                )
            }
        },
        Ok(Output::Response(Err(msg))) => failed(
            format!("`{plugin}`: {msg}"),
            format!("the plugin answered with an error: {msg}"),
        ),
        Ok(_) => failed(
            format!("The `{plugin}` plugin answered with the wrong kind of result."),
            "the plugin answered with the wrong kind of result".into(),
        ),
        Err(e) => failed(
            format!("The `{plugin}` plugin {e}. The bot's operators can find details in its logs."),
            format!("the call failed: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::bindings::types::{ActionRow, Button, EmbedField};

    fn msg(content: &str) -> Message {
        Message {
            content: Some(content.into()),
            embeds: vec![],
            components: vec![],
            ephemeral: false,
        }
    }

    fn embed(desc: &str) -> Embed {
        Embed {
            title: None,
            description: Some(desc.into()),
            url: None,
            color: None,
            fields: vec![],
            author: None,
            footer: None,
            image_url: None,
            thumbnail_url: None,
            timestamp: None,
        }
    }

    fn button(id: &str) -> Component {
        Component::Button(Button {
            style: ButtonStyle::Primary,
            label: Some("x".into()),
            custom_id: Some(id.into()),
            url: None,
            emoji: None,
            disabled: false,
        })
    }

    #[test]
    fn message_gets_namespaced_ids_and_safe_mentions() {
        let mut m = msg("hi");
        m.ephemeral = true;
        m.components = vec![ActionRow {
            components: vec![button("a"), button("b")],
        }];
        let v = callback("poll", Answering::Command, &Response::Message(m))
            .unwrap()
            .to_json();
        assert_eq!(v["type"], 4);
        assert_eq!(v["data"]["flags"], 64);
        assert_eq!(
            v["data"]["components"][0]["components"][1]["custom_id"],
            "poll:b"
        );
        assert_eq!(v["data"]["allowed_mentions"]["parse"], json!(["users"]));
        assert_eq!(split_custom_id("poll:b:c"), Some(("poll", "b:c")));
    }

    #[test]
    fn limits_are_named() {
        let e = message_json("p", &msg(&"x".repeat(2001))).unwrap_err();
        assert!(
            e.contains("content is 2001 characters (Discord allows 2000)"),
            "{e}"
        );
        let mut m = msg("x");
        m.embeds = vec![embed(&"d".repeat(4000)), embed(&"d".repeat(2500))];
        let e = message_json("p", &m).unwrap_err();
        assert!(e.contains("6000"), "{e}");
        let mut m = msg("x");
        m.embeds = vec![embed("d")];
        m.embeds[0].fields = (0..26)
            .map(|_| EmbedField {
                name: "n".into(),
                value: "v".into(),
                inline: false,
            })
            .collect();
        assert!(message_json("p", &m).unwrap_err().contains("26 fields"));
        let mut m = msg("x");
        m.components = vec![ActionRow {
            components: (0..6).map(|i| button(&i.to_string())).collect(),
        }];
        assert!(message_json("p", &m).unwrap_err().contains("1-5 buttons"));
        let mut m = msg("x");
        m.components = vec![ActionRow {
            components: vec![button("a"), button("a")],
        }];
        assert!(message_json("p", &m).unwrap_err().contains("used twice"));
        assert!(message_json("p", &msg("")).unwrap_err().contains("empty"));
    }

    #[test]
    fn responses_must_fit_the_interaction() {
        let type_of =
            |a: Answering, r: &Response| callback("p", a, r).map(|c| c.to_json()["type"].clone());
        assert!(type_of(Answering::Command, &Response::UpdateMessage(msg("x"))).is_err());
        assert!(type_of(Answering::Command, &Response::Choices(vec![])).is_err());
        assert_eq!(
            type_of(Answering::Autocomplete, &Response::Choices(vec![])).unwrap(),
            8
        );
        assert_eq!(
            type_of(Answering::Component, &Response::DeferUpdate).unwrap(),
            6
        );
        assert_eq!(
            type_of(Answering::Command, &Response::LaunchActivity).unwrap(),
            12
        );
        assert_eq!(
            type_of(Answering::Command, &Response::Defer(true)).unwrap(),
            5
        );
        let deferred = callback("p", Answering::Command, &Response::Defer(true)).unwrap();
        assert!(deferred.is_deferral());
        assert_eq!(deferred.to_json()["data"]["flags"], 64);
        let err = error_reply(Answering::Command, &"x".repeat(3000)).to_json();
        assert_eq!(err["data"]["flags"], 64);
        assert_eq!(
            err["data"]["content"].as_str().unwrap().chars().count(),
            1901
        );
        assert_eq!(error_reply(Answering::Autocomplete, "boom"), no_choices());
        assert_eq!(Callback::Pong.to_json(), json!({"type": 1}));
    }
}
