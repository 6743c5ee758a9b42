//! `/kaltura-notify subscribe|list|unsubscribe|mute`: a member's own notification
//! preferences in one server (answers are ephemeral). The server's config turns the
//! feature on (`notifications.personal.enabled`) and caps subscriptions per person.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::config::guild::GuildConfigs;
use crate::discord::model::Interaction;
use crate::discord::response::Callback;
use crate::store::Preferences;
use crate::store::preferences::{Subscribed, Subscription, Topic};

pub const COMMAND: &str = "kaltura-notify";

/// The longest mute (a year).
const MAX_MUTE_MS: i64 = 365 * 86_400_000;

pub struct NotifyCommand {
    pub preferences: Arc<dyn Preferences>,
    pub guilds: Arc<GuildConfigs>,
}

pub fn definition() -> Value {
    let what = json!({"type": 3, "name": "what", "description": "A category, a tag, or live events", "required": true,
        "choices": [{"name": "category", "value": "category"}, {"name": "tag", "value": "tag"}, {"name": "live events", "value": "live"}]});
    let name = json!({"type": 3, "name": "name", "description": "The category's full name (Training>Security) or the tag; not for live events", "required": false, "max_length": 200});
    json!({"type": 1, "name": COMMAND,
    "description": "Kaltura notifications for you, by direct message",
    "contexts": [0], "integration_types": [0], "nsfw": false,
    "options": [
        {"type": 1, "name": "subscribe", "description": "Get a DM when something matching is ready or goes live", "options": [what, name]},
        {"type": 1, "name": "list", "description": "What you subscribed to here"},
        {"type": 1, "name": "unsubscribe", "description": "Stop one subscription", "options": [what, name]},
        {"type": 1, "name": "mute", "description": "No DMs from this server for a while",
         "options": [{"type": 3, "name": "duration", "description": "30m, 2h, 3d, 1w; or off", "required": true, "max_length": 10}]}
    ]})
}

fn reply(text: &str) -> Callback {
    Callback::ephemeral(text)
}

/// `30m`, `2h`, `3d`, `1w` in milliseconds; `off` is 0.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    let s = s.trim().to_lowercase();
    if s == "off" || s == "0" {
        return Ok(0);
    }
    let bad = || format!("`{s}` is not a duration: use 30m, 2h, 3d or 1w (or off)");
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let unit_ms = match unit {
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return Err(bad()),
    };
    let ms = n.checked_mul(unit_ms).ok_or_else(bad)?;
    if !(1..=MAX_MUTE_MS).contains(&ms) {
        return Err(format!("a mute lasts from a minute to a year (got `{s}`)"));
    }
    Ok(ms)
}

/// The (topic, value) a subscribe or unsubscribe names, lower-cased.
fn subject(options: &[(&str, &Value)]) -> Result<(Topic, String), String> {
    let get = |n: &str| {
        options
            .iter()
            .find(|(k, _)| *k == n)
            .and_then(|(_, v)| v.as_str())
    };
    let topic = get("what")
        .and_then(Topic::parse)
        .ok_or("Choose what: a category, a tag or live events.")?;
    let name = get("name")
        .map(str::trim)
        .unwrap_or_default()
        .to_lowercase();
    match topic {
        Topic::Live => Ok((topic, String::new())),
        _ if name.is_empty() => Err(format!("Name the {} too (`name:`).", topic.key())),
        _ => Ok((
            topic,
            name.split('>').map(str::trim).collect::<Vec<_>>().join(">"),
        )),
    }
}

fn describe(topic: Topic, value: &str) -> String {
    match topic {
        Topic::Live => "live events".into(),
        Topic::Category => format!("category **{value}**"),
        Topic::Tag => format!("tag **{value}**"),
    }
}

impl NotifyCommand {
    pub async fn run(&self, ix: &Interaction) -> Callback {
        let (Some(guild), Some(user)) =
            (ix.guild_id.as_deref(), ix.invoker().map(|u| u.id.clone()))
        else {
            return reply("Personal notifications are set per server: use this in a server.");
        };
        let personal = &self.guilds.guild(Some(guild)).typed.notifications.personal;
        if !personal.enabled {
            return reply(
                "Personal notifications are off in this server (its admins can turn on `notifications.personal.enabled`).",
            );
        }
        let Some(sub) = ix.data["options"].as_array().and_then(|o| o.first()) else {
            return reply("Choose subscribe, list, unsubscribe or mute.");
        };
        let options: Vec<(&str, &Value)> = sub["options"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| Some((o["name"].as_str()?, &o["value"])))
            .collect();
        let outcome = match sub["name"].as_str().unwrap_or_default() {
            "subscribe" => {
                self.subscribe(guild, &user, &options, personal.max_subscriptions)
                    .await
            }
            "unsubscribe" => self.unsubscribe(guild, &user, &options).await,
            "list" => self.list(guild, &user).await,
            "mute" => self.mute(guild, &user, &options).await,
            other => Ok(format!("Unknown subcommand `{other}`.")),
        };
        match outcome {
            Ok(text) => reply(&text),
            Err(e) => {
                tracing::error!(error = %e, "notification preferences could not be read or changed");
                reply(
                    "Your notification preferences could not be changed right now; please try again.",
                )
            }
        }
    }

