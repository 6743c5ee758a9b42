//! `POST /interactions`: Discord's signed HTTP transport.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::Poll;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::oneshot;

use super::dispatch::Dispatcher;
use super::model::Interaction;
use super::verify::{InteractionVerifier, MAX_SKEW_SECS};
use crate::api::error::ApiError;
use crate::cache::TtlMap;
use crate::telemetry::METRICS;

/// Largest interaction body accepted.
pub const MAX_BODY: usize = 1 << 20;

pub struct InteractionsEndpoint {
    pub verifier: Option<InteractionVerifier>,
    pub dispatcher: Arc<Dispatcher>,
    /// Interaction ids seen within the signature's validity window: a captured request
    /// sent again is refused instead of run twice.
    pub seen: SeenInteractions,
}

/// Interaction ids of the last [`MAX_SKEW_SECS`] seconds (as long as a signature is
/// accepted), bounded in memory.
pub struct SeenInteractions(TtlMap<String, ()>);

impl Default for SeenInteractions {
    fn default() -> Self {
        Self(TtlMap::new(
            std::time::Duration::from_secs(MAX_SKEW_SECS as u64),
            200_000,
        ))
    }
}

impl SeenInteractions {
    /// `true` the first time an id is seen (within the window).
    pub fn first(&self, id: &str) -> bool {
        self.0.first_sight(id.to_string(), ())
    }
}

/// A refused request, counted by why (the code is the metric's result label).
fn refuse(status: StatusCode, code: &'static str, message: String) -> Response {
    METRICS
        .interactions
        .with_label_values(&["http", code])
        .inc();
    ApiError::new(status, code, message).into_response()
}

pub async fn post(
    State(ep): State<Arc<InteractionsEndpoint>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(verifier) = &ep.verifier else {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_configured",
            "interactions are off: set DISCORD_PUBLIC_KEY",
        )
        .into_response();
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(e) = verifier.verify(
        h("x-signature-ed25519"),
        h("x-signature-timestamp"),
        &body,
        crate::store::now_secs(),
    ) {
        return refuse(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string());
    }
    let ix: Interaction = match serde_json::from_slice(&body) {
        Ok(ix) => ix,
        Err(e) => {
            let why = format!("not an interaction: {e}");
            return refuse(StatusCode::BAD_REQUEST, "bad_body", why);
        }
    };
    if !ep.seen.first(&ix.id) {
        let why = "this interaction was already received";
        return refuse(StatusCode::CONFLICT, "replayed", why.into());
    }
    METRICS
        .interactions
        .with_label_values(&["http", "accepted"])
        .inc();
    let (acked, on_acked) = oneshot::channel();
    let reply = ep.dispatcher.handle(ix, on_acked).await;
    let json = serde_json::to_vec(&reply).expect("json values serialize");
    if !reply.is_deferral() {
        return ([(header::CONTENT_TYPE, "application/json")], json).into_response();
    }
    // A deferral: signal once the body has been handed to the connection, so the deferred
    // answer's REST call cannot overtake it.
    let mut acked = Some(acked);
    let tail = futures::stream::poll_fn(move |_| {
        if let Some(tx) = acked.take() {
            let _ = tx.send(());
        }
        Poll::Ready(None::<Result<Bytes, Infallible>>)
    });
    let stream =
        futures::stream::once(async move { Ok::<_, Infallible>(Bytes::from(json)) }).chain(tail);
    (
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}
