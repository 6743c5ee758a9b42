//! Step 8, api: `/api/v1` (JWT, service accounts, per-IP limits) and the Activity's sync
//! rooms.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use super::connections::Connections;
use super::storage::Storage;
use crate::activity::sync::{InstanceCheck, SyncRooms};
use crate::api::ApiState;
use crate::api::auth::{Jwt, ServiceAccounts};
use crate::api::limits::HttpLimits;
use crate::config::admin::ConfigAdmin;
use crate::config::settings::{ServeOptions, Settings};
use crate::scripts::Rules;

pub fn api(
    opts: &ServeOptions,
    settings: &Settings,
    storage: &Storage,
    conn: &Connections,
    rules: &Arc<Rules>,
    admin: Arc<ConfigAdmin>,
    privacy: Arc<crate::privacy::Privacy>,
) -> Result<Arc<ApiState>> {
    // Discord says who is in an Activity instance (bot token); dev mode runs on the mock.
    let check = conn
        .rest
        .clone()
        .filter(|r| r.has_bot_token() && !settings.activity.dev_mode)
        .map(InstanceCheck::new);
    let grace = settings.activity.grace.unwrap_or(Duration::from_secs(5));
    Ok(Arc::new(ApiState {
        limits: Arc::new(HttpLimits::new(&settings.http)),
        jwt: settings
            .api
            .jwt_secret
            .as_ref()
            .map(|secret| Jwt::new(secret, settings.api.jwt_expiry)),
        kaltura: conn.kaltura.clone(),
        discord: conn.rest.clone(),
        directory: conn.directory.clone(),
        guilds: storage.guilds.clone(),
        service_accounts: ServiceAccounts::load(&opts.config.join("api.json"))?,
        launches: storage.shared.launches.clone(),
        admin,
        privacy,
        deliveries: storage.stores.outbox.clone(),
        rules: rules.clone(),
        client_secret: settings.discord.client_secret.clone(),
        activity_dev: settings.activity.dev_mode,
        rooms: SyncRooms::new(&storage.shared, check, grace, storage.stopping.clone()),
    }))
}
