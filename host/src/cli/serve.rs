//! `kdhost serve`: build the app, print what is on and off, serve until Ctrl-C.

use std::process::ExitCode;

use anyhow::Context;

use crate::app::App;
use crate::app::stopping::Stop;
use crate::config::settings::{ServeOptions, Settings};

pub async fn run(
    opts: ServeOptions,
    tls: crate::tls::TlsOptions,
    settings: Settings,
) -> anyhow::Result<ExitCode> {
    // Checked before anything starts: a bad certificate stops the host with the file named.
    let tls = tls.server_config()?;
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let metrics = match settings.metrics.listen {
        Some(at) => Some(
            tokio::net::TcpListener::bind(at)
                .await
                .with_context(|| format!("cannot listen on {at} (KD_METRICS_LISTEN)"))?,
        ),
        None => None,
    };
    let app = App::build(&opts, settings).await?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    // Before the report, whose last line tools wait for.
    tracing::info!(
        "listening for {scheme}{}",
        if tls.is_some() {
            " (TLS on this listener: --tls-cert/--tls-key)"
        } else {
            " (terminate TLS at a proxy, or set --tls-cert/--tls-key)"
        }
    );
    print_report(&app, &listener.local_addr()?.to_string());
    if let Some(m) = metrics {
        tokio::spawn(crate::app::serve_metrics(m));
    }
    app.start_gateway();
    app.serve_with(listener, tls, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// The startup report: where it listens, plugins, and which parts are off and why.
pub fn print_report(app: &App, addr: &str) {
    let set = app.registry.snapshot();
    tracing::info!(
        listen = %addr,
        plugins = set.plugins.len(),
        refused = app.load_failures.len(),
        "kdhost {} serving on http://{addr}",
        env!("CARGO_PKG_VERSION")
    );
    for p in set.plugins.values() {
        tracing::info!(plugin = %p.name, version = %p.manifest.version, source = %p.source, commands = p.manifest.commands.len(), "plugin ready");
    }
    for f in &app.load_failures {
        tracing::error!(file = %f.source, reason = %f.reason, "plugin refused");
    }
    let guilds_with_rules = app.rules.guild_ids().len();
    let rule_problems = app.rules.problems();
    tracing::info!(
        folder = %app.rules.dir().display(),
        guilds_with_rules,
        problems = rule_problems.len(),
        "guild rules loaded"
    );
    for (rule, problem) in &rule_problems {
        tracing::error!(rule = %rule, reason = %problem, "rule not loaded");
    }
    // Guild files that load with something left out (e.g. privileges a guild may not set).
    for problem in app.guilds.problems() {
        for line in problem.lines() {
            tracing::error!(reason = %line, "guild configuration: left out");
        }
    }
    for (service, state) in &app.report {
        if state.starts_with("off") {
            tracing::warn!("{service}: {state}");
        } else {
            tracing::info!("{service}: {state}");
        }
    }
}

/// Resolves on Ctrl-C (stop now) or SIGTERM (drain first: an orchestrator's stop).
pub async fn shutdown_signal() -> Stop {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    let how = tokio::select! {
        _ = ctrl_c => Stop::Now,
        _ = term => Stop::Drain,
    };
    tracing::info!(?how, "shutting down");
    how
}
