//! Process settings: flags with environment equivalents, and Discord's from the environment
//! (a `.env` file is read first; the real environment wins). Secrets are `Secret`s.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::secret::Secret;
use crate::telemetry::LogFormat;

/// Where the host listens unless told otherwise (`KD_LISTEN`, `--listen`).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Where the host listens and keeps its files (`kdhost serve` flags).
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// Address for the HTTP endpoint.
    #[arg(long, env = "KD_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Configuration folder (plugins.json, default.json, guilds/).
    #[arg(long, env = "KD_CONFIG", default_value = "config")]
    pub config: PathBuf,
    /// Folder of `.wasm` plugins, watched for changes.
    #[arg(long, env = "KD_PLUGINS", default_value = "plugins")]
    pub plugins: PathBuf,
    /// Guild rules folder (global/*.rhai, guilds/<id>/*.rhai), watched for changes.
    #[arg(long, env = "KD_SCRIPTS", default_value = "scripts")]
    pub scripts: PathBuf,
    /// The built Activity (`npm run build --prefix activity`), served at `/activity/`.
    #[arg(long, env = "KD_ACTIVITY", default_value = "activity/dist")]
    pub activity: PathBuf,
    /// Data folder (SQLite database, compiled-plugin cache).
    #[arg(long, env = "KD_DATA", default_value = "data")]
    pub data: PathBuf,
    /// The durable store: unset for SQLite in the data folder (one instance);
    /// `postgres://user:password@host:5432/db` for PostgreSQL (several instances).
    #[arg(long, env = "KD_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Redis (`redis://host:6379`) for the state instances share: Discord's limits of the
    /// one bot token, interaction tokens, Activity rooms. Needed by a second instance.
    #[arg(long, env = "KD_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Where people reach this host (links to the Activity in a browser); default
    /// `http://<listen>`.
    #[arg(long, env = "KD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Log format.
    #[arg(long, env = "KD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Everything the host reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    pub discord: DiscordSettings,
    /// `None` when `KALTURA_PARTNER_ID` / `KALTURA_ADMIN_SECRET` are not set (Kaltura is off).
    pub kaltura: Option<crate::kaltura::KalturaSettings>,
    pub api: ApiSettings,
    pub delivery: DeliverySettings,
    pub activity: ActivitySettings,
    pub http: HttpSettings,
    pub metrics: MetricsSettings,
    /// `KD_PLUGIN_MEMORY_MB`: the memory limits of plugin instances in flight add up to at
    /// most this (default 2048).
    pub plugin_memory_mib: Option<u32>,
    pub retention: RetentionSettings,
    pub shutdown: ShutdownSettings,
}

/// A graceful stop on SIGTERM (a rolling update): unready at once, still serving for
/// `delay` while the load balancer moves traffic away, then in-flight work gets `timeout`.
#[derive(Debug, Clone)]
pub struct ShutdownSettings {
    /// `KD_SHUTDOWN_DELAY_MS` (default 5000): serving on after SIGTERM, unready. Ctrl-C
    /// skips it.
    pub delay: std::time::Duration,
    /// `KD_SHUTDOWN_TIMEOUT_MS` (default 20000): the most in-flight requests, deliveries and
    /// event batches get to finish before their leases are released anyway.
    pub timeout: std::time::Duration,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self {
            delay: std::time::Duration::from_secs(5),
            timeout: std::time::Duration::from_secs(20),
        }
    }
}

impl ShutdownSettings {
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        let ms = |name, default: std::time::Duration| {
            whole_number(name, default.as_millis() as u64, 0).map(std::time::Duration::from_millis)
        };
        Ok(Self {
            delay: ms("KD_SHUTDOWN_DELAY_MS", d.delay)?,
            timeout: ms("KD_SHUTDOWN_TIMEOUT_MS", d.timeout)?,
        })
    }
}

/// How long the host keeps what it stores (days), pruned hourly.
#[derive(Debug, Clone)]
pub struct RetentionSettings {
    /// `KD_RETENTION_EVENTS_DAYS`: processed events (their keys deduplicate redeliveries).
    pub events_days: u64,
    /// `KD_RETENTION_SENT_DAYS`: delivered messages.
    pub sent_days: u64,
    /// `KD_RETENTION_DEAD_DAYS`: dead letters.
    pub dead_days: u64,
    /// `KD_RETENTION_AUDIT_DAYS`: the guild audit log.
    pub audit_days: u64,
    /// `KD_RETENTION_PERSONAL_DAYS`: what plugins keep for one person (their kv scopes),
    /// counted from its last write.
    pub personal_days: u64,
    /// `KD_RETENTION_SUBSCRIPTION_DAYS`: a person's DM subscriptions, counted from when
    /// each was made or last renewed (subscribing again).
    pub subscription_days: u64,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            events_days: 7,
            sent_days: 30,
            dead_days: 30,
            audit_days: 365,
            personal_days: 365,
            subscription_days: 365,
        }
    }
}

