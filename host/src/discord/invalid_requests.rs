//! Discord bans the IP of a host that gets 10,000 answers of 401, 403 or 429 (shared 429s
//! excepted) within 10 minutes. The host counts its own over a sliding 10-minute window and
//! slows down long before that: past [`SOFT`] every request waits a little (more the closer
//! it gets), past [`HARD`] only interaction responses still go out; the rest are refused
//! (`RestError::Throttled`) until the window drains. Queued messages wait in the outbox.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Discord's ban threshold, for reference: the host never gets near it.
pub const DISCORD_LIMIT: u32 = 10_000;
/// From here on every request is paced.
pub const SOFT: u32 = 2_000;
/// From here on only interaction responses are sent.
pub const HARD: u32 = 4_000;

const WINDOW: Duration = Duration::from_secs(600);
const SLOT: Duration = Duration::from_secs(10);
const SLOTS: usize = 60;

/// What to do with the next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    Go,
    /// Go after this pause.
    Pace(Duration),
    /// Do not send it now.
    Refuse,
}

pub struct InvalidRequests {
    started: Instant,
    /// (slot number since `started`, answers counted in it), a ring over the window.
    slots: Mutex<[(u64, u32); SLOTS]>,
    soft: u32,
    hard: u32,
}

impl Default for InvalidRequests {
    fn default() -> Self {
        Self::with_thresholds(SOFT, HARD)
    }
}

impl InvalidRequests {
    pub fn with_thresholds(soft: u32, hard: u32) -> Self {
        Self {
            started: Instant::now(),
            slots: Mutex::new([(u64::MAX, 0); SLOTS]),
            soft,
            hard: hard.max(soft + 1),
        }
    }

    fn slot_now(&self) -> u64 {
        self.started.elapsed().as_secs() / SLOT.as_secs()
    }

    /// Counts an answer if Discord counts it against the host.
    pub fn record(&self, status: u16, shared_rate_limit: bool) {
        let invalid = matches!(status, 401 | 403) || (status == 429 && !shared_rate_limit);
        if !invalid {
            return;
        }
        let now = self.slot_now();
        let mut slots = self.slots.lock().unwrap();
        let s = &mut slots[(now % SLOTS as u64) as usize];
        if s.0 != now {
            *s = (now, 0);
        }
        s.1 += 1;
        crate::telemetry::METRICS.discord_invalid.inc();
    }

    /// Invalid answers within the last 10 minutes.
    pub fn count(&self) -> u32 {
        let now = self.slot_now();
        let oldest = now.saturating_sub((WINDOW.as_secs() / SLOT.as_secs()) - 1);
        self.slots
            .lock()
            .unwrap()
            .iter()
            .filter(|(slot, _)| *slot != u64::MAX && *slot >= oldest && *slot <= now)
            .map(|(_, n)| n)
            .sum()
    }

    /// Whether a request may go now; `essential` ones (interaction responses: a person is
    /// waiting, and they use the interaction's own token) are never refused.
    pub fn admit(&self, essential: bool) -> Admission {
        let n = self.count();
        if n >= self.hard && !essential {
            return Admission::Refuse;
        }
        if n >= self.soft {
            let over = f64::from(n - self.soft) / f64::from(self.hard - self.soft);
            return Admission::Pace(Duration::from_millis((over.min(1.0) * 1000.0) as u64));
        }
        Admission::Go
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_counted_and_slow_the_host_down_long_before_discords_limit() {
        const _: () = assert!(HARD < DISCORD_LIMIT / 2);
        let b = InvalidRequests::with_thresholds(10, 20);
        for _ in 0..9 {
            b.record(401, false);
        }
        b.record(200, false);
        b.record(404, false);
        b.record(429, true);
        assert_eq!(b.count(), 9, "only 401, 403 and non-shared 429 count");
        assert_eq!(b.admit(false), Admission::Go);
        for _ in 0..6 {
            b.record(403, false);
        }
        assert!(matches!(b.admit(false), Admission::Pace(d) if d > Duration::ZERO));
        for _ in 0..5 {
            b.record(429, false);
        }
        assert_eq!(b.admit(false), Admission::Refuse);
        assert!(matches!(b.admit(true), Admission::Pace(_)));
    }
}
