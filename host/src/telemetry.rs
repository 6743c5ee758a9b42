//! Logging (tracing) and Prometheus metrics.

use std::sync::LazyLock;

use prometheus::{
    Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Registry, TextEncoder,
    histogram_opts, opts,
};

/// Log output format (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the global subscriber. `RUST_LOG` filters (default `info`).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,wasmtime_wasi=warn,cranelift=warn,serenity=warn"))
        // Guest calls' arguments and results (messages, sessions handed to the user) stay
        // out of the logs whatever RUST_LOG says; `kdhost plugin test` shows them to authors.
        .add_directive(
            "kdhost::plugins::bindings=off"
                .parse()
                .expect("a valid directive"),
        );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Control characters (newlines, carriage returns, escapes) as visible escapes.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Every metric the host exports, registered once.
pub struct Metrics {
    pub registry: Registry,
    /// Guest calls by plugin, entry point and outcome (ok, error, trap, deadline, memory, ...).
    pub plugin_calls: IntCounterVec,
    pub plugin_latency: HistogramVec,
    pub plugin_traps: IntCounterVec,
    pub plugin_deadline_kills: IntCounterVec,
    pub plugin_memory_kills: IntCounterVec,
    pub capability_denied: IntCounterVec,
    /// Guild policy refusals by reason (`Denied::kind`).
    pub policy_denials: IntCounterVec,
    pub plugin_log_dropped: IntCounterVec,
    pub plugin_loads: IntCounterVec,
    pub plugins_loaded: IntGauge,
    pub http_requests: IntCounterVec,
    pub http_latency: HistogramVec,
    pub interactions: IntCounterVec,
    pub discord_rest: IntCounterVec,
    pub command_syncs: IntCounterVec,
    /// Kaltura API calls by `service.action` and outcome (ok, error, network, http).
    pub kaltura_calls: HistogramVec,
    /// Kaltura sessions signed locally, by type (user, admin); cache hits are not counted.
    pub kaltura_sessions: IntCounterVec,
    /// Guild config file (re)loads by result (ok, invalid).
    pub config_reloads: IntCounterVec,
    /// Kaltura webhooks by result (accepted, duplicate, bad_signature, bad_body, error).
    pub webhooks: IntCounterVec,
    /// Outbox deliveries by result (sent, retry, dead).
    pub deliveries: IntCounterVec,
    /// Time from enqueue to Discord's answer.
    pub delivery_latency: HistogramVec,
    /// Messages waiting in the outbox, and dead letters kept.
    pub outbox_pending: IntGauge,
    pub outbox_dead: IntGauge,
    /// Rule runs by hook and outcome (ok, error, limit).
    pub rule_runs: IntCounterVec,
    pub rule_latency: HistogramVec,
    /// Plugin calls refused for want of room, by plugin and gate (plugin, pool, memory).
    pub plugin_busy: IntCounterVec,
    /// Gateway events the host keeps (member joins, scheduled events) by kind and result
    /// (accepted, duplicate).
    pub gateway_events: IntCounterVec,
    /// Discord answers that count toward its invalid-request ban (401, 403, 429).
    pub discord_invalid: IntCounter,
    /// Discord calls the host held back because too many were refused lately.
    pub discord_throttled: IntCounter,
    /// Connections closed at once because the server had its maximum open.
    pub connections_refused: IntCounter,
    /// Inbox events given up after too many unfinished processing attempts.
    pub events_abandoned: IntCounter,
    /// Redis calls that failed (the instance fell back), by kind of state.
    pub redis_errors: IntCounterVec,
    /// Waits of bot-authenticated Discord calls held back while Redis was away.
    pub discord_paused: IntCounter,
    /// Watch Together rooms this instance serves (owns), and the sockets connected to it
    /// (relayed ones included).
    pub activity_rooms: IntGauge,
    pub activity_sockets: IntGauge,
    /// 1 while a gateway shard this instance holds is connected, by shard id; and the bot's
    /// shard count as this instance knows it (0: no gateway here).
    pub gateway_shard_up: IntGaugeVec,
    pub gateway_shard_count: IntGauge,
    /// 1 while a backend answers (`database`, `redis`), checked every few seconds.
    pub backend_up: IntGaugeVec,
}

impl Metrics {
    /// Series with a closed set of labels start at 0, so dashboards and alerts see "none
    /// yet" rather than "no data" (a vector of counters exports nothing until it has one).
    fn prime(&self) {
        for transport in ["http", "gateway"] {
            self.interactions
                .with_label_values(&[transport, "accepted"]);
        }
        for result in ["sent", "retry", "dead"] {
            self.deliveries.with_label_values(&[result]);
        }
        for result in [
            "accepted",
            "duplicate",
            "bad_signature",
            "bad_body",
            "error",
        ] {
            self.webhooks.with_label_values(&[result]);
        }
        for result in ["ok", "invalid"] {
            self.config_reloads.with_label_values(&[result]);
        }
        for result in ["loaded", "refused"] {
            self.plugin_loads.with_label_values(&[result]);
        }
    }

