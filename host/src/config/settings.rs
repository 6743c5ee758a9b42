//! Process settings: flags with environment equivalents, and Discord's from the environment
//! (a `.env` file is read first; the real environment wins). Secrets are `Secret`s.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::secret::Secret;
use crate::telemetry::LogFormat;

/// Where the host listens and keeps its files (`kdhost serve` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// Address for the HTTP endpoint.
    #[arg(long, env = "KD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Configuration folder (plugins.json, default.json, guilds/).
    #[arg(long, env = "KD_CONFIG", default_value = "config")]
    pub config: PathBuf,
    /// Folder of `.wasm` plugins, watched for changes.
    #[arg(long, env = "KD_PLUGINS", default_value = "plugins")]
    pub plugins: PathBuf,
    /// Data folder (SQLite database, compiled-plugin cache).
    #[arg(long, env = "KD_DATA", default_value = "data")]
    pub data: PathBuf,
    /// Log format.
    #[arg(long, env = "KD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Discord application settings.
#[derive(Debug, Clone, Default)]
pub struct DiscordSettings {
    /// `DISCORD_PUBLIC_KEY`: hex Ed25519 key for `POST /interactions`.
    pub public_key: Option<String>,
    /// `DISCORD_APPLICATION_ID`.
    pub application_id: Option<String>,
    /// `DISCORD_BOT_TOKEN`: gateway, channel messages, command sync.
    pub bot_token: Option<Secret>,
    /// `DISCORD_API_BASE`, default `https://discord.com` (a stand-in in tests and demo).
    pub api_base: String,
    /// `DISCORD_DEV_GUILD_ID`: register commands in this guild instead of globally.
    pub dev_guild: Option<String>,
    /// `DISCORD_ACTIVITIES=true`: the app has Activities (keep the entry-point command).
    pub activities: bool,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl DiscordSettings {
    pub fn from_env() -> Self {
        Self {
            public_key: var("DISCORD_PUBLIC_KEY"),
            application_id: var("DISCORD_APPLICATION_ID"),
            bot_token: var("DISCORD_BOT_TOKEN").map(Secret::new),
            api_base: var("DISCORD_API_BASE").unwrap_or_else(|| "https://discord.com".into()),
            dev_guild: var("DISCORD_DEV_GUILD_ID"),
            activities: var("DISCORD_ACTIVITIES")
                .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "yes")),
        }
    }
}

/// Loads `.env` from the working directory if present. Values already in the environment win.
pub fn load_dotenv() -> Result<(), String> {
    match dotenvy::dotenv() {
        Ok(_) => Ok(()),
        Err(e) if e.not_found() => Ok(()),
        Err(dotenvy::Error::LineParse(line, idx)) => Err(format!(
            ".env: cannot parse line `{line}` at character {idx}"
        )),
        Err(e) => Err(format!(".env: {e}")),
    }
}
