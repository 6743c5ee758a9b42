//! `/api/v1/activity/launch`: what the caller's last Watch Together press asked for, so the
//! Activity that Discord opens next can start on that video.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Audience, ForActivity, SubjectKind};
use super::error::ApiError;
use super::{ApiState, ErrorBody, check_snowflake, err, query};
use crate::activity::protocol;
use crate::activity::signin::{self, SignInError};

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LaunchQuery {
    /// The channel the Activity runs in (the SDK's `channelId`).
    channel_id: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PendingLaunch {
    /// The full id of the control that launched it, e.g.
    /// `kaltura-videos:kaltura-video-search:watch:1_abcd1234`.
    custom_id: String,
    /// The plugin that owns the control.
    plugin: String,
}

#[utoipa::path(get, path = "/api/v1/activity/launch", tag = "activity", params(LaunchQuery),
    security(("bearer" = [])),
    responses((status = 200, body = PendingLaunch), (status = 404, body = ErrorBody, description = "No recent launch by you in that channel")))]
pub async fn launch(
    State(s): State<Arc<ApiState>>,
    ForActivity(claims): ForActivity,
    q: Result<Query<LaunchQuery>, QueryRejection>,
) -> Result<Json<PendingLaunch>, ApiError> {
    let q = query(q)?;
    check_snowflake("channel_id", &q.channel_id)?;
    if claims.kind != SubjectKind::Discord {
        return Err(err(
            StatusCode::FORBIDDEN,
            "forbidden",
            "launches belong to Discord users",
        ));
    }
    let l = s
        .launches
        .get(&q.channel_id, &claims.sub)
        .await
        .ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                "not_found",
                "no recent Watch Together launch by you in that channel",
            )
        })?;
    let plugin = l
        .custom_id
        .split(':')
        .next()
        .unwrap_or_default()
        .to_string();
    Ok(Json(PendingLaunch {
        custom_id: l.custom_id,
        plugin,
    }))
}

/// How long an Activity's host token lives (it is re-issued on every launch).
const ACTIVITY_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityTokenRequest {
    /// The `code` from the Embedded App SDK's `authorize`.
    code: String,
    /// Dev/demo mode only, with `code: "mock_code"`: who the mock user is (each browser tab
    /// picks its own).
    #[serde(default)]
    mock_user: Option<MockUser>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MockUser {
    id: String,
    username: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActivityToken {
    /// Discord's access token, for the SDK's `authenticate`.
    access_token: String,
    token_type: String,
    /// Seconds.
    expires_in: u64,
    scope: String,
    /// The verified user (`GET /users/@me`).
    #[schema(value_type = Object)]
    user: serde_json::Value,
    /// A host JWT bound to that user, for `/api/v1` and the sync socket.
    token: String,
    /// Seconds.
    token_expires_in: u64,
}

/// The Activity's OAuth2 step: the code from `authorize` is exchanged with Discord
/// (form-encoded, with the client secret), the user is verified with `GET /users/@me`, and
/// a short-lived host token bound to that user is issued with Discord's access token.
#[utoipa::path(post, path = "/api/v1/activity/token", tag = "activity", request_body = ActivityTokenRequest,
    responses((status = 200, body = ActivityToken), (status = 400, body = ErrorBody, description = "Discord refused the code (its reason is quoted)"), (status = 503, body = ErrorBody, description = "DISCORD_CLIENT_SECRET or JWT_SECRET is not set")))]
