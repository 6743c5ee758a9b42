//! Kaltura account settings from the environment.

use std::time::Duration;

use crate::config::secret::Secret;

#[derive(Debug, Clone)]
pub struct KalturaSettings {
    /// `KALTURA_SERVICE_URL`, default `https://www.kaltura.com`.
    pub service_url: String,
    /// `KALTURA_PARTNER_ID`.
    pub partner_id: u64,
    /// `KALTURA_ADMIN_SECRET`: comma-separated; the first signs, all validate (rotation).
    pub admin_secrets: Vec<Secret>,
    /// `KALTURA_PLAYER_UICONF_ID`: the Player v7 configuration for embeds and the Activity.
    pub player_uiconf_id: Option<String>,
    /// `KALTURA_CDN_URL`, default `https://cdnapisec.kaltura.com` (player script and iframe).
    pub cdn_url: String,
    /// `KALTURA_KAF_URL`, default `https://{partner}.kaf.kaltura.com` (meeting join links).
    pub kaf_url: String,
    /// `KALTURA_TIMEOUT_MS`, default 10000: one API request, all retries included.
    pub timeout: Duration,
}

fn var(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

impl KalturaSettings {
    /// `Ok(None)` when the account is not configured (Kaltura is off); an error names the
    /// variable that is set but wrong.
    pub fn from_env() -> Result<Option<Self>, String> {
        let (Some(pid), Some(secrets)) = (var("KALTURA_PARTNER_ID"), var("KALTURA_ADMIN_SECRET"))
        else {
            return Ok(None);
        };
        let partner_id: u64 = pid
            .parse()
            .map_err(|_| format!("KALTURA_PARTNER_ID must be a number, not `{pid}`"))?;
        let timeout = match var("KALTURA_TIMEOUT_MS") {
            Some(t) => Duration::from_millis(
                t.parse()
                    .map_err(|_| format!("KALTURA_TIMEOUT_MS must be milliseconds, not `{t}`"))?,
            ),
            None => Duration::from_secs(10),
        };
        Ok(Some(Self::new(
            var("KALTURA_SERVICE_URL").as_deref(),
            partner_id,
            &secrets,
            var("KALTURA_PLAYER_UICONF_ID"),
            var("KALTURA_CDN_URL").as_deref(),
            var("KALTURA_KAF_URL").as_deref(),
            timeout,
        )?))
    }

    /// Settings with defaults for what is not given (tests and the demo point at a stand-in).
    pub fn new(
        service_url: Option<&str>,
        partner_id: u64,
        secrets: &str,
        player_uiconf_id: Option<String>,
        cdn_url: Option<&str>,
        kaf_url: Option<&str>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let admin_secrets: Vec<Secret> = secrets
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Secret::new)
            .collect();
        if admin_secrets.is_empty() {
            return Err("KALTURA_ADMIN_SECRET is empty".into());
        }
        let service_url = service_url
            .unwrap_or("https://www.kaltura.com")
            .trim_end_matches('/')
            .to_string();
        url::Url::parse(&service_url)
            .map_err(|e| format!("KALTURA_SERVICE_URL `{service_url}` is not a URL: {e}"))?;
        Ok(Self {
            service_url,
            partner_id,
            admin_secrets,
            player_uiconf_id,
            cdn_url: cdn_url
                .unwrap_or("https://cdnapisec.kaltura.com")
                .trim_end_matches('/')
                .to_string(),
            kaf_url: kaf_url
                .map(|u| u.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("https://{partner_id}.kaf.kaltura.com")),
            timeout,
        })
    }
}