    /// A loaded plugin's failure counters start at 0 (its traps and kills panels).
    pub fn prime_plugin(&self, plugin: &str) {
        self.plugin_traps.with_label_values(&[plugin]);
        self.plugin_deadline_kills.with_label_values(&[plugin]);
        self.plugin_memory_kills.with_label_values(&[plugin]);
        for gate in ["plugin", "pool", "memory"] {
            self.plugin_busy.with_label_values(&[plugin, gate]);
        }
    }
}

/// Counts one open Activity socket while it lives.
pub struct SocketOpen(());

impl SocketOpen {
    pub fn opened() -> Self {
        METRICS.activity_sockets.inc();
        Self(())
    }
}

impl Drop for SocketOpen {
    fn drop(&mut self) {
        METRICS.activity_sockets.dec();
    }
}

/// Every metric family the host declares, with its help, so that `/metrics` names even those
/// with no series yet (a panel or alert naming a metric is checked against this).
static DECLARED: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());

fn register<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: &C) {
    for d in c.desc() {
        DECLARED
            .lock()
            .unwrap()
            .push((d.fq_name.clone(), d.help.clone()));
    }
    r.register(Box::new(c.clone()))
        .expect("metric registered once");
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(opts!(name, help), labels).expect("valid metric");
    register(r, &c);
    c
}

fn plain_counter(r: &Registry, name: &str, help: &str) -> IntCounter {
    let c = IntCounter::new(name, help).expect("valid metric");
    register(r, &c);
    c
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(opts!(name, help), labels).expect("valid metric");
    register(r, &g);
    g
}

fn histogram(r: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let buckets = vec![
        0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 1.0, 2.5, 10.0,
    ];
    let h = HistogramVec::new(histogram_opts!(name, help, buckets), labels).expect("valid metric");
    register(r, &h);
    h
}

