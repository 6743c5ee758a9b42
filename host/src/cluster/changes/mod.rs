//! Following the changes instances make to what they share in the database (guild config
//! overrides, rules, plugin components): a LISTEN connection wakes a catch-up on every
//! notice; because notices are not durable, every reconnect and a slow poll (10 s) catch
//! up too. A catch-up applies, for each kind of thing, the versions this instance has not
//! seen, in order; one that does not apply here (a newer schema, an operator variable this
//! pod lacks, a component this build refuses) keeps the last good version and is logged.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::Result;
use async_trait::async_trait;
use tokio::sync::Notify;

use crate::store::postgres::PostgresStore;

mod guild_configs;
mod plugins;
mod rules;

pub use guild_configs::GuildConfigChanges;
pub use plugins::PluginChanges;
pub use rules::RuleChanges;

const POLL: Duration = Duration::from_secs(10);
const RECONNECT: Duration = Duration::from_secs(1);

/// One kind of shared thing an instance keeps up with.
#[async_trait]
pub trait Followed: Send + Sync {
    /// Applies every change after version `seen`, oldest first; returns the newest version
    /// read (`seen` when nothing changed).
    async fn apply_since(&self, seen: i64) -> Result<i64>;
}

struct Kind {
    followed: Arc<dyn Followed>,
    /// The newest version applied here.
    seen: AtomicI64,
}

pub struct ChangeFollower {
    kinds: std::sync::Mutex<Vec<Arc<Kind>>>,
    /// One catch-up at a time (versions apply in order).
    running: tokio::sync::Mutex<()>,
    wake: Notify,
}

impl ChangeFollower {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            kinds: std::sync::Mutex::new(Vec::new()),
            running: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
        })
    }

    /// Follows one more kind of thing, applying what is stored now before it returns.
    pub async fn follow(&self, followed: Arc<dyn Followed>) -> Result<()> {
        self.kinds.lock().unwrap().push(Arc::new(Kind {
            followed,
            seen: AtomicI64::new(0),
        }));
        self.catch_up().await
    }

    /// Applies every change not seen yet, of every kind.
    pub async fn catch_up(&self) -> Result<()> {
        let _one = self.running.lock().await;
        let kinds = self.kinds.lock().unwrap().clone();
        for kind in kinds {
            let newest = kind
                .followed
                .apply_since(kind.seen.load(Ordering::Acquire))
                .await?;
            kind.seen.store(newest, Ordering::Release);
        }
        Ok(())
    }

    /// Listens for notices (reconnecting), and catches up on each, on reconnects and every
    /// 10 s, until the process ends.
    pub fn start(self: &Arc<Self>, store: Arc<PostgresStore>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                let wake = &me.wake;
                let ended = store.listen(|_| wake.notify_one()).await;
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
                    tracing::warn!(error = %format!("{e:#}"), "cannot read shared changes; will retry");
                }
            }
        });
    }
}
