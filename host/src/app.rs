//! Wiring: build each service once, start the background tasks, serve HTTP, shut down cleanly.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::activity::sync::{InstanceCheck, SyncRooms};
use crate::api::ApiState;
use crate::api::auth::{Jwt, ServiceAccounts};
use crate::config::admin::ConfigAdmin;
use crate::config::guild::GuildConfigs;
use crate::config::settings::{DiscordSettings, ServeOptions, Settings};
use crate::delivery::Outbox;
use crate::discord::commands::{self, SyncTarget};
use crate::discord::dispatch::{ActivityLaunch, Dispatcher};
use crate::discord::guilds::GuildDirectory;
use crate::discord::host_commands::HostCommands;
use crate::discord::interactions::{self, InteractionsEndpoint};
use crate::discord::rest::DiscordRest;
use crate::discord::verify::InteractionVerifier;
use crate::events::process::EventProcessor;
use crate::kaltura::Kaltura;
use crate::kaltura::webhook::WebhookIntake;
use crate::plugins::caps::{Capabilities, DiscordCap};
use crate::plugins::grants::GrantsConfig;
use crate::plugins::registry::LoadFailure;
use crate::plugins::watch::{self, HotReload};
use crate::plugins::{Registry, Runtime, builtin};
use crate::scripts::Rules;
use crate::scripts::rules::RulesKaltura;
use crate::scripts::sandbox::Limits as RuleLimits;
use crate::store::retention::Retention;
use crate::store::{SharedState, Stores};
use crate::telemetry::{self, METRICS};

/// The running host's parts.
pub struct App {
    pub registry: Arc<Registry>,
    pub dispatcher: Arc<Dispatcher>,
    pub stores: Stores,
    pub guilds: Arc<GuildConfigs>,
    /// Runtime state a cluster would share (tokens, launches, voice, rate limits).
    pub shared: SharedState,
    pub router: Router,
    /// Plugins that were refused at start.
    pub load_failures: Vec<LoadFailure>,
    pub outbox: Arc<Outbox>,
    pub processor: Arc<EventProcessor>,
    pub rules: Arc<Rules>,
    /// (service, state) lines of the startup report.
    pub report: Vec<(String, String)>,
    _hot_reload: Option<HotReload>,
    settings: DiscordSettings,
    rest: Option<Arc<DiscordRest>>,
}

