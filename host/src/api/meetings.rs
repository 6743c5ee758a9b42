//! `/api/v1/meetings`: the same meetings as `/kaltura-start` and friends, with the same
//! rules (guild config, owner-or-admin to end).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Authenticated, Claims};
use super::error::ApiError;
use super::{ApiState, ErrorBody, err, query};
use crate::kaltura::meetings::{Meeting, MeetingKind};
use crate::kaltura::{Caller, Kaltura};

const PLUGIN: &str = "kaltura-meetings";

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GuildQuery {
    /// The Discord server the meeting belongs to.
    guild_id: String,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMeetingBody {
    guild_id: String,
    kind: MeetingKind,
    title: String,
    #[serde(default)]
    description: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct MeetingList {
    meetings: Vec<Meeting>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct JoinLink {
    meeting: Meeting,
    /// Personal: it carries the caller's USER session for this meeting.
    url: String,
}

/// The caller in the guild the query names, checked like the command `command`.
async fn in_guild(
    s: &ApiState,
    claims: &Claims,
    q: Result<Query<GuildQuery>, QueryRejection>,
    command: &str,
) -> Result<(Arc<Kaltura>, Caller), ApiError> {
    let q = query(q)?;
    s.caller(claims, Some(&q.guild_id), PLUGIN, command).await
}

#[utoipa::path(get, path = "/api/v1/meetings", tag = "meetings", params(GuildQuery),
    security(("bearer" = [])),
    responses((status = 200, body = MeetingList), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    q: Result<Query<GuildQuery>, QueryRejection>,
) -> Result<Json<MeetingList>, ApiError> {
    let (k, c) = in_guild(&s, &claims, q, "kaltura-list").await?;
    let meetings = k.meetings(&c).await?;
    Ok(Json(MeetingList { meetings }))
}

#[utoipa::path(post, path = "/api/v1/meetings", tag = "meetings", request_body = NewMeetingBody,
    security(("bearer" = [])),
    responses((status = 201, body = Meeting), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    body: Result<Json<NewMeetingBody>, JsonRejection>,
) -> Result<(StatusCode, Json<Meeting>), ApiError> {
    let Json(b) = body.map_err(|e| err(StatusCode::BAD_REQUEST, "invalid_body", e.body_text()))?;
    let (k, c) = s
        .caller(&claims, Some(&b.guild_id), PLUGIN, "kaltura-start")
        .await?;
    let m = k
        .create_meeting(&c, b.kind, &b.title, &b.description)
        .await?;
    Ok((StatusCode::CREATED, Json(m)))
}

#[utoipa::path(get, path = "/api/v1/meetings/{id}", tag = "meetings", params(("id" = String, Path), GuildQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Meeting), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
    q: Result<Query<GuildQuery>, QueryRejection>,
) -> Result<Json<Meeting>, ApiError> {
    let (k, c) = in_guild(&s, &claims, q, "kaltura-list").await?;
    k.meeting(&c, &id).await.map(Json).map_err(ApiError::from)
}

/// Ends a meeting: its owner or a guild admin only.
#[utoipa::path(delete, path = "/api/v1/meetings/{id}", tag = "meetings", params(("id" = String, Path), GuildQuery),
    security(("bearer" = [])),
    responses((status = 200, body = Meeting), (status = 403, body = ErrorBody, description = "Not the owner or an admin"), (status = 404, body = ErrorBody)))]
pub async fn end(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
    q: Result<Query<GuildQuery>, QueryRejection>,
) -> Result<Json<Meeting>, ApiError> {
    let (k, c) = in_guild(&s, &claims, q, "kaltura-end").await?;
    k.end_meeting(&c, &id)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

/// A personal join link with the caller's role.
#[utoipa::path(post, path = "/api/v1/meetings/{id}/join", tag = "meetings", params(("id" = String, Path), GuildQuery),
    security(("bearer" = [])),
    responses((status = 200, body = JoinLink), (status = 404, body = ErrorBody)))]
pub async fn join(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
    Path(id): Path<String>,
    q: Result<Query<GuildQuery>, QueryRejection>,
) -> Result<Json<JoinLink>, ApiError> {
    let (k, c) = in_guild(&s, &claims, q, "kaltura-join").await?;
    let (meeting, url) = k.join_meeting(&c, &id).await?;
    Ok(Json(JoinLink { meeting, url }))
}
