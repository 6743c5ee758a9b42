//! Step 5, reload: one watcher over the plugins folder, the operator's grants, the rules
//! and the guild config files; `None` (logged) when the folders cannot be watched.

use std::sync::Arc;

use super::connections::Connections;
use super::storage::Storage;
use crate::config::guild::GuildFiles;
use crate::config::settings::ServeOptions;
use crate::plugins::Registry;
use crate::plugins::grants::GrantsReload;
use crate::plugins::registry::PluginFolder;
use crate::reload::{self, HotReload, Reloadable};
use crate::scripts::Rules;
use crate::scripts::rules::RuleFolder;

pub fn reload(
    opts: &ServeOptions,
    storage: &Storage,
    conn: &Connections,
    registry: &Arc<Registry>,
    rules: &Arc<Rules>,
) -> Option<HotReload> {
    // The first that claims a changed file gets it: plugins.json before the guild files.
    let things: Vec<Arc<dyn Reloadable>> = vec![
        Arc::new(PluginFolder::new(registry.clone(), &opts.plugins)),
        Arc::new(GrantsReload::new(
            registry.clone(),
            conn.kaltura.clone(),
            &opts.config,
        )),
        Arc::new(RuleFolder::new(rules.clone())),
        Arc::new(GuildFiles::new(storage.guilds.clone(), &opts.config)),
    ];
    reload::start(things)
        .inspect_err(
            |e| tracing::warn!(error = %e, "hot reload is off: the folders cannot be watched"),
        )
        .ok()
}
