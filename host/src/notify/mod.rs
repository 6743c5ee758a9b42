//! Personal notifications: a member subscribes (`/kaltura-notify`) to a category, a tag or
//! live events in one server, and matching Kaltura events reach them by direct message
//! through the outbox: one lane per person (`dm:<user>`), the same exactly-once rules as
//! channel messages. A person who does not accept the bot's DMs is unsubscribed there and
//! the message is a dead letter with that reason, never retried.

pub mod commands;

use serde_json::{Value, json};

use crate::events::template::{render, truncate};
use crate::events::{KalturaEvent, KalturaEventKind};
use crate::store::NewMessage;
use crate::store::preferences::Offer;

/// The lane (and the outbox's `channel`) of a person's direct messages.
pub fn dm_channel(user: &str) -> String {
    format!("{DM_PREFIX}{user}")
}

/// The person a `dm:` channel is for.
pub fn dm_user(channel: &str) -> Option<&str> {
    channel.strip_prefix(DM_PREFIX)
}

const DM_PREFIX: &str = "dm:";

/// What an event is about, as subscriptions name it: categories with each parent
/// (`Training>Security` is also in `Training`), tags, and whether it is a live event.
pub fn offer_of(ev: &KalturaEvent) -> Offer {
    let mut categories = Vec::new();
    for full in &ev.categories {
        let mut path = String::new();
        for part in full.split('>') {
            if !path.is_empty() {
                path.push('>');
            }
            path.push_str(part.trim());
            let lower = path.to_lowercase();
            if !categories.contains(&lower) {
                categories.push(lower);
            }
        }
    }
    Offer {
        categories,
        tags: ev.tags.iter().map(|t| t.trim().to_lowercase()).collect(),
        live: matches!(
            ev.kind,
            KalturaEventKind::LiveStarted | KalturaEventKind::MeetingStarted
        ),
    }
}

/// The direct message for one event: the server's text for it, and why it came.
pub fn dm_body(template: &str, vars: &Value) -> Value {
    let text = render(template, vars);
    json!({
        "content": truncate(
            &format!("{text}\n-# You subscribed with /kaltura-notify: use it in that server to unsubscribe or mute."),
            2000
        ),
        "allowed_mentions": {"parse": []},
    })
}

/// One message per listener, each in their own lane.
pub fn messages(
    guild: &str,
    listeners: &[String],
    body: &Value,
    ev: &KalturaEvent,
) -> Vec<NewMessage> {
    listeners
        .iter()
        .map(|user| NewMessage {
            guild_id: guild.to_string(),
            channel: dm_channel(user),
            body: body.clone(),
            source: format!("personal:{}", ev.kind.key()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_offers_each_parent_category_its_tags_and_live() {
        let ev = KalturaEvent {
            kind: KalturaEventKind::LiveStarted,
            guild: None,
            id: "1".into(),
            entry_id: None,
            entry_name: None,
            tags: vec![" Rust ".into()],
            categories: vec!["Training>Security".into(), "Training>Rust".into()],
            fields: Default::default(),
        };
        let o = offer_of(&ev);
        assert_eq!(
            o.categories,
            ["training", "training>security", "training>rust"]
        );
        assert_eq!(o.tags, ["rust"]);
        assert!(o.live);
        assert_eq!(dm_user(&dm_channel("71")), Some("71"));
    }
}
