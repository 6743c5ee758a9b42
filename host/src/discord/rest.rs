//! Outbound Discord REST (`{DISCORD_API_BASE}/api/v10`), honouring Discord's rate limits:
//! per-route buckets from the `X-RateLimit-*` headers, 429 + `Retry-After` retried, the
//! global limit (50/s) paced with governor, and transient 5xx retried with backoff.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::invalid_requests::{self, Admission};
use crate::cache::TtlMap;
use crate::config::secret::Secret;
use crate::store::discord_limits::DiscordLimits;
use crate::store::memory::MemoryDiscordLimits;
use crate::telemetry::METRICS;

const MAX_ATTEMPTS: u32 = 5;
/// A 429 asking to wait longer than this is returned to the caller instead of waited out.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// A failed REST call, safe to show (no token, no URL with a token).
#[derive(Debug, thiserror::Error)]
pub enum RestError {
    #[error("Discord answered {status}: {message} (code {code})")]
    Api {
        status: u16,
        code: i64,
        message: String,
    },
    #[error("Discord rate limit: retry after {0:.1}s")]
    RateLimited(f64),
    #[error("could not reach Discord: {0}")]
    Network(String),
    #[error("{0}")]
    NotConfigured(&'static str),
    /// The host is holding back: too many of its recent Discord calls were refused.
    #[error(
        "the host is holding back its Discord calls for a while (too many were refused recently)"
    )]
    Throttled,
}

pub struct DiscordRest {
    client: reqwest::Client,
    api: String,
    pub application_id: String,
    bot_token: Option<Secret>,
    /// The bot's global pace, route buckets and invalid-answer count (Discord bans an IP
    /// at 10,000 invalid answers in 10 minutes), shared by every instance of the bot.
    limits: Arc<dyn DiscordLimits>,
    /// Access tokens Discord refused lately (by digest): asked again only after a while.
    oauth_refused: TtlMap<[u8; 32], (u16, String)>,
}

/// How long a refused access token is answered from memory.
const OAUTH_REFUSED_TTL: Duration = Duration::from_secs(300);
const OAUTH_REFUSED_MAX: usize = 10_000;

/// One REST call: `route` names the rate-limit bucket (method + path template + major id).
pub struct Call<'a> {
    pub method: Method,
    pub route: String,
    pub path: String,
    pub body: Option<&'a Value>,
    /// Interaction and webhook-token routes carry their own auth and skip the global limit.
    pub bot_auth: bool,
    /// Files sent with the message: the body goes as `payload_json` of a multipart form.
    pub files: &'a [Upload],
}

/// A file attached to a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A message with files, as Discord takes it: the message as `payload_json` (its
/// `attachments` naming each file by its index) and each file as `files[n]`.
fn multipart(body: Option<&Value>, files: &[Upload]) -> reqwest::multipart::Form {
    let mut payload = body.cloned().unwrap_or_else(|| serde_json::json!({}));
    payload["attachments"] = files
        .iter()
        .enumerate()
        .map(|(i, f)| serde_json::json!({"id": i, "filename": f.filename}))
        .collect();
    let mut form = reqwest::multipart::Form::new().text("payload_json", payload.to_string());
    for (i, f) in files.iter().enumerate() {
        let part = reqwest::multipart::Part::bytes(f.bytes.clone())
            .file_name(f.filename.clone())
            .mime_str(&f.content_type)
            .unwrap_or_else(|_| reqwest::multipart::Part::bytes(f.bytes.clone()));
        form = form.part(format!("files[{i}]"), part);
    }
    form
}

