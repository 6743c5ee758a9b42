//! What the host says about itself: the startup report (also `host.info` for plugins),
//! readiness, and the Prometheus text.

use std::sync::Arc;

use anyhow::Result;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::config::settings::Settings;
use crate::plugins::Registry;
use crate::store::backend::{BackendStatus, Durable};
use crate::store::redis::Redis;
use crate::telemetry;
use crate::telemetry::METRICS;

/// (service, state) lines: what is on, and for what is off, the setting that turns it on.
// Long by nature: one entry per service, each a short table row.
pub fn status_report(
    settings: &Settings,
    durable: &Durable,
    redis: Option<&Redis>,
    hot_reload: bool,
) -> Vec<(String, String)> {
    let d = &settings.discord;
    let k = settings.kaltura.as_ref();
    let on_off = |on: bool, on_text: &str, off_text: &str| {
        if on {
            format!("on: {on_text}")
        } else {
            format!("off: {off_text}")
        }
    };
    vec![
        ("database".into(), format!("on: {}", durable.describe())),
        (
            "redis".into(),
            match redis {
                Some(r) => format!(
                    "on: {} (limits, tokens, launches, voice shared)",
                    r.target()
                ),
                None if durable.shared() => {
                    "off: set KD_REDIS_URL to run more than one instance".into()
                }
                None => "off: one instance keeps its runtime state in memory".into(),
            },
        ),
        (
            "discord-interactions".into(),
            on_off(
                d.public_key.is_some(),
                "POST /interactions",
                "set DISCORD_PUBLIC_KEY to accept signed interactions",
            ),
        ),
        (
            "discord-rest".into(),
            on_off(
                d.application_id.is_some(),
                &d.api_base,
                "set DISCORD_APPLICATION_ID for follow-ups and deferred answers",
            ),
        ),
        (
            "discord-gateway".into(),
            if d.shards == crate::discord::shards::ShardPlan::None {
                "off: DISCORD_SHARDS=none (other instances hold the shards)".into()
            } else {
                on_off(
                    d.bot_token.is_some() && d.application_id.is_some(),
                    "connecting",
                    "set DISCORD_BOT_TOKEN (and DISCORD_APPLICATION_ID)",
                )
            },
        ),
        (
            "command-sync".into(),
            on_off(
                d.bot_token.is_some() && d.application_id.is_some(),
                &d.dev_guild
                    .as_ref()
                    .map(|g| format!("guild {g}"))
                    .unwrap_or_else(|| "global".into()),
                "set DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID",
            ),
        ),
        (
            "kaltura".into(),
            on_off(
                k.is_some(),
                &k.map(|k| format!("partner {} at {}", k.partner_id, k.service_url))
                    .unwrap_or_default(),
                "set KALTURA_PARTNER_ID and KALTURA_ADMIN_SECRET",
            ),
        ),
        (
            "kaltura-player".into(),
            on_off(
                k.is_some_and(|k| k.player_uiconf_id.is_some()),
                &format!(
                    "uiconf {}",
                    k.and_then(|k| k.player_uiconf_id.clone())
                        .unwrap_or_default()
                ),
                "set KALTURA_PLAYER_UICONF_ID for Play, embeds and Watch Together",
            ),
        ),
        (
            "kaltura-webhooks".into(),
            on_off(
                k.is_some(),
                "POST /webhooks/kaltura (signed with the admin secret)",
                "set KALTURA_PARTNER_ID and KALTURA_ADMIN_SECRET",
            ),
        ),
        (
            "delivery".into(),
            on_off(
                d.bot_token.is_some() && d.application_id.is_some(),
                &format!(
                    "outbox, {} requests/s, {} attempts",
                    settings.delivery.global_rate, settings.delivery.max_attempts
                ),
                "set DISCORD_BOT_TOKEN and DISCORD_APPLICATION_ID; queued messages wait",
            ),
        ),
        (
            "api".into(),
            on_off(
                settings.api.jwt_secret.is_some(),
                "/api/v1 (JWT)",
                "set JWT_SECRET (32+ characters) to serve /api/v1",
            ),
        ),
        (
            "metrics".into(),
            match (&settings.metrics.listen, &settings.metrics.token) {
                (Some(a), _) => format!("on: http://{a}/metrics"),
                (None, Some(_)) => "on: /metrics with the bearer token (KD_METRICS_TOKEN)".into(),
                (None, None) => {
                    "off: set KD_METRICS_LISTEN (a listener of its own) or KD_METRICS_TOKEN".into()
                }
            },
        ),
        (
            "hot-reload".into(),
            on_off(
                hot_reload,
                "watching plugins and config",
                "the folders could not be watched",
            ),
        ),
    ]
}