impl App {
    /// Builds every service, loads the plugins, starts hot reload and command sync.
    pub async fn build(opts: &ServeOptions, settings: Settings) -> Result<App> {
        settings.check().map_err(anyhow::Error::msg)?;
        let discord = settings.discord.clone();
        let stores = Stores::sqlite(&opts.data)?;
        let guilds = Arc::new(
            GuildConfigs::load(&opts.config)
                .with_context(|| format!("guild configuration in {}", opts.config.display()))?,
        );
        let grants = GrantsConfig::load(&opts.config.join("plugins.json"))?;
        let verifier = discord
            .public_key
            .as_deref()
            .map(InteractionVerifier::from_hex)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let shared = SharedState::in_memory(grants.rate_limits(), settings.delivery.global_rate);
        let rest = discord.application_id.as_deref().map(|app| {
            Arc::new(
                DiscordRest::new(&discord.api_base, app, discord.bot_token.clone())
                    .with_limits(shared.discord_limits.clone()),
            )
        });
        let directory = Arc::new(GuildDirectory::new(rest.clone()));
        let kaltura = settings.kaltura.clone().map(|k| Arc::new(Kaltura::new(k)));
        if let Some(k) = &kaltura {
            k.set_operator(grants.kaltura().clone());
        }
        let grants = Arc::new(ArcSwap::from_pointee(grants));

        let outbox = Outbox::new(
            stores.outbox.clone(),
            crate::delivery::nonce_prefix(stores.meta.as_ref()).await?,
            rest.clone(),
            directory.clone(),
            guilds.clone(),
            settings.delivery.clone(),
        );
        outbox.start();

        std::fs::create_dir_all(&opts.scripts)
            .with_context(|| format!("creating the rules folder {}", opts.scripts.display()))?;
        let rules = Arc::new(Rules::new(
            &opts.scripts,
            RuleLimits::default(),
            Some(stores.kv.clone()),
            kaltura.clone().map(|account| RulesKaltura {
                account,
                grants: grants.clone(),
            }),
        ));
        // Problems are reported with the startup report.
        rules.load_all();

        let catalog = Arc::new(ArcSwap::from_pointee(Vec::new()));
        let discord_cap = DiscordCap {
            rest: rest.clone(),
            tokens: shared.tokens.clone(),
            directory: directory.clone(),
            guilds: guilds.clone(),
            outbox: outbox.clone(),
        };
        let caps = Arc::new(Capabilities::new(
            stores.kv.clone(),
            guilds.clone(),
            discord_cap,
            kaltura.clone(),
            catalog.clone(),
        ));
        let runtime = Arc::new(
            Runtime::new(caps.clone())?.with_memory_budget(
                settings
                    .plugin_memory_mib
                    .unwrap_or(crate::plugins::admission::DEFAULT_MEMORY_MIB),
            ),
        );
        let registry = Arc::new(Registry::new(
            runtime,
            grants,
            catalog,
            Some(opts.data.join("cache")),
        ));
        std::fs::create_dir_all(&opts.plugins)
            .with_context(|| format!("creating the plugins folder {}", opts.plugins.display()))?;
        let load_failures = registry.load_all(builtin::all(), Some(&opts.plugins)).await;
        let hot_reload = match watch::start(
            registry.clone(),
            guilds.clone(),
            kaltura.clone(),
            &opts.plugins,
            &opts.config,
            Some(rules.clone()),
        ) {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::warn!(error = %e, "hot reload is off: the folders cannot be watched");
                None
            }
        };
        let accepted = Arc::new(tokio::sync::Notify::new());
        let processor = EventProcessor::new(
            stores.inbox.clone(),
            accepted.clone(),
            guilds.clone(),
            outbox.clone(),
            settings.kaltura.clone(),
            Some(registry.clone()),
            Some(rules.clone()),
        );
        processor.start();
        Retention {
            inbox: stores.inbox.clone(),
            outbox: stores.outbox.clone(),
            audit: stores.audit.clone(),
            settings: settings.retention.clone(),
        }
        .start();
        crate::scripts::schedule::start(
            rules.clone(),
            guilds.clone(),
            outbox.clone(),
            processor.clone(),
        );
        let webhooks = Arc::new(WebhookIntake {
            secrets: settings
                .kaltura
                .as_ref()
                .map(|k| k.admin_secrets.clone())
                .unwrap_or_default(),
            inbox: stores.inbox.clone(),
            accepted,
        });

