//! `kdhost db migrate` and `kdhost db import --sqlite DIR`: the PostgreSQL schema, and a
//! single instance's SQLite data moved into it.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Result, bail};

use crate::store::postgres::{PostgresStore, import, migrations};

/// `KD_DATABASE_URL` (or `--database-url`), or an error saying how to set it.
pub fn required_url(database_url: Option<String>) -> Result<String> {
    match database_url.filter(|u| !u.trim().is_empty()) {
        Some(u) => Ok(u),
        None => bail!(
            "no database: set KD_DATABASE_URL (or --database-url) to postgres://user:password@host:5432/db"
        ),
    }
}

/// Applies the migrations the database lacks and says which ran.
pub async fn migrate(database_url: Option<String>) -> Result<ExitCode> {
    let store = PostgresStore::connect_only(&required_url(database_url)?)?;
    let applied = migrations::apply(&store).await?;
    if applied.is_empty() {
        println!(
            "{}: schema is current (version {})",
            store.target(),
            migrations::latest()
        );
    }
    for m in applied {
        println!(
            "{}: applied migration {} ({})",
            store.target(),
            m.version,
            m.name
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Moves `sqlite_dir/kdhost.sqlite3` into the (empty) PostgreSQL database.
pub async fn import(database_url: Option<String>, sqlite_dir: &Path) -> Result<ExitCode> {
    let store = PostgresStore::connect(&required_url(database_url)?).await?;
    println!(
        "importing {} into {} (one transaction: all or nothing)",
        sqlite_dir.join("kdhost.sqlite3").display(),
        store.target()
    );
    let done = import::import_sqlite(&store, sqlite_dir, |table, n| {
        println!("  {table}: {n} rows");
    })
    .await?;
    println!(
        "imported {} kv values, {} metadata keys, {} events, {} messages, {} audit entries, {} notification preferences",
        done.kv, done.meta, done.inbox, done.outbox, done.audit, done.preferences
    );
    println!(
        "next: start every instance with KD_DATABASE_URL set (the SQLite file is left as it was)"
    );
    Ok(ExitCode::SUCCESS)
}

/// Puts a single instance's rules folder and plugin components into the shared database
/// (as `kdhost script import` and `kdhost plugin publish` do): every rule checked first,
/// every component checked as the host loads it; the first refusal stops the import.
pub async fn import_folders(store: &PostgresStore, scripts: &Path, plugins: &Path) -> Result<()> {
    if scripts.is_dir() {
        super::script::import_rules(store, scripts).await?;
    }
    for path in crate::plugins::registry::wasm_files(plugins) {
        let bytes = std::fs::read(&path)?;
        super::plugin::publish::publish_component(store, bytes, &path)
            .await?
            .map_err(|r| anyhow::anyhow!("{}: not published: {r}", path.display()))?;
    }
    Ok(())
}
