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
//!
//! Where instances share rooms (Redis), one instance owns each room: it renews the room's
//! claim every second and snapshots the room after every change. A client that connects to
//! another instance is relayed to the owner (`relay.rs`); when the owner dies, an instance
//! with clients in the room takes it over from the snapshot (same host, entry and
//! position) and every client gets a fresh welcome.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::WebSocket;
use governor::{Quota, RateLimiter};
use tokio::sync::{Notify, broadcast, mpsc, watch};

use super::protocol::{self, ClientMessage, ServerMessage, close};
use super::relay::{Opened, Opening, RelayEnd, Relays};
use super::room::{Change, Room};
use super::socket::{Incoming, SyncSocket};
use crate::app::stopping::Stopping;
use crate::discord::rest::{Call, DiscordRest};
use crate::store::SharedState;
use crate::store::launches::Launches;
use crate::store::now_ms;
use crate::store::rooms::{Claim, RoomClaims};
use crate::telemetry::{METRICS, SocketOpen};

/// Messages a client sends that are refused before it is dropped.
const MAX_STRIKES: u32 = 20;
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(20);
const SERVER_PING: Duration = Duration::from_secs(5);
const INSTANCE_CACHE: Duration = Duration::from_secs(10);
/// How often an open room's claim is renewed, and its away seats looked at.
const ROOM_TICK: Duration = Duration::from_secs(1);
/// How often reported positions (for everyone's sync status) are broadcast, in ticks.
const POSITIONS_EVERY_TICKS: u32 = 2;

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
                files: &[],
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
    /// Where rooms are shared: changes in order, each snapshot saved before the messages
    /// that announce it go out (a new owner never resumes from less than a client saw).
    pump: Option<mpsc::UnboundedSender<Pumped>>,
    /// Set when the room closes here while people are in it (another instance took it:
    /// 4012; this one is stopping: 4013): every connection here closes with that code.
    closing: watch::Sender<Option<(u16, &'static str)>>,
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
        match &self.pump {
            None => {
                let _ = self.tx.send(text);
            }
            Some(pump) => {
                let _ = pump.send(Pumped::Message(text));
            }
        }
    }

    /// The room changed: its snapshot is kept for the next owner (call before sending the
    /// messages that announce the change).
    fn changed(&self, room: &Room) {
        if let Some(pump) = &self.pump {
            let _ = pump.send(Pumped::Snapshot(room.snapshot().into()));
        }
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

    /// Everyone hears who is here (once the snapshot has it).
    fn participants(&self, room: &Room) {
        self.changed(room);
        self.send(&ServerMessage::Participants {
            host: room.host().map(String::from),
            participants: room.participants(),
        });
    }
}

/// What a shared room's pump carries, in order.
enum Pumped {
    Snapshot(Arc<str>),
    Message(Arc<str>),
}

pub struct SyncRooms {
    rooms: Mutex<HashMap<String, Arc<RoomHandle>>>,
    launches: Arc<dyn Launches>,
    /// Who owns each room (one writer per room), and this instance's name there.
    claims: Arc<dyn RoomClaims>,
    owner: String,
    /// Clients relayed between instances (`None` where every room is owned here).
    relays: Option<Arc<Relays>>,
    /// `None` in dev mode or without a bot token: membership is not checked with Discord.
    check: Option<InstanceCheck>,
    grace: Duration,
    next_conn: AtomicU64,
    /// Relayed clients here are sent away (4013) when the host stops.
    stopping: Stopping,
}

/// Who is connecting (from a verified host JWT).
pub struct Caller {
    pub user_id: String,
    pub name: String,
    /// The Discord CDN URL of their avatar, when they have one.
    pub avatar: Option<String>,
}

impl SyncRooms {
    /// The rooms; where instances share them, this instance also starts serving clients
    /// relayed from the others.
    pub fn new(
        shared: &SharedState,
        check: Option<InstanceCheck>,
        grace: Duration,
        stopping: Stopping,
    ) -> Arc<Self> {
        let claims = shared.rooms.clone();
        let relays = claims
            .relay()
            .map(|relay| Relays::new(relay, &shared.instance_id));
        let rooms = Arc::new(Self {
            rooms: Mutex::new(HashMap::new()),
            launches: shared.launches.clone(),
            claims,
            owner: shared.instance_id.clone(),
            relays: relays.clone(),
            check,
            grace,
            next_conn: AtomicU64::new(1),
            stopping,
        });
        if let Some(relays) = relays {
            let weak = Arc::downgrade(&rooms);
            relays.start(move |opened| {
                if let Some(rooms) = weak.upgrade() {
                    tokio::spawn(rooms.serve_relayed(opened));
                }
            });
        }
        rooms
    }

