//! Clients of a room that another instance owns: the instance they connected to relays
//! them to the owner over the instances' relay (`RoomRelay`, Redis pub/sub), as if their
//! socket reached across. The owner runs them like its own connections (the same limits,
//! heartbeats and answers) through a [`VirtualSocket`]; the relaying instance forwards
//! their frames, pings them, and every second asks who owns the room: when the owner
//! changes it opens the client again at the new one, and when the owner is gone for good
//! it takes the room over itself (from the room's snapshot). Either way the client gets a
//! fresh welcome: it resyncs without reconnecting.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::protocol::{ServerMessage, close};
use super::socket::{Incoming, SyncSocket};
use crate::app::stopping::Stopping;
use crate::store::rooms::{Claim, RoomClaims, RoomRelay};

/// What instances tell each other about relayed clients.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Envelope {
    /// A client connected at `from` joins `room` (owned by the addressee).
    Open(Opening),
    /// A relayed client's text frame.
    Up {
        from: String,
        conn: u64,
        text: String,
    },
    /// The relayed client is alive.
    Beat { from: String, conn: u64 },
    /// The relayed client left (a goodbye) or was lost.
    Gone { from: String, conn: u64, left: bool },
    /// For a relayed client: a text frame from its room.
    Down { conn: u64, text: String },
    /// For a relayed client: its room closed the connection.
    Close {
        conn: u64,
        code: u16,
        reason: String,
    },
}

impl Envelope {
    fn text(&self) -> String {
        serde_json::to_string(self).expect("envelopes serialize")
    }
}

/// A relayed client joining a room: who, where from, and which room.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Opening {
    /// The instance the client is connected to.
    pub from: String,
    pub conn: u64,
    pub room: String,
    pub user_id: String,
    pub name: String,
    pub avatar: Option<String>,
    pub channel: Option<String>,
}

/// What a relayed client's room sends it.
enum Downward {
    Text(String),
    Close(u16, String),
}

/// How relaying a client ended.
pub enum RelayEnd {
    /// The connection is over.
    Done,
    /// The room's owner is gone and this instance holds the room now: serve the client
    /// here.
    Owned,
}

/// A client connected here is told nothing from its room's owner for this long after
/// opening: the open is sent again (a relay message can be lost while a subscriber
/// reconnects).
const OPEN_AGAIN: Duration = Duration::from_secs(2);
const CHECK_OWNER: Duration = Duration::from_secs(1);
const PING: Duration = Duration::from_secs(5);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(20);

pub struct Relays {
    relay: Arc<dyn RoomRelay>,
    /// This instance's name on the relay.
    me: String,
    /// Clients relayed to rooms owned here: (their instance, their connection) → frames.
    virtuals: Mutex<HashMap<(String, u64), mpsc::Sender<Incoming>>>,
    /// Clients connected here whose rooms are owned elsewhere: connection → what arrives.
    relayed: Mutex<HashMap<u64, mpsc::Sender<Downward>>>,
}

/// A relayed client opening at this instance's room: serve it (see [`Relays::start`]).
pub struct Opened {
    pub opening: Opening,
    pub socket: VirtualSocket,
}

impl Relays {
    pub fn new(relay: Arc<dyn RoomRelay>, me: &str) -> Arc<Self> {
        Arc::new(Self {
            relay,
            me: me.to_string(),
            virtuals: Mutex::new(HashMap::new()),
            relayed: Mutex::new(HashMap::new()),
        })
    }

    /// Listens for this instance's envelopes until the process ends; `open` serves each
    /// relayed client that joins a room owned here.
    pub fn start(self: &Arc<Self>, open: impl Fn(Opened) + Send + 'static) {
        let mut inbox = self.relay.inbox(&self.me);
        let me = self.clone();
        tokio::spawn(async move {
            while let Some(text) = inbox.recv().await {
                match serde_json::from_str::<Envelope>(&text) {
                    Ok(e) => me.dispatch(e, &open),
                    Err(e) => {
                        tracing::warn!(error = %e, "activity relay: an envelope that does not parse is dropped")
                    }
                }
            }
        });
    }

    fn dispatch(self: &Arc<Self>, e: Envelope, open: &impl Fn(Opened)) {
        let to_virtual = |from: String, conn: u64, what: Incoming, last: bool| {
            let mut virtuals = self.virtuals.lock().unwrap();
            let key = (from, conn);
            if let Some(tx) = virtuals.get(&key) {
                // A client that floods past the buffer loses frames, not the room.
                let _ = tx.try_send(what);
            }
            if last {
                virtuals.remove(&key);
            }
        };
        match e {
            Envelope::Open(opening) => {
                let key = (opening.from.clone(), opening.conn);
                let mut virtuals = self.virtuals.lock().unwrap();
                // Sent again while the first is served (no answer reached the client yet).
                if virtuals.contains_key(&key) {
                    return;
                }
                let (tx, rx) = mpsc::channel(256);
                virtuals.insert(key, tx);
                drop(virtuals);
                let socket = VirtualSocket {
                    relays: self.clone(),
                    to: opening.from.clone(),
                    conn: opening.conn,
                    rx,
                };
                open(Opened { opening, socket });
            }
            Envelope::Up { from, conn, text } => {
                to_virtual(from, conn, Incoming::Text(text), false)
            }
            Envelope::Beat { from, conn } => to_virtual(from, conn, Incoming::Alive, false),
            Envelope::Gone { from, conn, left } => {
                let what = if left {
                    Incoming::Closed
                } else {
                    Incoming::Lost
                };
                to_virtual(from, conn, what, true)
            }
            Envelope::Down { conn, text } => self.to_relayed(conn, Downward::Text(text)),
            Envelope::Close { conn, code, reason } => {
                self.to_relayed(conn, Downward::Close(code, reason))
            }
        }
    }

