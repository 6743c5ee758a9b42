//! `/api/v1/guilds/{id}/...`: a guild's configuration (read, replace, merge-patch), its
//! audit log, its deliveries (the outbox, dead letters included) and its rules (list, read,
//! upload, delete). Guild admins only: Administrator or Manage Server in Discord, a role in
//! `roles.config_admins`, or a service account with the admin role for that guild. Every
//! change, and every refused change, is audited.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::auth::{Authenticated, Claims, SubjectKind};
use super::error::ApiError;
use super::{ApiState, ErrorBody, check_snowflake, err, query};
use crate::config::admin::ChangeError;
use crate::discord::model::Member;
use crate::kaltura::identity::KalturaRole;
use crate::scripts::rules::RuleInfo;
use crate::store::AuditEntry;
use crate::store::outbox::Delivery;

impl ApiState {
    /// The subject as a guild member, with admin rights spelled as Discord permissions.
    async fn acting_member(&self, claims: &Claims, guild: &str) -> Result<Member, ApiError> {
        check_snowflake("guild id", guild)?;
        match claims.kind {
            SubjectKind::Discord => self.member(guild, claims).await,
            SubjectKind::Service => {
                let acct = self.service_account(claims, Some(guild))?;
                // A service account with the admin role counts as an Administrator.
                let permissions = if acct.role == KalturaRole::Admin {
                    crate::discord::permissions::ADMINISTRATOR
                } else {
                    0
                };
                Ok(Member {
                    user_id: format!("service:{}", claims.sub),
                    display_name: claims.sub.clone(),
                    guild_id: Some(guild.to_string()),
                    roles: vec![],
                    permissions: Some(permissions.to_string()),
                })
            }
        }
    }

    /// A guild admin, for reading (a refusal is not audited).
    async fn admin_reader(&self, claims: &Claims, guild: &str) -> Result<Member, ApiError> {
        let who = self.acting_member(claims, guild).await?;
        if self.admin.is_admin(guild, &who).await {
            Ok(who)
        } else {
            Err(forbidden())
        }
    }

    /// A guild admin, for changing (a refusal is audited).
    async fn admin_writer(
        &self,
        claims: &Claims,
        guild: &str,
        action: &str,
        target: &str,
    ) -> Result<Member, ApiError> {
        let who = self.acting_member(claims, guild).await?;
        self.admin
            .authorize(guild, &who, action, target)
            .await
            .map_err(change_error)?;
        Ok(who)
    }
}

fn forbidden() -> ApiError {
    err(
        StatusCode::FORBIDDEN,
        "forbidden",
        "only server admins (Administrator or Manage Server, or a role in roles.config_admins) may do this",
    )
}

fn change_error(e: ChangeError) -> ApiError {
    match e {
        ChangeError::Forbidden(m) => err(StatusCode::FORBIDDEN, "forbidden", m),
        ChangeError::Invalid(m) => err(StatusCode::BAD_REQUEST, "invalid_config", m),
        ChangeError::Storage(m) => {
            tracing::error!(error = %m, "guild configuration could not be written");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                "the change could not be saved",
            )
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct GuildConfigView {
    guild_id: String,
    /// Defaults merged with the guild's own file, as written (`{{VARIABLE}}` placeholders
    /// are shown, not filled).
    #[schema(value_type = Object)]
    effective: Value,
    /// The guild's own file (`{}` when it has none).
    #[schema(value_type = Object)]
    r#override: Value,
}

fn view(s: &ApiState, guild: &str) -> Result<GuildConfigView, ApiError> {
    let a = &s.admin;
    Ok(GuildConfigView {
        guild_id: guild.to_string(),
        effective: a.view(guild, None).map_err(change_error)?,
        r#override: a.guilds.guild_override(guild),
    })
}

fn json_body(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        err(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!(
                "the body is not JSON: line {}, column {}: {e}",
                e.line(),
                e.column()
            ),
        )
    })
}

#[utoipa::path(get, path = "/api/v1/guilds/{id}/config", tag = "guilds", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = GuildConfigView), (status = 403, body = ErrorBody)))]
pub async fn get_config(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(guild): Path<String>,
) -> Result<Json<GuildConfigView>, ApiError> {
    s.admin_reader(&claims, &guild).await?;
    view(&s, &guild).map(Json)
}