    /// The room of an Activity instance, opened here if no instance owns it yet (resumed
    /// from its snapshot when its last owner is gone); `Err(owner)` when another instance
    /// owns it.
    async fn room(
        self: &Arc<Self>,
        instance: &str,
        channel: Option<&str>,
    ) -> Result<Arc<RoomHandle>, String> {
        // Claimed on every connection, so a room opened again after a release is owned.
        let epoch = match self.claims.claim(instance, &self.owner).await {
            Claim::Elsewhere { owner } => return Err(owner),
            Claim::Owned { epoch } => epoch,
            Claim::Unreachable => 0,
        };
        if let Some(h) = self.rooms.lock().unwrap().get(instance) {
            return Ok(h.clone());
        }
        let snapshot = match self.relays {
            Some(_) => self.claims.snapshot(instance).await,
            None => None,
        };
        // A new room: the launcher (who pressed Watch Together in this channel) hosts, and
        // it opens on what they launched.
        let launch = match (&snapshot, channel) {
            (None, Some(c)) => self.launches.latest_in(c).await,
            _ => None,
        };
        let mut rooms = self.rooms.lock().unwrap();
        if let Some(h) = rooms.get(instance) {
            return Ok(h.clone()); // opened meanwhile by another connection
        }
        let resumed = snapshot.and_then(|s| Room::resume(&s, now_ms()));
        if resumed.is_some() {
            tracing::info!(
                instance,
                epoch,
                "activity room taken over from its snapshot"
            );
        }
        let room = resumed.unwrap_or_else(|| {
            let entry = launch.as_ref().and_then(|(_, l)| {
                l.custom_id
                    .split_once(":watch:")
                    .map(|(_, e)| e.to_string())
            });
            let launcher = launch.map(|(u, _)| u);
            Room::new(instance, launcher, entry, now_ms())
        });
        let tx = broadcast::channel(256).0;
        let pump = self
            .relays
            .as_ref()
            .map(|_| self.pump(instance, epoch, tx.clone()));
        let handle = Arc::new(RoomHandle {
            room: Mutex::new(room),
            tx,
            conns: Mutex::new(HashMap::new()),
            pump,
            closing: watch::channel(None).0,
        });
        rooms.insert(instance.to_string(), handle.clone());
        METRICS.activity_rooms.inc();
        self.tend(instance, &handle);
        Ok(handle)
    }

