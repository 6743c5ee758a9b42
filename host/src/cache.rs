//! A small map whose entries go stale after a fixed time and which never grows past a
//! bound: the host's short-lived memory of what Discord said (guilds, members, channels,
//! refusals, refused tokens) and of interactions already seen.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlMap<K, V> {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    /// Entries live `ttl`; at most `max` are kept (a full map first forgets stale entries,
    /// then, if still full, keeps nothing new).
    pub fn new(ttl: Duration, max: usize) -> Self {
        Self {
            ttl,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value, if it is younger than the map's time to live.
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        self.aged(key)
            .filter(|(age, _)| *age < self.ttl)
            .map(|(_, v)| v)
    }

    /// The value however old, with its age (a caller that decides by age itself).
    pub fn aged<Q>(&self, key: &Q) -> Option<(Duration, V)>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let map = self.map.lock().unwrap();
        map.get(key).map(|(at, v)| (at.elapsed(), v.clone()))
    }

    pub fn insert(&self, key: K, value: V) {
        let mut map = self.map.lock().unwrap();
        self.make_room(&mut map);
        if map.len() < self.max {
            map.insert(key, (Instant::now(), value));
        }
    }

    /// Inserts unless a fresh entry is there; `true` when it was not (under one lock, so
    /// two callers never both see "first").
    pub fn first_sight(&self, key: K, value: V) -> bool {
        let mut map = self.map.lock().unwrap();
        if map.get(&key).is_some_and(|(at, _)| at.elapsed() < self.ttl) {
            return false;
        }
        self.make_room(&mut map);
        if map.len() < self.max {
            map.insert(key, (Instant::now(), value));
        }
        true
    }

    fn make_room(&self, map: &mut HashMap<K, (Instant, V)>) {
        if map.len() >= self.max {
            map.retain(|_, (at, _)| at.elapsed() < self.ttl);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_bounded_and_seen_once() {
        let m: TtlMap<String, u8> = TtlMap::new(Duration::from_secs(3600), 2);
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        m.insert("c".into(), 3);
        assert_eq!(
            (m.get("a"), m.get("b"), m.get("c")),
            (Some(1), Some(2), None)
        );
        assert!(
            m.aged("a")
                .is_some_and(|(age, _)| age < Duration::from_secs(3600))
        );
        let seen: TtlMap<String, ()> = TtlMap::new(Duration::from_secs(3600), 10);
        assert!(seen.first_sight("x".into(), ()));
        assert!(!seen.first_sight("x".into(), ()));
        // A stale entry counts as unseen.
        let stale: TtlMap<String, ()> = TtlMap::new(Duration::ZERO, 10);
        stale.insert("y".into(), ());
        assert_eq!(stale.get("y"), None);
        assert!(stale.first_sight("y".into(), ()));
    }
}
