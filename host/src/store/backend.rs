//! Which durable backend serves this host: SQLite in the data folder (the default, one
//! process) or PostgreSQL (`KD_DATABASE_URL`, several instances), and how to ask whether
//! it answers (the startup report and `/readyz`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Result, bail};
use serde::Serialize;

use super::Stores;
use super::postgres::PostgresStore;

#[derive(Clone)]
pub enum Durable {
    Sqlite { file: PathBuf },
    Postgres(Arc<PostgresStore>),
}

/// What `/readyz` says about one backend.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BackendStatus {
    pub kind: &'static str,
    /// Where it is (never a password).
    pub target: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Durable {
    /// Opens the stores: PostgreSQL when `database_url` is set (migrations applied), else
    /// SQLite in `data`.
    pub async fn open(data: &Path, database_url: Option<&str>) -> Result<(Durable, Stores)> {
        match database_url.map(str::trim).filter(|u| !u.is_empty()) {
            None => Ok((
                Durable::Sqlite {
                    file: data.join("kdhost.sqlite3"),
                },
                Stores::sqlite(data)?,
            )),
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let store = Arc::new(PostgresStore::connect(url).await?);
                Ok((Durable::Postgres(store.clone()), Stores::all_in(store)))
            }
            Some(url) => bail!(
                "KD_DATABASE_URL must start with postgres:// (PostgreSQL), or be unset for SQLite in the data folder; got `{}`",
                super::postgres::redact(url)
            ),
        }
    }

    /// Whether several instances can share this backend.
    pub fn shared(&self) -> bool {
        matches!(self, Durable::Postgres(_))
    }

    /// `sqlite data/kdhost.sqlite3` or `postgresql postgres://kd@db:5432/kd`.
    pub fn describe(&self) -> String {
        match self {
            Durable::Sqlite { file } => format!("sqlite {}", file.display()),
            Durable::Postgres(pg) => format!("postgresql {}", pg.target()),
        }
    }

    /// One round trip to the backend.
    pub async fn status(&self) -> BackendStatus {
        match self {
            Durable::Sqlite { file } => BackendStatus {
                kind: "sqlite",
                target: file.display().to_string(),
                reachable: true,
                error: None,
            },
            Durable::Postgres(pg) => {
                let answer = pg.ping().await;
                BackendStatus {
                    kind: "postgresql",
                    target: pg.target().to_string(),
                    reachable: answer.is_ok(),
                    error: answer.err().map(|e| format!("{e:#}")),
                }
            }
        }
    }
}
