//! The JSON API, `/api/v1` and `/api/v2` beside it (one spec, at `/api/v1/openapi.json` and
//! `/api/v2/openapi.json`; the versioning policy is in `docs/api.md`). Every route but
//! `POST /auth/token` needs a host JWT; what a caller may do is computed per request from
//! Discord's data (membership, roles, permissions) and the guild's config, as for commands.

mod activity;
pub mod auth;
pub mod deprecation;
pub mod error;
mod guilds;
pub mod limits;
mod me;
mod meetings;
mod videos;

use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Serialize;
use utoipa::OpenApi;

use self::auth::{Claims, Jwt, ServiceAccount, SubjectKind};
use self::deprecation::InSpec as DeprecatedInSpec;
use self::error::ApiError;
use crate::config::guild::GuildConfigs;
use crate::config::policy::Policy;
use crate::discord::guilds::GuildDirectory;
use crate::discord::model::Member;
use crate::discord::rest::{DiscordRest, RestError};
use crate::kaltura::error::TRY_AGAIN;
use crate::kaltura::identity::mapping_uses_names;
use crate::kaltura::{Caller, Kaltura, KalturaError};

pub struct ApiState {
    pub jwt: Option<Jwt>,
    pub kaltura: Option<Arc<Kaltura>>,
    pub discord: Option<Arc<DiscordRest>>,
    pub directory: Arc<GuildDirectory>,
    pub guilds: Arc<GuildConfigs>,
    /// `config/api.json`, hot-reloaded.
    pub service_accounts: auth::ServiceAccounts,
    pub launches: Arc<dyn crate::store::launches::Launches>,
    /// Guild configuration changes and the audit log.
    pub admin: Arc<crate::config::admin::ConfigAdmin>,
    /// A person's own data (`/api/v1/me/data`).
    pub privacy: Arc<crate::privacy::Privacy>,
    /// Guilds' deliveries (the outbox, dead letters included).
    pub deliveries: Arc<dyn crate::store::OutboxStore>,
    pub rules: Arc<crate::scripts::Rules>,
    /// `DISCORD_CLIENT_SECRET`, for the Activity's OAuth2 code exchange.
    pub client_secret: Option<crate::config::secret::Secret>,
    /// The Activity's dev/demo mode: `mock_code` is accepted.
    pub activity_dev: bool,
    /// Watch Together sync rooms.
    pub rooms: Arc<crate::activity::sync::SyncRooms>,
    /// Per-IP and per-subject request limits.
    pub limits: Arc<limits::HttpLimits>,
}

/// `{"error": {"code", "message"}}`, as every error is sent.
#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ErrorDetail {
    code: String,
    message: String,
}

fn err(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(status, code, message)
}

/// A Kaltura failure as an HTTP answer (messages carry no session); handlers use `?`.
impl From<KalturaError> for ApiError {
    fn from(e: KalturaError) -> Self {
        match e {
            KalturaError::NotConfigured(m) => {
                err(StatusCode::SERVICE_UNAVAILABLE, "kaltura_not_configured", m)
            }
            KalturaError::Denied(m) => err(StatusCode::FORBIDDEN, "forbidden", m),
            KalturaError::Invalid(m) => err(StatusCode::BAD_REQUEST, "invalid_request", m),
            KalturaError::NotFound(m) => err(StatusCode::NOT_FOUND, "not_found", m),
            e if e.is_not_found() => err(StatusCode::NOT_FOUND, "not_found", e.to_string()),
            e @ (KalturaError::Network(_) | KalturaError::Http(_) | KalturaError::Decode(_)) => {
                tracing::warn!(error = %e, "Kaltura call failed");
                err(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "kaltura_unavailable",
                    TRY_AGAIN,
                )
            }
            e @ KalturaError::Api { .. } => {
                tracing::warn!(error = %e, "Kaltura refused a call");
                err(StatusCode::BAD_GATEWAY, "kaltura_error", e.to_string())
            }
        }
    }
}

