//! Step 3, rules: the guild rules (Rhai) with their storage and Kaltura reads. On a shared
//! database the rules are rows there, followed by every instance; otherwise files.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::connections::Connections;
use super::storage::Storage;
use crate::cluster::changes::RuleChanges;
use crate::config::settings::ServeOptions;
use crate::scripts::Rules;
use crate::scripts::rules::RulesKaltura;
use crate::scripts::sandbox::Limits;
use crate::store::backend::Durable;

pub async fn rules(
    opts: &ServeOptions,
    storage: &Storage,
    conn: &Connections,
) -> Result<Arc<Rules>> {
    std::fs::create_dir_all(&opts.scripts)
        .with_context(|| format!("creating the rules folder {}", opts.scripts.display()))?;
    let rules = Arc::new(
        Rules::new(
            &opts.scripts,
            Limits::default(),
            Some(storage.stores.kv.clone()),
            conn.kaltura.clone().map(|account| RulesKaltura {
                account,
                grants: storage.grants.clone(),
            }),
        )
        .reading_subscriptions(storage.stores.preferences.clone()),
    );
    match (&storage.durable, &storage.follower) {
        (Durable::Postgres(pg), Some(follower)) => {
            let files = rules.file_count();
            if files > 0 {
                tracing::warn!(
                    folder = %opts.scripts.display(),
                    files,
                    "on PostgreSQL the rules come from the database, not this folder: `kdhost script import` puts them there"
                );
            }
            let changes = RuleChanges {
                store: pg.clone(),
                rules: rules.clone(),
            };
            follower
                .follow(Arc::new(changes))
                .await
                .context("reading the rules from the database")?;
        }
        // Problems are reported with the startup report.
        _ => {
            rules.load_all();
        }
    }
    Ok(rules)
}
