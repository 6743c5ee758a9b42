//! Who is in which voice channel, as the gateway tells us (GUILD_CREATE's `voice_states`,
//! then VOICE_STATE_UPDATE). Activities run in voice channels: a launch for someone the
//! host knows is not in voice gets a "join a voice channel first" answer instead. For a
//! guild the gateway has not described (no bot token, not connected yet) the host does not
//! guess and lets Discord decide.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::Value;

#[derive(Default)]
pub struct VoiceStates {
    /// Guilds whose full voice state arrived (GUILD_CREATE).
    known: Mutex<HashSet<String>>,
    /// (guild, user) → voice channel.
    channels: Mutex<HashMap<(String, String), String>>,
}

impl VoiceStates {
    /// GUILD_CREATE: the guild's current voice states (an array of voice state objects).
    pub fn guild_create(&self, guild: &Value) {
        let Some(g) = guild["id"].as_str() else {
            return;
        };
        let mut channels = self.channels.lock().unwrap();
        channels.retain(|(guild_id, _), _| guild_id != g);
        let states: Vec<&Value> = match &guild["voice_states"] {
            Value::Array(a) => a.iter().collect(),
            Value::Object(o) => o.values().collect(),
            _ => Vec::new(),
        };
        for s in states {
            if let (Some(u), Some(c)) = (s["user_id"].as_str(), s["channel_id"].as_str()) {
                channels.insert((g.to_string(), u.to_string()), c.to_string());
            }
        }
        self.known.lock().unwrap().insert(g.to_string());
    }

    /// VOICE_STATE_UPDATE: joined, moved (channel id) or left (null channel).
    pub fn update(&self, state: &Value) {
        let (Some(g), Some(u)) = (state["guild_id"].as_str(), state["user_id"].as_str()) else {
            return;
        };
        let key = (g.to_string(), u.to_string());
        let mut channels = self.channels.lock().unwrap();
        match state["channel_id"].as_str() {
            Some(c) => {
                channels.insert(key, c.to_string());
            }
            None => {
                channels.remove(&key);
            }
        }
    }

    /// `Some(in voice?)` when the gateway described this guild, else `None`.
    pub fn in_voice(&self, guild_id: &str, user_id: &str) -> Option<bool> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_guilds_answer_and_updates_move_people() {
        let v = VoiceStates::default();
        assert_eq!(v.in_voice("1", "7"), None);
        v.guild_create(&json!({"id": "1", "voice_states": [{"user_id": "7", "channel_id": "9"}]}));
        assert_eq!(v.in_voice("1", "7"), Some(true));
        assert_eq!(v.in_voice("1", "8"), Some(false));
        v.update(&json!({"guild_id": "1", "user_id": "7", "channel_id": null}));
        assert_eq!(v.in_voice("1", "7"), Some(false));
        v.update(&json!({"guild_id": "1", "user_id": "8", "channel_id": "9"}));
        assert_eq!(v.in_voice("1", "8"), Some(true));
    }
}