    /// A shared room's changes, in order: whatever is queued is taken at once, its latest
    /// snapshot saved (under the claim's epoch), then its messages sent. Ends with the room.
    fn pump(
        &self,
        instance: &str,
        epoch: u64,
        tx: broadcast::Sender<Arc<str>>,
    ) -> mpsc::UnboundedSender<Pumped> {
        let (pump, mut rx) = mpsc::unbounded_channel();
        let (claims, owner, instance) = (
            self.claims.clone(),
            self.owner.clone(),
            instance.to_string(),
        );
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 256).await > 0 {
                let latest = batch.iter().rev().find_map(|p| match p {
                    Pumped::Snapshot(s) => Some(s.clone()),
                    Pumped::Message(_) => None,
                });
                if let Some(snapshot) = latest {
                    claims.save(&instance, &owner, epoch, &snapshot).await;
                }
                for p in batch.drain(..) {
                    if let Pumped::Message(text) = p {
                        let _ = tx.send(text);
                    }
                }
            }
        });
        pump
    }

    /// For as long as the room is open here: its claim renewed every second (a room
    /// another instance took closes here), seats away past the grace period given up,
    /// reported positions broadcast every few seconds.
    fn tend(self: &Arc<Self>, instance: &str, handle: &Arc<RoomHandle>) {
        let weak = Arc::downgrade(handle);
        let (me, instance) = (self.clone(), instance.to_string());
        tokio::spawn(async move {
            // The first tick a second from now: the connection that opened the room joins it
            // meanwhile.
            let start = tokio::time::Instant::now() + ROOM_TICK;
            let mut every = tokio::time::interval_at(start, ROOM_TICK);
            for tick in 1u32.. {
                every.tick().await;
                let Some(h) = weak.upgrade() else { break };
                if !me.is_open(&instance, &h) {
                    break;
                }
                if let Claim::Elsewhere { owner } = me.claims.claim(&instance, &me.owner).await {
                    tracing::warn!(
                        instance,
                        owner,
                        "activity room was taken by another instance; its clients here reconnect"
                    );
                    closed(me.rooms.lock().unwrap().remove(&instance));
                    let why = "this room moved to another server: reconnect";
                    h.closing.send_replace(Some((close::ELSEWHERE, why)));
                    break;
                }
                let expired = {
                    let mut room = h.room.lock().unwrap();
                    let grace = me.grace.as_millis() as i64;
                    let expired = !room.expire(now_ms(), grace).is_empty();
                    if expired || (tick % POSITIONS_EVERY_TICKS == 0 && room.take_positions_dirty())
                    {
                        h.participants(&room);
                    }
                    expired
                };
                // Seats given up here (a resumed room's members who never came back) may
                // leave it empty; leaving and lost connections close rooms themselves.
                if expired {
                    me.drop_if_empty(&instance, &h).await;
                }
            }
        });
    }

    /// The host is stopping: every room open here is handed over (its claim given up, its
    /// snapshot kept) and its connections closed with 4013; the clients reconnect, reach
    /// another instance, and the room resumes there.
    pub async fn hand_over_all(&self) {
        let rooms: Vec<(String, Arc<RoomHandle>)> = self.rooms.lock().unwrap().drain().collect();
        METRICS.activity_rooms.sub(rooms.len() as i64);
        for (instance, h) in rooms {
            self.claims.hand_over(&instance, &self.owner).await;
            h.closing
                .send_replace(Some((close::RESTARTING, "server restarting: reconnect")));
        }
    }

    /// Whether `handle` is the room open here for `instance`.
    fn is_open(&self, instance: &str, handle: &Arc<RoomHandle>) -> bool {
        self.rooms
            .lock()
            .unwrap()
            .get(instance)
            .is_some_and(|h| Arc::ptr_eq(h, handle))
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
        let _open = SocketOpen::opened();
        let caller = match caller {
            Ok(c) => c,
            Err(why) => return ws.close(close::UNAUTHORIZED, &why).await,
        };
        let channel = match self.admit(&caller, &instance, channel).await {
            Ok(channel) => channel,
            Err((code, why)) => return ws.close(code, why).await,
        };
        loop {
            let owner = match self.room(&instance, channel.as_deref()).await {
                Ok(handle) => return self.serve_in(handle, &mut ws, &caller, &instance).await,
                Err(owner) => owner,
            };
            let Some(relays) = &self.relays else {
                tracing::info!(
                    instance,
                    owner,
                    "activity room is served by another instance"
                );
                let why = "this room is served by another server: reconnect";
                return ws.close(close::ELSEWHERE, why).await;
            };
            let who = Opening {
                from: relays.me().to_string(),
                conn: self.next_conn.fetch_add(1, Ordering::Relaxed),
                room: instance.clone(),
                user_id: caller.user_id.clone(),
                name: caller.name.clone(),
                avatar: caller.avatar.clone(),
                channel: channel.clone(),
            };
            match relays
                .relay_client(&mut ws, &*self.claims, &self.stopping, who, owner)
                .await
            {
                RelayEnd::Done => return,
                // The owner is gone: this instance holds the room now (from its snapshot).
                RelayEnd::Owned => continue,
            }
        }
    }

    /// A client relayed from another instance, to a room owned here.
    async fn serve_relayed(self: Arc<Self>, opened: Opened) {
        let Opened {
            opening:
                Opening {
                    room: instance,
                    user_id,
                    name,
                    avatar,
                    channel,
                    ..
                },
            mut socket,
        } = opened;
        let caller = Caller {
            user_id,
            name,
            avatar,
        };
        match self.room(&instance, channel.as_deref()).await {
            Ok(handle) => self.serve_in(handle, &mut socket, &caller, &instance).await,
            // Taken meanwhile by another instance: its relay follows (it asks every second).
            Err(_) => {
                let why = "this room moved to another server: reconnect";
                socket.close(close::ELSEWHERE, why).await
            }
        }
    }

    /// Seats the caller in a room open here and runs the connection until it ends.
    async fn serve_in<S: SyncSocket>(
        self: &Arc<Self>,
        handle: Arc<RoomHandle>,
        socket: &mut S,
        caller: &Caller,
        instance: &str,
    ) {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        let replaced = Arc::new(Notify::new());
        let mut rx = handle.tx.subscribe();
        let welcome = handle.join(caller, instance, conn, &replaced);
        // First on the wire; broadcasts queued meanwhile follow (clients keep the newest
        // `seq`).
        if !send_to(socket, &welcome).await {
            handle.room.lock().unwrap().away(&caller.user_id, now_ms());
        }
        let ended = connection(socket, &handle, caller, &mut rx, &replaced).await;
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
                self.drop_if_empty(instance, &handle).await;
            }
            Ended::Lost => {
                self.clone()
                    .keep_seat(handle, caller.user_id.clone(), conn, instance.to_string())
            }
            Ended::Moved => {}
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
            empty && closed(rooms.remove(instance))
        };
        if dropped {
            self.claims.release(instance, &self.owner).await;
        }
    }
}

