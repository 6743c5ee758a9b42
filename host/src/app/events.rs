//! Step 6, events: the Kaltura webhook intake, the event processor that turns accepted
//! events into messages, retention, and scheduled rules.

use std::sync::Arc;

use tokio::sync::Notify;

use super::connections::Connections;
use super::storage::Storage;
use crate::config::settings::Settings;
use crate::events::process::EventProcessor;
use crate::kaltura::webhook::WebhookIntake;
use crate::plugins::Registry;
use crate::scripts::Rules;
use crate::store::retention::Retention;

pub struct Events {
    pub processor: Arc<EventProcessor>,
    pub webhooks: Arc<WebhookIntake>,
}

pub fn events(
    settings: &Settings,
    storage: &Storage,
    conn: &Connections,
    registry: &Arc<Registry>,
    rules: &Arc<Rules>,
) -> Events {
    let stores = &storage.stores;
    let accepted = Arc::new(Notify::new());
    let processor = EventProcessor::new(
        stores,
        accepted.clone(),
        storage.guilds.clone(),
        conn.outbox.clone(),
        settings.kaltura.clone(),
        registry.clone(),
        rules.clone(),
    );
    processor.start();
    Retention {
        inbox: stores.inbox.clone(),
        outbox: stores.outbox.clone(),
        audit: stores.audit.clone(),
        kv: stores.kv.clone(),
        preferences: stores.preferences.clone(),
        settings: settings.retention.clone(),
    }
    .start(storage.leadership.clone());
    crate::scripts::schedule::start(
        rules.clone(),
        storage.guilds.clone(),
        conn.outbox.clone(),
        processor.clone(),
        storage.leadership.clone(),
    );
    let webhooks = Arc::new(WebhookIntake {
        secrets: settings
            .kaltura
            .as_ref()
            .map(|k| k.admin_secrets.clone())
            .unwrap_or_default(),
        inbox: stores.inbox.clone(),
        accepted,
    });
    Events {
        processor,
        webhooks,
    }
}