impl RetentionSettings {
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        Ok(Self {
            events_days: whole_number("KD_RETENTION_EVENTS_DAYS", d.events_days, 1)?,
            sent_days: whole_number("KD_RETENTION_SENT_DAYS", d.sent_days, 1)?,
            dead_days: whole_number("KD_RETENTION_DEAD_DAYS", d.dead_days, 1)?,
            audit_days: whole_number("KD_RETENTION_AUDIT_DAYS", d.audit_days, 1)?,
            personal_days: whole_number("KD_RETENTION_PERSONAL_DAYS", d.personal_days, 1)?,
            subscription_days: whole_number(
                "KD_RETENTION_SUBSCRIPTION_DAYS",
                d.subscription_days,
                1,
            )?,
        })
    }
}

/// Where `/metrics` is served: never publicly on the main listener.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// `KD_METRICS_LISTEN`: a listener of its own (e.g. `127.0.0.1:9090`, or the pod's
    /// address for a scraper); the main listener then has no `/metrics`.
    pub listen: Option<SocketAddr>,
    /// `KD_METRICS_TOKEN` (32+ characters): `/metrics` on the main listener for
    /// `Authorization: Bearer <token>` only.
    pub token: Option<Secret>,
}

impl MetricsSettings {
    pub fn from_env() -> Result<Self, String> {
        let listen = match var("KD_METRICS_LISTEN") {
            Some(v) => Some(v.parse().map_err(|_| {
                format!("KD_METRICS_LISTEN must be an address like 127.0.0.1:9090, not `{v}`")
            })?),
            None => None,
        };
        let token = var("KD_METRICS_TOKEN").map(Secret::new);
        if token.as_ref().is_some_and(|t| t.expose().len() < 32) {
            return Err("KD_METRICS_TOKEN must be at least 32 characters".into());
        }
        Ok(Self { listen, token })
    }
}

/// Limits on the HTTP surface (every stranger on the internet can reach it).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// `KD_HTTP_ANON_PER_MINUTE`: requests per client IP per minute to the routes that need
    /// no token (sign-in), which each cost a call to Discord.
    pub anonymous_per_minute: u32,
    /// `KD_API_PER_MINUTE`: API requests per token subject per minute.
    pub subject_per_minute: u32,
    /// `KD_CLIENT_IP_HEADER`: the header the operator's proxy puts the client's IP in
    /// (`CF-Connecting-IP` behind Cloudflare); unset: the connection's peer address.
    pub client_ip_header: Option<String>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            anonymous_per_minute: 30,
            subject_per_minute: 600,
            client_ip_header: None,
        }
    }
}

impl HttpSettings {
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        let client_ip_header = var("KD_CLIENT_IP_HEADER");
        if let Some(h) = &client_ip_header
            && axum::http::HeaderName::from_bytes(h.as_bytes()).is_err()
        {
            return Err(format!(
                "KD_CLIENT_IP_HEADER must be a header name, not `{h}`"
            ));
        }
        Ok(Self {
            anonymous_per_minute: whole_number(
                "KD_HTTP_ANON_PER_MINUTE",
                d.anonymous_per_minute.into(),
                1,
            )?
            .min(u32::MAX as u64) as u32,
            subject_per_minute: whole_number("KD_API_PER_MINUTE", d.subject_per_minute.into(), 1)?
                .min(u32::MAX as u64) as u32,
            client_ip_header,
        })
    }
}

/// The Watch Together Activity.
#[derive(Debug, Clone, Default)]
pub struct ActivitySettings {
    /// `KD_ACTIVITY_DEV=true` (and `kdhost demo`): the Activity runs outside Discord on the
    /// SDK's mock, the token exchange accepts its `mock_code`, and sync rooms do not ask
    /// Discord who is in the instance. Never in production.
    pub dev_mode: bool,
    /// `KD_ACTIVITY_GRACE_MS`: how long a participant whose connection dropped keeps their
    /// seat (and the host role) before the room moves on; `None`: 5 s.
    pub grace: Option<std::time::Duration>,
}

impl ActivitySettings {
    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            dev_mode: flag("KD_ACTIVITY_DEV"),
            grace: var("KD_ACTIVITY_GRACE_MS")
                .is_some()
                .then(|| whole_number("KD_ACTIVITY_GRACE_MS", 5000, 100))
                .transpose()?
                .map(std::time::Duration::from_millis),
        })
    }
}

