//! The `kdhost` command line: one file per verb; each parses nothing and wires only what
//! its verb needs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::settings::{
    DEFAULT_LISTEN, DiscordSettings, ServeOptions, Settings, load_dotenv,
};
use crate::telemetry::{self, LogFormat};

pub mod commands;
pub mod config;
pub mod db;
pub mod demo;
pub mod health;
pub mod kaltura;
pub mod plugin;
pub mod script;
pub mod serve;
pub mod standin;

#[derive(Parser)]
#[command(
    name = "kdhost",
    version,
    about = "Plugin host connecting a Discord application to a Kaltura account"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host: interactions endpoint, gateway, plugins, hot reload.
    Serve {
        #[command(flatten)]
        opts: ServeOptions,
        #[command(flatten)]
        tls: crate::tls::TlsOptions,
    },
    /// Run the whole system on this machine against the Discord stand-in and show it working.
    Demo {
        /// Address for the host.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Exit after the scripted interactions instead of serving on.
        #[arg(long)]
        once: bool,
        /// Run this many instances (2-8) on private PostgreSQL and Redis servers (Debian's
        /// `postgresql` and `redis-server`), on consecutive ports from --listen's.
        #[arg(long, default_value_t = 1)]
        instances: usize,
    },
    /// Ask a running host whether it is alive (`/healthz`) or ready (`/readyz`); exit 0 on
    /// 200. For a container's HEALTHCHECK: the URL comes from KD_LISTEN and KD_TLS_CERT.
    Health {
        /// Ask `/readyz` (serving traffic) instead of `/healthz` (alive).
        #[arg(long)]
        ready: bool,
        /// Another URL to ask instead.
        #[arg(long)]
        url: Option<String>,
        /// The host's address, as `kdhost serve` reads it (an unspecified one is asked on
        /// loopback).
        #[arg(long, env = "KD_LISTEN", default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Set when the host serves HTTPS itself (`kdhost serve --tls-cert`).
        #[arg(long, env = "KD_TLS_CERT")]
        tls_cert: Option<PathBuf>,
    },
    /// Plugin authoring: scaffold and inspect plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Slash command registration with Discord.
    #[command(subcommand)]
    Commands(CommandsCommand),
    /// Guild configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The PostgreSQL database of a cluster: schema and moving in from SQLite.
    #[command(subcommand)]
    Db(DbCommand),
    /// Guild rules (Rhai): check and dry-run.
    #[command(subcommand)]
    Script(ScriptCommand),
    /// Kaltura operator tools.
    #[command(subcommand)]
    Kaltura(KalturaCommand),
    /// Local stand-ins for Discord's and Kaltura's APIs.
    #[command(subcommand)]
    Standin(StandinCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Create a Rust plugin crate that builds as-is.
    New {
        name: String,
        /// Folder to create (default: ./NAME).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The plugin's language.
        #[arg(long, value_enum, default_value_t = plugin::Lang::Rust)]
        lang: plugin::Lang,
    },
    /// Validate a component and print its name, version, contract, commands and capabilities.
    Check {
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Build a plugin project (Rust, JavaScript or Python) into a checked `.wasm` component.
    Build {
        /// The project folder (default: the current one).
        #[arg(default_value = ".")]
        dir: PathBuf,
    },
    /// Publish a component to the shared database (checked first): every instance loads it
    /// within a second.
    Publish {
        file: PathBuf,
        #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Unpublish a plugin from the shared database: every instance unloads it.
    Unpublish {
        name: String,
        #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Run one command of a component in the real sandbox against in-process Discord and
    /// Kaltura stand-ins; print the response and every host call it made.
    Test {
        file: PathBuf,
        /// The command line, e.g. '/poll question:"Lunch?" hours:2'.
        #[arg(long)]
        command: String,
        #[arg(long, default_value = "600000000000000001")]
        guild: String,
        #[arg(long, default_value = "700000000000000001")]
        user: String,
        /// Hosts the plugin may reach with the `http` capability (repeatable).
        #[arg(long = "http-host")]
        http_hosts: Vec<String>,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum CommandsCommand {
    /// Register the loaded plugins' commands with Discord if they changed.
    Sync {
        /// Print what would change and send nothing.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        serve: ServeOptions,
    },
}

#[derive(Subcommand)]
enum DbCommand {
    /// Apply the schema migrations the database lacks (`serve` does this at start too).
    Migrate {
        #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
    /// Move a single instance's SQLite data (stop it first) into an empty PostgreSQL
    /// database.
    Import {
        /// The instance's data folder (KD_DATA), holding kdhost.sqlite3.
        #[arg(long)]
        sqlite: PathBuf,
        #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Check default.json, guilds/*.json and plugins.json as the host would load them.
    Validate {
        #[arg(default_value = "config")]
        dir: PathBuf,
    },
    /// Print the JSON Schema of guild config files (config/schema.json).
    Schema,
    /// Put the guild overrides of DIR/guilds/*.json into the shared database (checked
    /// first: nothing is stored unless every file is valid).
    Import {
        #[arg(default_value = "config")]
        dir: PathBuf,
        #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum ScriptCommand {
    /// Compile a rule and list its hooks, commands and schedules.
    Check { file: PathBuf },
    /// Dry run: run a rule for an event and print the effects as JSON (sends nothing).
    Test {
        file: PathBuf,
        /// A Kaltura notification body, or {"hook": "...", ...} (see docs/rules.md).
        #[arg(long)]
        event: PathBuf,
        #[arg(long, default_value = "600000000000000001")]
        guild: String,
        /// Configuration folder for the guild's config.
        #[arg(long, default_value = "config")]
        config: PathBuf,
    },
    /// Put the rules of DIR/global and DIR/guilds/<id> into the shared database (checked
    /// first: nothing is stored unless every rule is valid).
    Import {
        #[arg(default_value = "scripts")]
        dir: PathBuf,
        #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
    },
}

#[derive(Subcommand)]
enum KalturaCommand {
    /// Sign a KS locally (no network) with KALTURA_PARTNER_ID and KALTURA_ADMIN_SECRET.
    Ks {
        /// Kaltura user id.
        #[arg(long)]
        user: String,
        #[arg(long = "type", value_enum, default_value_t = kaltura::KsType::User)]
        session_type: kaltura::KsType,
        /// Privileges, e.g. `sview:0_abc,setrole:PLAYBACK_BASE_ROLE`.
        #[arg(long, default_value = "")]
        privileges: String,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        expiry: u32,
    },
    /// Decode a KS and check it against the partner's secrets.
    KsInfo { ks: String },
}

#[derive(Subcommand)]
enum StandinCommand {
    /// A Kaltura stand-in: API v3 subset with KS validation, fixtures and fault injection.
    Kaltura {
        #[arg(long, default_value = "127.0.0.1:8091")]
        listen: SocketAddr,
        #[arg(long, default_value_t = 1234567)]
        partner_id: u64,
        /// The partner's admin secret(s), comma-separated.
        #[arg(long, env = "KALTURA_ADMIN_SECRET", hide_env_values = true)]
        admin_secret: String,
        /// A fixtures JSON file (`{"entries": [...], "categories": [...], "users": [...]}`);
        /// default: the 57 shipped entries.
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// Answer eSearch with SERVICE_FORBIDDEN, like accounts without it.
        #[arg(long)]
        no_esearch: bool,
    },
    /// A Discord stand-in: REST subset, rate limits, signed interactions.
    Discord {
        #[arg(long, default_value = "127.0.0.1:8090")]
        listen: SocketAddr,
        /// The host's interactions URL, for `POST /_testkit/send`.
        #[arg(long)]
        target: Option<String>,
        /// Guilds with roles, text channels and members (`{"guilds": [...]}`); default: the
        /// two servers shipped in `testkit/fixtures/discord.json`.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
}

/// One-shot commands end quietly when their output is closed (`kdhost plugin check x | head`)
/// instead of panicking on the write; Rust ignores SIGPIPE by default. The long-running
/// commands keep that default.
fn quiet_broken_pipe() {
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread writes.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let format = match &cli.command {
        Command::Serve { opts, .. } => opts.log_format,
        _ => LogFormat::Text,
    };
    match &cli.command {
        Command::Plugin(PluginCommand::Test { .. }) => plugin::test::init_tracing(),
        _ => telemetry::init_logging(format),
    }
    if !matches!(
        cli.command,
        Command::Serve { .. } | Command::Demo { .. } | Command::Standin(_)
    ) {
        quiet_broken_pipe();
    }
    if let Err(e) = load_dotenv() {
        eprintln!("error: {e}");
        return ExitCode::FAILURE;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve { opts, tls } => {
            let settings = Settings::from_env().map_err(anyhow::Error::msg)?;
            serve::run(opts, tls, settings).await
        }
        Command::Demo {
            listen,
            once,
            instances: 1,
        } => demo::run(listen, once).await,
        Command::Demo {
            listen,
            once,
            instances,
        } => demo::run_instances(listen, instances, once).await,
        Command::Health {
            ready,
            url,
            listen,
            tls_cert,
        } => {
            let url = url.unwrap_or_else(|| health::own_url(listen, tls_cert.is_some(), ready));
            health::run(&url).await
        }
        Command::Plugin(PluginCommand::New { name, dir, lang }) => {
            plugin::new::new(&name, dir, lang)
        }
        Command::Plugin(PluginCommand::Check { file, json }) => {
            plugin::check::check(&file, json).await
        }
        Command::Plugin(PluginCommand::Build { dir }) => plugin::build::build(&dir).await,
        Command::Plugin(PluginCommand::Publish { file, database_url }) => {
            plugin::publish::publish(&file, database_url).await
        }
        Command::Plugin(PluginCommand::Unpublish { name, database_url }) => {
            plugin::publish::unpublish(&name, database_url).await
        }
        Command::Plugin(PluginCommand::Test {
            file,
            command,
            guild,
            user,
            http_hosts,
            json,
        }) => {
            plugin::test::run(plugin::test::TestArgs {
                file: &file,
                command: &command,
                guild: &guild,
                user: &user,
                http_hosts: &http_hosts,
                json,
            })
            .await
        }
        Command::Commands(CommandsCommand::Sync { dry_run, serve }) => {
            let discord = DiscordSettings::from_env().map_err(anyhow::Error::msg)?;
            commands::sync(&serve, discord, dry_run).await
        }
        Command::Db(DbCommand::Migrate { database_url }) => db::migrate(database_url).await,
        Command::Db(DbCommand::Import {
            sqlite,
            database_url,
        }) => db::import(database_url, &sqlite).await,
        Command::Config(ConfigCommand::Validate { dir }) => config::validate(&dir),
        Command::Config(ConfigCommand::Schema) => config::print_schema(),
        Command::Config(ConfigCommand::Import { dir, database_url }) => {
            config::import(&dir, database_url).await
        }
        Command::Script(ScriptCommand::Check { file }) => script::check(&file),
        Command::Script(ScriptCommand::Test {
            file,
            event,
            guild,
            config,
        }) => script::test(&file, &event, &guild, &config).await,
        Command::Script(ScriptCommand::Import { dir, database_url }) => {
            script::import(&dir, database_url).await
        }
        Command::Kaltura(KalturaCommand::Ks {
            user,
            session_type,
            privileges,
            expiry,
        }) => kaltura::sign(&user, session_type, &privileges, expiry),
        Command::Kaltura(KalturaCommand::KsInfo { ks }) => kaltura::info(&ks),
        Command::Standin(StandinCommand::Discord {
            listen,
            target,
            fixtures,
        }) => standin::discord(listen, target, fixtures).await,
        Command::Standin(StandinCommand::Kaltura {
            listen,
            partner_id,
            admin_secret,
            fixtures,
            no_esearch,
        }) => standin::kaltura(listen, partner_id, admin_secret, fixtures, !no_esearch).await,
    }
}
