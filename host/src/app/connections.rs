//! Step 2, connections: Discord (interaction verifier, REST, guild directory), Kaltura, and
//! the outbox that delivers to Discord.

use std::sync::Arc;

use anyhow::Result;

use super::storage::Storage;
use crate::config::settings::Settings;
use crate::delivery::Outbox;
use crate::discord::guilds::GuildDirectory;
use crate::discord::rest::DiscordRest;
use crate::discord::verify::InteractionVerifier;
use crate::kaltura::Kaltura;

pub struct Connections {
    pub verifier: Option<InteractionVerifier>,
    pub rest: Option<Arc<DiscordRest>>,
    pub directory: Arc<GuildDirectory>,
    pub kaltura: Option<Arc<Kaltura>>,
    pub outbox: Arc<Outbox>,
}

pub async fn connections(settings: &Settings, storage: &Storage) -> Result<Connections> {
    let discord = &settings.discord;
    let verifier = discord
        .public_key
        .as_deref()
        .map(InteractionVerifier::from_hex)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let rest = discord.application_id.as_deref().map(|app| {
        Arc::new(
            DiscordRest::new(&discord.api_base, app, discord.bot_token.clone())
                .with_limits(storage.shared.discord_limits.clone()),
        )
    });
    let directory = Arc::new(GuildDirectory::new(rest.clone()));
    let kaltura = settings.kaltura.clone().map(|k| Arc::new(Kaltura::new(k)));
    if let Some(k) = &kaltura {
        k.set_operator(storage.grants.load().kaltura().clone());
    }
    let stores = &storage.stores;
    let outbox = Outbox::new(
        stores.outbox.clone(),
        &storage.shared.instance_id,
        crate::delivery::nonce_prefix(stores.meta.as_ref()).await?,
        rest.clone(),
        directory.clone(),
        storage.guilds.clone(),
        settings.delivery.clone(),
    );
    outbox.unsubscribe_refusals_in(stores.preferences.clone());
    outbox.start();
    Ok(Connections {
        verifier,
        rest,
        directory,
        kaltura,
        outbox,
    })
}
