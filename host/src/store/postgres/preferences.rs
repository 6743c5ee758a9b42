//! Personal notification preferences in PostgreSQL: one row per subscription, one per mute.

use anyhow::Result;
use async_trait::async_trait;

use super::PostgresStore;
use crate::store::preferences::{
    Offer, PersonalPreferences, Preferences, Subscribed, Subscription, Topic,
};

/// A person's rows in one guild (`$2`) or everywhere (`$2` NULL).
const OF_USER: &str = "user_id = $1 AND ($2::text IS NULL OR guild_id = $2::text)";

fn subscription(r: &tokio_postgres::Row) -> Subscription {
    let topic: String = r.get(2);
    Subscription {
        guild_id: r.get(0),
        user_id: r.get(1),
        topic: Topic::parse(&topic).unwrap_or(Topic::Tag),
        value: r.get(3),
        created_at: r.get(4),
    }
}

impl PostgresStore {
    async fn subscriptions_of(&self, user: &str, guild: Option<&str>) -> Result<Vec<Subscription>> {
        let c = self.client().await?;
        let rows = c
            .query(
                &format!(
                    "SELECT guild_id, user_id, topic, value, created_at FROM subscriptions
                     WHERE {OF_USER} ORDER BY guild_id, created_at, topic, value"
                ),
                &[&user, &guild],
            )
            .await?;
        Ok(rows.iter().map(subscription).collect())
    }
}

#[async_trait]
impl Preferences for PostgresStore {
    async fn subscribe(&self, s: &Subscription, max: usize) -> Result<Subscribed> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // One person's subscriptions in a guild change one at a time.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || $2))",
            &[&s.guild_id, &s.user_id],
        )
        .await?;
        let exists = tx
            .query_opt(
                "SELECT 1 FROM subscriptions
                 WHERE guild_id = $1 AND user_id = $2 AND topic = $3 AND value = $4",
                &[&s.guild_id, &s.user_id, &s.topic.key(), &s.value],
            )
            .await?
            .is_some();
        if exists {
            tx.execute(
                "UPDATE subscriptions SET created_at = $5
                 WHERE guild_id = $1 AND user_id = $2 AND topic = $3 AND value = $4",
                &[
                    &s.guild_id,
                    &s.user_id,
                    &s.topic.key(),
                    &s.value,
                    &s.created_at,
                ],
            )
            .await?;
            tx.commit().await?;
            return Ok(Subscribed::Already);
        }
        let count: i64 = tx
            .query_one(
                "SELECT COUNT(*) FROM subscriptions WHERE guild_id = $1 AND user_id = $2",
                &[&s.guild_id, &s.user_id],
            )
            .await?
            .get(0);
        if count as usize >= max {
            return Ok(Subscribed::TooMany(count as usize));
        }
        tx.execute(
            "INSERT INTO subscriptions (guild_id, user_id, topic, value, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &s.guild_id,
                &s.user_id,
                &s.topic.key(),
                &s.value,
                &s.created_at,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(Subscribed::Added)
    }

    async fn unsubscribe(
        &self,
        guild: &str,
        user: &str,
        topic: Topic,
        value: &str,
    ) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM subscriptions
                 WHERE guild_id = $1 AND user_id = $2 AND topic = $3 AND value = $4",
                &[&guild, &user, &topic.key(), &value],
            )
            .await?;
        Ok(n > 0)
    }

    async fn list(&self, guild: &str, user: &str) -> Result<Vec<Subscription>> {
        self.subscriptions_of(user, Some(guild)).await
    }

    async fn mute(&self, guild: &str, user: &str, until_ms: i64) -> Result<()> {
        let c = self.client().await?;
        if until_ms <= 0 {
            c.execute(
                "DELETE FROM mutes WHERE guild_id = $1 AND user_id = $2",
                &[&guild, &user],
            )
            .await?;
        } else {
            c.execute(
                "INSERT INTO mutes (guild_id, user_id, until_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (guild_id, user_id) DO UPDATE SET until_ms = EXCLUDED.until_ms",
                &[&guild, &user, &until_ms],
            )
            .await?;
        }
        Ok(())
    }

    async fn muted_until(&self, guild: &str, user: &str) -> Result<Option<i64>> {
        let c = self.client().await?;
        let row = c
            .query_opt(
                "SELECT until_ms FROM mutes WHERE guild_id = $1 AND user_id = $2",
                &[&guild, &user],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn listeners(&self, guild: &str, offer: &Offer, now_ms: i64) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT DISTINCT s.user_id FROM subscriptions s
                 LEFT JOIN mutes m ON m.guild_id = s.guild_id AND m.user_id = s.user_id
                 WHERE s.guild_id = $1 AND (m.until_ms IS NULL OR m.until_ms <= $5)
                   AND ((s.topic = 'category' AND s.value = ANY($2))
                     OR (s.topic = 'tag' AND s.value = ANY($3))
                     OR (s.topic = 'live' AND $4))
                 ORDER BY s.user_id",
                &[&guild, &offer.categories, &offer.tags, &offer.live, &now_ms],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn user_rows(&self, user: &str, guild: Option<&str>) -> Result<PersonalPreferences> {
        let subscriptions = self.subscriptions_of(user, guild).await?;
        let c = self.client().await?;
        let mutes = c
            .query(
                &format!("SELECT guild_id, until_ms FROM mutes WHERE {OF_USER} ORDER BY guild_id"),
                &[&user, &guild],
            )
            .await?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(PersonalPreferences {
            subscriptions,
            mutes,
        })
    }

    async fn prune_ended_mutes(&self, now_ms: i64) -> Result<usize> {
        let c = self.client().await?;
        Ok(
            c.execute("DELETE FROM mutes WHERE until_ms < $1", &[&now_ms])
                .await? as usize,
        )
    }

    async fn prune_subscriptions(&self, before_ms: i64) -> Result<usize> {
        let c = self.client().await?;
        Ok(c.execute(
            "DELETE FROM subscriptions WHERE created_at < $1",
            &[&before_ms],
        )
        .await? as usize)
    }

    async fn erase_user(&self, user: &str, guild: Option<&str>) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let mut n = tx
            .execute(
                &format!("DELETE FROM subscriptions WHERE {OF_USER}"),
                &[&user, &guild],
            )
            .await?;
        n += tx
            .execute(
                &format!("DELETE FROM mutes WHERE {OF_USER}"),
                &[&user, &guild],
            )
            .await?;
        tx.commit().await?;
        Ok(n as usize)
    }
}
