//! `kdhost config validate [DIR]` and `kdhost config schema`: the guild configuration checks
//! the host runs on every (re)load, offline.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;

use crate::config::guild::{self, GuildConfigs};
use crate::config::schema;
use crate::plugins::grants::GrantsConfig;

/// Checks every guild file (and plugins.json) under `dir`; prints one line per file and
/// every problem with its file and JSON path. Exit code 1 if anything is wrong.
pub fn validate(dir: &Path) -> Result<ExitCode> {
    if !dir.is_dir() {
        anyhow::bail!("{}: no such folder", dir.display());
    }
    let mut bad = 0;
    let files = guild::config_files(dir)?;
    for path in &files {
        let shown = path.display().to_string();
        let result = std::fs::read_to_string(path)
            .map_err(|e| format!("{shown}: {e}"))
            .and_then(|text| guild::check_text(&shown, &text).map(|_| ()));
        match result {
            Ok(()) => println!("ok      {shown}"),
            Err(e) => {
                bad += 1;
                println!("invalid {shown}");
                for line in e.lines() {
                    println!("        {line}");
                }
            }
        }
    }
    // The merge itself (and guild file names) as the host will see them.
    if bad == 0
        && let Err(e) = GuildConfigs::load(dir)
    {
        bad += 1;
        println!("invalid {e:#}");
    }
    let grants = dir.join("plugins.json");
    if grants.exists() {
        match GrantsConfig::load(&grants) {
            Ok(_) => println!("ok      {}", grants.display()),
            Err(e) => {
                bad += 1;
                println!("invalid {}\n        {e:#}", grants.display());
            }
        }
    }
    let checked = files.len() + usize::from(grants.exists());
    if bad == 0 {
        println!("{checked} file(s) valid");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{bad} of {checked} file(s) invalid");
        Ok(ExitCode::FAILURE)
    }
}

/// Prints the JSON Schema of guild files (what `config/schema.json` holds).
pub fn print_schema() -> Result<ExitCode> {
    print!("{}", schema::json_schema_text());
    Ok(ExitCode::SUCCESS)
}

/// `kdhost config import [DIR]`: the guild overrides in `DIR/guilds/*.json`, checked as the
/// host checks them, put into the shared database (audited as the operator's); every
/// instance applies them within a second.
pub async fn import(dir: &Path, database_url: Option<String>) -> Result<ExitCode> {
    use crate::store::postgres::PostgresStore;
    let url = super::db::required_url(database_url)?;
    let store = PostgresStore::connect(&url).await?;
    let imported = import_guild_configs(&store, dir).await?;
    for (id, version) in &imported {
        println!("imported guild {id} (version {version})");
    }
    println!(
        "{} guild configurations in {}; instances apply them at once",
        imported.len(),
        store.target()
    );
    Ok(ExitCode::SUCCESS)
}

/// Puts the guild overrides of a configuration folder into the shared database if every
/// file is valid; returns each guild and its new version.
pub async fn import_guild_configs(
    store: &crate::store::postgres::PostgresStore,
    dir: &Path,
) -> Result<Vec<(String, i64)>> {
    // Everything is checked before anything is stored.
    let guilds = GuildConfigs::load(dir)
        .map_err(|e| anyhow::anyhow!("{}: not imported:\n{e}", dir.display()))?;
    let mut imported = Vec::new();
    for id in guilds.guild_ids() {
        let version = store
            .import_guild_config(&id, &guilds.guild_override(&id))
            .await?;
        imported.push((id, version));
    }
    Ok(imported)
}
