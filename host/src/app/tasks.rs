//! Step 9, tasks: housekeeping that keeps memory bounded (quiet members' and guilds'
//! allowances, per-IP and per-subject request limits).

use std::sync::Arc;
use std::time::Duration;

use crate::api::limits::HttpLimits;
use crate::store::SharedState;

/// Every minute, until the host's parts are gone.
pub fn start(shared: &SharedState, limits: &Arc<HttpLimits>) {
    let rates = Arc::downgrade(&shared.rates);
    let limits = Arc::downgrade(limits);
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(60));
        loop {
            every.tick().await;
            match rates.upgrade() {
                Some(r) => r.forget_quiet().await,
                None => break,
            }
            if let Some(l) = limits.upgrade() {
                l.prune();
            }
        }
    });
}
