//! This instance's registration among the instances sharing a PostgreSQL database: checked
//! at start (a second instance without Redis is refused, with the reason), then kept alive
//! by a heartbeat every few seconds, and removed on a clean stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::store::postgres::PostgresStore;

/// How often the heartbeat is renewed (well inside `ALIVE_MS`).
const HEARTBEAT: Duration = Duration::from_secs(5);

pub struct Membership {
    store: Arc<PostgresStore>,
    id: String,
    heartbeat: tokio::task::JoinHandle<()>,
}

impl Membership {
    /// Registers instance `id` and starts its heartbeat; `shares_shards`: it takes a share
    /// of the gateway shards (`DISCORD_SHARDS=auto`).
    pub async fn join(
        store: Arc<PostgresStore>,
        id: &str,
        redis: bool,
        shares_shards: bool,
    ) -> Result<Membership> {
        let host = hostname();
        store
            .register(id, &host, redis, shares_shards)
            .await
            .context("joining the instances on this database")?;
        tracing::info!(
            instance = id,
            host,
            redis,
            "registered with the other instances"
        );
        let heartbeat = tokio::spawn({
            let (store, id) = (store.clone(), id.to_string());
            async move {
                loop {
                    tokio::time::sleep(HEARTBEAT).await;
                    match store.heartbeat(&id).await {
                        Ok(true) => {}
                        Ok(false) => {
                            // Silent too long (a pause, a lost connection): register again.
                            tracing::warn!(
                                instance = id,
                                "this instance's registration had lapsed; registering again"
                            );
                            let host = hostname();
                            let again = store.register(&id, &host, redis, shares_shards);
                            if let Err(e) = again.await {
                                tracing::error!(error = %format!("{e:#}"), "cannot register again");
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %format!("{e:#}"), "instance heartbeat failed")
                        }
                    }
                }
            }
        });
        Ok(Membership {
            store,
            id: id.to_string(),
            heartbeat,
        })
    }

    /// A clean stop: the others see this instance gone at once.
    pub async fn leave(self) {
        self.heartbeat.abort();
        if let Err(e) = self.store.deregister(&self.id).await {
            tracing::warn!(error = %format!("{e:#}"), "cannot deregister this instance");
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

/// This machine's name (for the instances list and refusal messages).
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}
