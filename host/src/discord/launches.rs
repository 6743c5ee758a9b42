//! Activity launches: when a plugin answers a control with LAUNCH_ACTIVITY, the host keeps
//! which control it was (its custom id names what to open, e.g. the video) keyed by channel
//! and user, so the Activity that opens next can ask what it was launched for. Without
//! Activities on the app, the answer becomes a link to the Activity in a browser instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::response::EPHEMERAL;

/// How long a launch waits for its Activity (an interaction token's life).
const LAUNCH_TTL: Duration = Duration::from_secs(15 * 60);
const MAX_PENDING: usize = 10_000;

#[derive(Debug, Clone)]
pub struct Launch {
    /// The full custom id (`plugin:...`) of the control that launched it.
    pub custom_id: String,
    at: Instant,
}

#[derive(Default)]
pub struct Launches {
    pending: Mutex<HashMap<(String, String), Launch>>,
}

impl Launches {
    pub fn record(&self, channel_id: &str, user_id: &str, custom_id: &str) {
        let mut map = self.pending.lock().unwrap();
        if map.len() >= MAX_PENDING {
            map.retain(|_, l| l.at.elapsed() < LAUNCH_TTL);
        }
        map.insert(
            (channel_id.to_string(), user_id.to_string()),
            Launch {
                custom_id: custom_id.to_string(),
                at: Instant::now(),
            },
        );
    }

    /// The most recent launch in a channel, by anyone: (who, what).
    pub fn latest_in(&self, channel_id: &str) -> Option<(String, Launch)> {
        self.pending
            .lock()
            .unwrap()
            .iter()
            .filter(|((c, _), l)| c == channel_id && l.at.elapsed() < LAUNCH_TTL)
            .max_by_key(|(_, l)| l.at)
            .map(|((_, u), l)| (u.clone(), l.clone()))
    }

    /// The latest launch by this user in this channel, if recent.
    pub fn get(&self, channel_id: &str, user_id: &str) -> Option<Launch> {
        self.pending
            .lock()
            .unwrap()
            .get(&(channel_id.to_string(), user_id.to_string()))
            .filter(|l| l.at.elapsed() < LAUNCH_TTL)
            .cloned()
    }
}

/// The browser link that stands in for LAUNCH_ACTIVITY on apps without Activities.
pub fn link_instead(public_url: &str, custom_id: &str) -> Value {
    let launch: String = url::form_urlencoded::byte_serialize(custom_id.as_bytes()).collect();
    let url = format!(
        "{}/activity/?launch={launch}",
        public_url.trim_end_matches('/')
    );
    json!({
        "type": 4,
        "data": {
            "content": "Watch Together runs in your browser on this server:",
            "flags": EPHEMERAL,
            "components": [{"type": 1, "components": [{"type": 2, "style": 5, "label": "Open Watch Together", "url": url}]}],
            "allowed_mentions": {"parse": []},
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launches_are_kept_per_channel_and_user() {
        let l = Launches::default();
        l.record("c", "u", "kaltura-videos:kaltura-video-search:watch:1_a");
        assert_eq!(
            l.get("c", "u").unwrap().custom_id,
            "kaltura-videos:kaltura-video-search:watch:1_a"
        );
        assert!(l.get("c", "other").is_none());
        let link = link_instead("http://h:1/", "p:watch:1_a");
        assert_eq!(
            link["data"]["components"][0]["components"][0]["url"],
            "http://h:1/activity/?launch=p%3Awatch%3A1_a"
        );
    }
}
