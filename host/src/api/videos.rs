//! `/api/v1/videos`: search, details, and playback with a session scoped to one entry.
//! Always in a server (`guild_id`): the caller must be a member, and the server's policy
//! and Kaltura settings apply.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::auth::ForActivity;
use super::error::ApiError;
use super::{ApiState, ErrorBody, err, query as parse_query};
use crate::kaltura::account::Player;
use crate::kaltura::media::{SearchResult, Video};

const PLUGIN: &str = "kaltura-videos";
const COMMAND: &str = "kaltura-video-search";

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Free text (title, description, tags). Empty lists the newest videos.
    #[serde(default)]
    q: String,
    /// 1-50, default 10.
    limit: Option<u32>,
    /// From 1, default 1.
    page: Option<u32>,
    /// The server whose Kaltura settings and policy apply (you must be a member).
    guild_id: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GuildOnly {
    /// The server whose Kaltura settings and policy apply (you must be a member).
    guild_id: String,
}

#[utoipa::path(get, path = "/api/v1/videos", tag = "videos", params(SearchQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SearchResult), (status = 400, body = ErrorBody, description = "A malformed parameter, named"), (status = 401, body = ErrorBody)))]
pub async fn search(
    State(s): State<Arc<ApiState>>,
    ForActivity(claims): ForActivity,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Json<SearchResult>, ApiError> {
    let q = parse_query(q)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=50).contains(&limit) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "limit must be between 1 and 50",
        ));
    }
    let page = q.page.unwrap_or(1);
    if !(1..=1000).contains(&page) {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "page must be between 1 and 1000",
        ));
    }
    if q.q.chars().count() > 2000 {
        return Err(err(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "q is at most 2000 characters",
        ));
    }
    let (k, c) = s
        .caller(&claims, Some(&q.guild_id), PLUGIN, COMMAND)
        .await?;
    k.search(&c, &q.q, limit, page)
        .await
        .map(Json)
        .map_err(ApiError::from)
}

#[utoipa::path(get, path = "/api/v1/videos/{id}", tag = "videos", params(("id" = String, Path), GuildOnly),
    security(("bearer" = [])),
    responses((status = 200, body = Video), (status = 404, body = ErrorBody)))]
pub async fn get_one(
    State(s): State<Arc<ApiState>>,
    ForActivity(claims): ForActivity,
    Path(id): Path<String>,
    q: Result<Query<GuildOnly>, QueryRejection>,
) -> Result<Json<Video>, ApiError> {
    let q = parse_query(q)?;
    let (k, c) = s
        .caller(&claims, Some(&q.guild_id), PLUGIN, COMMAND)
        .await?;
    k.entry(&c, &id).await.map(Json).map_err(ApiError::from)
}

/// Player URLs and a USER session scoped to this entry (`sview:<id>`), for the caller.
#[utoipa::path(post, path = "/api/v1/videos/{id}/play", tag = "videos", params(("id" = String, Path), GuildOnly),
    security(("bearer" = [])),
    responses((status = 200, body = Player), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody, description = "No player configured")))]
pub async fn play(
    State(s): State<Arc<ApiState>>,
    ForActivity(claims): ForActivity,
    Path(id): Path<String>,
    q: Result<Query<GuildOnly>, QueryRejection>,
) -> Result<Json<Player>, ApiError> {
    let q = parse_query(q)?;
    let (k, c) = s
        .caller(&claims, Some(&q.guild_id), PLUGIN, COMMAND)
        .await?;
    k.player(&c, &id).await.map(Json).map_err(ApiError::from)
}