pub static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let r = Registry::new();
    let plugins_loaded = IntGauge::new("kd_plugins_loaded", "Plugins currently loaded").unwrap();
    register(&r, &plugins_loaded);
    let gauge = |name: &str, help: &str| {
        let g = IntGauge::new(name, help).expect("valid metric");
        register(&r, &g);
        g
    };
    let metrics = Metrics {
        activity_rooms: gauge(
            "kd_activity_rooms",
            "Watch Together rooms this instance serves",
        ),
        activity_sockets: gauge(
            "kd_activity_sockets",
            "Activity sockets connected to this instance (relayed ones included)",
        ),
        gateway_shard_up: gauge_vec(
            &r,
            "kd_gateway_shard_up",
            "1 while a gateway shard this instance holds is connected",
            &["shard"],
        ),
        gateway_shard_count: gauge(
            "kd_gateway_shard_count",
            "The bot's gateway shard count as this instance knows it (0: no gateway here)",
        ),
        backend_up: gauge_vec(
            &r,
            "kd_backend_up",
            "1 while a backend (database, redis) answers",
            &["backend"],
        ),
        config_reloads: counter(
            &r,
            "kd_config_reloads_total",
            "Guild config file loads by result",
            &["result"],
        ),
        webhooks: counter(
            &r,
            "kd_kaltura_webhooks_total",
            "Kaltura notifications received by result",
            &["result"],
        ),
        deliveries: counter(
            &r,
            "kd_deliveries_total",
            "Outbox delivery attempts by result",
            &["result"],
        ),
        delivery_latency: histogram(
            &r,
            "kd_delivery_seconds",
            "Time from enqueue to delivery",
            &["source"],
        ),
        outbox_pending: gauge("kd_outbox_pending", "Messages waiting in the outbox"),
        outbox_dead: gauge(
            "kd_outbox_dead_letters",
            "Messages that exhausted their attempts",
        ),
        rule_runs: counter(
            &r,
            "kd_rule_runs_total",
            "Guild rule runs by hook and outcome",
            &["hook", "outcome"],
        ),
        rule_latency: histogram(&r, "kd_rule_run_seconds", "Guild rule run time", &["hook"]),
        plugin_busy: counter(
            &r,
            "kd_plugin_busy_total",
            "Plugin calls refused for want of room by plugin and gate",
            &["plugin", "gate"],
        ),
        gateway_events: counter(
            &r,
            "kd_gateway_events_total",
            "Gateway events taken into the inbox by kind and result",
            &["kind", "result"],
        ),
        events_abandoned: plain_counter(
            &r,
            "kd_events_abandoned_total",
            "Inbox events given up after unfinished processing attempts",
        ),
        connections_refused: plain_counter(
            &r,
            "kd_http_connections_refused_total",
            "Connections closed at once because the maximum were open",
        ),
        discord_invalid: plain_counter(
            &r,
            "kd_discord_invalid_answers_total",
            "Discord answers counting toward its invalid-request limit (401, 403, 429)",
        ),
        discord_throttled: plain_counter(
            &r,
            "kd_discord_throttled_total",
            "Discord calls held back because too many were refused lately",
        ),
        redis_errors: counter(
            &r,
            "kd_redis_errors_total",
            "Redis calls that failed (the instance fell back), by kind of state",
            &["kind"],
        ),
        discord_paused: plain_counter(
            &r,
            "kd_discord_paused_total",
            "Waits of bot-authenticated Discord calls held back while Redis was away",
        ),
        kaltura_calls: histogram(
            &r,
            "kd_kaltura_call_seconds",
            "Kaltura API calls (retries included)",
            &["call", "outcome"],
        ),
        kaltura_sessions: counter(
            &r,
            "kd_kaltura_sessions_signed_total",
            "Kaltura sessions signed locally",
            &["type"],
        ),
        plugin_calls: counter(
            &r,
            "kd_plugin_calls_total",
            "Guest calls",
            &["plugin", "entry", "outcome"],
        ),
        plugin_latency: histogram(
            &r,
            "kd_plugin_call_seconds",
            "Guest call latency",
            &["plugin", "entry"],
        ),
        plugin_traps: counter(
            &r,
            "kd_plugin_traps_total",
            "Guest traps (panics, unreachable, stack overflow)",
            &["plugin"],
        ),
        plugin_deadline_kills: counter(
            &r,
            "kd_plugin_deadline_kills_total",
            "Calls ended by the CPU budget or timeout",
            &["plugin"],
        ),
        plugin_memory_kills: counter(
            &r,
            "kd_plugin_memory_kills_total",
            "Calls ended by the memory cap",
            &["plugin"],
        ),
        capability_denied: counter(
            &r,
            "kd_capability_denied_total",
            "Capability calls outside the grant",
            &["plugin", "capability"],
        ),
        policy_denials: counter(
            &r,
            "kd_policy_denials_total",
            "Refusals by guild policy (roles, switches, channels, rate limits) by reason",
            &["reason"],
        ),
        plugin_log_dropped: counter(
            &r,
            "kd_plugin_log_lines_dropped_total",
            "Guest log lines over the per-call limit",
            &["plugin"],
        ),
        plugin_loads: counter(
            &r,
            "kd_plugin_loads_total",
            "Plugin (re)loads by result",
            &["result"],
        ),
        plugins_loaded,
        http_requests: counter(
            &r,
            "kd_http_requests_total",
            "HTTP requests served",
            &["route", "status"],
        ),
        http_latency: histogram(
            &r,
            "kd_http_request_seconds",
            "HTTP request latency",
            &["route"],
        ),
        interactions: counter(
            &r,
            "kd_interactions_total",
            "Interactions by transport and result",
            &["transport", "result"],
        ),
        discord_rest: counter(
            &r,
            "kd_discord_rest_total",
            "Discord REST calls by route and status",
            &["route", "status"],
        ),
        command_syncs: counter(
            &r,
            "kd_command_syncs_total",
            "Command sync attempts",
            &["result"],
        ),
        registry: r,
    };
    metrics.prime();
    metrics
});

/// The Prometheus text exposition of every metric.
pub fn render() -> String {
    let mut buf = Vec::new();
    let families = METRICS.registry.gather();
    TextEncoder::new()
        .encode(&families, &mut buf)
        .expect("text encoding cannot fail");
    let mut text = String::from_utf8(buf).expect("prometheus text is utf-8");
    // Families without a series yet (a vector nothing has touched) are still named.
    for (name, help) in DECLARED.lock().unwrap().iter() {
        if !families.iter().any(|f| f.name() == name) {
            text.push_str(&format!("# HELP {name} {help}\n"));
        }
    }
    text
}

#[cfg(test)]
mod one_line_tests {
    #[test]
    fn a_guest_cannot_start_a_log_line_of_its_own() {
        let forged = "ok\n2026-01-01T00:00:00Z INFO kdhost: admin logged in\r\u{1b}[2J";
        let line = crate::telemetry::one_line(forged);
        assert!(!line.contains('\n') && !line.contains('\r') && !line.contains('\u{1b}'));
        assert!(line.starts_with("ok\\n2026"), "{line}");
    }
}
