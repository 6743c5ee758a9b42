//! Who connects which gateway shard when several instances share a database
//! (`DISCORD_SHARDS=auto`): each shard is a lease (`shard:<id>`, 15 s, renewed every 5 s).
//! Each instance holds about its share (`ceil(total / live instances)`): it takes free
//! shards up to it, one per round (an IDENTIFY waits for its slot), and gives back what is
//! above it, so a new instance gets shards too. A dead instance's shards run out and are
//! taken over within about 25 s. A holder that cannot renew closes its connections before
//! its leases run out, so a shard is never connected twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::app::stopping::Stopping;
use crate::discord::gateway::{Connection, Gateway};
use crate::store::postgres::PostgresStore;

const TTL: Duration = Duration::from_secs(15);
const EVERY: Duration = Duration::from_secs(5);
/// A lease is trusted for this much less than it lasts.
const MARGIN: Duration = Duration::from_secs(3);

pub struct Assignment {
    store: Arc<PostgresStore>,
    owner: String,
    stopping: Stopping,
}

struct Held {
    connection: Connection,
    valid_until: Instant,
}

fn lease(id: u32) -> String {
    format!("shard:{id}")
}

impl Assignment {
    pub fn new(store: Arc<PostgresStore>, owner: &str, stopping: Stopping) -> Self {
        Self {
            store,
            owner: owner.to_string(),
            stopping,
        }
    }

    /// Keeps this instance's share of the `total` shards connected until the host stops;
    /// then every shard is closed and its lease given up, for another instance to take at
    /// once.
    pub async fn run(self, gateway: Gateway, total: u32, max_concurrency: u32) {
        // The host waits for the leases to be given back before it exits.
        let _releasing = self.stopping.releasing();
        let mut held: BTreeMap<u32, Held> = BTreeMap::new();
        let ttl = TTL.as_millis() as i64;
        loop {
            let asked = Instant::now();
            // Renew what is held; close what is lost (or cannot be vouched for).
            let ids: Vec<u32> = held.keys().copied().collect();
            for id in ids {
                match self.store.acquire(&lease(id), &self.owner, ttl).await {
                    Ok(Some(_)) => {
                        if let Some(h) = held.get_mut(&id) {
                            h.valid_until = asked + TTL - MARGIN;
                        }
                    }
                    Ok(None) => {
                        self.drop_shard(&mut held, id, "taken by another instance")
                            .await
                    }
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), shard = id, "cannot renew a shard lease");
                        if held
                            .get(&id)
                            .is_some_and(|h| h.valid_until <= Instant::now())
                        {
                            self.drop_shard(&mut held, id, "its lease could not be renewed")
                                .await;
                        }
                    }
                }
            }
            // A connection that ended on its own is connected again.
            let ended: Vec<u32> = held
                .iter()
                .filter(|(_, h)| h.connection.ended())
                .map(|(id, _)| *id)
                .collect();
            for id in ended {
                if let Some(h) = held.remove(&id) {
                    h.connection.stop().await;
                }
                if let Some(connection) = gateway.connect(Some((id, total)), max_concurrency).await
                {
                    held.insert(
                        id,
                        Held {
                            connection,
                            valid_until: asked + TTL - MARGIN,
                        },
                    );
                }
            }
            let share = self.share(total).await;
            // Above the share (an instance joined): give the highest back.
            while held.len() > share {
                let id = *held.keys().next_back().expect("not empty");
                self.drop_shard(&mut held, id, "rebalancing").await;
                let _ = self.store.release_lease(&lease(id), &self.owner).await;
            }
            // Below it: take one free shard this round.
            if held.len() < share {
                self.take_one(&gateway, &mut held, total, max_concurrency)
                    .await;
            }
            tokio::select! {
                _ = tokio::time::sleep(EVERY) => {}
                _ = self.stopping.wait() => break,
            }
        }
        for id in held.keys().copied().collect::<Vec<_>>() {
            self.drop_shard(&mut held, id, "shutting down").await;
            let _ = self.store.release_lease(&lease(id), &self.owner).await;
        }
    }

    /// This instance's share: the shards over the live instances that take shards, rounded up.
    async fn share(&self, total: u32) -> usize {
        let live = self
            .store
            .instances()
            .await
            .map(|i| i.iter().filter(|i| i.shares_shards).count())
            .unwrap_or(1)
            .max(1);
        (total as usize).div_ceil(live)
    }

    async fn take_one(
        &self,
        gateway: &Gateway,
        held: &mut BTreeMap<u32, Held>,
        total: u32,
        max_concurrency: u32,
    ) {
        let taken: Vec<u32> = match self.store.holders("shard:").await {
            Ok(h) => h
                .iter()
                .filter_map(|h| h.name.strip_prefix("shard:")?.parse().ok())
                .collect(),
            Err(_) => return,
        };
        let Some(id) = (0..total).find(|id| !taken.contains(id) && !held.contains_key(id)) else {
            return;
        };
        let asked = Instant::now();
        if let Ok(Some(_)) = self
            .store
            .acquire(&lease(id), &self.owner, TTL.as_millis() as i64)
            .await
            && let Some(connection) = gateway.connect(Some((id, total)), max_concurrency).await
        {
            tracing::info!(
                shard = id,
                shards = total,
                "this instance holds the shard now"
            );
            held.insert(
                id,
                Held {
                    connection,
                    valid_until: asked + TTL - MARGIN,
                },
            );
        }
    }

    async fn drop_shard(&self, held: &mut BTreeMap<u32, Held>, id: u32, why: &str) {
        if let Some(h) = held.remove(&id) {
            tracing::info!(shard = id, why, "closing a gateway shard");
            h.connection.stop().await;
        }
    }
}
