//! Step 7, discord: the dispatcher (plugins' and the host's own commands), the signed
//! interactions endpoint, and command sync.

use std::sync::Arc;

use super::connections::Connections;
use super::storage::Storage;
use crate::config::admin::ConfigAdmin;
use crate::config::settings::{ServeOptions, Settings};
use crate::discord::commands::{self, SyncTarget};
use crate::discord::dispatch::{ActivityLaunch, Dispatcher};
use crate::discord::host_commands::HostCommands;
use crate::discord::interactions::InteractionsEndpoint;
use crate::plugins::Registry;
use crate::scripts::Rules;

pub struct Discord {
    pub dispatcher: Arc<Dispatcher>,
    pub endpoint: Arc<InteractionsEndpoint>,
}

/// What the host's own commands act on: guild rules, configuration, personal data.
pub struct Owned<'a> {
    pub rules: &'a Arc<Rules>,
    pub admin: &'a Arc<ConfigAdmin>,
    pub privacy: &'a Arc<crate::privacy::Privacy>,
}

pub fn discord(
    opts: &ServeOptions,
    settings: &Settings,
    storage: &Storage,
    conn: &Connections,
    registry: &Arc<Registry>,
    owned: Owned<'_>,
) -> Discord {
    let Owned {
        rules,
        admin,
        privacy,
    } = owned;
    let activity = ActivityLaunch {
        enabled: settings.discord.activities,
        public_url: opts
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", opts.listen)),
    };
    let host_commands = Arc::new(HostCommands {
        admin: admin.clone(),
        rules: rules.clone(),
        outbox: conn.outbox.clone(),
        privacy: privacy.clone(),
        notify: crate::notify::commands::NotifyCommand {
            preferences: storage.stores.preferences.clone(),
            guilds: storage.guilds.clone(),
        },
    });
    let dispatcher = Arc::new(Dispatcher::new(
        registry.clone(),
        storage.guilds.clone(),
        conn.rest.clone(),
        &storage.shared,
        host_commands,
        activity,
    ));
    if let (Some(rest), Some(_)) = (&conn.rest, &settings.discord.bot_token) {
        let target = SyncTarget {
            dev_guild: settings.discord.dev_guild.clone(),
            activities: settings.discord.activities,
        };
        tokio::spawn(commands::run_sync_loop(
            registry.clone(),
            rest.clone(),
            storage.stores.meta.clone(),
            target,
            Some(rules.clone()),
            storage.leadership.clone(),
        ));
    }
    let endpoint = Arc::new(InteractionsEndpoint {
        verifier: conn.verifier.clone(),
        seen: Default::default(),
        dispatcher: dispatcher.clone(),
    });
    Discord {
        dispatcher,
        endpoint,
    }
}
