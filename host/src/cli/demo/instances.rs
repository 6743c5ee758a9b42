//! `kdhost demo --instances N`: N instances of the host in this process, sharing private
//! PostgreSQL and Redis servers (Debian's `postgresql` and `redis-server`, started on free
//! ports in a temporary folder and stopped on exit), with the Discord and Kaltura
//! stand-ins. It answers a command on each instance, delivers one webhook sent to every
//! instance once, and prints an Activity URL per instance that all join the same room.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use testkit::servers::{PostgresServer, RedisServer};
use testkit::{KalturaOptions, KalturaStandIn};

use super::{DEMO_GUILD, DEMO_RECORDINGS, Tour, demo_config, demo_settings};
use crate::app::App;
use crate::config::settings::ServeOptions;
use crate::discord::shards::ShardPlan;
use crate::store::postgres::PostgresStore;
use crate::telemetry::LogFormat;

/// The most instances one demo runs (they share this machine's cores).
pub const MAX_INSTANCES: usize = 8;

pub async fn run_instances(listen: SocketAddr, n: usize, once: bool) -> anyhow::Result<ExitCode> {
    if !(2..=MAX_INSTANCES).contains(&n) {
        anyhow::bail!("--instances takes 2 to {MAX_INSTANCES} (1 is plain `kdhost demo`)");
    }
    println!("Starting private PostgreSQL and Redis servers (Debian's packages)…");
    let (pg, redis) = tokio::task::spawn_blocking(|| {
        let pg = PostgresServer::start().context(
            "kdhost demo --instances needs PostgreSQL's server: apt-get install -y postgresql",
        )?;
        let redis = RedisServer::start()
            .context("kdhost demo --instances needs Redis: apt-get install -y redis-server")?;
        anyhow::Ok((pg, redis))
    })
    .await??;
    let database_url = pg.create_database("kdhost_demo")?;
    println!(
        "  PostgreSQL at {}, Redis at {}",
        crate::store::postgres::redact(&database_url),
        redis.url()
    );
    let standin = super::discord_standin().await?;
    let kaltura = KalturaStandIn::start("127.0.0.1:0".parse()?, KalturaOptions::default()).await?;

    // What an operator moving in puts into the database: guild overrides, rules, plugins.
    let root = PathBuf::from("data/demo-instances");
    let config = demo_config(&root)?;
    let plugins = super::prepare_files(&root)?;
    let store = PostgresStore::connect(&database_url).await?;
    crate::cli::config::import_guild_configs(&store, &config).await?;
    crate::cli::db::import_folders(&store, &root.join("scripts"), &plugins).await?;

    let mut addrs = Vec::with_capacity(n);
    let mut servers = Vec::with_capacity(n);
    // Every instance stops on Ctrl-C, or when the demo is done (`--once`).
    let (stop, stopped) = tokio::sync::watch::channel(false);
    for i in 0..n {
        // Consecutive ports from --listen's (port 0: any free ones).
        let port = match listen.port() {
            0 => 0,
            p => p
                .checked_add(i as u16)
                .context("--listen's port is too high")?,
        };
        let at = SocketAddr::new(listen.ip(), port);
        let listener = tokio::net::TcpListener::bind(at)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {at}: {e}"))?;
        let addr = listener.local_addr()?;
        let opts = ServeOptions {
            listen: addr,
            public_url: Some(format!("http://{addr}")),
            config: config.clone(),
            // Rules and plugins are rows in the database; each instance's folders stay empty.
            plugins: root.join(format!("instance{i}/plugins")),
            scripts: root.join(format!("instance{i}/scripts")),
            activity: super::activity_dist(),
            data: root.join(format!("instance{i}")),
            database_url: Some(database_url.clone()),
            redis_url: Some(redis.url()),
            log_format: LogFormat::Text,
        };
        let mut settings = demo_settings(&standin, &kaltura)?;
        // The gateway's shards spread over the instances (one here: each holds it in turn).
        settings.discord.shards = ShardPlan::Auto { total: None };
        let app = App::build(&opts, settings)
            .await
            .with_context(|| format!("instance {i}"))?;
        println!("  instance {i}: http://{addr}");
        app.start_gateway();
        let mut stopped = stopped.clone();
        let shutdown = async move {
            tokio::select! {
                how = crate::cli::serve::shutdown_signal() => how,
                _ = stopped.wait_for(|s| *s) => crate::app::stopping::Stop::Now,
            }
        };
        servers.push(tokio::spawn(app.serve(listener, shutdown)));
        addrs.push(addr.to_string());
    }
    standin.set_target(&format!("http://{}/interactions", addrs[0]));
    standin.set_open_membership(DEMO_GUILD);

    println!("\n-- one command on each instance --\n");
    for (i, addr) in addrs.iter().enumerate() {
        let url = format!("http://{addr}/interactions");
        let tour = Tour {
            standin: &standin,
            url: &url,
        };
        tour.command(
            &format!("/about on instance {i}"),
            "about",
            serde_json::json!([]),
        )
        .await?;
    }
    super::webhook_demo(&standin, &kaltura, &addrs).await?;
    println!(
        "Kaltura sent that webhook to all {n} instances: #recordings has {} message(s) (each event is handled once).\n",
        standin.channel_messages(DEMO_RECORDINGS).len()
    );
    if once {
        stop.send_replace(true);
    } else {
        println!(
            "Serving. Watch Together across instances: open each of these (one per tab); they share one room:"
        );
        for addr in &addrs {
            println!("  http://{addr}/activity/?instance=demo&channel=200000000000000001");
        }
        println!("Ctrl-C stops every instance and the private servers.");
    }
    // The instances leave the cluster before the servers they use stop.
    for s in servers {
        s.await??;
    }
    drop((pg, redis));
    Ok(ExitCode::SUCCESS)
}