    fn to_relayed(&self, conn: u64, what: Downward) {
        if let Some(tx) = self.relayed.lock().unwrap().get(&conn) {
            let _ = tx.try_send(what);
        }
    }

    async fn send(&self, instance: &str, e: &Envelope) -> bool {
        self.relay.send(instance, e.text()).await
    }

    /// This instance's name on the relay (an [`Opening`]'s `from`).
    pub fn me(&self) -> &str {
        &self.me
    }

    /// Relays one client connected here (`who.conn`) to the room's `owner` until the
    /// connection ends or this instance takes the room over.
    pub async fn relay_client<S: SyncSocket>(
        &self,
        ws: &mut S,
        claims: &dyn RoomClaims,
        stopping: &Stopping,
        who: Opening,
        mut owner: String,
    ) -> RelayEnd {
        let (conn, room) = (who.conn, who.room.clone());
        let (tx, mut rx) = mpsc::channel(256);
        self.relayed.lock().unwrap().insert(conn, tx);
        let open = Envelope::Open(who);
        self.send(&owner, &open).await;
        let (mut opened_at, mut heard_owner) = (Instant::now(), false);
        let mut last_heard = Instant::now();
        let mut ping = tokio::time::interval(PING);
        let mut check = tokio::time::interval(CHECK_OWNER);
        let gone = |left| Envelope::Gone {
            from: self.me.clone(),
            conn,
            left,
        };
        let end = loop {
            tokio::select! {
                // This instance is stopping: the client reconnects to another (its seat is
                // kept meanwhile).
                _ = stopping.wait() => {
                    ws.close(close::RESTARTING, "server restarting: reconnect").await;
                    self.send(&owner, &gone(false)).await;
                    break RelayEnd::Done;
                }
                down = rx.recv() => match down {
                    Some(Downward::Text(text)) => {
                        heard_owner = true;
                        if !ws.send_text(&text).await {
                            self.send(&owner, &gone(false)).await;
                            break RelayEnd::Done;
                        }
                    }
                    Some(Downward::Close(code, reason)) => {
                        ws.close(code, &reason).await;
                        break RelayEnd::Done;
                    }
                    None => break RelayEnd::Done,
                },
                incoming = ws.recv() => {
                    last_heard = Instant::now();
                    match incoming {
                        Incoming::Text(text) => {
                            let up = Envelope::Up { from: self.me.clone(), conn, text };
                            self.send(&owner, &up).await;
                        }
                        Incoming::Binary => {
                            let refusal = ServerMessage::Error { code: "bad_message".into(), message: "send JSON text frames".into() };
                            let text = serde_json::to_string(&refusal).expect("messages serialize");
                            ws.send_text(&text).await;
                        }
                        Incoming::Alive => {}
                        Incoming::Closed => {
                            self.send(&owner, &gone(true)).await;
                            break RelayEnd::Done;
                        }
                        Incoming::Lost => {
                            self.send(&owner, &gone(false)).await;
                            break RelayEnd::Done;
                        }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > HEARTBEAT_TIMEOUT {
                        ws.close(close::TIMEOUT, "no heartbeat").await;
                        self.send(&owner, &gone(false)).await;
                        break RelayEnd::Done;
                    }
                    ws.ping().await;
                    self.send(&owner, &Envelope::Beat { from: self.me.clone(), conn }).await;
                }
                _ = check.tick() => {
                    match claims.claim(&room, &self.me).await {
                        // The owner is gone (its claim ran out): the room is this
                        // instance's now.
                        Claim::Owned { .. } => break RelayEnd::Owned,
                        Claim::Elsewhere { owner: now } if now != owner => {
                            tracing::info!(room, from = owner, to = now, "activity room moved; its relayed client follows");
                            owner = now;
                            (opened_at, heard_owner) = (Instant::now(), false);
                            self.send(&owner, &open).await;
                        }
                        _ if !heard_owner && opened_at.elapsed() >= OPEN_AGAIN => {
                            opened_at = Instant::now();
                            self.send(&owner, &open).await;
                        }
                        _ => {}
                    }
                }
            }
        };
        self.relayed.lock().unwrap().remove(&conn);
        end
    }

    fn forget_virtual(&self, from: &str, conn: u64) {
        self.virtuals
            .lock()
            .unwrap()
            .remove(&(from.to_string(), conn));
    }
}

/// A client connected at another instance, as the room's owner sees it.
pub struct VirtualSocket {
    relays: Arc<Relays>,
    /// The instance the client is connected to.
    to: String,
    conn: u64,
    rx: mpsc::Receiver<Incoming>,
}

impl Drop for VirtualSocket {
    fn drop(&mut self) {
        self.relays.forget_virtual(&self.to, self.conn);
    }
}

#[async_trait]
impl SyncSocket for VirtualSocket {
    async fn send_text(&mut self, text: &str) -> bool {
        let down = Envelope::Down {
            conn: self.conn,
            text: text.to_string(),
        };
        // Nobody listening: the client's instance is gone.
        self.relays.send(&self.to, &down).await
    }

    async fn ping(&mut self) -> bool {
        true // the client's own instance pings it, and tells us it is alive
    }

    async fn recv(&mut self) -> Incoming {
        self.rx.recv().await.unwrap_or(Incoming::Lost)
    }

    async fn close(&mut self, code: u16, reason: &str) {
        let close = Envelope::Close {
            conn: self.conn,
            code,
            reason: reason.to_string(),
        };
        self.relays.send(&self.to, &close).await;
    }
}