/// Replaces the guild's own file; validated against `config/schema.json` first.
#[utoipa::path(put, path = "/api/v1/guilds/{id}/config", tag = "guilds", params(("id" = String, Path)),
    request_body(content = Object, description = "The guild's whole override"),
    security(("bearer" = [])),
    responses((status = 200, body = GuildConfigView), (status = 400, body = ErrorBody, description = "Names the JSON path and what the schema expects"), (status = 403, body = ErrorBody)))]
pub async fn put_config(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(guild): Path<String>,
    body: Bytes,
) -> Result<Json<GuildConfigView>, ApiError> {
    let who = s
        .admin_writer(&claims, &guild, "config.replace", "$")
        .await?;
    let v = json_body(&body)?;
    s.admin
        .replace(&guild, &who, v)
        .await
        .map_err(change_error)?;
    view(&s, &guild).map(Json)
}

/// A JSON merge patch (RFC 7396: `null` removes a key) on the guild's own file.
#[utoipa::path(patch, path = "/api/v1/guilds/{id}/config", tag = "guilds", params(("id" = String, Path)),
    request_body(content = Object, description = "A JSON merge patch", content_type = "application/merge-patch+json"),
    security(("bearer" = [])),
    responses((status = 200, body = GuildConfigView), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn patch_config(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(guild): Path<String>,
    body: Bytes,
) -> Result<Json<GuildConfigView>, ApiError> {
    let who = s.admin_writer(&claims, &guild, "config.patch", "$").await?;
    let v = json_body(&body)?;
    s.admin.patch(&guild, &who, v).await.map_err(change_error)?;
    view(&s, &guild).map(Json)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct Page {
    /// At most this many (1-200, default 50).
    limit: Option<usize>,
    /// Only ids below this one (the next page).
    before: Option<i64>,
    /// Deliveries only: pending, sent or dead.
    state: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditList {
    entries: Vec<AuditEntry>,
}

#[utoipa::path(get, path = "/api/v1/guilds/{id}/audit", tag = "guilds", params(("id" = String, Path), Page),
    security(("bearer" = [])),
    responses((status = 200, body = AuditList), (status = 403, body = ErrorBody)))]
pub async fn audit(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(guild): Path<String>,
    q: Result<Query<Page>, QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    let p = query(q)?;
    s.admin_reader(&claims, &guild).await?;
    let entries = s
        .admin
        .audit_log()
        .list(&guild, p.limit.unwrap_or(50).clamp(1, 200), p.before)
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?;
    Ok(Json(AuditList { entries }))
}

/// Erases what the host keeps about a member in this guild (guild admins; audited).
#[utoipa::path(delete, path = "/api/v1/guilds/{id}/members/{user}/data", tag = "privacy",
    params(("id" = String, Path), ("user" = String, Path, description = "The member's Discord id")),
    security(("bearer" = [])),
    responses((status = 200, body = crate::privacy::Erased), (status = 403, body = ErrorBody)))]
