//! The cluster's leader: the holder of the `leader` lease runs what must happen once per
//! cluster (command sync, scheduled rules, pruning). Every instance tries to take the lease
//! every few seconds; the holder renews it. A holder that cannot renew stops leading before
//! its lease runs out in the database, so two never lead at once; a dead holder's lease is
//! taken over within [`TTL`] + [`EVERY`] (under 30 s). One instance on SQLite always leads.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::app::stopping::Stopping;
use crate::store::postgres::PostgresStore;

/// How long the lease lasts without renewal.
pub const TTL: Duration = Duration::from_secs(15);
/// How often every instance tries (the holder renews).
pub const EVERY: Duration = Duration::from_secs(5);
/// A holder trusts its lease for this much less than it lasts (clocks, the trip back).
const MARGIN: Duration = Duration::from_secs(3);
const NAME: &str = "leader";

#[derive(Clone)]
pub enum Leadership {
    /// The only instance: it leads.
    Alone,
    /// One of several: whether it leads now.
    Elected(watch::Receiver<bool>),
}

impl Leadership {
    /// Takes part in the election on the shared database as `owner`, until the host stops
    /// (then a held lease is given up at once).
    pub fn elect(store: Arc<PostgresStore>, owner: &str, stopping: Stopping) -> Self {
        let (tx, rx) = watch::channel(false);
        let owner = owner.to_string();
        // The host waits for the lease to be given back before it exits.
        let releasing = stopping.releasing();
        tokio::spawn(async move {
            let _releasing = releasing;
            let mut valid_until: Option<Instant> = None;
            loop {
                if tx.is_closed() {
                    // Nobody listens any more (the host stopped): give the lease up.
                    let _ = store.release_lease(NAME, &owner).await;
                    return;
                }
                let asked = Instant::now();
                match store.acquire(NAME, &owner, TTL.as_millis() as i64).await {
                    Ok(Some(epoch)) => {
                        if !*tx.borrow() {
                            tracing::info!(
                                instance = owner,
                                epoch,
                                "this instance leads the cluster now"
                            );
                        }
                        valid_until = Some(asked + TTL - MARGIN);
                    }
                    Ok(None) => valid_until = None,
                    Err(e) => {
                        tracing::warn!(error = %format!("{e:#}"), "leader lease: the database did not answer")
                    }
                }
                let leading = valid_until.is_some_and(|t| t > Instant::now());
                if *tx.borrow() != leading {
                    if !leading {
                        tracing::info!(
                            instance = owner,
                            "this instance no longer leads the cluster"
                        );
                    }
                    let _ = tx.send(leading);
                }
                // Wake before the trusted time runs out, so a renewal failure is noticed.
                let next = match valid_until {
                    Some(t) => EVERY.min(t.saturating_duration_since(Instant::now())),
                    None => EVERY,
                };
                tokio::select! {
                    _ = tokio::time::sleep(next.max(Duration::from_millis(100))) => {}
                    _ = stopping.wait() => {
                        let _ = tx.send(false);
                        if let Err(e) = store.release_lease(NAME, &owner).await {
                            tracing::warn!(error = %format!("{e:#}"), "leader lease: cannot give it up; it runs out by itself");
                        }
                        return;
                    }
                }
            }
        });
        Self::Elected(rx)
    }

    /// Whether this instance leads now.
    pub fn is_leader(&self) -> bool {
        match self {
            Self::Alone => true,
            Self::Elected(rx) => *rx.borrow(),
        }
    }

    /// Waits until this instance leads.
    pub async fn until_leader(&self) {
        if let Self::Elected(rx) = self {
            let mut rx = rx.clone();
            let _ = rx.wait_for(|leading| *leading).await;
        }
    }
}
