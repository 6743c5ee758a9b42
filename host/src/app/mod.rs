//! Wiring only: [`App::build`] reads as a table of contents of named steps, each in its
//! own file, each building one part of the host from the parts before it.

use std::sync::Arc;

use anyhow::{Context, Result};
use axum::Router;

use crate::config::admin::ConfigAdmin;
use crate::config::guild::GuildConfigs;
use crate::config::settings::{DiscordSettings, ServeOptions, Settings};
use crate::delivery::Outbox;
use crate::discord::dispatch::Dispatcher;
use crate::discord::rest::DiscordRest;
use crate::events::process::EventProcessor;
use crate::plugins::Registry;
use crate::plugins::registry::LoadFailure;
use crate::reload::HotReload;
use crate::scripts::Rules;
use crate::store::{SharedState, Stores};

mod api;
mod connections;
mod discord;
mod events;
pub mod plugins;
mod reload;
mod routes;
mod rules;
pub mod status;
pub mod stopping;
mod storage;
mod tasks;

pub use status::serve_metrics;

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
    /// This instance's registration on a shared database (left on a clean stop).
    membership: Option<crate::cluster::Membership>,
    durable: crate::store::backend::Durable,
    settings: DiscordSettings,
    rest: Option<Arc<DiscordRest>>,
    /// The graceful stop: its signal, what parts watch, and `/readyz`'s flag.
    stop: stopping::StopSignal,
    stopping: stopping::Stopping,
    draining: stopping::Draining,
    shutdown: crate::config::settings::ShutdownSettings,
    rooms: Arc<crate::activity::sync::SyncRooms>,
}

impl App {
    /// Builds every service, loads the plugins, starts hot reload, delivery, the event
    /// processor and command sync.
    pub async fn build(opts: &ServeOptions, settings: Settings) -> Result<App> {
        settings.check().map_err(anyhow::Error::msg)?;
        let storage = storage::storage(opts, &settings).await?;
        let conn = connections::connections(&settings, &storage).await?;
        let rules = rules::rules(opts, &storage, &conn).await?;
        let plugins = plugins::serve(opts, &settings, &storage, &conn).await?;
        let hot_reload = reload::reload(opts, &storage, &conn, &plugins.registry, &rules);
        let events = events::events(&settings, &storage, &conn, &plugins.registry, &rules);
        let mut admin = ConfigAdmin::new(
            opts.config.clone(),
            storage.guilds.clone(),
            storage.stores.audit.clone(),
            conn.directory.clone(),
        );
        if let (crate::store::backend::Durable::Postgres(pg), Some(follower)) =
            (&storage.durable, &storage.follower)
        {
            admin = admin.in_database(crate::config::admin::SharedDatabase {
                store: pg.clone(),
                follower: follower.clone(),
            });
        }
        let admin = Arc::new(admin);
        let privacy = Arc::new(crate::privacy::Privacy {
            kv: storage.stores.kv.clone(),
            preferences: storage.stores.preferences.clone(),
            audit: storage.stores.audit.clone(),
            kaltura: conn.kaltura.clone(),
            notices: events.processor.clone(),
        });
        let discord = discord::discord(
            opts,
            &settings,
            &storage,
            &conn,
            &plugins.registry,
            discord::Owned {
                rules: &rules,
                admin: &admin,
                privacy: &privacy,
            },
        );
        let api = api::api(opts, &settings, &storage, &conn, &rules, admin, privacy)?;
        let rooms = api.rooms.clone();
        let draining = stopping::Draining::default();
        tasks::start(&storage.shared, &api.limits);
        let report = status::status_report(
            &settings,
            &storage.durable,
            storage.redis.as_ref(),
            hot_reload.is_some(),
        );
        plugins.caps.host.status.store(Arc::new(report.clone()));
        let media = crate::activity::media::ensure(&opts.data)
            .with_context(|| format!("writing the demo media under {}", opts.data.display()))?;
        let readiness = status::Readiness {
            registry: plugins.registry.clone(),
            durable: storage.durable.clone(),
            redis: storage.redis.clone(),
            draining: draining.clone(),
        };
        status::watch_backends(&readiness);
        let router = routes::routes(
            discord.endpoint,
            readiness,
            api,
            events.webhooks,
            settings.metrics.token.clone(),
        )
        .merge(crate::activity::static_files(&opts.activity, &media));
        Ok(App {
            outbox: conn.outbox,
            processor: events.processor,
            rules,
            registry: plugins.registry,
            dispatcher: discord.dispatcher,
            stores: storage.stores,
            guilds: storage.guilds,
            shared: storage.shared,
            membership: storage.membership,
            durable: storage.durable.clone(),
            router,
            load_failures: plugins.load_failures,
            report,
            _hot_reload: hot_reload,
            settings: settings.discord,
            rest: conn.rest,
            stop: storage.stop,
            stopping: storage.stopping,
            draining,
            shutdown: settings.shutdown,
            rooms,
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
        // Instances sharing a database share the shards out with leases.
        let assign = match &self.durable {
            crate::store::backend::Durable::Postgres(pg) => {
                Some(crate::cluster::shards::Assignment::new(
                    pg.clone(),
                    &self.shared.instance_id,
                    self.stopping.clone(),
                ))
            }
            crate::store::backend::Durable::Sqlite { .. } => None,
        };
        Box::new(move || {
            if let (Some(token), Some(rest)) = (settings.bot_token, rest) {
                let gateway = crate::discord::gateway::Gateway {
                    token,
                    api_base: settings.api_base,
                    dispatcher,
                    rest,
                    voice,
                    events,
                    member_events: settings.member_events,
                };
                tokio::spawn(gateway.run(settings.shards, assign));
            }
        })
    }

    /// Serves on a bound listener until `shutdown` resolves, then stops gracefully
    /// ([`stopping`]): unready at once, serving on for the shutdown delay after SIGTERM,
    /// rooms handed over, in-flight requests finished, every lease given back.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = stopping::Stop> + Send + 'static,
    ) -> Result<()> {
        self.serve_with(listener, None, shutdown).await
    }

    /// [`App::serve`], over TLS when `tls` is given (`kdhost serve --tls-cert/--tls-key`).
    pub async fn serve_with(
        self,
        listener: tokio::net::TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        shutdown: impl Future<Output = stopping::Stop> + Send + 'static,
    ) -> Result<()> {
        let (draining, delay, rooms) = (
            self.draining.clone(),
            self.shutdown.delay,
            self.rooms.clone(),
        );
        let stop_accepting = async move {
            let how = shutdown.await;
            draining.set();
            if how == stopping::Stop::Drain && !delay.is_zero() {
                tracing::info!(
                    delay_ms = delay.as_millis() as u64,
                    "shutting down: unready now, serving on while traffic moves away"
                );
                tokio::time::sleep(delay).await;
            }
            // Activity sockets are not requests that finish: their rooms move now.
            rooms.hand_over_all().await;
        };
        let timeout = self.shutdown.timeout;
        // `self` (and with it the hot-reload watcher) lives until serving ends.
        crate::http_server::serve(listener, self.router.clone(), stop_accepting, timeout, tls)
            .await?;
        // What holds a lease gives it back, for other instances to take at once.
        let (all_given_back, _, _) = tokio::join!(
            self.stop.send_and_wait(timeout),
            self.outbox.stop(timeout),
            self.processor.stop(timeout)
        );
        if !all_given_back {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "a lease was not given back in time; it runs out by itself"
            );
        }
        if let Some(m) = self.membership {
            m.leave().await;
        }
        tracing::info!("stopped cleanly");
        Ok(())
    }
}
