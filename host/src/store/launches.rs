//! Activity launches waiting for their Activity: when a plugin answers a control with
//! LAUNCH_ACTIVITY, the host keeps which control it was (keyed by channel and user) so the
//! Activity that opens next can ask what it was launched for, on whichever instance it
//! connects to.

use std::time::Duration;

use async_trait::async_trait;

/// How long a launch waits for its Activity (an interaction token's life).
pub const LAUNCH_TTL: Duration = Duration::from_secs(15 * 60);

#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    /// The full custom id (`plugin:...`) of the control that launched it.
    pub custom_id: String,
}

#[async_trait]
pub trait Launches: Send + Sync {
    async fn record(&self, channel_id: &str, user_id: &str, custom_id: &str);
    /// The most recent launch in a channel, by anyone: (who, what).
    async fn latest_in(&self, channel_id: &str) -> Option<(String, Launch)>;
    /// The latest launch by this user in this channel, if recent.
    async fn get(&self, channel_id: &str, user_id: &str) -> Option<Launch>;
}
