//! Following the changes instances make to what they share in the database (guild config
//! overrides): a LISTEN connection wakes a catch-up on every notice; because notices are
//! not durable, every reconnect and a slow poll (10 s) catch up too. A catch-up applies the
//! versions this instance has not seen, in order; one that does not validate here (a newer
//! schema, an operator variable this pod lacks) keeps the last good version and is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Result;
use tokio::sync::Notify;

use crate::config::guild::GuildConfigs;
use crate::store::postgres::PostgresStore;
use crate::telemetry::METRICS;

const POLL: Duration = Duration::from_secs(10);
const RECONNECT: Duration = Duration::from_secs(1);

pub struct ConfigFollower {
    store: Arc<PostgresStore>,
    guilds: Arc<GuildConfigs>,
    /// The newest version applied here.
    seen: AtomicI64,
    /// One catch-up at a time (versions apply in order).
    running: tokio::sync::Mutex<()>,
    wake: Notify,
}

impl ConfigFollower {
    pub fn new(store: Arc<PostgresStore>, guilds: Arc<GuildConfigs>) -> Arc<Self> {
        Arc::new(Self {
            store,
            guilds,
            seen: AtomicI64::new(0),
            running: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        })
    }

    /// Applies every change not seen yet; returns how many.
    pub async fn catch_up(&self) -> Result<usize> {
        let _one = self.running.lock().await;
        let rows = self
            .store
            .guild_configs_since(self.seen.load(Ordering::Acquire))
            .await?;
        for row in &rows {
            let applied = self
                .guilds
                .check_override(&row.guild_id, row.body.clone())
                .and_then(|checked| self.guilds.set_override(checked));
            match applied {
                Ok(()) => {
                    METRICS.config_reloads.with_label_values(&["ok"]).inc();
                    tracing::info!(
                        guild = row.guild_id,
                        version = row.version,
                        "guild configuration changed"
                    );
                }
                Err(e) => {
                    METRICS.config_reloads.with_label_values(&["invalid"]).inc();
                    tracing::error!(guild = row.guild_id, version = row.version, error = %e, "a guild configuration from the database does not apply here; its last good version stays");
                }
            }
            self.seen.store(row.version, Ordering::Release);
        }
        Ok(rows.len())
    }

    /// Listens for notices (reconnecting), and catches up on each, on reconnects and every
    /// 10 s, until the process ends.
    pub fn start(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let wake = &me.wake;
                let ended = me.store.listen(|_| wake.notify_one()).await;
                if let Err(e) = ended {
                    tracing::warn!(error = %format!("{e:#}"), "change notices: the database connection ended; reconnecting");
                }
                tokio::time::sleep(RECONNECT).await;
            }
        });
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = me.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
                if let Err(e) = me.catch_up().await {
                    tracing::warn!(error = %format!("{e:#}"), "cannot read configuration changes; will retry");
                }
            }
        });
    }
}
