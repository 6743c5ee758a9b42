//! Step 5, reload: one watcher over the plugins folder, the operator's grants, the rules
//! and the guild config files (on a shared database, the operator's files only); `None` (logged) when the folders cannot be watched.

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
    let mut things: Vec<Arc<dyn Reloadable>> = vec![Arc::new(GrantsReload::new(
        registry.clone(),
        conn.kaltura.clone(),
        &opts.config,
    ))];
    // On a shared database, plugins, rules and guild overrides are rows there (followed by
    // every instance); the operator's files stay files.
    if storage.follower.is_none() {
        things.insert(
            0,
            Arc::new(PluginFolder::new(registry.clone(), &opts.plugins)),
        );
        things.push(Arc::new(RuleFolder::new(rules.clone())));
    }
    things.push(Arc::new(GuildFiles::new(
        storage.guilds.clone(),
        &opts.config,
    )));
    reload::start(things)
        .inspect_err(
            |e| tracing::warn!(error = %e, "hot reload is off: the folders cannot be watched"),
        )
        .ok()
}
