//! Pending Activity launches in this process.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;

use crate::store::launches::{LAUNCH_TTL, Launch, Launches};

const MAX_PENDING: usize = 10_000;

#[derive(Default)]
pub struct MemoryLaunches {
    /// (channel, user) → (what, when).
    pending: Mutex<HashMap<(String, String), (Launch, Instant)>>,
}

#[async_trait]
impl Launches for MemoryLaunches {
    async fn record(&self, channel_id: &str, user_id: &str, custom_id: &str) {
        let mut map = self.pending.lock().unwrap();
        if map.len() >= MAX_PENDING {
            map.retain(|_, (_, at)| at.elapsed() < LAUNCH_TTL);
        }
        let launch = Launch {
            custom_id: custom_id.to_string(),
        };
        map.insert(
            (channel_id.to_string(), user_id.to_string()),
            (launch, Instant::now()),
        );
    }

    async fn latest_in(&self, channel_id: &str) -> Option<(String, Launch)> {
        self.pending
            .lock()
            .unwrap()
            .iter()
            .filter(|((c, _), (_, at))| c == channel_id && at.elapsed() < LAUNCH_TTL)
            .max_by_key(|(_, (_, at))| *at)
            .map(|((_, u), (l, _))| (u.clone(), l.clone()))
    }

    async fn get(&self, channel_id: &str, user_id: &str) -> Option<Launch> {
        self.pending
            .lock()
            .unwrap()
            .get(&(channel_id.to_string(), user_id.to_string()))
            .filter(|(_, at)| at.elapsed() < LAUNCH_TTL)
            .map(|(l, _)| l.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn launches_are_kept_per_channel_and_user() {
        let l = MemoryLaunches::default();
        l.record("c", "u", "kaltura-videos:kaltura-video-search:watch:1_a")
            .await;
        assert_eq!(
            l.get("c", "u").await.unwrap().custom_id,
            "kaltura-videos:kaltura-video-search:watch:1_a"
        );
        assert!(l.get("c", "other").await.is_none());
        l.record("c", "v", "p:watch:1_b").await;
        let (who, what) = l.latest_in("c").await.unwrap();
        assert_eq!(
            (who.as_str(), what.custom_id.as_str()),
            ("v", "p:watch:1_b")
        );
        assert!(l.latest_in("d").await.is_none());
    }
}
