//! The host side of each capability interface: one file per grant, each with a struct
//! holding only what that capability needs (as Spin's factors do). Every call's store
//! reaches them through one shared [`Capabilities`].

mod config;
mod discord;
mod host;
mod http;
mod kaltura;
mod kv;
mod log;

use std::sync::Arc;

pub use config::ConfigCap;
pub use discord::DiscordCap;
pub use host::{Catalog, HostCap};
pub use http::HttpCap;
pub use kaltura::KalturaCap;
pub use kv::KvCap;

/// Every capability's host state, shared by all calls.
pub struct Capabilities {
    pub config: ConfigCap,
    pub discord: DiscordCap,
    pub host: HostCap,
    pub http: HttpCap,
    pub kaltura: KalturaCap,
    pub kv: KvCap,
}

impl Capabilities {
    /// The capabilities over one guild configuration: `discord` holds the Discord side,
    /// `catalog` is what `host.info` reports of the loaded plugins (the registry keeps it).
    pub fn new(
        kv: Arc<dyn crate::store::KvStore>,
        guilds: Arc<crate::config::guild::GuildConfigs>,
        discord: DiscordCap,
        kaltura: Option<Arc<crate::kaltura::Kaltura>>,
        catalog: Arc<arc_swap::ArcSwap<host::Catalog>>,
    ) -> Self {
        Self {
            config: ConfigCap {
                guilds: guilds.clone(),
            },
            host: HostCap::new(catalog),
            http: HttpCap::default(),
            kaltura: KalturaCap {
                kaltura,
                guilds,
                // Role names for the guild's role mapping come from Discord's role list.
                directory: discord.directory.clone(),
            },
            kv: KvCap { store: kv },
            discord,
        }
    }

    /// Nothing external: an in-memory store, no Discord, no Kaltura. What `plugin check`
    /// loads components with (a manifest call reaches no capability) and benches use.
    pub fn offline() -> Arc<Self> {
        use crate::config::guild::GuildConfigs;
        use crate::discord::guilds::GuildDirectory;
        let stores = crate::store::Stores::in_memory().expect("in-memory sqlite");
        let guilds = Arc::new(GuildConfigs::default());
        let directory = Arc::new(GuildDirectory::new(None));
        let outbox = crate::delivery::Outbox::new(
            stores.outbox.clone(),
            "offline",
            "offline".into(),
            None,
            directory.clone(),
            guilds.clone(),
            Default::default(),
        );
        let discord = DiscordCap {
            rest: None,
            tokens: Arc::new(crate::store::memory::MemoryTokens::default()),
            directory,
            guilds: guilds.clone(),
            outbox,
        };
        Arc::new(Self::new(
            stores.kv,
            guilds,
            discord,
            None,
            Default::default(),
        ))
    }
}
