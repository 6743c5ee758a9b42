//! Discord bans the IP of a host that gets 10,000 answers of 401, 403 or 429 (shared 429s
//! excepted) within 10 minutes. The host counts its own over a sliding 10-minute window
//! (`store::DiscordLimits`, shared by every instance of the bot) and slows down long before
//! that: past [`SOFT`] every request waits a little (more the closer it gets), past [`HARD`]
//! only interaction responses still go out; the rest are refused (`RestError::Throttled`)
//! until the window drains. Queued messages wait in the outbox.

use std::time::Duration;

/// Discord's ban threshold, for reference: the host never gets near it.
pub const DISCORD_LIMIT: u32 = 10_000;
/// From here on every request is paced.
pub const SOFT: u32 = 2_000;
/// From here on only interaction responses are sent.
pub const HARD: u32 = 4_000;

/// What to do with the next request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    Go,
    /// Go after this pause.
    Pace(Duration),
    /// Do not send it now.
    Refuse,
}

/// Whether Discord counts this answer toward its ban.
pub fn counts(status: u16, shared_rate_limit: bool) -> bool {
    matches!(status, 401 | 403) || (status == 429 && !shared_rate_limit)
}

/// Whether a request may go with `invalid` answers in the window; `essential` ones
/// (interaction responses: a person is waiting, and they use the interaction's own token)
/// are never refused.
pub fn admit(invalid: u32, essential: bool) -> Admission {
    admit_with(invalid, essential, SOFT, HARD)
}

fn admit_with(invalid: u32, essential: bool, soft: u32, hard: u32) -> Admission {
    if invalid >= hard && !essential {
        return Admission::Refuse;
    }
    if invalid >= soft {
        let over = f64::from(invalid - soft) / f64::from(hard - soft);
        return Admission::Pace(Duration::from_millis((over.min(1.0) * 1000.0) as u64));
    }
    Admission::Go
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_slow_the_host_down_long_before_discords_limit() {
        const _: () = assert!(HARD < DISCORD_LIMIT / 2);
        assert!(counts(401, false) && counts(403, false) && counts(429, false));
        assert!(!counts(429, true) && !counts(404, false) && !counts(200, false));
        assert_eq!(admit_with(9, false, 10, 20), Admission::Go);
        assert!(matches!(admit_with(15, false, 10, 20), Admission::Pace(d) if d > Duration::ZERO));
        assert_eq!(admit_with(20, false, 10, 20), Admission::Refuse);
        assert!(matches!(admit_with(20, true, 10, 20), Admission::Pace(_)));
        assert_eq!(admit(SOFT - 1, false), Admission::Go);
        assert_eq!(admit(HARD, false), Admission::Refuse);
    }
}
