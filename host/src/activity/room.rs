//! One Watch Together room (an Activity instance): who is in it, who is the host, and the
//! playback state stamped with the server's clock. Pure logic, no I/O: the socket layer
//! (`sync.rs`) feeds it and broadcasts what changed.

use serde::{Deserialize, Serialize};

use super::protocol::{ClientMessage, Participant, PlaybackState, Presence, Quality};

/// The host role: who holds it and how they got it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Host {
    id: String,
    /// Handed over explicitly: the launcher arriving later does not take it back.
    by_transfer: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Member {
    id: String,
    name: String,
    avatar: Option<String>,
    presence: Presence,
    rtt_ms: Option<u32>,
    position: Option<f64>,
    drift: Option<f64>,
    /// Server time (ms) the connection was lost, while away.
    away_since: Option<i64>,
}

/// What a message changed, for the socket layer to broadcast.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The playback state changed (`force`: followers re-apply even if close).
    State { force: bool },
    /// The host or the participants changed.
    Participants,
    /// Nothing others need to know.
    Nothing,
}

/// Why a message was refused (the sender is told; the room goes on).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("only the room's host can do that")]
    NotHost,
    #[error("{0} is not in this room")]
    NoSuchParticipant(String),
    #[error("{0}")]
    Invalid(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotHost => "not_host",
            Self::NoSuchParticipant(_) => "no_such_participant",
            Self::Invalid(_) => "invalid",
        }
    }
}

/// A room is its own snapshot (serialized whole after every change when instances share
/// rooms, so the next owner resumes it).
#[derive(Serialize, Deserialize)]
pub struct Room {
    pub instance_id: String,
    /// Who pressed Watch Together (host when they join, unless the role was handed over).
    launcher: Option<String>,
    host: Option<Host>,
    /// In order of arrival: the next host is the earliest present one.
    members: Vec<Member>,
    state: PlaybackState,
    seq: u64,
    /// Reported positions changed since the last participants broadcast.
    #[serde(skip)]
    positions_dirty: bool,
}

/// Twelve hours: no video is longer; a larger position is a mistake.
const MAX_POSITION: f64 = 12.0 * 3600.0;

fn check_position(p: f64) -> Result<f64, Refusal> {
    if p.is_finite() && (0.0..=MAX_POSITION).contains(&p) {
        Ok(p)
    } else {
        Err(Refusal::Invalid(format!(
            "position must be 0 to {MAX_POSITION} seconds"
        )))
    }
}

impl Room {
    pub fn new(
        instance_id: &str,
        launcher: Option<String>,
        entry_id: Option<String>,
        now: i64,
    ) -> Self {
        Self {
            instance_id: instance_id.to_string(),
            launcher,
            host: None,
            members: Vec::new(),
            state: PlaybackState::new(entry_id, now),
            seq: 0,
            positions_dirty: false,
        }
    }

    /// The room as its snapshot.
    pub fn snapshot(&self) -> String {
        serde_json::to_string(self).expect("rooms serialize")
    }

    /// A room resumed from its snapshot by a new owner at server time `now`: everyone's
    /// connection was to the old owner, so everyone is away (their seats, and the host
    /// role, kept for the grace period) until they connect again.
    pub fn resume(snapshot: &str, now: i64) -> Option<Room> {
        let mut room: Room = serde_json::from_str(snapshot).ok()?;
        for m in &mut room.members {
            m.presence = Presence::Away;
            m.away_since = Some(now);
        }
        Some(room)
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_ref().map(|h| h.id.as_str())
    }

    pub fn state(&self) -> &PlaybackState {
        &self.state
    }

