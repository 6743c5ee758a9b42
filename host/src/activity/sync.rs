//! `GET /api/v1/activity/sync?instance_id=…&token=…` (WebSocket): the sync rooms.
//!
//! A connection needs a host JWT (the `token` query parameter, as browsers cannot set
//! headers on a WebSocket, or `Authorization: Bearer`) and, when the bot token is set and
//! dev mode is off, a place in the Activity instance as Discord reports it
//! (`GET /applications/{app}/activity-instances/{id}`). Refusals are close codes
//! ([`protocol::close`]). Each connection may send [`protocol::MAX_MESSAGE_BYTES`] per frame
//! and 20 messages a second (bursts of 40); bad or too frequent messages are answered with an
//! `error` and, past a limit, the connection is closed with 4008. The server pings; a client
//! silent for 20 s is closed (4010). A dropped connection keeps its seat (and the host role)
//! for the grace period, so a reconnect resumes; after it the room moves on.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use governor::{Quota, RateLimiter};
use tokio::sync::{Notify, broadcast};

use super::protocol::{self, ClientMessage, ServerMessage, close};
use super::room::{Change, Room};
use crate::discord::rest::{Call, DiscordRest};
use crate::store::SharedState;
use crate::store::launches::Launches;
use crate::store::now_ms;
use crate::store::rooms::{Claim, RoomClaims};

/// Messages a client sends that are refused before it is dropped.
const MAX_STRIKES: u32 = 20;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(20);
const SERVER_PING: Duration = Duration::from_secs(5);
const INSTANCE_CACHE: Duration = Duration::from_secs(10);
/// How often reported positions (for everyone's sync status) are broadcast.
const POSITIONS_EVERY: Duration = Duration::from_secs(2);

/// Who may be in an instance, from Discord (bot token), cached briefly.
pub struct InstanceCheck {
    rest: Arc<DiscordRest>,
    cache: Mutex<HashMap<String, (Instant, Instance)>>,
}

/// An Activity instance as Discord describes it.
#[derive(Clone)]
struct Instance {
    users: Vec<String>,
    /// Where it runs (`location.channel_id`): the room opens on what was launched there.
    channel_id: Option<String>,
}