        let activity = ActivityLaunch {
            enabled: discord.activities,
            public_url: opts
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", opts.listen)),
        };
        let admin = Arc::new(ConfigAdmin::new(
            opts.config.clone(),
            guilds.clone(),
            stores.audit.clone(),
            directory.clone(),
        ));
        let host_commands = Arc::new(HostCommands {
            admin: admin.clone(),
            rules: rules.clone(),
            outbox: outbox.clone(),
        });
        let dispatcher = Arc::new(
            Dispatcher::new(
                registry.clone(),
                guilds.clone(),
                rest.clone(),
                &shared,
                activity,
            )
            .with_host_commands(host_commands),
        );
        let limits = Arc::new(crate::api::limits::HttpLimits::new(&settings.http));
        let rates = Arc::downgrade(&shared.rates);
        let limits_pruned = Arc::downgrade(&limits);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                every.tick().await;
                match rates.upgrade() {
                    Some(r) => r.forget_quiet().await,
                    None => break,
                }
                if let Some(l) = limits_pruned.upgrade() {
                    l.prune();
                }
            }
        });

        let report = status_report(&settings, hot_reload.is_some());
        caps.host.status.store(Arc::new(report.clone()));

        if let (Some(rest), Some(_)) = (&rest, &discord.bot_token) {
            let target = SyncTarget {
                dev_guild: discord.dev_guild.clone(),
                activities: discord.activities,
            };
            tokio::spawn(commands::run_sync_loop(
                registry.clone(),
                rest.clone(),
                stores.meta.clone(),
                target,
                Some(rules.clone()),
            ));
        }

        let endpoint = Arc::new(InteractionsEndpoint {
            verifier,
            seen: Default::default(),
            dispatcher: dispatcher.clone(),
        });
        let api = Arc::new(ApiState {
            limits: limits.clone(),
            jwt: settings
                .api
                .jwt_secret
                .as_ref()
                .map(|secret| Jwt::new(secret, settings.api.jwt_expiry)),
            kaltura: kaltura.clone(),
            discord: rest.clone(),
            directory: directory.clone(),
            guilds: guilds.clone(),
            service_accounts: ServiceAccounts::load(&opts.config.join("api.json"))?,
            launches: shared.launches.clone(),
            admin: Some(admin.clone()),
            deliveries: stores.outbox.clone(),
            rules: Some(rules.clone()),
            client_secret: discord.client_secret.clone(),
            activity_dev: settings.activity.dev_mode,
            rooms: Some(Arc::new(SyncRooms::new(
                &shared,
                // Discord says who is in an instance (bot token); dev mode runs on the mock.
                rest.clone()
                    .filter(|r| r.has_bot_token() && !settings.activity.dev_mode)
                    .map(InstanceCheck::new),
                settings
                    .activity
                    .grace
                    .unwrap_or(std::time::Duration::from_secs(5)),
            ))),
        });
        let media = crate::activity::media::ensure(&opts.data)
            .with_context(|| format!("writing the demo media under {}", opts.data.display()))?;
        let router = routes(
            endpoint,
            registry.clone(),
            api,
            webhooks,
            settings.metrics.token.clone(),
        )
        .merge(crate::activity::static_files(&opts.activity, &media));
        Ok(App {
            outbox,
            processor,
            rules,
            registry,
            dispatcher,
            stores,
            guilds,
            shared,
            router,
            load_failures,
            report,
            _hot_reload: hot_reload,
            settings: discord,
            rest,
        })
    }

    /// Starts the gateway when a bot token is set (runs until the process ends).
    pub fn start_gateway(&self) {
        self.gateway_starter()();
    }

    /// A function that starts the gateway (tests start it after the app is serving).
    pub fn gateway_starter(&self) -> Box<dyn FnOnce() + Send + Sync> {
        let (settings, rest, voice, dispatcher, events) = (
            self.settings.clone(),
            self.rest.clone(),
            self.shared.voice.clone(),
            self.dispatcher.clone(),
            self.processor.clone(),
        );
        Box::new(move || {
            if let (Some(token), Some(rest)) = (settings.bot_token, rest) {
                tokio::spawn(crate::discord::gateway::run(
                    token,
                    settings.api_base,
                    dispatcher,
                    rest,
                    voice,
                    Some(events),
                    settings.member_events,
                ));
            }
        })
    }

    /// Serves on a bound listener until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        // `self` (and with it the hot-reload watcher) lives until serving ends.
        crate::http_server::serve(listener, self.router.clone(), shutdown).await?;
        Ok(())
    }
}

fn status_report(settings: &Settings, hot_reload: bool) -> Vec<(String, String)> {
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
            on_off(
                d.bot_token.is_some() && d.application_id.is_some(),
                "connecting",
                "set DISCORD_BOT_TOKEN (and DISCORD_APPLICATION_ID)",
            ),
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

fn routes(
    endpoint: Arc<InteractionsEndpoint>,
    registry: Arc<Registry>,
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
        .with_state(registry);
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

/// The Prometheus text.
fn metrics_text() -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        telemetry::render(),
    )
        .into_response()
}

/// `/metrics` for the holder of the operator's token (compared in constant time).
fn metrics_behind(
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

/// Requests served at once (WebSocket connections count only while they upgrade).
const MAX_IN_FLIGHT: usize = 1024;

async fn readyz(State(registry): State<Arc<Registry>>) -> Response {
    let n = registry.snapshot().plugins.len();
    if n == 0 {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "no plugins loaded"})),
        )
            .into_response();
    }
    axum::Json(json!({"status": "ready", "plugins": n})).into_response()
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
