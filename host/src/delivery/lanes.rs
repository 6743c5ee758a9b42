//! Which lanes this instance delivers: it claims lanes with pending messages (at start, on
//! every wake, and each second for retries that came due and lanes another instance left),
//! runs one task per lane it holds, and renews its leases by heartbeat. A task sends only
//! while its lease is known to be valid here, so an instance cut off from the database
//! stops sending before another may take its lanes over.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Outbox;
use super::attempt::Next;
use crate::store::{LaneLease, now_ms};
use crate::telemetry::METRICS;

/// How long a lane's lease lasts without renewal: a crashed instance's lanes are taken
/// over this long after its last heartbeat.
pub const LANE_LEASE: Duration = Duration::from_secs(10);
/// How often held leases are renewed.
const RENEW_EVERY: Duration = Duration::from_secs(3);
/// A lease is trusted here for this much less than it lasts in the database (clocks of
/// different machines, the time the renewal took to arrive).
const SAFETY_MARGIN: Duration = Duration::from_secs(2);
/// Lanes claimed in one pass.
const CLAIM_BATCH: usize = 256;

/// A lane this instance runs a task for.
pub(super) struct Held {
    pub lease: LaneLease,
    /// Until when sending under this lease is safe.
    pub valid_until: Instant,
}

impl Outbox {
    /// Starts the dispatcher and the lease heartbeat.
    pub fn start(self: &Arc<Self>) {
        if !self.can_deliver() {
            tracing::warn!(
                "delivery is off: set DISCORD_BOT_TOKEN; queued messages wait in the outbox"
            );
            return;
        }
        let outbox = self.clone();
        tokio::spawn(async move {
            // Gauges are kept once a second, not on every wake: counting the outbox reads the
            // whole table.
            let mut kept: Option<Instant> = None;
            loop {
                // Interest is registered before looking, so a wake in between is not lost.
                let wake = outbox.wake.notified();
                tokio::pin!(wake);
                wake.as_mut().enable();
                outbox.claim_lanes().await;
                if kept.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    outbox.update_gauges().await;
                    kept = Some(Instant::now());
                }
                tokio::select! {
                    _ = wake => {}
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        });
        let outbox = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                outbox.renew_leases().await;
            }
        });
    }

    async fn update_gauges(&self) {
        if let Ok(c) = self.store.counts().await {
            METRICS.outbox_pending.set(c.pending);
            METRICS.outbox_dead.set(c.dead);
        }
    }

    async fn claim_lanes(self: &Arc<Self>) {
        if self.is_stopping() {
            return;
        }
        let asked = Instant::now();
        let leases = match self
            .store
            .claim_lanes(&self.owner, LANE_LEASE.as_millis() as i64, CLAIM_BATCH)
            .await
        {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "outbox: cannot claim lanes");
                return;
            }
        };
        let valid_until = asked + LANE_LEASE - SAFETY_MARGIN;
        let mut held = self.held.lock().unwrap();
        for lease in leases {
            match held.get_mut(&lease.lane) {
                // Its task runs: the claim only extended the lease.
                Some(h) if h.lease.epoch == lease.epoch => h.valid_until = valid_until,
                _ => {
                    held.insert(
                        lease.lane.clone(),
                        Held {
                            lease: lease.clone(),
                            valid_until,
                        },
                    );
                    tokio::spawn(self.clone().run_lane(lease));
                }
            }
        }
    }

    /// Extends every lease held; a lease the database no longer lists is dropped here (its
    /// task stops before its next send).
    async fn renew_leases(&self) {
        let asked = Instant::now();
        match self
            .store
            .renew(&self.owner, LANE_LEASE.as_millis() as i64)
            .await
        {
            Ok(leases) => {
                let valid_until = asked + LANE_LEASE - SAFETY_MARGIN;
                let mut held = self.held.lock().unwrap();
                held.retain(|lane, h| {
                    let kept = leases
                        .iter()
                        .any(|l| &l.lane == lane && l.epoch == h.lease.epoch);
                    if kept {
                        h.valid_until = valid_until;
                    }
                    kept
                });
            }
            // Nothing is extended: tasks stop sending when their leases run out here.
            Err(e) => tracing::error!(error = %e, "outbox: cannot renew lane leases"),
        }
    }

    /// Whether `lease` is still this instance's, safely.
    fn holds(&self, lease: &LaneLease) -> bool {
        self.held
            .lock()
            .unwrap()
            .get(&lease.lane)
            .is_some_and(|h| h.lease.epoch == lease.epoch && h.valid_until > Instant::now())
    }

    /// Gives a lane back (another instance may take it at once).
    async fn give_back(&self, lease: &LaneLease) {
        self.leave(lease);
        if let Err(e) = self.store.release(lease).await {
            tracing::warn!(error = %e, lane = %lease.lane, "outbox: cannot release a lane (its lease will run out)");
        }
    }

    fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The host is stopping: no new lanes; each lane is given back once the attempt in
    /// flight on it is recorded (at most `timeout`; what is left then runs out by itself).
    pub async fn stop(&self, timeout: Duration) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        let until = Instant::now() + timeout;
        while !self.held.lock().unwrap().is_empty() && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = self.held.lock().unwrap().len();
        if left > 0 {
            tracing::warn!(
                lanes = left,
                "outbox: lanes still busy at shutdown; their leases run out by themselves"
            );
        }
    }

    /// The task of `lease` is over: forget it unless a newer lease of the lane runs.
    fn leave(&self, lease: &LaneLease) {
        let mut held = self.held.lock().unwrap();
        if held
            .get(&lease.lane)
            .is_some_and(|h| h.lease.epoch == lease.epoch)
        {
            held.remove(&lease.lane);
        }
    }

    async fn run_lane(self: Arc<Self>, lease: LaneLease) {
        loop {
            if !self.holds(&lease) {
                self.leave(&lease);
                return;
            }
            if self.is_stopping() {
                self.give_back(&lease).await;
                return;
            }
            let head = match self.store.head(&lease.lane).await {
                Ok(Some(h)) => h,
                Ok(None) => {
                    // Give the lane back, then look once more: a message queued before we
                    // left is seen here and claimed again.
                    self.give_back(&lease).await;
                    if let Ok(Some(_)) = self.store.head(&lease.lane).await {
                        self.wake();
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, lane = %lease.lane, "outbox: cannot read the lane");
                    self.leave(&lease);
                    return;
                }
            };
            let wait = head.next_at - now_ms();
            if wait > 0 {
                // At most a second at a time, so a lost lease is noticed while waiting.
                tokio::time::sleep(Duration::from_millis(wait.min(1000) as u64)).await;
                continue;
            }
            if let Next::LeaseLost = self.deliver(head, &lease).await {
                self.leave(&lease);
                return;
            }
        }
    }
}