impl InstanceCheck {
    pub fn new(rest: Arc<DiscordRest>) -> Self {
        Self {
            rest,
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn instance(&self, instance: &str) -> Result<Instance, String> {
        if let Some((at, known)) = self.cache.lock().unwrap().get(instance)
            && at.elapsed() < INSTANCE_CACHE
        {
            return Ok(known.clone());
        }
        let app = self.rest.application_id.clone();
        let v = self
            .rest
            .send(Call {
                method: reqwest::Method::GET,
                route: "GET activity-instance".into(),
                path: format!("/applications/{app}/activity-instances/{instance}"),
                body: None,
                bot_auth: true,
            })
            .await
            .map_err(|e| e.to_string())?;
        let users: Vec<String> = v["users"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|u| u.as_str().or(u["id"].as_str()).map(String::from))
            .collect();
        let known = Instance {
            users,
            channel_id: v["location"]["channel_id"].as_str().map(String::from),
        };
        self.cache
            .lock()
            .unwrap()
            .insert(instance.to_string(), (Instant::now(), known.clone()));
        Ok(known)
    }
}

struct RoomHandle {
    room: Mutex<Room>,
    /// Every message for everyone in the room, serialized once.
    tx: broadcast::Sender<Arc<str>>,
    /// The live connection of each user (a newer one replaces an older one).
    conns: Mutex<HashMap<String, (u64, Arc<Notify>)>>,
}

impl RoomHandle {
    /// Whether `conn` is still the user's live connection (and, with `forget`, it is no
    /// longer: the seat goes).
    fn is_current(&self, user: &str, conn: u64, forget: bool) -> bool {
        let mut conns = self.conns.lock().unwrap();
        let current = conns.get(user).is_some_and(|(c, _)| *c == conn);
        if current && forget {
            conns.remove(user);
        }
        current
    }

    fn send(&self, msg: &ServerMessage) {
        let text: Arc<str> = serde_json::to_string(msg)
            .expect("messages serialize")
            .into();
        let _ = self.tx.send(text);
    }

    /// Seats the caller (a newer connection replaces an older one of theirs) and says
    /// everything the caller needs to start: the welcome.
    fn join(
        &self,
        caller: &Caller,
        instance: &str,
        conn: u64,
        replaced: &Arc<Notify>,
    ) -> ServerMessage {
        let mut room = self.room.lock().unwrap();
        if let Some((_, old)) = self
            .conns
            .lock()
            .unwrap()
            .insert(caller.user_id.clone(), (conn, replaced.clone()))
        {
            old.notify_one();
        }
        room.join(&caller.user_id, &caller.name, caller.avatar.clone());
        self.participants(&room);
        ServerMessage::Welcome {
            v: protocol::VERSION,
            you: caller.user_id.clone(),
            instance_id: instance.to_string(),
            host: room.host().map(String::from),
            state: room.state().clone(),
            participants: room.participants(),
            server_time: now_ms(),
        }
    }

    fn participants(&self, room: &Room) {
        self.send(&ServerMessage::Participants {
            host: room.host().map(String::from),
            participants: room.participants(),
        });
    }
}

pub struct SyncRooms {
    rooms: Mutex<HashMap<String, Arc<RoomHandle>>>,
    launches: Arc<dyn Launches>,
    /// Who owns each room (one writer per room), and this instance's name there.
    claims: Arc<dyn RoomClaims>,
    owner: String,
    /// `None` in dev mode or without a bot token: membership is not checked with Discord.
    check: Option<InstanceCheck>,
    grace: Duration,
    next_conn: AtomicU64,
}

/// Who is connecting (from a verified host JWT).
pub struct Caller {
    pub user_id: String,
    pub name: String,
    /// The Discord CDN URL of their avatar, when they have one.
    pub avatar: Option<String>,
}

impl SyncRooms {
    pub fn new(shared: &SharedState, check: Option<InstanceCheck>, grace: Duration) -> Self {
        Self {
            rooms: Mutex::new(HashMap::new()),
            launches: shared.launches.clone(),
            claims: shared.rooms.clone(),
            owner: shared.instance_id.clone(),
            check,
            grace,
            next_conn: AtomicU64::new(1),
        }
    }

    /// The room of an Activity instance, opened here if no instance owns it yet;
    /// `Err(owner)` when another instance does.
    async fn room(&self, instance: &str, channel: Option<&str>) -> Result<Arc<RoomHandle>, String> {
        // Claimed on every connection, so a room opened again after a release is owned.
        if let Claim::Elsewhere { owner } = self.claims.claim(instance, &self.owner).await {
            return Err(owner);
        }
        if let Some(h) = self.rooms.lock().unwrap().get(instance) {
            return Ok(h.clone());
        }
        // The launcher (who pressed Watch Together in this channel) hosts, and the room
        // opens on what they launched.
        let launch = match channel {
            Some(c) => self.launches.latest_in(c).await,
            None => None,
        };
        let mut rooms = self.rooms.lock().unwrap();
        if let Some(h) = rooms.get(instance) {
            return Ok(h.clone()); // opened meanwhile by another connection
        }
        let handle = {
            let entry = launch.as_ref().and_then(|(_, l)| {
                l.custom_id
                    .split_once(":watch:")
                    .map(|(_, e)| e.to_string())
            });
            let launcher = launch.map(|(u, _)| u);
            Arc::new(RoomHandle {
                room: Mutex::new(Room::new(instance, launcher, entry, now_ms())),
                tx: broadcast::channel(256).0,
                conns: Mutex::new(HashMap::new()),
            })
        };
        rooms.insert(instance.to_string(), handle.clone());
        // Positions reach everyone every few seconds, for as long as the room exists.
        let weak = Arc::downgrade(&handle);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(POSITIONS_EVERY);
            loop {
                every.tick().await;
                let Some(h) = weak.upgrade() else { break };
                let mut room = h.room.lock().unwrap();
                if room.take_positions_dirty() {
                    h.participants(&room);
                }
            }
        });
        Ok(handle)
    }

