//! A Watch Together client's socket, as the page opens it: the sync endpoint with the
//! `kd-sync` subprotocol and the host token.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::HANG;

pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Joins Activity `instance` at the host at `base` (`http://…`) with a host token.
pub async fn connect(base: &str, instance: &str, token: &str) -> Ws {
    connect_offering(base, instance, &format!("kd-sync, {token}")).await
}

/// Connects offering these subprotocols (the page offers `kd-sync, <token>`).
pub async fn connect_offering(base: &str, instance: &str, protocols: &str) -> Ws {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let mut req = format!(
        "{}/api/v1/activity/sync?instance_id={instance}",
        base.replace("http://", "ws://")
    )
    .into_client_request()
    .unwrap();
    req.headers_mut()
        .insert("sec-websocket-protocol", protocols.parse().unwrap());
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

/// The next JSON message of a type (others are skipped), or the close frame as
/// `{"close": code, "reason": ...}`, or `{"ended": true}` when the connection is gone.
pub async fn next(ws: &mut Ws, kind: &str) -> Value {
    loop {
        let msg = tokio::time::timeout(HANG, ws.next())
            .await
            .unwrap_or_else(|_| panic!("no `{kind}` after {HANG:?}"));
        let msg = match msg {
            Some(Ok(m)) => m,
            Some(Err(_)) | None => return json!({"ended": true}),
        };
        match msg {
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                if v["type"] == kind {
                    return v;
                }
            }
            Message::Close(f) => {
                let f = f.unwrap();
                return json!({"close": u16::from(f.code), "reason": f.reason.to_string()});
            }
            _ => {}
        }
    }
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}