impl DiscordRest {
    pub fn new(api_base: &str, application_id: &str, bot_token: Option<Secret>) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!(
                "DiscordBot (https://github.com/kaltura-discord, ",
                env!("CARGO_PKG_VERSION"),
                ")"
            ))
            .timeout(Duration::from_secs(15))
            .build()
            .expect("static reqwest configuration");
        Self {
            client,
            api: format!("{}/api/v10", api_base.trim_end_matches('/')),
            application_id: application_id.to_string(),
            bot_token,
            limits: Arc::new(MemoryDiscordLimits::new(50)),
            oauth_refused: TtlMap::new(OAUTH_REFUSED_TTL, OAUTH_REFUSED_MAX),
        }
    }

    /// Waits or refuses as the invalid-answer count says (see [`invalid_requests`]).
    async fn admission(&self, essential: bool) -> Result<(), RestError> {
        match invalid_requests::admit(self.limits.invalid_count().await, essential) {
            Admission::Go => Ok(()),
            Admission::Pace(d) => {
                tokio::time::sleep(d).await;
                Ok(())
            }
            Admission::Refuse => {
                METRICS.discord_throttled.inc();
                Err(RestError::Throttled)
            }
        }
    }

    /// Spends the bot's limits from `limits` (shared with other instances, or paced at
    /// another global rate) instead of this client's own.
    pub fn with_limits(mut self, limits: Arc<dyn DiscordLimits>) -> Self {
        self.limits = limits;
        self
    }

    /// Waits for room for one bot-authenticated call the host makes through another
    /// client (serenity's gateway start-up asks `GET /gateway`), so it counts against the
    /// bot's shared global limit like every other.
    pub async fn book_bot_call(&self, route: &str) {
        self.limits.until_ready(route, true).await;
    }

    /// Waits for `guild`'s share of the bot's global rate (see
    /// [`DiscordLimits::until_guild_ready`]).
    pub async fn until_guild_ready(&self, guild: &str, per_second: u32) {
        self.limits.until_guild_ready(guild, per_second).await;
    }

    pub fn has_bot_token(&self) -> bool {
        self.bot_token.is_some()
    }

    pub async fn send(&self, call: Call<'_>) -> Result<Value, RestError> {
        self.send_with(call, MAX_ATTEMPTS).await
    }

    /// `send` with at most `attempts` tries: 1 for callers that keep their own durable
    /// retry schedule (the outbox), so a 429 or 5xx comes straight back to them.
    pub async fn send_with(&self, call: Call<'_>, attempts: u32) -> Result<Value, RestError> {
        let max = attempts.max(1);
        if call.bot_auth && self.bot_token.is_none() {
            return Err(RestError::NotConfigured(
                "this needs the bot token: set DISCORD_BOT_TOKEN",
            ));
        }
        let mut backoff = Duration::from_millis(250);
        for attempt in 1..=max {
            // Interaction responses (their own token, a person waiting) always go out.
            self.admission(!call.bot_auth).await?;
            self.limits.until_ready(&call.route, call.bot_auth).await;
            let mut req = self
                .client
                .request(call.method.clone(), format!("{}{}", self.api, call.path));
            if call.bot_auth {
                let token = self.bot_token.as_ref().expect("checked above");
                req = req.header("Authorization", format!("Bot {}", token.expose()));
            }
            if !call.files.is_empty() {
                req = req.multipart(multipart(call.body, call.files));
            } else if let Some(b) = call.body {
                req = req.json(b);
            }
            let resp = match req.send().await {
                Ok(r) => r,
                Err(e) if attempt < max && (e.is_connect() || e.is_timeout()) => {
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                    continue;
                }
                Err(e) => {
                    METRICS
                        .discord_rest
                        .with_label_values(&[&route_template(&call.route), "error"])
                        .inc();
                    return Err(RestError::Network(e.without_url().to_string()));
                }
            };
            let status = resp.status();
            METRICS
                .discord_rest
                .with_label_values(&[&route_template(&call.route), status.as_str()])
                .inc();
            self.limits
                .record_answer(status.as_u16(), shared_limit(resp.headers()))
                .await;
            self.record_bucket(&call.route, resp.headers()).await;
            if status == StatusCode::TOO_MANY_REQUESTS {
                let headers = resp.headers().clone();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let wait = retry_after(&headers, &body);
                let global = headers.contains_key("x-ratelimit-global")
                    || body["global"] == Value::Bool(true);
                tracing::warn!(route = %call.route, wait_s = wait.as_secs_f64(), global, "Discord rate limited us");
                if global {
                    // Every bot request waits, not just this one.
                    self.limits.pause_bot(wait).await;
                }
                if wait > MAX_WAIT || attempt == max {
                    return Err(RestError::RateLimited(wait.as_secs_f64()));
                }
                tokio::time::sleep(wait).await;
                continue;
            }
            if matches!(status.as_u16(), 502..=504) && attempt < max {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
                continue;
            }
            if status == StatusCode::NO_CONTENT {
                return Ok(Value::Null);
            }
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body);
            }
            return Err(RestError::Api {
                status: status.as_u16(),
                code: body["code"].as_i64().unwrap_or(0),
                message: body["message"].as_str().unwrap_or("no message").to_string(),
            });
        }
        unreachable!("the loop returns on its last attempt")
    }

    async fn record_bucket(&self, route: &str, h: &reqwest::header::HeaderMap) {
        let num = |k: &str| {
            h.get(k)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<f64>().ok())
        };
        if let (Some(rem), Some(after)) =
            (num("x-ratelimit-remaining"), num("x-ratelimit-reset-after"))
        {
            let reset_after = Duration::from_secs_f64(after.max(0.0));
            self.limits
                .learn_bucket(route, rem as u32, reset_after)
                .await;
        }
    }

    // ------------------------------------------------------------------ the calls we make

    /// The user an OAuth2 access token belongs to (`GET /users/@me` with `Bearer`): how
    /// the host verifies an identity before trusting it.
    pub async fn user_from_access_token(&self, access_token: &str) -> Result<Value, RestError> {
        self.token_check("GET users/@me (oauth)", "/users/@me", access_token)
            .await
    }

    /// The current authorization of an OAuth2 access token (`GET /oauth2/@me`): the
    /// application it was issued to, its scopes and (with `identify`) the user.
    pub async fn authorization_of(&self, access_token: &str) -> Result<Value, RestError> {
        self.token_check("GET oauth2/@me", "/oauth2/@me", access_token)
            .await
    }

    /// Asks Discord about an access token; a token it refused is answered from memory for
    /// a while (a stranger repeating a junk token costs one call, not one per try).
    async fn token_check(
        &self,
        route: &str,
        path: &str,
        access_token: &str,
    ) -> Result<Value, RestError> {
        use sha2::Digest;
        let key: [u8; 32] = sha2::Sha256::digest(access_token.as_bytes()).into();
        if let Some((status, message)) = self.oauth_refused.get(&key) {
            return Err(RestError::Api {
                status,
                code: 0,
                message,
            });
        }
        let req = self
            .client
            .get(format!("{}{path}", self.api))
            .bearer_auth(access_token);
        let out = self.oauth_call(route, req).await;
        if let Err(RestError::Api {
            status: status @ (401 | 403),
            message,
            ..
        }) = &out
        {
            self.oauth_refused.insert(key, (*status, message.clone()));
        }
        out
    }

    /// Exchanges an OAuth2 authorization code for an access token (`POST /oauth2/token`,
    /// form-encoded, with the client secret).
    pub async fn exchange_code(
        &self,
        client_secret: &Secret,
        code: &str,
    ) -> Result<Value, RestError> {
        let form = [
            ("client_id", self.application_id.as_str()),
            ("client_secret", client_secret.expose()),
            ("grant_type", "authorization_code"),
            ("code", code),
        ];
        let req = self
            .client
            .post(format!("{}/oauth2/token", self.api))
            .form(&form);
        self.oauth_call("POST oauth2/token", req).await
    }

    /// `GET /gateway/bot`: the recommended shard count and `session_start_limit`.
    pub async fn gateway_bot(&self) -> Result<Value, RestError> {
        self.send(Call {
            method: Method::GET,
            route: "GET gateway/bot".into(),
            path: "/gateway/bot".into(),
            body: None,
            bot_auth: true,
            files: &[],
        })
        .await
    }

    /// Waits for the IDENTIFY slot of `bucket` (see [`DiscordLimits::until_identify`]).
    pub async fn until_identify(&self, bucket: u32) {
        self.limits.until_identify(bucket).await;
    }

    /// Bulk-overwrite the application's commands, globally or in one guild.
    pub async fn put_commands(
        &self,
        guild: Option<&str>,
        commands: &Value,
    ) -> Result<Value, RestError> {
        let app = &self.application_id;
        let (route, path) = match guild {
            Some(g) => (
                format!("PUT commands guild {g}"),
                format!("/applications/{app}/guilds/{g}/commands"),
            ),
            None => (
                "PUT commands global".to_string(),
                format!("/applications/{app}/commands"),
            ),
        };
        self.send(Call {
            method: Method::PUT,
            route,
            path,
            body: Some(commands),
            bot_auth: true,
            files: &[],
        })
        .await
    }

    /// Answer an interaction out of band (gateway transport).
    pub async fn interaction_callback(
        &self,
        id: &str,
        token: &str,
        body: &Value,
    ) -> Result<Value, RestError> {
        self.send(Call {
            method: Method::POST,
            route: "POST interaction callback".into(),
            path: format!("/interactions/{id}/{token}/callback"),
            body: Some(body),
            bot_auth: false,
            files: &[],
        })
        .await
    }

    pub async fn edit_original(&self, token: &str, data: &Value) -> Result<Value, RestError> {
        self.webhook(Method::PATCH, token, "/messages/@original", Some(data), &[])
            .await
    }

    pub async fn delete_original(&self, token: &str) -> Result<Value, RestError> {
        self.webhook(Method::DELETE, token, "/messages/@original", None, &[])
            .await
    }

    pub async fn follow_up(&self, token: &str, data: &Value) -> Result<Value, RestError> {
        self.webhook(Method::POST, token, "", Some(data), &[]).await
    }

    /// A follow-up message with files attached.
    pub async fn follow_up_with_files(
        &self,
        token: &str,
        data: &Value,
        files: &[Upload],
    ) -> Result<Value, RestError> {
        self.webhook(Method::POST, token, "", Some(data), files)
            .await
    }

    async fn webhook(
        &self,
        method: Method,
        token: &str,
        tail: &str,
        body: Option<&Value>,
        files: &[Upload],
    ) -> Result<Value, RestError> {
        let app = &self.application_id;
        self.send(Call {
            route: format!("{method} webhook{tail}"),
            path: format!("/webhooks/{app}/{token}{tail}"),
            method,
            body,
            bot_auth: false,
            files,
        })
        .await
    }

    pub async fn create_message(&self, channel: &str, data: &Value) -> Result<Value, RestError> {
        self.create_message_with(channel, data, MAX_ATTEMPTS).await
    }

    /// One try (or a few): for the outbox, which retries durably on its own schedule.
    pub async fn create_message_with(
        &self,
        channel: &str,
        data: &Value,
        attempts: u32,
    ) -> Result<Value, RestError> {
        self.send_with(
            Call {
                method: Method::POST,
                route: format!("POST channel {channel} messages"),
                path: format!("/channels/{channel}/messages"),
                body: Some(data),
                bot_auth: true,
                files: &[],
            },
            attempts,
        )
        .await
    }

    /// The bot's direct-message channel with a user (`POST /users/@me/channels`); Discord
    /// answers the same channel every time.
    pub async fn open_dm(&self, user: &str, attempts: u32) -> Result<String, RestError> {
        let body = serde_json::json!({"recipient_id": user});
        let channel = self
            .send_with(
                Call {
                    method: Method::POST,
                    route: "POST users/@me/channels".into(),
                    path: "/users/@me/channels".into(),
                    body: Some(&body),
                    bot_auth: true,
                    files: &[],
                },
                attempts,
            )
            .await?;
        channel["id"]
            .as_str()
            .map(String::from)
            .ok_or(RestError::Api {
                status: 200,
                code: 0,
                message: "Discord answered a DM channel without an id".into(),
            })
    }

    pub async fn edit_message(
        &self,
        channel: &str,
        message: &str,
        data: &Value,
    ) -> Result<Value, RestError> {
        self.send(Call {
            method: Method::PATCH,
            route: format!("PATCH channel {channel} message"),
            path: format!("/channels/{channel}/messages/{message}"),
            body: Some(data),
            bot_auth: true,
            files: &[],
        })
        .await
    }

    pub async fn add_reaction(
        &self,
        channel: &str,
        message: &str,
        emoji: &str,
    ) -> Result<Value, RestError> {
        let emoji: String = url::form_urlencoded::byte_serialize(emoji.as_bytes()).collect();
        self.send(Call {
            method: Method::PUT,
            route: format!("PUT channel {channel} reaction"),
            path: format!("/channels/{channel}/messages/{message}/reactions/{emoji}/@me"),
            body: None,
            bot_auth: true,
            files: &[],
        })
        .await
    }
}