pub async fn token(
    State(s): State<Arc<ApiState>>,
    body: Result<Json<ActivityTokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ActivityToken>, ApiError> {
    let jwt = s.jwt()?;
    let Json(req) = body.map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("{}: send {{\"code\": \"...\"}}", e.body_text()),
        )
    })?;
    if req.code.is_empty() || req.code.len() > 200 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            "`code` is 1 to 200 characters",
        ));
    }
    let (grant, user) = if req.code == signin::MOCK_CODE {
        let who = req
            .mock_user
            .as_ref()
            .map(|m| (m.id.as_str(), m.username.as_str()));
        signin::mock(s.activity_dev, who).map_err(sign_in_error)?
    } else {
        let grant = signin::exchange(s.discord.as_deref(), s.client_secret.as_ref(), &req.code)
            .await
            .map_err(sign_in_error)?;
        let (_, _, user) = s.verified_discord_user(&grant.access_token).await?;
        (grant, user)
    };
    let id = user["id"].as_str().unwrap_or_default();
    let name = user["global_name"]
        .as_str()
        .or(user["username"].as_str())
        .unwrap_or_default();
    let ttl = ACTIVITY_TOKEN_TTL.min(jwt.expiry);
    let (token, _) = jwt.issue_for(
        Audience::Activity,
        id,
        SubjectKind::Discord,
        name,
        signin::avatar_of(&user),
        ttl,
    )?;
    Ok(Json(ActivityToken {
        access_token: grant.access_token,
        token_type: grant.token_type,
        expires_in: grant.expires_in,
        scope: grant.scope,
        user,
        token,
        token_expires_in: ttl.as_secs(),
    }))
}

fn sign_in_error(e: SignInError) -> ApiError {
    let (status, code) = match &e {
        SignInError::MockOff | SignInError::CodeRefused(_) => {
            (StatusCode::BAD_REQUEST, "invalid_code")
        }
        SignInError::NoMockUser => (StatusCode::BAD_REQUEST, "invalid_body"),
        SignInError::BadMockUser => (StatusCode::BAD_REQUEST, "invalid_query"),
        SignInError::NotConfigured => (StatusCode::SERVICE_UNAVAILABLE, "discord_not_configured"),
        SignInError::Unavailable | SignInError::NoAccessToken => {
            (StatusCode::BAD_GATEWAY, "discord_unavailable")
        }
    };
    err(status, code, e.to_string())
}

