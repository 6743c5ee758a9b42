//! Request limits on the HTTP surface, enforced before any work: per client IP on the
//! routes that need no token (each sign-in costs a call to Discord, and Discord bans the
//! IP of a host that makes too many refused calls), per token subject on the rest of the
//! API and on the sync socket. Answers over the limit are 429 with `Retry-After`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use crate::config::settings::HttpSettings;

pub struct HttpLimits {
    anonymous: DefaultKeyedRateLimiter<IpAddr>,
    subjects: DefaultKeyedRateLimiter<String>,
    client_ip_header: Option<HeaderName>,
}

/// A per-minute quota that allows a burst of a sixth of it (at least 1).
fn per_minute(n: u32) -> Quota {
    let n = NonZeroU32::new(n.max(1)).expect("at least 1");
    let burst = NonZeroU32::new((n.get() / 6).max(1)).expect("at least 1");
    Quota::per_minute(n).allow_burst(burst)
}

impl HttpLimits {
    pub fn new(s: &HttpSettings) -> Self {
        Self {
            anonymous: RateLimiter::keyed(per_minute(s.anonymous_per_minute)),
            subjects: RateLimiter::keyed(per_minute(s.subject_per_minute)),
            client_ip_header: s
                .client_ip_header
                .as_deref()
                .and_then(|h| HeaderName::from_bytes(h.as_bytes()).ok()),
        }
    }

    /// The client's IP: from the operator's proxy header when one is configured (only the
    /// proxy can set it then), else the connection's peer.
    pub fn client_ip(&self, req: &Request) -> IpAddr {
        if let Some(h) = &self.client_ip_header
            && let Some(ip) = req
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(',').next())
                .and_then(|v| v.trim().parse().ok())
        {
            return ip;
        }
        req.extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    pub fn check_anonymous(&self, ip: IpAddr) -> Result<(), ApiError> {
        self.anonymous.check_key(&ip).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::too_many(
                "too many sign-in requests from your address; try again later",
                wait,
            )
        })
    }

    pub fn check_subject(&self, subject: &str) -> Result<(), ApiError> {
        self.subjects
            .check_key(&subject.to_string())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                ApiError::too_many("too many requests with this token; slow down", wait)
            })
    }

    /// Forgets keys that are back to a full quota (bounded memory under a spray of IPs).
    pub fn prune(&self) {
        self.anonymous.retain_recent();
        self.subjects.retain_recent();
    }
}

/// Middleware for routes that need no token: one quota per client IP.
pub async fn per_ip(State(limits): State<Arc<HttpLimits>>, req: Request, next: Next) -> Response {
    let ip = limits.client_ip(&req);
    match limits.check_anonymous(ip) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_are_per_key_and_say_when_to_return() {
        // One a minute: the second request (moments later) must wait up to a minute.
        let l = HttpLimits::new(&HttpSettings {
            anonymous_per_minute: 1,
            subject_per_minute: 1,
            client_ip_header: None,
        });
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        l.check_anonymous(a).unwrap();
        let e = l.check_anonymous(a).unwrap_err();
        assert_eq!(e.status, axum::http::StatusCode::TOO_MANY_REQUESTS);
        assert!((1..=60).contains(&e.retry_after.unwrap()), "{e:?}");
        l.check_anonymous(b).unwrap();
        l.check_subject("ann").unwrap();
        assert!(l.check_subject("ann").is_err());
        l.check_subject("bob").unwrap();
    }
}