impl Settings {
    /// Reads every setting; an error names the variable that is set but wrong.
    pub fn from_env() -> Result<Self, String> {
        let me = Self {
            discord: DiscordSettings::from_env()?,
            kaltura: crate::kaltura::KalturaSettings::from_env()?,
            api: ApiSettings::from_env()?,
            delivery: DeliverySettings::from_env()?,
            activity: ActivitySettings::from_env()?,
            http: HttpSettings::from_env()?,
            metrics: MetricsSettings::from_env()?,
            plugin_memory_mib: var("KD_PLUGIN_MEMORY_MB")
                .is_some()
                .then(|| whole_number("KD_PLUGIN_MEMORY_MB", 2048, 16))
                .transpose()?
                .map(|n| n.min(u32::MAX as u64) as u32),
            retention: RetentionSettings::from_env()?,
            shutdown: ShutdownSettings::from_env()?,
        };
        me.check()?;
        Ok(me)
    }

    /// Combinations that must not run. Dev mode lets anyone sign in to the Activity as any
    /// user id: it runs only against a Discord stand-in, never with real credentials.
    pub fn check(&self) -> Result<(), String> {
        let d = &self.discord;
        let real = d.talks_to_discord()
            && (d.bot_token.is_some() || d.client_secret.is_some() || d.public_key.is_some());
        if self.activity.dev_mode && real {
            return Err("KD_ACTIVITY_DEV lets anyone sign in to the Activity as any user: it runs only against a Discord stand-in (DISCORD_API_BASE), not with real Discord credentials; unset KD_ACTIVITY_DEV".into());
        }
        Ok(())
    }
}

/// `/api/v1` settings.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// `JWT_SECRET`: signs the host's API tokens (HS256). Without it `/api/v1` answers 503.
    pub jwt_secret: Option<Secret>,
    /// `JWT_EXPIRY` in seconds (default 3600).
    pub jwt_expiry: std::time::Duration,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            jwt_secret: None,
            jwt_expiry: std::time::Duration::from_secs(3600),
        }
    }
}

impl ApiSettings {
    pub fn from_env() -> Result<Self, String> {
        let jwt_expiry = match var("JWT_EXPIRY") {
            Some(v) => {
                std::time::Duration::from_secs(parse_duration_secs(&v).ok_or_else(|| {
                    format!("JWT_EXPIRY must be seconds (or 30m, 12h, 7d), not `{v}`")
                })?)
            }
            None => Self::default().jwt_expiry,
        };
        let jwt_secret = var("JWT_SECRET").map(Secret::new);
        if jwt_secret.as_ref().is_some_and(|s| s.expose().len() < 32) {
            return Err("JWT_SECRET must be at least 32 characters".into());
        }
        Ok(Self {
            jwt_secret,
            jwt_expiry,
        })
    }
}

/// The delivery outbox (messages the host posts to channels on its own).
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// `KD_DELIVERY_MAX_ATTEMPTS` (default 10): failed attempts (5xx, network) before a
    /// message becomes a dead letter. Rate limits are waited out and not counted.
    pub max_attempts: u32,
    /// `KD_DELIVERY_RETRY_MS` (default 1000): the first retry delay; it doubles per attempt.
    pub retry_base: std::time::Duration,
    /// `KD_DELIVERY_RETRY_MAX_MS` (default 300000): the longest retry delay.
    pub retry_max: std::time::Duration,
    /// `DISCORD_GLOBAL_RATE_LIMIT` (default 50): bot requests per second, Discord's global
    /// limit for most bots (large bots get more from Discord).
    pub global_rate: u32,
    /// `KD_DELIVERY_GUILD_QUOTA` (default 1000): messages one guild may have waiting; more
    /// are recorded as dead letters at once (a guild's rules cannot fill the outbox).
    pub guild_quota: u64,
    /// `KD_DELIVERY_GUILD_SHARE` (default 50): the percentage of the global rate one guild
    /// may use, so the others always have room.
    pub guild_share_percent: u32,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            retry_base: std::time::Duration::from_millis(1000),
            retry_max: std::time::Duration::from_millis(300_000),
            global_rate: 50,
            guild_quota: 1000,
            guild_share_percent: 50,
        }
    }
}

