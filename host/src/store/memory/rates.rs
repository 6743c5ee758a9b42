//! Command allowances in this process (governor's keyed GCRA limiters).

use std::num::NonZeroU32;

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

use crate::store::rates::{CommandRates, Limited};

type Keyed<C> =
    RateLimiter<String, DefaultKeyedStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Generic over the clock so tests can hold time still.
pub struct MemoryCommandRates<C: Clock = DefaultClock> {
    per_user: Keyed<C>,
    per_guild: Keyed<C>,
}

impl MemoryCommandRates {
    pub fn new(per_user_per_minute: u32, per_guild_per_minute: u32) -> Self {
        Self::with_clock(
            per_user_per_minute,
            per_guild_per_minute,
            DefaultClock::default(),
        )
    }
}

impl<C: Clock + Clone> MemoryCommandRates<C> {
    pub(crate) fn with_clock(
        per_user_per_minute: u32,
        per_guild_per_minute: u32,
        clock: C,
    ) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap());
        Self {
            per_user: RateLimiter::dashmap_with_clock(quota(per_user_per_minute), clock.clone()),
            per_guild: RateLimiter::dashmap_with_clock(quota(per_guild_per_minute), clock),
        }
    }
}

#[async_trait]
impl<C: Clock + Send + Sync> CommandRates for MemoryCommandRates<C>
where
    C::Instant: Send + Sync,
{
    async fn take(&self, user: Option<&str>, guild: Option<&str>) -> Result<(), Limited> {
        // The limiter's own clock: creating a clock per call is costly (calibration).
        let now = self.per_user.clock().now();
        let wait = |e: governor::NotUntil<_>| e.wait_time_from(now).as_secs().max(1);
        if let Some(u) = user {
            self.per_user
                .check_key(&u.to_string())
                .map_err(|e| Limited::User {
                    retry_secs: wait(e),
                })?;
        }
        if let Some(g) = guild {
            self.per_guild
                .check_key(&g.to_string())
                .map_err(|e| Limited::Guild {
                    retry_secs: wait(e),
                })?;
        }
        Ok(())
    }

    async fn forget_quiet(&self) {
        self.per_user.retain_recent();
        self.per_guild.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_member_over_the_allowance_is_limited_before_the_guild() {
        // A clock that stands still: no allowance comes back while the test runs.
        let r = MemoryCommandRates::with_clock(2, 3, governor::clock::FakeRelativeClock::default());
        assert!(r.take(Some("u"), Some("g")).await.is_ok());
        assert!(r.take(Some("u"), Some("g")).await.is_ok());
        assert!(matches!(
            r.take(Some("u"), Some("g")).await,
            Err(Limited::User { retry_secs }) if retry_secs >= 1
        ));
        assert!(r.take(Some("v"), Some("g")).await.is_ok());
        assert!(matches!(
            r.take(Some("w"), Some("g")).await,
            Err(Limited::Guild { .. })
        ));
        assert!(r.take(None, None).await.is_ok());
    }
}
