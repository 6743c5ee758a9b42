//! What a sync connection talks through: a client's own WebSocket on this instance, or a
//! client on another instance relayed here over the instances' relay (`relay.rs`). The
//! room's connection loop (`sync.rs`) is the same for both.

use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::{CloseFrame, Message, WebSocket};

/// What arrived from the client.
pub enum Incoming {
    Text(String),
    /// A frame that is not text (refused).
    Binary,
    /// The client is alive (a ping or pong; a relayed client's heartbeat).
    Alive,
    /// The client said goodbye.
    Closed,
    /// The connection is gone without a goodbye.
    Lost,
}

#[async_trait]
pub trait SyncSocket: Send {
    /// Sends a text frame; `false` when the connection is gone.
    async fn send_text(&mut self, text: &str) -> bool;
    /// Pings the client (a relayed client is pinged by the instance it is connected to).
    async fn ping(&mut self) -> bool;
    async fn recv(&mut self) -> Incoming;
    /// Closes with a code and reason, finishing the closing handshake where there is one.
    async fn close(&mut self, code: u16, reason: &str);
}

/// How long a closing connection waits for the client's close frame.
const CLOSING_WAIT: Duration = Duration::from_secs(5);

#[async_trait]
impl SyncSocket for WebSocket {
    async fn send_text(&mut self, text: &str) -> bool {
        self.send(Message::Text(text.into())).await.is_ok()
    }

    async fn ping(&mut self) -> bool {
        self.send(Message::Ping(Vec::new().into())).await.is_ok()
    }

    async fn recv(&mut self) -> Incoming {
        match WebSocket::recv(self).await {
            Some(Ok(Message::Text(t))) => Incoming::Text(t.to_string()),
            Some(Ok(Message::Binary(_))) => Incoming::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => Incoming::Alive,
            Some(Ok(Message::Close(_))) => Incoming::Closed,
            Some(Err(_)) | None => Incoming::Lost,
        }
    }

    /// Sends a close frame and finishes the closing handshake: what the client sent
    /// meanwhile is read and dropped until its own close (at most [`CLOSING_WAIT`]), so the
    /// connection ends cleanly and the client reads the code instead of a reset.
    async fn close(&mut self, code: u16, reason: &str) {
        let frame = CloseFrame {
            code,
            reason: close_reason(reason).to_string().into(),
        };
        if self.send(Message::Close(Some(frame))).await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(CLOSING_WAIT, async {
            while let Some(Ok(m)) = WebSocket::recv(self).await {
                if matches!(m, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
}

/// A close frame's reason holds at most 123 bytes.
pub fn close_reason(reason: &str) -> &str {
    let mut cut = reason.len().min(123);
    while !reason.is_char_boundary(cut) {
        cut -= 1;
    }
    &reason[..cut]
}
