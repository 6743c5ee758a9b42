//! Who is in which voice channel, as the gateway tells it (`discord/voice.rs` reads the
//! events). For a guild the gateway has not described, the answer is "unknown".

use async_trait::async_trait;

#[async_trait]
pub trait VoiceStates: Send + Sync {
    /// The guild's full voice state (GUILD_CREATE): (user, channel) pairs; the guild is
    /// known from now on.
    async fn replace_guild(&self, guild_id: &str, states: Vec<(String, String)>);
    /// One member joined or moved (`Some(channel)`) or left (`None`).
    async fn set(&self, guild_id: &str, user_id: &str, channel_id: Option<&str>);
    /// `Some(in voice?)` when the gateway described this guild, else `None`.
    async fn in_voice(&self, guild_id: &str, user_id: &str) -> Option<bool>;
}