/// What readiness looks at.
#[derive(Clone)]
pub struct Readiness {
    pub registry: Arc<Registry>,
    pub durable: Durable,
    pub redis: Option<Redis>,
    /// Set from the first moment of a graceful stop.
    pub draining: super::stopping::Draining,
}

/// Ready once at least one plugin is loaded and the database answers, until a graceful stop
/// begins; the body names each
/// backend and whether it is reachable. Redis away does not make an instance unready: it
/// falls back (docs/cluster.md), and taking every instance out would be an outage.
pub async fn readyz(State(ready): State<Readiness>) -> Response {
    let n = ready.registry.snapshot().plugins.len();
    let database = ready.durable.status().await;
    let status = if ready.draining.is_set() {
        "shutting down"
    } else if n == 0 {
        "no plugins loaded"
    } else if !database.reachable {
        "database unreachable"
    } else {
        "ready"
    };
    let code = if status == "ready" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    set_up("database", database.reachable);
    let mut backends = json!({"database": database});
    if let Some(r) = &ready.redis {
        let answer = r.ping().await;
        set_up("redis", answer.is_ok());
        backends["redis"] = json!(BackendStatus {
            kind: "redis",
            target: r.target().to_string(),
            reachable: answer.is_ok(),
            error: answer.err().map(|e| format!("{e:#}")),
        });
    }
    let body = json!({"status": status, "plugins": n, "backends": backends});
    (code, axum::Json(body)).into_response()
}

fn set_up(backend: &str, up: bool) {
    METRICS
        .backend_up
        .with_label_values(&[backend])
        .set(up.into());
}

/// Keeps `kd_backend_up` current between probes: every 5 s, each backend asked once, until
/// the host stops or its parts are gone.
pub fn watch_backends(ready: &Readiness) {
    let alive = Arc::downgrade(&ready.registry);
    let (durable, redis, draining) = (
        ready.durable.clone(),
        ready.redis.clone(),
        ready.draining.clone(),
    );
    tokio::spawn(async move {
        while alive.strong_count() > 0 && !draining.is_set() {
            set_up("database", durable.status().await.reachable);
            if let Some(r) = &redis {
                set_up("redis", r.ping().await.is_ok());
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
        }
    });
}

/// The Prometheus text.
pub fn metrics_text() -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        telemetry::render(),
    )
        .into_response()
}

/// `/metrics` for the holder of the operator's token (compared in constant time).
pub fn metrics_behind(
    token: &crate::config::secret::Secret,
    headers: &axum::http::HeaderMap,
) -> Response {
    use subtle::ConstantTimeEq;
    let given = crate::api::auth::bearer_token(headers).unwrap_or_default();
    if bool::from(given.as_bytes().ct_eq(token.expose().as_bytes())) {
        return metrics_text();
    }
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({"error": {"code": "missing_token", "message": "/metrics needs Authorization: Bearer <KD_METRICS_TOKEN>"}})),
    )
        .into_response()
}

/// Serves `/metrics` alone on its own listener (`KD_METRICS_LISTEN`) until the process ends.
pub async fn serve_metrics(listener: tokio::net::TcpListener) -> Result<()> {
    let router = Router::new().route("/metrics", get(|| async { metrics_text() }));
    axum::serve(listener, router).await?;
    Ok(())
}