/// The token a client offers as `Sec-WebSocket-Protocol: kd-sync, <token>` (browsers can
/// set no other header on a WebSocket), or as `Authorization: Bearer` (other clients).
fn socket_token(headers: &axum::http::HeaderMap) -> Option<String> {
    let offered: Vec<&str> = headers
        .get_all(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    if offered.contains(&protocol::SUBPROTOCOL) {
        let token = offered.iter().find(|p| **p != protocol::SUBPROTOCOL);
        if let Some(t) = token {
            return Some(t.to_string());
        }
    }
    super::auth::bearer_token(headers).map(String::from)
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SyncQuery {
    /// The SDK's `instanceId`: one room per Activity instance.
    instance_id: String,
    /// Refused: the token never goes in the URL (proxies log URLs). Send it as the second
    /// value of `Sec-WebSocket-Protocol` (`kd-sync, <token>`).
    token: Option<String>,
    /// The SDK's `channelId`: the room opens on what was launched there.
    channel_id: Option<String>,
}

/// The sync room of an Activity instance (WebSocket; protocol in `host/src/activity/`).
/// Refusals are close codes: 4001 bad token, 4003 not in the instance, 4008 too many bad
/// messages, 4009 a message too large, 4010 no heartbeat, 4011 replaced by a newer connection.
#[utoipa::path(get, path = "/api/v1/activity/sync", tag = "activity", params(SyncQuery),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = ErrorBody), (status = 426, body = ErrorBody, description = "Not a WebSocket upgrade")))]
pub async fn sync(
    State(s): State<Arc<ApiState>>,
    ws: axum::extract::WebSocketUpgrade,
    headers: axum::http::HeaderMap,
    q: Result<Query<SyncQuery>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let q = query(q)?;
    let rooms = s.rooms.clone();
    let caller = match (s.jwt(), q.token.is_some(), socket_token(&headers)) {
        (Err(e), ..) => Err(e.message),
        (_, true, _) => Err(format!(
            "the token goes in Sec-WebSocket-Protocol ({}, <token>), never in the URL",
            protocol::SUBPROTOCOL
        )),
        (_, _, None) => Err(format!(
            "send the host token from POST /api/v1/activity/token as Sec-WebSocket-Protocol: {}, <token>",
            protocol::SUBPROTOCOL
        )),
        (Ok(jwt), _, Some(t)) => match jwt.check(&t) {
            Ok(c) if !c.is_for(Audience::Activity) => {
                Err("this is not an Activity token (POST /api/v1/activity/token)".into())
            }
            Ok(c) if c.kind == SubjectKind::Discord => {
                s.limits.check_subject(&c.sub)?;
                Ok(crate::activity::sync::Caller {
                    avatar: c.avatar.map(|hash| {
                        format!(
                            "https://cdn.discordapp.com/avatars/{}/{hash}.png?size=64",
                            c.sub
                        )
                    }),
                    user_id: c.sub,
                    name: c.name,
                })
            }
            Ok(_) => Err("Activity rooms are for Discord users".into()),
            Err(e) => Err(e.message),
        },
    };
    // Frames far above the protocol's limit are cut by the WebSocket layer itself; messages
    // are small, so small buffers (the defaults are 128 KiB each way, per connection).
    let ws = ws
        .protocols([protocol::SUBPROTOCOL])
        .max_message_size(64 * 1024)
        .max_frame_size(64 * 1024)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(8 * 1024);
    Ok(ws.on_upgrade(move |socket| rooms.serve(socket, caller, q.instance_id, q.channel_id)))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ActivityConfig {
    /// The application id (the SDK's client id).
    client_id: String,
    /// Dev/demo mode: the client may run on the SDK's mock outside Discord.
    dev_mode: bool,
    /// Which player the page uses: `kaltura` (Player v7, when Kaltura and
    /// `KALTURA_PLAYER_UICONF_ID` are set, outside dev mode) or `html5` (the demo media).
    player: &'static str,
    /// Where Player v7 talks to (no secrets), when Kaltura playback is set up.
    kaltura: Option<KalturaPlayerEnv>,
    /// The URL mappings the page installs inside Discord (`patchUrlMappings`); the same
    /// prefixes must be set in the Developer Portal, with `/` → this host.
    url_mappings: Vec<UrlMapping>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct KalturaPlayerEnv {
    partner_id: String,
    uiconf_id: String,
    /// The API (`env.serviceUrl`), e.g. `https://www.kaltura.com`.
    service_url: String,
    /// The CDN (`env.cdnUrl`, the script), e.g. `https://cdnapisec.kaltura.com`.
    cdn_url: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UrlMapping {
    /// The path prefix on the Activity's origin, e.g. `/kaltura-cdn`.
    prefix: String,
    /// The host (and path) it stands for, without a scheme, e.g. `cdnapisec.kaltura.com`.
    target: String,
}

/// A URL without its scheme and trailing slash (the Developer Portal's target form).
fn without_scheme(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_end_matches('/').to_string()
}

/// What the Activity's page needs before it signs in.
#[utoipa::path(get, path = "/api/v1/activity/config", tag = "activity",
    responses((status = 200, body = ActivityConfig)))]
pub async fn config(State(s): State<Arc<ApiState>>) -> Json<ActivityConfig> {
    let kaltura = s.kaltura.as_ref().and_then(|k| {
        let k = &k.settings;
        Some(KalturaPlayerEnv {
            partner_id: k.partner_id.to_string(),
            uiconf_id: k.player_uiconf_id.clone()?,
            service_url: k.service_url.trim_end_matches('/').to_string(),
            cdn_url: k.cdn_url.trim_end_matches('/').to_string(),
        })
    });
    let mut url_mappings = vec![UrlMapping {
        prefix: "/discord-cdn".into(),
        target: "cdn.discordapp.com".into(),
    }];
    if let Some(k) = &kaltura {
        url_mappings.push(UrlMapping {
            prefix: "/kaltura-cdn".into(),
            target: without_scheme(&k.cdn_url),
        });
        url_mappings.push(UrlMapping {
            prefix: "/kaltura-api".into(),
            target: without_scheme(&k.service_url),
        });
    }
    Json(ActivityConfig {
        client_id: s
            .discord
            .as_ref()
            .map(|d| d.application_id.clone())
            .unwrap_or_default(),
        dev_mode: s.activity_dev,
        player: if kaltura.is_some() && !s.activity_dev {
            "kaltura"
        } else {
            "html5"
        },
        kaltura,
        url_mappings,
    })
}
