//! Personal notification preferences: what each person asked, in one guild, to hear about
//! by direct message (a category, a tag, live events), and until when they muted it.
//! Personal data: in their export, erased with the rest (`docs/privacy.md`).

use anyhow::Result;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// What a subscription listens for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Topic {
    /// A category by full name (`Training>Security`), and its sub-categories.
    Category,
    /// A tag.
    Tag,
    /// Live events (a stream or meeting going on air).
    Live,
}

impl Topic {
    pub fn key(self) -> &'static str {
        match self {
            Topic::Category => "category",
            Topic::Tag => "tag",
            Topic::Live => "live",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Topic::Category, Topic::Tag, Topic::Live]
            .into_iter()
            .find(|t| t.key() == s)
    }
}

/// One subscription of one person in one guild. `value` is lower-cased (names compare
/// without case); empty for live events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Subscription {
    pub guild_id: String,
    pub user_id: String,
    pub topic: Topic,
    pub value: String,
    /// Unix milliseconds: when it was made, or last renewed (subscribing again renews it;
    /// the subscription retention counts from here).
    pub created_at: i64,
}

/// The answer to a subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscribed {
    Added,
    /// The person had it already: it is renewed (its time set to the new one's).
    Already,
    /// The person has this many, the guild's most.
    TooMany(usize),
}

/// What an event is about, to find who listens for it. Values lower-cased.
#[derive(Debug, Clone, Default)]
pub struct Offer {
    /// Full category names, with each parent (`training`, `training>security`).
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub live: bool,
}

/// A person's preferences in one guild, as their export shows them.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PersonalPreferences {
    pub subscriptions: Vec<Subscription>,
    /// (guild, muted until, unix milliseconds).
    pub mutes: Vec<(String, i64)>,
}

#[async_trait]
pub trait Preferences: Send + Sync {
    /// Adds a subscription unless the person already has `max` in the guild.
    async fn subscribe(&self, s: &Subscription, max: usize) -> Result<Subscribed>;

    /// Whether there was such a subscription.
    async fn unsubscribe(&self, guild: &str, user: &str, topic: Topic, value: &str)
    -> Result<bool>;

    /// A person's subscriptions in a guild, oldest first.
    async fn list(&self, guild: &str, user: &str) -> Result<Vec<Subscription>>;

    /// No direct messages to the person from this guild's subscriptions until `until_ms`
    /// (0 lifts the mute).
    async fn mute(&self, guild: &str, user: &str, until_ms: i64) -> Result<()>;

    async fn muted_until(&self, guild: &str, user: &str) -> Result<Option<i64>>;

    /// The people of `guild` subscribed to something `offer` is about and not muted at
    /// `now_ms`, each once, sorted.
    async fn listeners(&self, guild: &str, offer: &Offer, now_ms: i64) -> Result<Vec<String>>;

    /// A person's preferences in one guild, or everywhere.
    async fn user_rows(&self, user: &str, guild: Option<&str>) -> Result<PersonalPreferences>;

    /// Deletes them (subscriptions and mutes); how many rows.
    async fn erase_user(&self, user: &str, guild: Option<&str>) -> Result<usize>;

    /// Forgets mutes that ended before `now_ms`; how many.
    async fn prune_ended_mutes(&self, now_ms: i64) -> Result<usize>;

    /// Forgets subscriptions made or renewed before `before_ms`; how many.
    async fn prune_subscriptions(&self, before_ms: i64) -> Result<usize>;
}