    async fn subscribe(
        &self,
        guild: &str,
        user: &str,
        options: &[(&str, &Value)],
        max: u32,
    ) -> anyhow::Result<String> {
        let (topic, value) = match subject(options) {
            Ok(s) => s,
            Err(why) => return Ok(why),
        };
        let s = Subscription {
            guild_id: guild.into(),
            user_id: user.into(),
            topic,
            value: value.clone(),
            created_at: crate::store::now_ms(),
        };
        Ok(match self.preferences.subscribe(&s, max as usize).await? {
            Subscribed::Added => format!(
                "🔔 Subscribed to {}: you get a direct message when something matching is ready or goes live. (Make sure you accept DMs from this server's members: if Discord refuses them, the subscription is dropped.)",
                describe(topic, &value)
            ),
            Subscribed::Already => format!(
                "You are already subscribed to {}: renewed from today.",
                describe(topic, &value)
            ),
            Subscribed::TooMany(n) => format!(
                "You have {n} subscriptions here, this server's most: unsubscribe from one first (`/kaltura-notify list`)."
            ),
        })
    }

    async fn unsubscribe(
        &self,
        guild: &str,
        user: &str,
        options: &[(&str, &Value)],
    ) -> anyhow::Result<String> {
        let (topic, value) = match subject(options) {
            Ok(s) => s,
            Err(why) => return Ok(why),
        };
        Ok(
            if self
                .preferences
                .unsubscribe(guild, user, topic, &value)
                .await?
            {
                format!("🔕 Unsubscribed from {}.", describe(topic, &value))
            } else {
                format!("You were not subscribed to {}.", describe(topic, &value))
            },
        )
    }

    async fn list(&self, guild: &str, user: &str) -> anyhow::Result<String> {
        let subs = self.preferences.list(guild, user).await?;
        let muted = self
            .preferences
            .muted_until(guild, user)
            .await?
            .filter(|t| *t > crate::store::now_ms());
        if subs.is_empty() {
            return Ok(
                "You have no subscriptions here. `/kaltura-notify subscribe` adds one.".into(),
            );
        }
        let mut text = String::from("Your subscriptions here:\n");
        for s in &subs {
            text.push_str(&format!("• {}\n", describe(s.topic, &s.value)));
        }
        if let Some(t) = muted {
            text.push_str(&format!("Muted until <t:{}:f>.", t / 1000));
        }
        Ok(text)
    }

    async fn mute(
        &self,
        guild: &str,
        user: &str,
        options: &[(&str, &Value)],
    ) -> anyhow::Result<String> {
        let raw = options
            .iter()
            .find(|(k, _)| *k == "duration")
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default();
        let ms = match parse_duration(raw) {
            Ok(ms) => ms,
            Err(why) => return Ok(why),
        };
        if ms == 0 {
            self.preferences.mute(guild, user, 0).await?;
            return Ok("🔔 Unmuted: matching events reach you again.".into());
        }
        let until = crate::store::now_ms() + ms;
        self.preferences.mute(guild, user, until).await?;
        Ok(format!(
            "🔇 Muted until <t:{}:f>: nothing from this server's subscriptions until then.",
            until / 1000
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m"), Ok(1_800_000));
        assert_eq!(parse_duration(" 2H "), Ok(7_200_000));
        assert_eq!(parse_duration("1w"), Ok(604_800_000));
        assert_eq!(parse_duration("off"), Ok(0));
        for bad in ["", "h", "5", "5y", "-1h", "400d", "99999999999999w"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_are_lower_cased_and_live_needs_no_name() {
        let (what, name) = (json!("category"), json!(" Training > Security "));
        let opts = [("what", &what), ("name", &name)];
        assert_eq!(
            subject(&opts),
            Ok((Topic::Category, "training>security".to_string()))
        );
        let live = json!("live");
        assert_eq!(
            subject(&[("what", &live)]),
            Ok((Topic::Live, String::new()))
        );
        let tag = json!("tag");
        assert!(subject(&[("what", &tag)]).is_err());
    }
}