    /// Runs one connection until it ends. `caller` is `Err(reason)` when the token was
    /// refused: the socket is closed with 4001 and the reason.
    pub async fn serve(
        self: Arc<Self>,
        mut ws: WebSocket,
        caller: Result<Caller, String>,
        instance: String,
        channel: Option<String>,
    ) {
        let caller = match caller {
            Ok(c) => c,
            Err(why) => return close_with(&mut ws, close::UNAUTHORIZED, &why).await,
        };
        let channel = match self.admit(&caller, &instance, channel).await {
            Ok(channel) => channel,
            Err((code, why)) => return close_with(&mut ws, code, why).await,
        };
        let handle = match self.room(&instance, channel.as_deref()).await {
            Ok(h) => h,
            Err(owner) => {
                tracing::info!(
                    instance,
                    owner,
                    "activity room is served by another instance"
                );
                let why = "this room is served by another server: reconnect";
                return close_with(&mut ws, close::ELSEWHERE, why).await;
            }
        };
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let replaced = Arc::new(Notify::new());
        let mut rx = handle.tx.subscribe();
        let welcome = handle.join(&caller, &instance, conn, &replaced);
        // First on the wire; broadcasts queued meanwhile follow (clients keep the newest
        // `seq`).
        if !send_to(&mut ws, &welcome).await {
            handle.room.lock().unwrap().away(&caller.user_id, now_ms());
        }
        let ended = connection(&mut ws, &handle, &caller, &mut rx, &replaced).await;
        if !handle.is_current(&caller.user_id, conn, false) {
            return; // a newer connection of this user took over
        }
        match ended {
            Ended::Left => {
                handle.is_current(&caller.user_id, conn, true);
                {
                    let mut room = handle.room.lock().unwrap();
                    room.leave(&caller.user_id);
                    handle.participants(&room);
                }
                self.drop_if_empty(&instance, &handle).await;
            }
            Ended::Lost => self.keep_seat(handle, caller.user_id, conn, instance),
        }
    }

    /// Whether the caller may join this instance, and the channel it runs in: Discord,
    /// when it can be asked, says which (the page's own `channel_id` is only trusted in
    /// dev mode). A refusal is a close code and its reason.
    async fn admit(
        &self,
        caller: &Caller,
        instance: &str,
        channel: Option<String>,
    ) -> Result<Option<String>, (u16, &'static str)> {
        let valid_instance = (1..=100).contains(&instance.len())
            && instance
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':'));
        if !valid_instance {
            return Err((close::NOT_IN_INSTANCE, "instance_id is not valid"));
        }
        let Some(check) = &self.check else {
            return Ok(channel);
        };
        match check.instance(instance).await {
            Ok(known) if known.users.contains(&caller.user_id) => Ok(known.channel_id),
            Ok(_) => Err((
                close::NOT_IN_INSTANCE,
                "you are not in this Activity instance",
            )),
            Err(e) => {
                tracing::warn!(error = %e, instance, "activity instance could not be checked");
                Err((
                    close::NOT_IN_INSTANCE,
                    "Discord could not confirm you are in this Activity; try again",
                ))
            }
        }
    }

    /// A lost connection keeps its seat for the grace period; a seat still away after it
    /// is given up (and an empty room closed).
    fn keep_seat(
        self: Arc<Self>,
        handle: Arc<RoomHandle>,
        user: String,
        conn: u64,
        instance: String,
    ) {
        handle.room.lock().unwrap().away(&user, now_ms());
        handle.participants(&handle.room.lock().unwrap());
        tokio::spawn(async move {
            tokio::time::sleep(self.grace).await;
            if !handle.is_current(&user, conn, true) {
                return;
            }
            {
                let mut room = handle.room.lock().unwrap();
                if !room
                    .expire(now_ms(), self.grace.as_millis() as i64)
                    .is_empty()
                {
                    handle.participants(&room);
                }
            }
            self.drop_if_empty(&instance, &handle).await;
        });
    }

    /// Closes an empty room and gives up its claim.
    async fn drop_if_empty(&self, instance: &str, handle: &Arc<RoomHandle>) {
        let dropped = {
            let mut rooms = self.rooms.lock().unwrap();
            let empty = handle.room.lock().unwrap().is_empty()
                && rooms.get(instance).is_some_and(|h| Arc::ptr_eq(h, handle));
            empty && rooms.remove(instance).is_some()
        };
        if dropped {
            self.claims.release(instance, &self.owner).await;
        }
    }
}

/// How a connection ended: a goodbye (leave now) or a loss (keep the seat a while).
enum Ended {
    Left,
    Lost,
}

