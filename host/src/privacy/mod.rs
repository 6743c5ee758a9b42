//! A person's own data (`docs/privacy.md`): everything the host keeps about one Discord
//! user, exported as one JSON document, or erased (everywhere, or in one guild by its
//! admin). Erasing deletes what plugins keep for them (kv user and DM scopes), turns them
//! into a tombstone in the audit log, tells the plugins (`privacy.erase`) so they drop what
//! they keep elsewhere, and is itself audited without the erased content.

pub mod commands;

use std::sync::Arc;

use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

use crate::events::PrivacyErase;
use crate::kaltura::Kaltura;
use crate::store::audit::{ERASED_ACTOR, OPERATOR_WIDE};
use crate::store::kv::guild_of;
use crate::store::preferences::PersonalPreferences;
use crate::store::{AuditLog, KvStore, NewAuditEntry, Preferences, now_ms};

/// The export's format name; a new version gets a new number.
pub const FORMAT: &str = "kdhost-personal-data/1";

pub struct Privacy {
    pub kv: Arc<dyn KvStore>,
    /// Direct-message notification preferences.
    pub preferences: Arc<dyn Preferences>,
    pub audit: Arc<dyn AuditLog>,
    /// For the Kaltura user the host made for the person (`discord_<id>`).
    pub kaltura: Option<Arc<Kaltura>>,
    /// Tells the plugins of an erasure (the event processor, durably).
    pub notices: Arc<dyn ErasureNotices>,
}

/// Where an erasure is announced to the plugins that subscribe to `privacy.erase`.
#[async_trait::async_trait]
pub trait ErasureNotices: Send + Sync {
    async fn announce(&self, erase: &PrivacyErase) -> anyhow::Result<()>;
}

#[async_trait::async_trait]
impl ErasureNotices for crate::events::process::EventProcessor {
    async fn announce(&self, erase: &PrivacyErase) -> anyhow::Result<()> {
        self.accept_privacy(erase).await
    }
}

/// Everything the host keeps about a person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    pub format: &'static str,
    /// Unix milliseconds.
    pub generated_at: i64,
    pub user: String,
    /// What plugins keep for the person: their own scope in each server, and in DMs.
    pub plugin_data: Vec<PluginValue>,
    /// What the person asked to hear about by direct message (`/kaltura-notify`).
    pub notification_preferences: PersonalPreferences,
    /// Changes the person made (server configuration, rules), from the audit log.
    #[schema(value_type = Vec<Object>)]
    pub audit: Vec<crate::store::AuditEntry>,
    /// Their user in the operator's Kaltura account, when the host made one.
    #[schema(value_type = Option<Object>)]
    pub kaltura_user: Option<Value>,
    /// What the host holds only briefly, or does not store, and is therefore not listed.
    pub not_stored: Vec<&'static str>,
}

/// One value a plugin keeps for the person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PluginValue {
    pub plugin: String,
    /// The server, or none for direct messages.
    pub guild: Option<String>,
    pub key: String,
    /// UTF-8 text as is; anything else in base64.
    pub value: String,
    /// `utf-8` or `base64`.
    pub encoding: &'static str,
    /// Unix milliseconds of the last write.
    pub updated_at: i64,
}

/// What an erasure removed (counts only: the erased content is gone).
#[derive(Debug, Default, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// Values plugins kept for the person.
    pub plugin_values: usize,
    /// Notification subscriptions and mutes.
    pub preferences: usize,
    /// Audit entries now naming a tombstone instead of the person.
    pub audit_entries: usize,
    /// Whether the plugins subscribed to `privacy.erase` were told.
    pub plugins_told: bool,
}

/// Who asked for an erasure.
pub enum Requester<'a> {
    /// The person, for everything.
    Themselves,
    /// A guild admin (their Discord id), for a member's data in that guild.
    GuildAdmin(&'a str),
}

