//! Step 10, routes: the HTTP surface: interactions, Kaltura webhooks, health, metrics, `/api/v1` and the
//! Activity, behind one set of layers (timeouts, concurrency, request ids, tracing, metrics).

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::status::{Readiness, metrics_behind, readyz};
use crate::api::ApiState;
use crate::discord::interactions::{self, InteractionsEndpoint};
use crate::kaltura::webhook::WebhookIntake;
use crate::telemetry::METRICS;

/// Requests served at once (WebSocket connections count only while they upgrade).
const MAX_IN_FLIGHT: usize = 1024;

pub fn routes(
    endpoint: Arc<InteractionsEndpoint>,
    readiness: Readiness,
    api: Arc<ApiState>,
    webhooks: Arc<WebhookIntake>,
    metrics_token: Option<crate::config::secret::Secret>,
) -> Router {
    let kaltura_webhooks = Router::new()
        .route("/webhooks/kaltura", post(crate::kaltura::webhook::receive))
        .layer(DefaultBodyLimit::max(crate::kaltura::webhook::MAX_BODY))
        .with_state(webhooks);
    let interactions = Router::new()
        .route("/interactions", post(interactions::post))
        .layer(DefaultBodyLimit::max(interactions::MAX_BODY))
        .with_state(endpoint);
    let mut health = Router::new()
        .route(
            "/healthz",
            get(|| async { axum::Json(json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .with_state(readiness);
    // `/metrics` on the public listener only behind the operator's bearer token.
    if let Some(token) = metrics_token {
        health = health.route(
            "/metrics",
            get(move |headers: axum::http::HeaderMap| {
                let token = token.clone();
                async move { metrics_behind(&token, &headers) }
            }),
        );
    }
    Router::new()
        .merge(interactions)
        .merge(kaltura_webhooks)
        .merge(health)
        .merge(crate::api::router(api).layer(DefaultBodyLimit::max(crate::api::MAX_BODY)))
        // A slow client cannot hold a request open: bodies arrive within 10 s, answers
        // leave within 30 s (plugins and Kaltura have shorter budgets of their own), and at
        // most MAX_IN_FLIGHT requests are served at once (the rest wait their turn).
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_secs(10),
        ))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            std::time::Duration::from_secs(30),
        ))
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(MAX_IN_FLIGHT))
        .layer(middleware::from_fn(count_requests))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn count_requests(req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let resp = next.run(req).await;
    METRICS
        .http_requests
        .with_label_values(&[&route, resp.status().as_str()])
        .inc();
    METRICS
        .http_latency
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    resp
}
