//! Forgets history past the operator's retention (`KD_RETENTION_*_DAYS`), once an hour:
//! processed events (their dedupe keys), sent messages, dead letters, audit entries, and
//! what plugins keep for one person that nobody wrote for the personal retention, DM
//! subscriptions nobody made or renewed for the subscription retention, and notification
//! mutes that have ended.

use std::sync::Arc;
use std::time::Duration;

use super::{AuditLog, Inbox, KvStore, OutboxStore, Preferences};
use crate::cluster::Leadership;
use crate::config::settings::RetentionSettings;

const DAY_MS: i64 = 86_400_000;

pub struct Retention {
    pub inbox: Arc<dyn Inbox>,
    pub outbox: Arc<dyn OutboxStore>,
    pub audit: Arc<dyn AuditLog>,
    pub kv: Arc<dyn KvStore>,
    pub preferences: Arc<dyn Preferences>,
    pub settings: RetentionSettings,
}

impl Retention {
    /// One pass; what was pruned is logged, a failure is logged and retried next hour.
    pub async fn prune(&self) {
        let r = &self.settings;
        let days = |d: u64| (d as i64).saturating_mul(DAY_MS);
        let events = self.inbox.prune(days(r.events_days)).await;
        let messages = self
            .outbox
            .prune(days(r.sent_days), days(r.dead_days))
            .await;
        let audit = self.audit.prune(days(r.audit_days)).await;
        let personal = self
            .prune_personal(days(r.personal_days), days(r.subscription_days))
            .await;
        match (events, messages, audit, personal) {
            (Ok(e), Ok(m), Ok(a), Ok(p)) if e + m + a + p > 0 => {
                tracing::info!(
                    events = e,
                    messages = m,
                    audit = a,
                    personal = p,
                    "old history pruned"
                )
            }
            (Ok(_), Ok(_), Ok(_), Ok(_)) => {}
            (e, m, a, p) => {
                let why = [e.err(), m.err(), a.err(), p.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ");
                tracing::warn!(error = %why, "history could not be pruned");
            }
        }
    }

    /// What is kept for one person: plugins' values, subscriptions and ended mutes.
    async fn prune_personal(&self, values_ms: i64, subscriptions_ms: i64) -> anyhow::Result<usize> {
        let now = super::now_ms();
        let values = self.kv.prune_personal(values_ms).await?;
        let subscriptions = self
            .preferences
            .prune_subscriptions(now - subscriptions_ms)
            .await?;
        let mutes = self.preferences.prune_ended_mutes(now).await?;
        Ok(values + subscriptions + mutes)
    }

    /// Prunes now and then every hour, until the process ends: on the cluster's leader
    /// only (once per cluster).
    pub fn start(self, leadership: Leadership) {
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(3600));
            loop {
                every.tick().await;
                leadership.until_leader().await;
                self.prune().await;
            }
        });
    }
}
