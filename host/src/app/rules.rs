//! Step 3, rules: the guild rules (Rhai) with their storage and Kaltura reads.

use std::sync::Arc;

use anyhow::{Context, Result};

use super::connections::Connections;
use super::storage::Storage;
use crate::config::settings::ServeOptions;
use crate::scripts::Rules;
use crate::scripts::rules::RulesKaltura;
use crate::scripts::sandbox::Limits;

pub fn rules(opts: &ServeOptions, storage: &Storage, conn: &Connections) -> Result<Arc<Rules>> {
    std::fs::create_dir_all(&opts.scripts)
        .with_context(|| format!("creating the rules folder {}", opts.scripts.display()))?;
    let rules = Arc::new(Rules::new(
        &opts.scripts,
        Limits::default(),
        Some(storage.stores.kv.clone()),
        conn.kaltura.clone().map(|account| RulesKaltura {
            account,
            grants: storage.grants.clone(),
        }),
    ));
    // Problems are reported with the startup report.
    rules.load_all();
    Ok(rules)
}