/// Query parameters, or a 400 that names the parameter and the problem.
fn query<T>(
    q: Result<axum::extract::Query<T>, axum::extract::rejection::QueryRejection>,
) -> Result<T, ApiError> {
    q.map(|axum::extract::Query(v)| v)
        .map_err(|e| err(StatusCode::BAD_REQUEST, "invalid_query", e.body_text()))
}

/// A Discord snowflake, or a 400 naming the field.
fn check_snowflake(field: &str, v: &str) -> Result<(), ApiError> {
    if crate::discord::model::is_snowflake(v) {
        Ok(())
    } else {
        Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            format!("{field} must be a Discord id (digits)"),
        ))
    }
}

impl ApiState {
    fn jwt(&self) -> Result<&Jwt, ApiError> {
        self.jwt.as_ref().ok_or_else(|| {
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_not_configured",
                "the API is off on this host: the operator sets JWT_SECRET",
            )
        })
    }

    fn kaltura(&self) -> Result<&Arc<Kaltura>, ApiError> {
        self.kaltura.as_ref().ok_or_else(|| {
            err(
                StatusCode::SERVICE_UNAVAILABLE,
                "kaltura_not_configured",
                "Kaltura is not configured on this host (KALTURA_PARTNER_ID, KALTURA_ADMIN_SECRET)",
            )
        })
    }

    /// The token's service account, if it still exists and may act in `guild_id`.
    fn service_account(
        &self,
        claims: &Claims,
        guild_id: Option<&str>,
    ) -> Result<ServiceAccount, ApiError> {
        let acct = self.service_accounts.account(&claims.sub).ok_or_else(|| {
            err(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "this service account no longer exists",
            )
        })?;
        if let Some(g) = guild_id
            && !acct.may_act_in(g)
        {
            return Err(err(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("service account `{}` may not act in server {g}", claims.sub),
            ));
        }
        Ok(acct)
    }

    /// Who the token's subject is in `guild_id`, checked like a command of `plugin`.
    async fn caller(
        &self,
        claims: &Claims,
        guild_id: Option<&str>,
        plugin: &str,
        command: &str,
    ) -> Result<(Arc<Kaltura>, Caller), ApiError> {
        let k = self.kaltura()?.clone();
        if let Some(g) = guild_id {
            check_snowflake("guild_id", g)?;
        }
        let cfg = self.guilds.guild(guild_id);
        let caller = match claims.kind {
            SubjectKind::Service => {
                let acct = self.service_account(claims, guild_id)?;
                Policy::of(&cfg.typed)
                    .may_run(plugin, Some(command), &[])
                    .map_err(|d| err(StatusCode::FORBIDDEN, "forbidden", d.to_string()))?;
                k.service_caller(&cfg, &claims.sub, guild_id.map(String::from), acct.role)
            }
            SubjectKind::Discord => {
                let member = match guild_id {
                    Some(g) => self.member(g, claims).await?,
                    None => Member {
                        user_id: claims.sub.clone(),
                        display_name: claims.name.clone(),
                        ..Default::default()
                    },
                };
                Policy::of(&cfg.typed)
                    .may_run(plugin, Some(command), &member.roles)
                    .map_err(|d| err(StatusCode::FORBIDDEN, "forbidden", d.to_string()))?;
                let names = self
                    .directory
                    .role_names_if(guild_id, mapping_uses_names(&cfg))
                    .await;
                k.caller(&cfg, member, &names)
            }
        };
        Ok((k, caller?))
    }

    /// The subject as a member of the guild, from Discord (roles and permissions).
    async fn member(&self, guild_id: &str, claims: &Claims) -> Result<Member, ApiError> {
        let discord = |e: RestError| match e {
            RestError::NotConfigured(m) => {
                err(StatusCode::SERVICE_UNAVAILABLE, "discord_not_configured", m)
            }
            e @ RestError::Throttled => err(
                StatusCode::SERVICE_UNAVAILABLE,
                "discord_throttled",
                e.to_string(),
            ),
            e => {
                tracing::warn!(error = %e, "cannot read a guild member from Discord");
                err(
                    StatusCode::BAD_GATEWAY,
                    "discord_unavailable",
                    "Discord could not be asked about this server; try again",
                )
            }
        };
        let roles = self
            .directory
            .member_roles(guild_id, &claims.sub)
            .await
            .map_err(discord)?
            .ok_or_else(|| {
                err(
                    StatusCode::FORBIDDEN,
                    "not_a_member",
                    format!("you are not a member of server {guild_id}"),
                )
            })?;
        let info = self.directory.guild(guild_id).await.map_err(discord)?;
        let permissions = info.permissions(guild_id, &claims.sub, &roles);
        Ok(Member {
            user_id: claims.sub.clone(),
            display_name: claims.name.clone(),
            guild_id: Some(guild_id.to_string()),
            roles,
            permissions: Some(permissions.to_string()),
        })
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "kdhost API", version = "1", description = "Meetings and videos of the Kaltura account behind this Discord bot, and each guild's configuration, rules, deliveries and audit log. Get a token from POST /api/v1/auth/token and send it as `Authorization: Bearer <token>`."),
    paths(
        auth::issue_token,
        meetings::list, meetings::create, meetings::get_one, meetings::end, meetings::join,
        videos::search, videos::get_one, videos::play, videos::list_v2,
        activity::launch, activity::token, activity::sync, activity::config,
        guilds::get_config, guilds::put_config, guilds::patch_config, guilds::audit,
        guilds::deliveries, guilds::list_scripts, guilds::get_script, guilds::put_script,
        guilds::delete_script, guilds::erase_member,
        me::export, me::erase,
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerAuth, &StandardErrors, &DeprecatedInSpec),
    tags((name = "auth"), (name = "meetings"), (name = "videos"), (name = "activity"), (name = "guilds"), (name = "privacy")),
)]
pub struct ApiDoc;