impl DeliverySettings {
    pub fn from_env() -> Result<Self, String> {
        let d = Self::default();
        Ok(Self {
            max_attempts: whole_number("KD_DELIVERY_MAX_ATTEMPTS", d.max_attempts.into(), 1)?
                as u32,
            retry_base: std::time::Duration::from_millis(whole_number(
                "KD_DELIVERY_RETRY_MS",
                d.retry_base.as_millis() as u64,
                1,
            )?),
            retry_max: std::time::Duration::from_millis(whole_number(
                "KD_DELIVERY_RETRY_MAX_MS",
                d.retry_max.as_millis() as u64,
                1,
            )?),
            global_rate: whole_number("DISCORD_GLOBAL_RATE_LIMIT", d.global_rate.into(), 1)?
                .min(u32::MAX as u64) as u32,
            guild_quota: whole_number("KD_DELIVERY_GUILD_QUOTA", d.guild_quota, 1)?,
            guild_share_percent: whole_number(
                "KD_DELIVERY_GUILD_SHARE",
                d.guild_share_percent.into(),
                1,
            )?
            .min(100) as u32,
        })
    }
}

/// A whole-number variable (`default` when unset); an error names it.
fn whole_number(name: &str, default: u64, min: u64) -> Result<u64, String> {
    match var(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("{name} must be a whole number ≥ {min}, not `{v}`")),
    }
}

/// `3600`, `30m`, `12h`, `7d`.
fn parse_duration_secs(v: &str) -> Option<u64> {
    let (num, unit) = match v.char_indices().last()? {
        (i, c @ ('s' | 'm' | 'h' | 'd')) => (&v[..i], c),
        _ => (v, 's'),
    };
    let n: u64 = num.trim().parse().ok()?;
    let mult = match unit {
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 1,
    };
    n.checked_mul(mult).filter(|s| *s > 0)
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
    /// `DISCORD_CLIENT_SECRET`: the OAuth2 client secret, for the Activity's token exchange.
    pub client_secret: Option<Secret>,
    /// `DISCORD_API_BASE`, default `https://discord.com` (a stand-in in tests and demo).
    pub api_base: String,
    /// `DISCORD_DEV_GUILD_ID`: register commands in this guild instead of globally.
    pub dev_guild: Option<String>,
    /// `DISCORD_ACTIVITIES=true`: the app has Activities (keep the entry-point command).
    pub activities: bool,
    /// `DISCORD_MEMBER_EVENTS=true`: ask for the privileged GUILD_MEMBERS intent (enable
    /// "Server Members Intent" in the developer portal) so rules get `on_member_join`.
    pub member_events: bool,
    /// `DISCORD_SHARDS` / `DISCORD_SHARD_COUNT`: which gateway shards to connect.
    pub shards: crate::discord::shards::ShardPlan,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn flag(name: &str) -> bool {
    var(name).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

impl DiscordSettings {
    /// Whether the REST base is Discord itself (not a stand-in).
    pub fn talks_to_discord(&self) -> bool {
        url::Url::parse(&self.api_base)
            .ok()
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
            .is_some_and(|h| {
                ["discord.com", "discordapp.com"]
                    .iter()
                    .any(|d| h == *d || h.ends_with(&format!(".{d}")))
            })
    }

    pub fn from_env() -> Result<Self, String> {
        Ok(Self {
            shards: crate::discord::shards::ShardPlan::parse(
                var("DISCORD_SHARDS").as_deref(),
                var("DISCORD_SHARD_COUNT").as_deref(),
            )?,
            public_key: var("DISCORD_PUBLIC_KEY"),
            application_id: var("DISCORD_APPLICATION_ID"),
            bot_token: var("DISCORD_BOT_TOKEN").map(Secret::new),
            client_secret: var("DISCORD_CLIENT_SECRET").map(Secret::new),
            api_base: var("DISCORD_API_BASE").unwrap_or_else(|| "https://discord.com".into()),
            dev_guild: var("DISCORD_DEV_GUILD_ID"),
            activities: flag("DISCORD_ACTIVITIES"),
            member_events: flag("DISCORD_MEMBER_EVENTS"),
        })
    }
}

/// Loads `.env` from the working directory if present. Values already in the environment win.
pub fn load_dotenv() -> Result<(), String> {
    super::dotenv::load(std::path::Path::new(".env"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn dev_mode_never_runs_with_real_discord_credentials() {
        use super::*;
        let mut s = Settings::default();
        s.activity.dev_mode = true;
        s.discord.api_base = "https://discord.com".into();
        assert!(s.check().is_ok(), "no credentials: nothing to protect");
        s.discord.client_secret = Some(Secret::new("x"));
        assert!(s.check().unwrap_err().contains("KD_ACTIVITY_DEV"));
        s.discord.api_base = "http://127.0.0.1:9999".into();
        assert!(s.check().is_ok(), "a stand-in");
    }

    #[test]
    fn durations_in_seconds_or_with_a_unit() {
        use super::parse_duration_secs as p;
        assert_eq!(p("3600"), Some(3600));
        assert_eq!(p("30m"), Some(1800));
        assert_eq!(p("7d"), Some(604_800));
        assert_eq!(p("0"), None);
        assert_eq!(p("soon"), None);
    }
}