/// A room taken out of this instance's map (counted in `kd_activity_rooms`).
fn closed(removed: Option<Arc<RoomHandle>>) -> bool {
    if removed.is_some() {
        METRICS.activity_rooms.dec();
    }
    removed.is_some()
}

/// How a connection ended: a goodbye (leave now), a loss (keep the seat a while), or the
/// room moved to another instance (nothing to do here).
enum Ended {
    Left,
    Lost,
    Moved,
}

async fn send_to<S: SyncSocket>(ws: &mut S, msg: &ServerMessage) -> bool {
    let text = serde_json::to_string(msg).expect("messages serialize");
    ws.send_text(&text).await
}

fn error(code: &str, message: impl Into<String>) -> ServerMessage {
    ServerMessage::Error {
        code: code.into(),
        message: message.into(),
    }
}

/// One connection's loop: broadcasts out, messages in (limited, answered), heartbeats,
/// replacement by a newer connection, the room moving away. Long because it is one
/// `select!` over those five.
async fn connection<S: SyncSocket>(
    ws: &mut S,
    handle: &RoomHandle,
    caller: &Caller,
    rx: &mut broadcast::Receiver<Arc<str>>,
    replaced: &Notify,
) -> Ended {
    let limiter = RateLimiter::direct(
        Quota::per_second(NonZeroU32::new(20).expect("nonzero"))
            .allow_burst(NonZeroU32::new(40).expect("nonzero")),
    );
    let mut closing = handle.closing.subscribe();
    let mut strikes = 0u32;
    let mut last_heard = Instant::now();
    let mut ping = tokio::time::interval(SERVER_PING);
    loop {
        tokio::select! {
            _ = replaced.notified() => {
                ws.close(close::REPLACED, "you connected again elsewhere").await;
                return Ended::Lost;
            }
            // It only ever changes once, to closing.
            Ok(()) = closing.changed() => {
                let (code, why) = (*closing.borrow()).unwrap_or((close::ELSEWHERE, "reconnect"));
                ws.close(code, why).await;
                return Ended::Moved;
            }
            _ = ping.tick() => {
                if last_heard.elapsed() > HEARTBEAT_TIMEOUT {
                    ws.close(close::TIMEOUT, "no heartbeat").await;
                    return Ended::Lost;
                }
                if !ws.ping().await {
                    return Ended::Lost;
                }
            }
            out = rx.recv() => match out {
                Ok(text) => {
                    if !ws.send_text(&text).await {
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
                last_heard = Instant::now();
                let text = match incoming {
                    Incoming::Text(t) => t,
                    Incoming::Closed => return Ended::Left,
                    Incoming::Lost => return Ended::Lost,
                    Incoming::Alive => continue,
                    Incoming::Binary => {
                        strikes += 1;
                        if !send_to(ws, &error("bad_message", "send JSON text frames")).await {
                            return Ended::Lost;
                        }
                        continue;
                    }
                };
                if text.len() > protocol::MAX_MESSAGE_BYTES {
                    ws.close(close::TOO_BIG, "message too large").await;
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
                    ws.close(close::POLICY, "too many refused messages").await;
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
            handle.changed(&room);
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