    pub fn seq(&self) -> u64 {
        self.seq
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    fn member(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    /// Someone connects (or reconnects: their seat, and the host role, are kept).
    pub fn join(&mut self, id: &str, name: &str, avatar: Option<String>) {
        match self.member(id) {
            Some(m) => {
                m.presence = Presence::Joined;
                m.away_since = None;
                m.name = name.to_string();
                m.avatar = avatar;
            }
            None => self.members.push(Member {
                id: id.to_string(),
                name: name.to_string(),
                avatar,
                presence: Presence::Joined,
                rtt_ms: None,
                position: None,
                drift: None,
                away_since: None,
            }),
        }
        let launcher_arrives = self.launcher.as_deref() == Some(id)
            && self
                .host
                .as_ref()
                .is_some_and(|h| !h.by_transfer && h.id != id);
        if self.host.is_none() || launcher_arrives {
            self.host = Some(Host {
                id: id.to_string(),
                by_transfer: false,
            });
        }
    }

    /// The connection dropped without a goodbye: the seat is kept until [`Self::expire`].
    pub fn away(&mut self, id: &str, now: i64) {
        if let Some(m) = self.member(id) {
            m.presence = Presence::Away;
            m.away_since = Some(now);
        }
    }

    /// Someone leaves for good; the host role passes on if it was theirs.
    pub fn leave(&mut self, id: &str) {
        self.members.retain(|m| m.id != id);
        if self.host() == Some(id) {
            self.elect();
        }
    }

    /// Removes those away for longer than `grace_ms` (a host vanishing without a close);
    /// returns who was removed.
    pub fn expire(&mut self, now: i64, grace_ms: i64) -> Vec<String> {
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.away_since.is_some_and(|t| now - t >= grace_ms))
            .map(|m| m.id.clone())
            .collect();
        for id in &gone {
            self.leave(id);
        }
        gone
    }

    /// The earliest present participant becomes host (else the earliest away one).
    fn elect(&mut self) {
        let next = self
            .members
            .iter()
            .find(|m| m.presence != Presence::Away)
            .or(self.members.first())
            .map(|m| m.id.clone());
        self.host = next.map(|id| Host {
            id,
            by_transfer: false,
        });
    }

    /// Applies one message from `by` at server time `now`. Long by nature: one arm per
    /// client message of the protocol, each checking who may send it.
    pub fn apply(&mut self, by: &str, msg: &ClientMessage, now: i64) -> Result<Change, Refusal> {
        if !self.contains(by) {
            return Err(Refusal::NoSuchParticipant(by.to_string()));
        }
        if msg.host_only() && self.host() != Some(by) {
            return Err(Refusal::NotHost);
        }
        let s = &mut self.state;
        let change = match msg {
            ClientMessage::Ping { .. } => Change::Nothing,
            ClientMessage::Report {
                rtt_ms,
                position,
                presence,
            } => {
                let m = self
                    .members
                    .iter_mut()
                    .find(|m| m.id == by)
                    .expect("checked above");
                let before = (m.presence, Quality::from_rtt(m.rtt_ms));
                if let Some(r) = rtt_ms {
                    m.rtt_ms = Some((*r).min(60_000));
                }
                if let Some(p) = position {
                    let p = check_position(*p)?;
                    m.position = Some(p);
                    // The client read its position about half a round trip ago.
                    let read_at = now - i64::from(m.rtt_ms.unwrap_or(0) / 2);
                    m.drift = s.entry_id.as_ref().map(|_| p - s.position_at(read_at));
                    self.positions_dirty = true;
                }
                if let Some(p) = presence {
                    if *p == Presence::Away {
                        return Err(Refusal::Invalid(
                            "a client cannot report itself away".into(),
                        ));
                    }
                    m.presence = *p;
                }
                // Position reports alone are frequent: only presence and quality changes
                // are broadcast.
                if before != (m.presence, Quality::from_rtt(m.rtt_ms)) {
                    Change::Participants
                } else {
                    Change::Nothing
                }
            }
            ClientMessage::Play { position } => {
                s.position = check_position(*position)?;
                s.playing = true;
                s.set_at = now;
                Change::State { force: false }
            }
            ClientMessage::Pause { position } => {
                s.position = check_position(*position)?;
                s.playing = false;
                s.set_at = now;
                Change::State { force: false }
            }
            ClientMessage::Seek { position } => {
                s.position = check_position(*position)?;
                s.set_at = now;
                Change::State { force: true }
            }
            ClientMessage::Rate { rate } => {
                if !(rate.is_finite() && (0.25..=4.0).contains(rate)) {
                    return Err(Refusal::Invalid("rate must be 0.25 to 4".into()));
                }
                s.position = s.position_at(now);
                s.rate = *rate;
                s.set_at = now;
                Change::State { force: false }
            }
            ClientMessage::Load { entry_id } => {
                let ok = (1..=32).contains(&entry_id.len())
                    && entry_id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !ok {
                    return Err(Refusal::Invalid(format!("`{entry_id}` is not an entry id")));
                }
                *s = PlaybackState::new(Some(entry_id.clone()), now);
                Change::State { force: true }
            }
            ClientMessage::SyncAll => Change::State { force: true },
            ClientMessage::Transfer { to } => {
                if !self
                    .members
                    .iter()
                    .any(|m| &m.id == to && m.presence != Presence::Away)
                {
                    return Err(Refusal::NoSuchParticipant(to.clone()));
                }
                self.host = Some(Host {
                    id: to.clone(),
                    by_transfer: true,
                });
                Change::Participants
            }
        };
        if matches!(change, Change::State { .. }) {
            self.seq += 1;
        }
        Ok(change)
    }

    /// Whether positions were reported since the last call (the socket layer broadcasts them
    /// every few seconds, not on every report).
    pub fn take_positions_dirty(&mut self) -> bool {
        std::mem::take(&mut self.positions_dirty)
    }

    pub fn participants(&self) -> Vec<Participant> {
        self.members
            .iter()
            .map(|m| Participant {
                id: m.id.clone(),
                name: m.name.clone(),
                avatar: m.avatar.clone(),
                host: self.host() == Some(m.id.as_str()),
                presence: m.presence,
                rtt_ms: m.rtt_ms,
                quality: Quality::from_rtt(m.rtt_ms),
                position: m.position,
                drift: m.drift,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room() -> Room {
        let mut r = Room::new("i-1", Some("L".into()), Some("1_abcdefgh".into()), 0);
        r.join("A", "Ann", None);
        r
    }

    #[test]
    fn first_to_join_hosts_until_the_launcher_arrives() {
        let mut r = room();
        assert_eq!(r.host(), Some("A"));
        r.join("B", "Bob", None);
        r.join("L", "Lee", None);
        assert_eq!(r.host(), Some("L"));
        // A transfer sticks even when the launcher rejoins.
        r.apply("L", &ClientMessage::Transfer { to: "B".into() }, 5)
            .unwrap();
        r.leave("L");
        r.join("L", "Lee", None);
        assert_eq!(r.host(), Some("B"));
    }

    #[test]
    fn only_the_host_drives_and_states_are_stamped() {
        let mut r = room();
        r.join("B", "Bob", None);
        assert_eq!(
            r.apply("B", &ClientMessage::Play { position: 3.0 }, 10),
            Err(Refusal::NotHost)
        );
        assert_eq!(
            r.apply("A", &ClientMessage::Play { position: 3.0 }, 1000),
            Ok(Change::State { force: false })
        );
        assert!(r.state().playing && r.state().set_at == 1000 && r.seq() == 1);
        assert_eq!(r.state().position_at(3000), 5.0);
        r.apply("A", &ClientMessage::Rate { rate: 2.0 }, 3000)
            .unwrap();
        assert_eq!(r.state().position, 5.0);
        assert_eq!(r.state().position_at(4000), 7.0);
        assert_eq!(
            r.apply("A", &ClientMessage::Seek { position: 60.0 }, 4000),
            Ok(Change::State { force: true })
        );
        assert!(matches!(
            r.apply("A", &ClientMessage::Seek { position: f64::NAN }, 1),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            r.apply("A", &ClientMessage::Rate { rate: 100.0 }, 1),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            r.apply(
                "A",
                &ClientMessage::Load {
                    entry_id: "../x".into()
                },
                1
            ),
            Err(Refusal::Invalid(_))
        ));
        assert_eq!(
            r.apply("Z", &ClientMessage::SyncAll, 1),
            Err(Refusal::NoSuchParticipant("Z".into()))
        );
    }

    #[test]
    fn a_host_that_vanishes_is_replaced_after_the_grace_period_unless_it_resumes() {
        let mut r = room();
        r.join("B", "Bob", None);
        r.away("A", 1000);
        assert!(r.expire(2000, 5000).is_empty());
        // Back within the grace period: still host.
        r.join("A", "Ann", None);
        assert_eq!(r.host(), Some("A"));
        r.away("A", 3000);
        assert_eq!(r.expire(8000, 5000), vec!["A".to_string()]);
        assert_eq!(r.host(), Some("B"));
        r.leave("B");
        assert!(r.is_empty() && r.host().is_none());
    }

    #[test]
    fn a_resumed_room_keeps_host_entry_and_position_and_seats_everyone_away() {
        let mut r = room();
        r.join("B", "Bob", None);
        r.apply("A", &ClientMessage::Play { position: 30.0 }, 1000)
            .unwrap();
        let resumed = Room::resume(&r.snapshot(), 5000).unwrap();
        assert_eq!(resumed.host(), Some("A"));
        assert_eq!(resumed.state(), r.state());
        assert_eq!(resumed.seq(), r.seq());
        assert_eq!(resumed.state().position_at(5000), 34.0);
        assert!(
            resumed
                .participants()
                .iter()
                .all(|p| p.presence == Presence::Away)
        );
        // Back within the grace period: still host; the others go after it.
        let mut resumed = resumed;
        resumed.join("A", "Ann", None);
        assert_eq!(resumed.expire(9000, 4000), vec!["B".to_string()]);
        assert_eq!(resumed.host(), Some("A"));
        assert!(Room::resume("not a room", 0).is_none());
    }

    #[test]
    fn reports_broadcast_only_presence_and_quality_changes() {
        let mut r = room();
        let report = |rtt, p| ClientMessage::Report {
            rtt_ms: Some(rtt),
            position: Some(p),
            presence: None,
        };
        assert_eq!(r.apply("A", &report(40, 1.0), 0), Ok(Change::Participants));
        assert_eq!(r.apply("A", &report(45, 2.0), 0), Ok(Change::Nothing));
        assert_eq!(r.apply("A", &report(500, 3.0), 0), Ok(Change::Participants));
        let p = &r.participants()[0];
        assert_eq!(
            (p.quality, p.position, p.host),
            (Quality::Poor, Some(3.0), true)
        );
        let away = ClientMessage::Report {
            rtt_ms: None,
            position: None,
            presence: Some(Presence::Away),
        };
        assert!(r.apply("A", &away, 0).is_err());
    }
}
