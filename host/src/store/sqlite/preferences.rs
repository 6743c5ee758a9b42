//! Personal notification preferences in SQLite: one row per subscription, one per mute.

use anyhow::Result;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params};

use super::SqliteStore;
use crate::store::preferences::{
    Offer, PersonalPreferences, Preferences, Subscribed, Subscription, Topic,
};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS subscriptions (
    guild_id   TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    topic      TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id, topic, value)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS subscriptions_by_topic ON subscriptions (guild_id, topic, value);
CREATE INDEX IF NOT EXISTS subscriptions_by_user ON subscriptions (user_id);
CREATE TABLE IF NOT EXISTS mutes (
    guild_id TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    until_ms INTEGER NOT NULL,
    PRIMARY KEY (guild_id, user_id)
) WITHOUT ROWID;
";

/// A person's rows in one guild (`?2`) or everywhere (`?2` NULL).
const OF_USER: &str = "user_id = ?1 AND (?2 IS NULL OR guild_id = ?2)";

fn subscriptions(
    c: &Connection,
    filter: &str,
    args: impl rusqlite::Params,
) -> Result<Vec<Subscription>> {
    let mut stmt = c.prepare_cached(&format!(
        "SELECT guild_id, user_id, topic, value, created_at FROM subscriptions WHERE {filter}
         ORDER BY guild_id, created_at, topic, value"
    ))?;
    let rows = stmt
        .query_map(args, |r| {
            let topic: String = r.get(2)?;
            Ok(Subscription {
                guild_id: r.get(0)?,
                user_id: r.get(1)?,
                topic: Topic::parse(&topic).unwrap_or(Topic::Tag),
                value: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

#[async_trait]
impl Preferences for SqliteStore {
    async fn subscribe(&self, s: &Subscription, max: usize) -> Result<Subscribed> {
        let s = s.clone();
        self.call(move |c| {
            let tx = c.transaction()?;
            let exists = tx
                .prepare_cached(
                    "SELECT 1 FROM subscriptions
                     WHERE guild_id = ?1 AND user_id = ?2 AND topic = ?3 AND value = ?4",
                )?
                .exists(params![s.guild_id, s.user_id, s.topic.key(), s.value])?;
            if exists {
                tx.execute(
                    "UPDATE subscriptions SET created_at = ?5
                     WHERE guild_id = ?1 AND user_id = ?2 AND topic = ?3 AND value = ?4",
                    params![s.guild_id, s.user_id, s.topic.key(), s.value, s.created_at],
                )?;
                tx.commit()?;
                return Ok(Subscribed::Already);
            }
            let count: i64 = tx.query_row(
                "SELECT COUNT(*) FROM subscriptions WHERE guild_id = ?1 AND user_id = ?2",
                params![s.guild_id, s.user_id],
                |r| r.get(0),
            )?;
            if count as usize >= max {
                return Ok(Subscribed::TooMany(count as usize));
            }
            tx.execute(
                "INSERT INTO subscriptions (guild_id, user_id, topic, value, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![s.guild_id, s.user_id, s.topic.key(), s.value, s.created_at],
            )?;
            tx.commit()?;
            Ok(Subscribed::Added)
        })
        .await
    }

    async fn unsubscribe(
        &self,
        guild: &str,
        user: &str,
        topic: Topic,
        value: &str,
    ) -> Result<bool> {
        let (g, u, v) = (guild.to_owned(), user.to_owned(), value.to_owned());
        self.call(move |c| {
            Ok(c.execute(
                "DELETE FROM subscriptions
                 WHERE guild_id = ?1 AND user_id = ?2 AND topic = ?3 AND value = ?4",
                params![g, u, topic.key(), v],
            )? > 0)
        })
        .await
    }

    async fn list(&self, guild: &str, user: &str) -> Result<Vec<Subscription>> {
        let (g, u) = (guild.to_owned(), user.to_owned());
        self.call(move |c| subscriptions(c, OF_USER, params![u, g]))
            .await
    }

    async fn mute(&self, guild: &str, user: &str, until_ms: i64) -> Result<()> {
        let (g, u) = (guild.to_owned(), user.to_owned());
        self.call(move |c| {
            if until_ms <= 0 {
                c.execute(
                    "DELETE FROM mutes WHERE guild_id = ?1 AND user_id = ?2",
                    params![g, u],
                )?;
            } else {
                c.execute(
                    "INSERT INTO mutes (guild_id, user_id, until_ms) VALUES (?1, ?2, ?3)
                     ON CONFLICT (guild_id, user_id) DO UPDATE SET until_ms = excluded.until_ms",
                    params![g, u, until_ms],
                )?;
            }
            Ok(())
        })
        .await
    }

    async fn muted_until(&self, guild: &str, user: &str) -> Result<Option<i64>> {
        let (g, u) = (guild.to_owned(), user.to_owned());
        self.call(move |c| {
            Ok(c.query_row(
                "SELECT until_ms FROM mutes WHERE guild_id = ?1 AND user_id = ?2",
                params![g, u],
                |r| r.get(0),
            )
            .optional()?)
        })
        .await
    }

    async fn listeners(&self, guild: &str, offer: &Offer, now_ms: i64) -> Result<Vec<String>> {
        let g = guild.to_owned();
        let categories = serde_json::to_string(&offer.categories)?;
        let tags = serde_json::to_string(&offer.tags)?;
        let live = offer.live;
        self.call(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT DISTINCT s.user_id FROM subscriptions s
                 LEFT JOIN mutes m ON m.guild_id = s.guild_id AND m.user_id = s.user_id
                 WHERE s.guild_id = ?1 AND (m.until_ms IS NULL OR m.until_ms <= ?5)
                   AND ((s.topic = 'category' AND s.value IN (SELECT value FROM json_each(?2)))
                     OR (s.topic = 'tag' AND s.value IN (SELECT value FROM json_each(?3)))
                     OR (s.topic = 'live' AND ?4))
                 ORDER BY s.user_id",
            )?;
            let users = stmt
                .query_map(params![g, categories, tags, live, now_ms], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(users)
        })
        .await
    }

    async fn user_rows(&self, user: &str, guild: Option<&str>) -> Result<PersonalPreferences> {
        let (u, g) = (user.to_owned(), guild.map(str::to_owned));
        self.call(move |c| {
            let subscriptions = subscriptions(c, OF_USER, params![u, g])?;
            let mut stmt = c.prepare_cached(&format!(
                "SELECT guild_id, until_ms FROM mutes WHERE {OF_USER} ORDER BY guild_id"
            ))?;
            let mutes = stmt
                .query_map(params![u, g], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<Vec<(String, i64)>, _>>()?;
            Ok(PersonalPreferences {
                subscriptions,
                mutes,
            })
        })
        .await
    }

    async fn prune_ended_mutes(&self, now_ms: i64) -> Result<usize> {
        self.call(move |c| Ok(c.execute("DELETE FROM mutes WHERE until_ms < ?1", [now_ms])?))
            .await
    }

    async fn prune_subscriptions(&self, before_ms: i64) -> Result<usize> {
        self.call(move |c| {
            Ok(c.execute(
                "DELETE FROM subscriptions WHERE created_at < ?1",
                [before_ms],
            )?)
        })
        .await
    }

    async fn erase_user(&self, user: &str, guild: Option<&str>) -> Result<usize> {
        let (u, g) = (user.to_owned(), guild.map(str::to_owned));
        self.call(move |c| {
            let tx = c.transaction()?;
            let mut n = tx.execute(
                &format!("DELETE FROM subscriptions WHERE {OF_USER}"),
                params![u, g],
            )?;
            n += tx.execute(&format!("DELETE FROM mutes WHERE {OF_USER}"), params![u, g])?;
            tx.commit()?;
            Ok(n)
        })
        .await
    }
}
