//! Voice states in this process.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::store::voice::VoiceStates;

#[derive(Default)]
pub struct MemoryVoice {
    /// Guilds whose full voice state arrived (GUILD_CREATE).
    known: Mutex<HashSet<String>>,
    /// (guild, user) → voice channel.
    channels: Mutex<HashMap<(String, String), String>>,
}

#[async_trait]
impl VoiceStates for MemoryVoice {
    async fn replace_guild(&self, guild_id: &str, states: Vec<(String, String)>) {
        let mut channels = self.channels.lock().unwrap();
        channels.retain(|(g, _), _| g != guild_id);
        for (user, channel) in states {
            channels.insert((guild_id.to_string(), user), channel);
        }
        self.known.lock().unwrap().insert(guild_id.to_string());
    }

    async fn set(&self, guild_id: &str, user_id: &str, channel_id: Option<&str>) {
        let key = (guild_id.to_string(), user_id.to_string());
        let mut channels = self.channels.lock().unwrap();
        match channel_id {
            Some(c) => {
                channels.insert(key, c.to_string());
            }
            None => {
                channels.remove(&key);
            }
        }
    }

    async fn in_voice(&self, guild_id: &str, user_id: &str) -> Option<bool> {
        if !self.known.lock().unwrap().contains(guild_id) {
            return None;
        }
        Some(
            self.channels
                .lock()
                .unwrap()
                .contains_key(&(guild_id.to_string(), user_id.to_string())),
        )
    }
}
