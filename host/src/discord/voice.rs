//! Who is in which voice channel, as the gateway tells us (GUILD_CREATE's `voice_states`,
//! then VOICE_STATE_UPDATE), kept in `store::VoiceStates`. Activities run in voice
//! channels: a launch for someone the host knows is not in voice gets a "join a voice
//! channel first" answer instead. For a guild the gateway has not described (no bot token,
//! not connected yet) the host does not guess and lets Discord decide.

use serde_json::Value;

use crate::store::voice::VoiceStates;

/// GUILD_CREATE: the guild's current voice states (an array of voice state objects).
pub async fn guild_create(store: &dyn VoiceStates, guild: &Value) {
    let Some(g) = guild["id"].as_str() else {
        return;
    };
    let states: Vec<&Value> = match &guild["voice_states"] {
        Value::Array(a) => a.iter().collect(),
        Value::Object(o) => o.values().collect(),
        _ => Vec::new(),
    };
    let pairs = states
        .into_iter()
        .filter_map(|s| {
            Some((
                s["user_id"].as_str()?.into(),
                s["channel_id"].as_str()?.into(),
            ))
        })
        .collect();
    store.replace_guild(g, pairs).await;
}

/// VOICE_STATE_UPDATE: joined, moved (channel id) or left (null channel).
pub async fn update(store: &dyn VoiceStates, state: &Value) {
    let (Some(g), Some(u)) = (state["guild_id"].as_str(), state["user_id"].as_str()) else {
        return;
    };
    store.set(g, u, state["channel_id"].as_str()).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryVoice;
    use serde_json::json;

    #[tokio::test]
    async fn known_guilds_answer_and_updates_move_people() {
        let v = MemoryVoice::default();
        assert_eq!(v.in_voice("1", "7").await, None);
        guild_create(
            &v,
            &json!({"id": "1", "voice_states": [{"user_id": "7", "channel_id": "9"}]}),
        )
        .await;
        assert_eq!(v.in_voice("1", "7").await, Some(true));
        assert_eq!(v.in_voice("1", "8").await, Some(false));
        update(
            &v,
            &json!({"guild_id": "1", "user_id": "7", "channel_id": null}),
        )
        .await;
        assert_eq!(v.in_voice("1", "7").await, Some(false));
        update(
            &v,
            &json!({"guild_id": "1", "user_id": "8", "channel_id": "9"}),
        )
        .await;
        assert_eq!(v.in_voice("1", "8").await, Some(true));
    }
}
