//! Kaltura sessions signed locally (no network round trip) and cached per
//! (user, type, privileges) until 80% of their life has passed.

use std::collections::HashMap;
use std::sync::Mutex;

use kaltura_ks::{KsRequest, SessionType};

use crate::config::secret::Secret;
use crate::telemetry::METRICS;

/// A signed session and what it grants.
#[derive(Clone)]
pub struct SignedKs {
    pub ks: Secret,
    pub user_id: String,
    pub session_type: SessionType,
    pub privileges: String,
    /// Unix seconds.
    pub expires_at: i64,
}

#[derive(Hash, PartialEq, Eq, Clone)]
struct Key {
    user: String,
    admin: bool,
    privileges: String,
    ttl: i64,
}

struct Cached {
    ks: SignedKs,
    renew_at: i64,
}

/// Bound on cached sessions; past it, expired ones are dropped first, then everything.
const MAX_CACHED: usize = 10_000;

pub struct Sessions {
    partner_id: u64,
    secret: Secret,
    cache: Mutex<HashMap<Key, Cached>>,
}

pub use crate::store::now_secs as now;

impl Sessions {
    /// Signs with `secret` (the first of the partner's admin secrets).
    pub fn new(partner_id: u64, secret: Secret) -> Self {
        Self {
            partner_id,
            secret,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A session for `user` valid for `ttl` seconds, from the cache while it is younger
    /// than 80% of its life.
    pub fn get(&self, user: &str, t: SessionType, privileges: &str, ttl: i64) -> SignedKs {
        let key = Key {
            user: user.to_string(),
            admin: t == SessionType::Admin,
            privileges: privileges.to_string(),
            ttl,
        };
        let now = now();
        if let Some(c) = self.cache.lock().unwrap().get(&key)
            && now < c.renew_at
        {
            return c.ks.clone();
        }
        let ks = self.sign(user, t, privileges, ttl);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= MAX_CACHED {
            cache.retain(|_, c| c.renew_at > now);
            if cache.len() >= MAX_CACHED {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Cached {
                ks: ks.clone(),
                renew_at: now + ttl * 4 / 5,
            },
        );
        ks
    }

    /// Drops a cached session the server refused (the next `get` signs a new one).
    pub fn invalidate(&self, user: &str, t: SessionType, privileges: &str, ttl: i64) {
        self.cache.lock().unwrap().remove(&Key {
            user: user.to_string(),
            admin: t == SessionType::Admin,
            privileges: privileges.to_string(),
            ttl,
        });
    }

    /// A fresh session, never cached.
    pub fn sign(&self, user: &str, t: SessionType, privileges: &str, ttl: i64) -> SignedKs {
        let expires_at = now() + ttl;
        let ks = KsRequest {
            partner_id: self.partner_id,
            user_id: user,
            session_type: t,
            expiry: expires_at,
            privileges,
        }
        .sign(self.secret.expose());
        let label = if t == SessionType::Admin {
            "admin"
        } else {
            "user"
        };
        METRICS.kaltura_sessions.with_label_values(&[label]).inc();
        SignedKs {
            ks: Secret::new(ks),
            user_id: user.to_string(),
            session_type: t,
            privileges: privileges.to_string(),
            expires_at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_until_invalidated_and_keyed_by_privileges() {
        let s = Sessions::new(1234567, Secret::new("0123456789abcdef0123456789abcdef"));
        let a = s.get("u", SessionType::Admin, "", 3600);
        let b = s.get("u", SessionType::Admin, "", 3600);
        assert_eq!(a.ks, b.ks);
        let c = s.get("u", SessionType::Admin, "privacycontext:x", 3600);
        assert_ne!(a.ks, c.ks);
        s.invalidate("u", SessionType::Admin, "", 3600);
        let d = s.get("u", SessionType::Admin, "", 3600);
        assert_ne!(a.ks, d.ks);
        let info = kaltura_ks::verify(
            d.ks.expose(),
            1234567,
            &["0123456789abcdef0123456789abcdef"],
            now(),
        )
        .unwrap();
        assert_eq!(info.session_type, SessionType::Admin);
    }

    #[test]
    fn a_session_past_80_percent_of_its_life_is_renewed() {
        let s = Sessions::new(1, Secret::new("k"));
        // A 1-second session is due for renewal at once (80% of 1 s rounds to 0).
        let a = s.get("u", SessionType::User, "", 1);
        let b = s.get("u", SessionType::User, "", 1);
        assert_ne!(a.ks, b.ks);
    }
}
