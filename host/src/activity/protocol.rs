//! The sync protocol, version 1: JSON text frames, one object each, tagged by `type`.
//! The TypeScript side (`activity/src/protocol.ts`) mirrors these types.

use serde::{Deserialize, Serialize};

/// The WebSocket subprotocol of the sync socket; the host token rides as the second
/// offered value (`Sec-WebSocket-Protocol: kd-sync, <token>`), never in the URL.
pub const SUBPROTOCOL: &str = "kd-sync";

pub const VERSION: u32 = 1;
/// The largest frame a client may send.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// Close codes (4000-4999 are the application's).
pub mod close {
    /// The token is missing, invalid or expired.
    pub const UNAUTHORIZED: u16 = 4001;
    /// The user is not a participant of this Activity instance.
    pub const NOT_IN_INSTANCE: u16 = 4003;
    /// Too many bad or too frequent messages.
    pub const POLICY: u16 = 4008;
    /// A frame larger than [`super::MAX_MESSAGE_BYTES`].
    pub const TOO_BIG: u16 = 4009;
    /// The client missed its heartbeats.
    pub const TIMEOUT: u16 = 4010;
    /// A newer connection of the same user replaced this one.
    pub const REPLACED: u16 = 4011;
    /// Another server instance owns this room: reconnect (the load balancer may send the
    /// next connection to it).
    pub const ELSEWHERE: u16 = 4012;
    /// The server is restarting (a rolling update): reconnect, the room goes on elsewhere.
    pub const RESTARTING: u16 = 4013;
}

/// What everyone in a room sees of the playback. `position` was true at `set_at` (server
/// clock, ms); while playing, now it is `position + (now - set_at) / 1000 * rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybackState {
    pub entry_id: Option<String>,
    pub playing: bool,
    /// Seconds.
    pub position: f64,
    pub rate: f64,
    /// Server time (Unix ms) when `position` was true.
    pub set_at: i64,
}

impl PlaybackState {
    pub fn new(entry_id: Option<String>, now: i64) -> Self {
        Self {
            entry_id,
            playing: false,
            position: 0.0,
            rate: 1.0,
            set_at: now,
        }
    }

    /// Where the playback is at server time `now`.
    pub fn position_at(&self, now: i64) -> f64 {
        if self.playing {
            self.position + (now - self.set_at).max(0) as f64 / 1000.0 * self.rate
        } else {
            self.position
        }
    }
}

/// A participant's state, as others see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    Joined,
    Buffering,
    Idle,
    /// Connection lost; the seat is kept for a moment (resume).
    Away,
}

/// Network quality from the measured round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quality {
    Good,
    Fair,
    Poor,
    Unknown,
}

impl Quality {
    pub fn from_rtt(rtt_ms: Option<u32>) -> Self {
        match rtt_ms {
            None => Self::Unknown,
            Some(0..=150) => Self::Good,
            Some(151..=400) => Self::Fair,
            Some(_) => Self::Poor,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Participant {
    pub id: String,
    pub name: String,
    pub avatar: Option<String>,
    pub host: bool,
    pub presence: Presence,
    pub rtt_ms: Option<u32>,
    pub quality: Quality,
    /// The last position the participant reported (seconds).
    pub position: Option<f64>,
    /// How far that position was from the room's (seconds, + ahead), when reported.
    pub drift: Option<f64>,
}

/// Client → server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Clock sampling: `t0` is the client's clock when sent.
    Ping {
        id: u32,
        t0: f64,
    },
    /// What the client measured (round trip, ms) and where its player is.
    Report {
        #[serde(default)]
        rtt_ms: Option<u32>,
        #[serde(default)]
        position: Option<f64>,
        #[serde(default)]
        presence: Option<Presence>,
    },
    /// Host only: the playback commands.
    Play {
        position: f64,
    },
    Pause {
        position: f64,
    },
    Seek {
        position: f64,
    },
    Rate {
        rate: f64,
    },
    Load {
        entry_id: String,
    },
    /// Host only: everyone re-applies the current state now.
    SyncAll,
    /// Host only: hand the host role to another participant.
    Transfer {
        to: String,
    },
}

impl ClientMessage {
    pub fn host_only(&self) -> bool {
        !matches!(self, Self::Ping { .. } | Self::Report { .. })
    }
}

/// Server → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message on a connection: who you are and the room as it is.
    Welcome {
        v: u32,
        you: String,
        instance_id: String,
        host: Option<String>,
        state: PlaybackState,
        participants: Vec<Participant>,
        server_time: i64,
    },
    /// The playback changed (`force`: re-apply even if close; `by`: who did it).
    State {
        state: PlaybackState,
        by: Option<String>,
        seq: u64,
        force: bool,
    },
    /// The participant list or the host changed.
    Participants {
        host: Option<String>,
        participants: Vec<Participant>,
    },
    Pong {
        id: u32,
        t0: f64,
        server_time: i64,
    },
    /// Something this client sent was refused; the connection stays.
    Error {
        code: String,
        message: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_have_a_type_tag_and_refuse_extra_fields() {
        let m: ClientMessage =
            serde_json::from_value(json!({"type": "seek", "position": 12.5})).unwrap();
        assert_eq!(m, ClientMessage::Seek { position: 12.5 });
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "seek"})).is_err());
        assert!(
            serde_json::from_value::<ClientMessage>(json!({"type": "seek", "position": 1, "x": 1}))
                .is_err()
        );
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "explode"})).is_err());
        let s = serde_json::to_value(ServerMessage::Pong {
            id: 1,
            t0: 5.0,
            server_time: 9,
        })
        .unwrap();
        assert_eq!(
            s,
            json!({"type": "pong", "id": 1, "t0": 5.0, "server_time": 9})
        );
    }

    #[test]
    fn the_position_moves_with_time_and_rate_while_playing() {
        let mut s = PlaybackState::new(None, 1000);
        s.position = 10.0;
        assert_eq!(s.position_at(5000), 10.0);
        s.playing = true;
        s.rate = 1.5;
        assert_eq!(s.position_at(3000), 13.0);
        assert_eq!(Quality::from_rtt(Some(90)), Quality::Good);
        assert_eq!(Quality::from_rtt(Some(900)), Quality::Poor);
    }
}