/// The errors any operation can answer, each with the error envelope: bad input (400), a
/// missing or refused token (401, where a token is needed), refusal (403), an unknown id
/// (404), a body too large (413) or of the wrong type (415), the request limits (429),
/// Discord or Kaltura failing (502) or not configured, busy or timed out (503).
struct StandardErrors;

impl utoipa::Modify for StandardErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let error = |why: &str| {
            ResponseBuilder::new()
                .description(why)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for item in openapi.paths.paths.values_mut() {
            for op in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
                let mut standard = vec![
                    ("400", "A malformed parameter or body, named"),
                    ("404", "No such thing (or not yours to see)"),
                    ("413", "The body is too large"),
                    ("415", "The body is not of a type this operation takes"),
                    (
                        "429",
                        "Over a request limit; `Retry-After` says when to come back",
                    ),
                    ("502", "Discord or Kaltura answered with an error"),
                    (
                        "503",
                        "Not configured on this host, busy, or it took too long; try again",
                    ),
                ];
                if secured {
                    standard.push(("401", "No token, or not a valid one"));
                    standard.push(("403", "The token may not do this"));
                }
                for (code, why) in standard {
                    op.responses
                        .responses
                        .entry(code.to_string())
                        .or_insert_with(|| error(why).into());
                }
            }
        }
    }
}

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Errors the framework itself answers (a body over the limit, a method the route does not
/// take, an unknown media type) in the API's error envelope, like every other error.
async fn errors_as_json(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return resp;
    }
    let retry_after = resp.headers().get(axum::http::header::RETRY_AFTER).cloned();
    let text = axum::body::to_bytes(resp.into_body(), 64 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let code = match status.as_u16() {
        405 => "method_not_allowed",
        413 => "too_large",
        415 => "unsupported_media_type",
        408 | 503 => "unavailable",
        400..=499 => "invalid_request",
        _ => "internal",
    };
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    let mut out = err(status, code, message).into_response();
    if let Some(r) = retry_after {
        out.headers_mut().insert(axum::http::header::RETRY_AFTER, r);
    }
    out
}

/// Largest API request body.
pub const MAX_BODY: usize = 64 * 1024;
/// How much of a body over the limit is read (and dropped) before answering 413.
const DRAIN_MAX: usize = 1 << 20;

/// Reads the whole request body before the handler runs: a body over [`MAX_BODY`] is
/// answered 413 only after it has been read (up to [`DRAIN_MAX`]), so the client receives
/// the answer instead of a reset connection while it is still sending.
async fn body_first(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use http_body_util::BodyExt;
    let (parts, mut body) = req.into_parts();
    let mut kept = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return err(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the body could not be read",
            )
            .into_response();
        };
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= MAX_BODY {
                kept.extend_from_slice(&data);
            } else if seen > DRAIN_MAX {
                break;
            }
        }
    }
    if seen > MAX_BODY {
        return err(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the body is over {MAX_BODY} bytes"),
        )
        .into_response();
    }
    next.run(axum::extract::Request::from_parts(
        parts,
        axum::body::Body::from(kept),
    ))
    .await
}