/// Sends a close frame and finishes the closing handshake: what the client sent meanwhile
/// is read and dropped until its own close (at most [`CLOSING_WAIT`]), so the connection
/// ends cleanly and the client reads the code instead of a reset.
async fn close_with(ws: &mut WebSocket, code: u16, reason: &str) {
    // A close frame's reason holds at most 123 bytes.
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    let frame = CloseFrame {
        code,
        reason: reason[..cut].to_string().into(),
    };
    if ws.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSING_WAIT, async {
        while let Some(Ok(m)) = ws.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// How long a closing connection waits for the client's close frame.
const CLOSING_WAIT: Duration = Duration::from_secs(5);

async fn send_to(ws: &mut WebSocket, msg: &ServerMessage) -> bool {
    let text = serde_json::to_string(msg).expect("messages serialize");
    ws.send(Message::Text(text.into())).await.is_ok()
}

fn error(code: &str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code: code.into(),
        message: message.into(),
    }
}

/// One connection's loop: broadcasts out, messages in (limited, answered), heartbeats,
/// replacement by a newer connection. Long because it is one `select!` over those four.
async fn connection(
    ws: &mut WebSocket,
    handle: &RoomHandle,
    caller: &Caller,
    rx: &mut broadcast::Receiver<Arc<str>>,
    replaced: &Notify,
) -> Ended {
    let limiter = RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(20).expect("nonzero"))
            .allow_burst(NonZeroU32::new(40).expect("nonzero")),
    );
    let mut strikes = 0u32;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(SERVER_PING);
    loop {
        tokio::select! {
            _ = replaced.notified() => {
                close_with(ws, close::REPLACED, "you connected again elsewhere").await;
                return Ended::Lost;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > HEARTBEAT_TIMEOUT {
                    close_with(ws, close::TIMEOUT, "no heartbeat").await;
                    return Ended::Lost;
                }
                if ws.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return Ended::Lost;
                }
            }
            out = rx.recv() => match out {
                Ok(text) => {
                    if ws.send(Message::Text(text.as_ref().into())).await.is_err() {
                        return Ended::Lost;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too slow to follow: catch up with the current state instead.
                    let (state, seq) = {
                        let room = handle.room.lock().unwrap();
                        (room.state().clone(), room.seq())
                    };
                    let msg = ServerMessage::State { state, by: None, seq, force: true };
                    if !send_to(ws, &msg).await {
                        return Ended::Lost;
                    }
                }
                Err(broadcast::error::RecvError::Closed) => return Ended::Lost,
            },
            incoming = ws.recv() => {
                let Some(Ok(frame)) = incoming else { return Ended::Lost };
                last_heard = Instant::now();
                let text = match frame {
                    Message::Text(t) => t,
                    Message::Close(_) => return Ended::Left,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        strikes += 1;
                        if !send_to(ws, &error("bad_message", "send JSON text frames")).await {
                            return Ended::Lost;
                        }
                        continue;
                    }
                };
                if text.len() > protocol::MAX_MESSAGE_BYTES {
                    close_with(ws, close::TOO_BIG, "message too large").await;
                    return Ended::Left;
                }
                let reply = if limiter.check().is_err() {
                    strikes += 1;
                    Some(error("rate_limited", "too many messages: at most 20 a second"))
                } else {
                    match serde_json::from_str::<ClientMessage>(&text) {
                        Err(e) => {
                            strikes += 1;
                            Some(error("bad_message", format!("not a protocol message: {e}")))
                        }
                        Ok(ClientMessage::Ping { id, t0 }) => Some(ServerMessage::Pong { id, t0, server_time: now_ms() }),
                        Ok(msg) => handle_message(handle, caller, &msg),
                    }
                };
                if let Some(r) = reply {
                    if let ServerMessage::Error { code, .. } = &r
                        && code == "not_host"
                    {
                        strikes += 1;
                    }
                    if !send_to(ws, &r).await {
                        return Ended::Lost;
                    }
                }
                if strikes > MAX_STRIKES {
                    close_with(ws, close::POLICY, "too many refused messages").await;
                    return Ended::Left;
                }
            }
        }
    }
}

/// Applies a message to the room and broadcasts what changed; returns an answer for the
/// sender alone (a refusal).
fn handle_message(
    handle: &RoomHandle,
    caller: &Caller,
    msg: &ClientMessage,
) -> Option<ServerMessage> {
    let mut room = handle.room.lock().unwrap();
    match room.apply(&caller.user_id, msg, now_ms()) {
        Ok(Change::State { force }) => {
            handle.send(&ServerMessage::State {
                state: room.state().clone(),
                by: Some(caller.user_id.clone()),
                seq: room.seq(),
                force,
            });
            None
        }
        Ok(Change::Participants) => {
            handle.participants(&room);
            None
        }
        Ok(Change::Nothing) => None,
        Err(refusal) => Some(error(refusal.code(), refusal.to_string())),
    }
}
