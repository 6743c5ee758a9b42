//! A graceful stop, step by step (SIGTERM in a rolling update, or Ctrl-C): `/readyz` turns
//! unready at once; on SIGTERM the host serves on for a moment while the load balancer
//! moves traffic away; Activity rooms are handed over (their sockets closed with "server
//! restarting", 4013, and their clients reconnect elsewhere); the listener stops and
//! in-flight requests finish; then every part that holds a lease gives it back (outbox
//! lanes, claimed events, gateway shards, the leader lease, the instance's registration),
//! so other instances take over at once instead of waiting for expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

/// Why serving ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGTERM: unready first, serving on for the shutdown delay.
    Drain,
    /// Ctrl-C, or the caller's own reason: no delay.
    Now,
}

/// What parts of the host watch to know the host is stopping.
#[derive(Clone)]
pub struct Stopping {
    rx: watch::Receiver<bool>,
    releases: mpsc::WeakSender<()>,
}

/// The host's side of a stop: sends it, then waits for every part that gives something back
/// on a stop (a lease) to have done so, so the process does not exit before.
pub struct StopSignal {
    tx: watch::Sender<bool>,
    releases: Option<mpsc::Sender<()>>,
    released: mpsc::Receiver<()>,
}

/// Held by a task that gives something back once the host stops; dropping it says "done".
pub struct Releasing(#[allow(dead_code)] mpsc::Sender<()>);

impl StopSignal {
    pub fn send(&self) {
        self.tx.send_replace(true);
    }

    /// Sends the stop, then waits (at most `within`) until every [`Releasing`] is dropped;
    /// `false` if some part had not finished by then.
    pub async fn send_and_wait(mut self, within: Duration) -> bool {
        self.send();
        self.releases = None;
        tokio::time::timeout(within, self.released.recv())
            .await
            .is_ok()
    }
}

impl Stopping {
    /// A signal and the handle parts watch.
    pub fn new() -> (StopSignal, Self) {
        let (tx, rx) = watch::channel(false);
        let (releases, released) = mpsc::channel(1);
        let weak = releases.downgrade();
        (
            StopSignal {
                tx,
                releases: Some(releases),
                released,
            },
            Self { rx, releases: weak },
        )
    }

    /// For a task that gives something back on a stop: the host waits for it (within its
    /// shutdown timeout) before the process exits. `None` once the host has stopped.
    pub fn releasing(&self) -> Option<Releasing> {
        self.releases.upgrade().map(Releasing)
    }

    /// A handle that never fires (parts run outside a host: tools, tests).
    pub fn never() -> Self {
        Self::new().1
    }

    pub fn is_set(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once the host is stopping (never, if its signal is dropped unsent).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        if rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Whether the host is on its way out (`/readyz` answers 503 from the first moment).
#[derive(Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    pub fn set(&self) {
        self.0.store(true, Ordering::Release);
    }

    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use futures::FutureExt;

    use super::*;

    #[test]
    fn a_stop_fires_once_sent_and_never_without_its_signal() {
        let (stop, stopping) = Stopping::new();
        assert!(stopping.wait().now_or_never().is_none());
        stop.send();
        assert!(stopping.is_set() && stopping.wait().now_or_never().is_some());
        // A handle whose signal is gone (tools, tests) never fires.
        assert!(Stopping::never().wait().now_or_never().is_none());
        let (stop, stopping) = Stopping::new();
        drop(stop);
        assert!(stopping.wait().now_or_never().is_none());
    }

    #[tokio::test]
    async fn a_stop_waits_for_every_part_that_gives_something_back() {
        let (stop, stopping) = Stopping::new();
        let part = stopping.releasing().unwrap();
        let (gave_back, given) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            stopping.wait().await;
            let _ = gave_back.send(());
            drop(part);
        });
        assert!(stop.send_and_wait(Duration::from_secs(120)).await);
        // The part had finished before the wait ended.
        assert!(given.now_or_never().is_some());
        // A part that never finishes is given up on after the timeout.
        let (stop, stopping) = Stopping::new();
        let stuck = stopping.releasing().unwrap();
        assert!(!stop.send_and_wait(Duration::ZERO).await);
        drop(stuck);
    }
}