pub async fn erase_member(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path((guild, user)): Path<(String, String)>,
) -> Result<Json<crate::privacy::Erased>, ApiError> {
    check_snowflake("user id", &user)?;
    let who = s.acting_member(&claims, &guild).await?;
    s.admin
        .authorize(&guild, &who, "privacy.erase", "a member's data")
        .await
        .map_err(change_error)?;
    s.privacy
        .erase(
            &user,
            Some(&guild),
            crate::privacy::Requester::GuildAdmin(&who.user_id),
        )
        .await
        .map(Json)
        .map_err(super::me::storage)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryList {
    deliveries: Vec<Delivery>,
}

/// Messages the host posted (or is posting, or gave up on) in this guild's channels.
#[utoipa::path(get, path = "/api/v1/guilds/{id}/deliveries", tag = "guilds", params(("id" = String, Path), Page),
    security(("bearer" = [])),
    responses((status = 200, body = DeliveryList), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn deliveries(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(guild): Path<String>,
    q: Result<Query<Page>, QueryRejection>,
) -> Result<Json<DeliveryList>, ApiError> {
    let p = query(q)?;
    if let Some(st) = &p.state
        && !matches!(st.as_str(), "pending" | "sent" | "dead")
    {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "state is pending, sent or dead",
        ));
    }
    s.admin_reader(&claims, &guild).await?;
    let deliveries = s
        .deliveries
        .list(
            &guild,
            p.state.as_deref(),
            p.limit.unwrap_or(50).clamp(1, 200),
            p.before,
        )
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string()))?;
    Ok(Json(DeliveryList { deliveries }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RuleList {
    /// Global rules (every guild) and this guild's own, with their last problem.
    rules: Vec<RuleInfo>,
}

#[utoipa::path(get, path = "/api/v1/guilds/{id}/scripts", tag = "guilds", params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RuleList), (status = 403, body = ErrorBody)))]
pub async fn list_scripts(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(guild): Path<String>,
) -> Result<Json<RuleList>, ApiError> {
    s.admin_reader(&claims, &guild).await?;
    Ok(Json(RuleList {
        rules: s.rules.list(&guild),
    }))
}

#[utoipa::path(get, path = "/api/v1/guilds/{id}/scripts/{name}", tag = "guilds",
    params(("id" = String, Path), ("name" = String, Path, description = "e.g. latest.rhai")),
    security(("bearer" = [])),
    responses((status = 200, description = "The rule's source", content_type = "text/plain"), (status = 404, body = ErrorBody)))]
pub async fn get_script(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path((guild, name)): Path<(String, String)>,
) -> Result<([(&'static str, &'static str); 1], String), ApiError> {
    s.admin_reader(&claims, &guild).await?;
    s.rules
        .source(&guild, &name)
        .map(|src| ([("content-type", "text/plain; charset=utf-8")], src))
        .ok_or_else(|| {
            err(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("this server has no rule `{name}`"),
            )
        })
}

/// Uploads (or replaces) a rule: compiled and its top level dry-run before it is written
/// and activated. The body is the source (`text/plain`) or `{"source": "..."}`.
#[utoipa::path(put, path = "/api/v1/guilds/{id}/scripts/{name}", tag = "guilds",
    params(("id" = String, Path), ("name" = String, Path, description = "1-64 of a-z 0-9 - _, ending in .rhai")),
    request_body(content = String, content_type = "text/plain"),
    security(("bearer" = [])),
    responses((status = 200, body = RuleInfo), (status = 400, body = ErrorBody, description = "Names file:line:col and the problem"), (status = 403, body = ErrorBody)))]
pub async fn put_script(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path((guild, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<RuleInfo>, ApiError> {
    let who = s.admin_writer(&claims, &guild, "script.put", &name).await?;
    let is_json = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.contains("json"));
    let source = if is_json {
        json_body(&body)?["source"]
            .as_str()
            .map(String::from)
            .ok_or_else(|| {
                err(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "`source` must be the rule's text",
                )
            })?
    } else {
        String::from_utf8(body.to_vec()).map_err(|_| {
            err(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "the rule is not UTF-8 text",
            )
        })?
    };
    crate::scripts::admin::put(&s.rules, &s.admin, &guild, &who, &name, &source)
        .await
        .map(Json)
        .map_err(|e| match e {
            ChangeError::Invalid(m) => err(StatusCode::BAD_REQUEST, "invalid_rule", m),
            other => err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage",
                other.to_string(),
            ),
        })
}

#[utoipa::path(delete, path = "/api/v1/guilds/{id}/scripts/{name}", tag = "guilds",
    params(("id" = String, Path), ("name" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_script(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path((guild, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let who = s
        .admin_writer(&claims, &guild, "script.delete", &name)
        .await?;
    match crate::scripts::admin::delete(&s.rules, &s.admin, &guild, &who, &name).await {
        Ok(true) => Ok(StatusCode::NO_CONTENT),
        Ok(false) => Err(err(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("this server has no rule `{name}`"),
        )),
        Err(e) => Err(err(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage",
            e.to_string(),
        )),
    }
}