impl DiscordRest {
    /// An OAuth2-side call (user credentials, not the bot's: no bot rate-limit bucket),
    /// counted against the invalid-answer budget like every call. Errors keep Discord's
    /// words, in either of its shapes (`message`, or OAuth2's `error` and
    /// `error_description`).
    async fn oauth_call(
        &self,
        route: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<Value, RestError> {
        self.admission(false).await?;
        let out = oauth_answer(route, req).await;
        if let Err(RestError::Api { status, .. }) = &out {
            self.limits.record_answer(*status, false).await;
        }
        out
    }
}

async fn oauth_answer(route: &str, req: reqwest::RequestBuilder) -> Result<Value, RestError> {
    let resp = req
        .send()
        .await
        .map_err(|e| RestError::Network(e.without_url().to_string()))?;
    let status = resp.status();
    METRICS
        .discord_rest
        .with_label_values(&[route, status.as_str()])
        .inc();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(body);
    }
    let message = match (body["error"].as_str(), body["error_description"].as_str()) {
        (Some(e), Some(d)) => format!("{e}: {d}"),
        (Some(e), None) => e.to_string(),
        _ => body["message"].as_str().unwrap_or("no message").to_string(),
    };
    Err(RestError::Api {
        status: status.as_u16(),
        code: body["code"].as_i64().unwrap_or(0),
        message,
    })
}

