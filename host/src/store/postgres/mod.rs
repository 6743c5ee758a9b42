//! The cluster backend: PostgreSQL, the durable truth several instances share. A pool of
//! connections (deadpool), every schema change a numbered migration applied under an
//! advisory lock (so instances starting together apply each once), and lease times taken
//! from the database's clock (instances' clocks may disagree; the database's is one).

use anyhow::{Context, Result};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

mod audit;
pub mod changes;
pub mod guild_configs;
pub mod import;
mod inbox;
pub mod instances;
mod kv;
pub mod leases;
mod meta;
pub mod migrations;
mod outbox;
pub mod plugins;
mod preferences;
pub mod rules;

/// How long a caller waits for a pooled connection (or a new one) before the call fails.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct PostgresStore {
    pool: Pool,
    /// For connections of their own (LISTEN).
    config: tokio_postgres::Config,
    /// Where it points, without a password (for logs, the startup report, `/readyz`).
    target: String,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/db`) and applies the
    /// migrations this build knows.
    pub async fn connect(url: &str) -> Result<Self> {
        let store = Self::connect_only(url)?;
        migrations::apply(&store).await?;
        Ok(store)
    }

    /// A pool for `url`; nothing is checked until the first call.
    pub fn connect_only(url: &str) -> Result<Self> {
        let target = redact(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .with_context(|| format!("KD_DATABASE_URL ({target}) is not a PostgreSQL URL"))?;
        config.connect_timeout(CONNECT_TIMEOUT);
        if config.get_application_name().is_none() {
            config.application_name("kdhost");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(CONNECT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .context("building the PostgreSQL pool")?;
        Ok(Self {
            pool,
            config,
            target,
        })
    }

    /// `host:port/db` (never the password).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// One round trip: whether the server answers.
    pub async fn ping(&self) -> Result<()> {
        self.client().await?.simple_query("SELECT 1").await?;
        Ok(())
    }

    async fn client(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .with_context(|| format!("PostgreSQL at {} is not reachable", self.target))
    }
}

/// `postgres://user:secret@host:5432/db` → `postgres://user@host:5432/db`: a URL safe to
/// print.
pub fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(None);
            }
            u.set_query(None);
            u.to_string()
        }
        Err(_) => "(unparseable URL)".to_string(),
    }
}

/// The database's clock in Unix milliseconds, as SQL: leases are stamped and compared
/// with it, whichever instance asks.
const NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";

#[cfg(test)]
mod tests {
    #[test]
    fn urls_are_printed_without_their_password() {
        assert_eq!(
            super::redact("postgres://kd:s3cret@db:5432/kd?sslmode=disable"),
            "postgres://kd@db:5432/kd"
        );
        assert!(!super::redact("not a url s3cret").contains("s3cret"));
    }
}