const NOT_STORED: [&str; 5] = [
    "Activity presence: who is in a Watch Together room is held in memory (and, in a cluster, in Redis) only while the room is open",
    "Voice channel membership: learned from Discord's gateway, held in memory (or Redis) only while you are in voice",
    "Interaction tokens and pending Activity launches: held for at most 15 minutes",
    "Processed events and delivered messages: kept for the operator's retention (KD_RETENTION_EVENTS_DAYS, KD_RETENTION_SENT_DAYS) to avoid duplicates, then deleted",
    "Rate-limit counters per person: held in memory (or Redis) for at most a minute",
];

fn discord_actor(user: &str) -> String {
    format!("discord:{user}")
}

impl Privacy {
    /// Everything the host keeps about `user`, everywhere.
    pub async fn export(&self, user: &str) -> anyhow::Result<Export> {
        let rows = self.kv.user_rows(user, None).await?;
        let plugin_data = rows
            .into_iter()
            .map(|r| {
                let guild = guild_of(&r.scope).map(String::from);
                let (value, encoding) = match String::from_utf8(r.value) {
                    Ok(text) => (text, "utf-8"),
                    Err(e) => (
                        base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
                        "base64",
                    ),
                };
                PluginValue {
                    plugin: r.plugin,
                    guild,
                    key: r.key,
                    value,
                    encoding,
                    updated_at: r.updated_at,
                }
            })
            .collect();
        let notification_preferences = self.preferences.user_rows(user, None).await?;
        let audit = self.audit.by_actor(&discord_actor(user), None).await?;
        let kaltura_user = match &self.kaltura {
            Some(k) => k.user_record(user).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the Kaltura user could not be read for an export");
                Some(serde_json::json!({"error": "Kaltura did not answer; try again later"}))
            }),
            None => None,
        };
        Ok(Export {
            format: FORMAT,
            generated_at: now_ms(),
            user: user.to_string(),
            plugin_data,
            notification_preferences,
            audit,
            kaltura_user,
            not_stored: NOT_STORED.to_vec(),
        })
    }

    /// Erases `user`'s data: everywhere (`guild` None) or in one guild.
    pub async fn erase(
        &self,
        user: &str,
        guild: Option<&str>,
        by: Requester<'_>,
    ) -> anyhow::Result<Erased> {
        // Where the person had data, for the plugins to be told in each server.
        let mut guilds: Vec<String> = match guild {
            Some(_) => Vec::new(),
            None => self
                .kv
                .user_rows(user, None)
                .await?
                .into_iter()
                .filter_map(|r| guild_of(&r.scope).map(String::from))
                .collect(),
        };
        guilds.sort();
        guilds.dedup();
        let plugin_values = self.kv.erase_user(user, guild).await?;
        let preferences = self.preferences.erase_user(user, guild).await?;
        let audit_entries = self
            .audit
            .tombstone_actor(&discord_actor(user), guild, ERASED_ACTOR)
            .await?;
        let erase = PrivacyErase {
            user: user.to_string(),
            guild: guild.map(String::from),
            guilds,
            id: uuid::Uuid::new_v4().to_string(),
        };
        let plugins_told = match self.notices.announce(&erase).await {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(error = %e, "plugins could not be told of an erasure");
                false
            }
        };
        if let Some(k) = &self.kaltura {
            k.forget_user(user);
        }
        let erased = Erased {
            plugin_values,
            preferences,
            audit_entries,
            plugins_told,
        };
        // Audited without the person: a self-erasure names nobody, an admin's names the
        // admin. Counts only.
        let (actor, target) = match by {
            Requester::Themselves => (ERASED_ACTOR.to_string(), "own data"),
            Requester::GuildAdmin(admin) => (discord_actor(admin), "a member's data"),
        };
        self.audit
            .add(NewAuditEntry {
                guild_id: guild.unwrap_or(OPERATOR_WIDE).to_string(),
                actor,
                action: "privacy.erase".into(),
                target: target.into(),
                before: None,
                after: Some(serde_json::to_value(&erased)?),
                outcome: "ok".into(),
            })
            .await?;
        tracing::info!(
            plugin_values,
            preferences,
            audit_entries,
            in_guild = guild.is_some(),
            "a person's data was erased"
        );
        Ok(erased)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Stores;

    /// Announcements kept for the test to read.
    #[derive(Default)]
    struct Heard(std::sync::Mutex<Vec<PrivacyErase>>);

    #[async_trait::async_trait]
    impl ErasureNotices for Heard {
        async fn announce(&self, erase: &PrivacyErase) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(erase.clone());
            Ok(())
        }
    }

    fn privacy(stores: &Stores, heard: Arc<Heard>) -> Privacy {
        Privacy {
            kv: stores.kv.clone(),
            preferences: stores.preferences.clone(),
            audit: stores.audit.clone(),
            kaltura: None,
            notices: heard,
        }
    }

    #[tokio::test]
    async fn export_lists_and_erase_removes_a_persons_data_only() {
        let stores = Stores::in_memory().unwrap();
        let heard = Arc::new(Heard::default());
        let p = privacy(&stores, heard.clone());
        let kv = &stores.kv;
        let ann = crate::store::kv::user_scope(Some("g1"), "700000000000000071");
        kv.set("poll", &ann, "vote", b"yes", 1000).await.unwrap();
        kv.set("poll", "dm:700000000000000071", "bin", &[0xff, 0x00], 1000)
            .await
            .unwrap();
        kv.set("poll", "g1", "question", b"?", 1000).await.unwrap();
        let live = crate::store::preferences::Subscription {
            guild_id: "g1".into(),
            user_id: "700000000000000071".into(),
            topic: crate::store::preferences::Topic::Live,
            value: String::new(),
            created_at: 1,
        };
        stores.preferences.subscribe(&live, 5).await.unwrap();
        stores
            .audit
            .add(NewAuditEntry {
                guild_id: "g1".into(),
                actor: "discord:700000000000000071".into(),
                action: "config.update".into(),
                target: "$.x".into(),
                outcome: "ok".into(),
                ..Default::default()
            })
            .await
            .unwrap();

        let e = p.export("700000000000000071").await.unwrap();
        assert_eq!(e.format, FORMAT);
        let values: Vec<(&str, Option<&str>, &str, &str)> = e
            .plugin_data
            .iter()
            .map(|v| {
                (
                    v.key.as_str(),
                    v.guild.as_deref(),
                    v.value.as_str(),
                    v.encoding,
                )
            })
            .collect();
        assert_eq!(
            values,
            [
                ("bin", None, "/wA=", "base64"),
                ("vote", Some("g1"), "yes", "utf-8")
            ]
        );
        assert_eq!(e.audit.len(), 1);
        assert_eq!(e.notification_preferences.subscriptions, [live]);

        let erased = p
            .erase("700000000000000071", None, Requester::Themselves)
            .await
            .unwrap();
        assert_eq!(
            erased,
            Erased {
                plugin_values: 2,
                preferences: 1,
                audit_entries: 1,
                plugins_told: true
            }
        );
        let after = p.export("700000000000000071").await.unwrap();
        assert!(after.plugin_data.is_empty() && after.audit.is_empty());
        assert!(after.notification_preferences.subscriptions.is_empty());
        // The guild's own value stays; the erasure is audited under a tombstone, counts only.
        assert!(kv.get("poll", "g1", "question").await.unwrap().is_some());
        let log = stores.audit.list(OPERATOR_WIDE, 10, None).await.unwrap();
        assert_eq!(
            (log[0].actor.as_str(), log[0].action.as_str()),
            ("erased", "privacy.erase")
        );
        assert!(
            !serde_json::to_string(&log)
                .unwrap()
                .contains("700000000000000071")
        );
        assert_eq!(log[0].after.as_ref().unwrap()["plugin_values"], 2);
        // The plugins were told: everywhere, this person.
        let told = heard.0.lock().unwrap().clone();
        assert_eq!(told.len(), 1);
        assert_eq!(
            (told[0].user.as_str(), told[0].guild.as_deref()),
            ("700000000000000071", None)
        );
    }
}
