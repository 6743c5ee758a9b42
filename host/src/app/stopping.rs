//! A graceful stop, step by step (SIGTERM in a rolling update, or Ctrl-C): `/readyz` turns
//! unready at once; on SIGTERM the host serves on for a moment while the load balancer
//! moves traffic away; Activity rooms are handed over (their sockets closed with "server
//! restarting", 4013, and their clients reconnect elsewhere); the listener stops and
//! in-flight requests finish; then every part that holds a lease gives it back (outbox
//! lanes, claimed events, gateway shards, the leader lease, the instance's registration),
//! so other instances take over at once instead of waiting for expiry.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

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
}

impl Stopping {
    /// A signal and the handle parts watch.
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self { rx })
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
        stop.send_replace(true);
        assert!(stopping.is_set() && stopping.wait().now_or_never().is_some());
        // A handle whose signal is gone (tools, tests) never fires.
        assert!(Stopping::never().wait().now_or_never().is_none());
        let (stop, stopping) = Stopping::new();
        drop(stop);
        assert!(stopping.wait().now_or_never().is_none());
    }
}