async fn spec() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

async fn no_route() -> ApiError {
    err(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such API route: see /api/v1/openapi.json",
    )
}

pub fn router(state: Arc<ApiState>) -> Router {
    // The routes that need no token: one quota per client IP.
    let per_ip = axum::middleware::from_fn_with_state(state.limits.clone(), limits::per_ip);
    Router::new()
        .route(
            "/api/v1/auth/token",
            post(auth::issue_token).layer(per_ip.clone()),
        )
        .route(
            "/api/v1/meetings",
            get(meetings::list).post(meetings::create),
        )
        .route(
            "/api/v1/meetings/{id}",
            get(meetings::get_one).delete(meetings::end),
        )
        .route("/api/v1/meetings/{id}/join", post(meetings::join))
        .route("/api/v1/videos", get(videos::search))
        .route("/api/v1/videos/{id}", get(videos::get_one))
        .route("/api/v1/videos/{id}/play", post(videos::play))
        .route("/api/v2/videos", get(videos::list_v2))
        .route("/api/v1/activity/launch", get(activity::launch))
        .route(
            "/api/v1/activity/token",
            post(activity::token).layer(per_ip),
        )
        .route("/api/v1/activity/sync", get(activity::sync))
        .route("/api/v1/activity/config", get(activity::config))
        .route(
            "/api/v1/guilds/{id}/config",
            get(guilds::get_config)
                .put(guilds::put_config)
                .patch(guilds::patch_config),
        )
        .route("/api/v1/guilds/{id}/audit", get(guilds::audit))
        .route(
            "/api/v1/guilds/{id}/members/{user}/data",
            axum::routing::delete(guilds::erase_member),
        )
        .route("/api/v1/me/data", get(me::export).delete(me::erase))
        .route("/api/v1/guilds/{id}/deliveries", get(guilds::deliveries))
        .route("/api/v1/guilds/{id}/scripts", get(guilds::list_scripts))
        .route(
            "/api/v1/guilds/{id}/scripts/{name}",
            get(guilds::get_script)
                .put(guilds::put_script)
                .delete(guilds::delete_script),
        )
        .route("/api/v1/openapi.json", get(spec))
        .route("/api/v2/openapi.json", get(spec))
        // Deprecation headers (or 410 after the sunset) on the routes of its table.
        .route_layer(axum::middleware::from_fn(deprecation::announce))
        .route("/api/v1/{*rest}", axum::routing::any(no_route))
        .route("/api/v2/{*rest}", axum::routing::any(no_route))
        .with_state(state)
        .layer(axum::middleware::from_fn(errors_as_json))
        .layer(axum::middleware::from_fn(body_first))
}
