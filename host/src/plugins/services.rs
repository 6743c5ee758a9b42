//! The host services that capability calls reach (shared by every call).

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use arc_swap::ArcSwap;

use super::bindings::kaltura_discord::plugin::host::PluginInfo;
use crate::config::guild::GuildConfigs;
use crate::delivery::Outbox;
use crate::discord::guilds::GuildDirectory;
use crate::discord::launches::Launches;
use crate::discord::rest::DiscordRest;
use crate::discord::tokens::InteractionTokens;
use crate::discord::voice::VoiceStates;
use crate::kaltura::Kaltura;
use crate::store::Store;

pub struct Services {
    pub store: Arc<Store>,
    /// Discord REST, when an application id (and, for channel messages, a bot token) is set.
    pub discord: Option<Arc<DiscordRest>>,
    pub tokens: Arc<InteractionTokens>,
    /// Guilds, roles and members as Discord reports them (cached).
    pub discord_guilds: Arc<GuildDirectory>,
    /// Voice channels people are in, from the gateway.
    pub voice: Arc<VoiceStates>,
    /// Activity launches waiting for their Activity.
    pub launches: Arc<Launches>,
    /// Outbound clients for the `http` capability (public addresses only, no redirects).
    pub egress: super::egress::Egress,
    pub guilds: Arc<GuildConfigs>,
    /// The Kaltura account, when `KALTURA_PARTNER_ID` and `KALTURA_ADMIN_SECRET` are set.
    pub kaltura: Option<Arc<Kaltura>>,
    /// What `host.info` reports about the loaded plugins; the registry keeps it current.
    pub catalog: ArcSwap<Vec<PluginInfo>>,
    /// (service, state) pairs for `host.info`, e.g. ("discord-gateway", "off: set DISCORD_BOT_TOKEN").
    pub status: ArcSwap<Vec<(String, String)>>,
    pub started: Instant,
    /// The delivery outbox (set once the app has built it): plugins' channel messages go
    /// through it like every other message the host posts.
    pub outbox: OnceLock<Arc<Outbox>>,
}

impl Services {
    pub fn new(
        store: Arc<Store>,
        discord: Option<Arc<DiscordRest>>,
        guilds: Arc<GuildConfigs>,
    ) -> Self {
        Self {
            store,
            discord_guilds: Arc::new(GuildDirectory::new(discord.clone())),
            discord,
            tokens: Arc::new(InteractionTokens::default()),
            launches: Arc::new(Launches::default()),
            voice: Arc::new(VoiceStates::default()),
            egress: Default::default(),
            guilds,
            kaltura: None,
            catalog: ArcSwap::from_pointee(Vec::new()),
            status: ArcSwap::from_pointee(Vec::new()),
            started: Instant::now(),
            outbox: OnceLock::new(),
        }
    }

    /// Services with nothing external configured (tests, `plugin check`).
    pub fn offline() -> Self {
        Self::new(
            Arc::new(Store::in_memory().expect("in-memory sqlite")),
            None,
            Arc::new(GuildConfigs::default()),
        )
    }
}
