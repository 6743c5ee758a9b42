//! `on_schedule()`: at the start of every minute (UTC), the rules whose `schedule(...)`
//! matches run, for their guild (global rules: for every configured guild). A minute the
//! host was down is not made up later. In a cluster only the leader runs them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DurationRound, TimeDelta, Utc};

use super::Rules;
use crate::cluster::Leadership;
use crate::config::guild::GuildConfigs;
use crate::config::policy::Policy;
use crate::delivery::Outbox;
use crate::events::process::EventProcessor;

pub fn start(
    rules: Arc<Rules>,
    guilds: Arc<GuildConfigs>,
    outbox: Arc<Outbox>,
    events: Arc<EventProcessor>,
    leadership: Leadership,
) {
    tokio::spawn(async move {
        loop {
            let now = Utc::now();
            let next =
                now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now) + TimeDelta::minutes(1);
            let wait = (next - now).to_std().unwrap_or(Duration::from_secs(1));
            tokio::time::sleep(wait).await;
            if leadership.is_leader() {
                run_due(&rules, &guilds, &outbox, &events, next).await;
            }
        }
    });
}

/// Runs the rules due at `minute` (exposed for tests).
pub async fn run_due(
    rules: &Arc<Rules>,
    guilds: &GuildConfigs,
    outbox: &Outbox,
    events: &EventProcessor,
    minute: chrono::DateTime<Utc>,
) -> usize {
    let due = rules.due(&minute, &events.audience());
    // Guilds run side by side (bounded by the rules' workers); a guild's due rules share
    // its budget for the minute.
    let runs = due.into_iter().map(|(guild, names)| async move {
        let cfg = guilds.guild(Some(&guild));
        let messages = if Policy::of(&cfg.typed).rules_on().is_ok() {
            rules
                .dispatch_only(&guild, cfg, "on_schedule", None, Some(names))
                .await
        } else {
            Vec::new()
        };
        (guild, messages)
    });
    let mut queued = 0;
    for (guild, messages) in futures::future::join_all(runs).await {
        if messages.is_empty() {
            continue;
        }
        match outbox.enqueue(&messages).await {
            Ok(ids) => queued += ids.len(),
            Err(e) => {
                tracing::error!(guild, error = %e, "scheduled rule messages could not be queued")
            }
        }
    }
    queued
}