/// Whether a 429 was for a shared resource (Discord does not count those against the bot).
fn shared_limit(h: &reqwest::header::HeaderMap) -> bool {
    h.get("x-ratelimit-scope")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("shared"))
}

/// A route as a metric label: ids (runs of 5+ digits) become `{id}`, so a label never
/// carries a guild, channel or message id (bounded series).
pub fn route_template(route: &str) -> String {
    let mut out = String::with_capacity(route.len());
    let mut digits = String::new();
    for c in route.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        if digits.len() >= 5 {
            out.push_str("{id}");
        } else {
            out.push_str(&digits);
        }
        digits.clear();
        out.push(c);
    }
    out.pop();
    out
}

/// Seconds to wait from a 429: the `Retry-After` header, else the body's `retry_after`.
fn retry_after(h: &reqwest::header::HeaderMap, body: &Value) -> Duration {
    let secs = h
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<f64>().ok())
        .or_else(|| body["retry_after"].as_f64())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs.clamp(0.0, 3600.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_labels_carry_route_templates_not_ids() {
        assert_eq!(
            route_template("POST channel 910000000000000001 messages"),
            "POST channel {id} messages"
        );
        assert_eq!(
            route_template("PUT commands guild 600000000000000042"),
            "PUT commands guild {id}"
        );
        assert_eq!(
            route_template("GET guilds/123/x 2024"),
            "GET guilds/123/x 2024"
        );
    }
}
