//! `kdhost standin discord|kaltura`: the stand-ins on their own, printing the settings that
//! point a host at them; also the host settings the demo and the tests use for them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use testkit::{DiscordStandIn, KalturaOptions, KalturaStandIn, StandInOptions};

use crate::kaltura::KalturaSettings;

/// Fixed seed: the demo's public key is the same every run.
pub const DEMO_SEED: [u8; 32] = *b"kaltura-discord demo signing key";

pub async fn discord(
    listen: SocketAddr,
    target: Option<String>,
    fixtures: Option<PathBuf>,
) -> anyhow::Result<ExitCode> {
    let guilds: serde_json::Value = match &fixtures {
        Some(path) => testkit::read_fixtures(path)?,
        None => DiscordStandIn::bundled_fixtures(),
    };
    let s = DiscordStandIn::start(
        listen,
        StandInOptions {
            seed: Some(DEMO_SEED),
            ..Default::default()
        },
    )
    .await?;
    let n = s.load_fixtures(&guilds).map_err(|e| match &fixtures {
        Some(p) => anyhow::anyhow!("{}: {e}", p.display()),
        None => anyhow::anyhow!(e),
    })?;
    if let Some(t) = &target {
        s.set_target(t);
    }
    println!("Discord stand-in on {} ({n} guilds)", s.base_url);
    println!("  DISCORD_API_BASE={}", s.base_url);
    println!("  DISCORD_PUBLIC_KEY={}", s.public_key_hex());
    println!("  DISCORD_APPLICATION_ID={}", s.application_id());
    println!("  DISCORD_BOT_TOKEN=standin-bot-token");
    println!(
        "  requests it received: GET {}/_testkit/requests",
        s.base_url
    );
    match &target {
        Some(t) => println!(
            "  send a command to {t}: curl -s -XPOST {}/_testkit/send -d '{{\"command\":\"help\"}}'",
            s.base_url
        ),
        None => println!(
            "  (start with --target http://HOST/interactions to send commands with POST /_testkit/send)"
        ),
    }
    super::serve::shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// `kdhost standin kaltura`: the Kaltura stand-in on its own.
pub async fn kaltura(
    listen: SocketAddr,
    partner_id: u64,
    admin_secret: String,
    fixtures: Option<PathBuf>,
    esearch: bool,
) -> anyhow::Result<ExitCode> {
    let fixtures = match &fixtures {
        Some(f) => testkit::kaltura::Fixtures::from_file(f)?,
        None => testkit::kaltura::Fixtures::bundled(),
    };
    let entries = fixtures.entries.len();
    let admin_secrets: Vec<String> = admin_secret
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    anyhow::ensure!(!admin_secrets.is_empty(), "--admin-secret is empty");
    let k = KalturaStandIn::start(
        listen,
        KalturaOptions {
            partner_id,
            admin_secrets,
            fixtures,
            esearch,
        },
    )
    .await?;
    println!(
        "Kaltura stand-in on {} (partner {partner_id}, {entries} entries)",
        k.url
    );
    println!("  KALTURA_SERVICE_URL={}", k.url);
    println!("  KALTURA_PARTNER_ID={partner_id}");
    println!("  KALTURA_ADMIN_SECRET=<the secret you gave>");
    println!("  KALTURA_KAF_URL={}   KALTURA_CDN_URL={}", k.url, k.url);
    println!("  calls it answered: GET {}/_testkit/requests", k.url);
    println!(
        "  inject a fault: curl -XPOST {}/_testkit/faults -H 'content-type: application/json' -d '{{\"action\":\"media.list\",\"kind\":\"status\",\"status\":503}}'",
        k.url
    );
    super::serve::shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}

/// The host's Kaltura settings for a stand-in (its URL for the API and the join links).
pub fn kaltura_settings(k: &KalturaStandIn) -> anyhow::Result<KalturaSettings> {
    KalturaSettings::new(
        Some(&k.url),
        k.partner_id(),
        k.admin_secret(),
        Some(DEMO_UICONF.into()),
        Some(&k.url),
        Some(&k.url),
        Duration::from_secs(5),
    )
    .map_err(anyhow::Error::msg)
}

/// The player configuration id the demo uses (the stand-in serves any).
const DEMO_UICONF: &str = "55501";
