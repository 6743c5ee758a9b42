//! `/api/v1/videos`: search, details, and playback with a session scoped to one entry;
//! `/api/v2/videos`: the listing with cursors (v1's page numbers are deprecated).
//! Always in a server (`guild_id`): the caller must be a member, and the server's policy
//! and Kaltura settings apply.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use super::auth::ForActivity;
use super::error::ApiError;
use super::{ApiState, ErrorBody, err, query as parse_query};
use crate::kaltura::account::MAX_PAGE;
use crate::kaltura::account::Player;
use crate::kaltura::media::{MAX_SEEN, Position, SearchResult, Video};

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
    let limit = checked_limit(q.limit)?;
    let page = q.page.unwrap_or(1);
    if !(1..=MAX_PAGE).contains(&page) {
        return Err(bad(format!("page must be between 1 and {MAX_PAGE}")));
    }
    check_text(&q.q)?;
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

fn bad(message: impl Into<String>) -> ApiError {
    err(StatusCode::BAD_REQUEST, "invalid_query", message)
}

const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 50;
const MAX_TEXT: usize = 2000;

fn checked_limit(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(bad(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(limit)
}

fn check_text(q: &str) -> Result<(), ApiError> {
    if q.chars().count() > MAX_TEXT {
        return Err(bad(format!("q is at most {MAX_TEXT} characters")));
    }
    Ok(())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Free text (title, description, tags). Empty or absent lists the newest videos.
    /// Not needed with `cursor`, which carries it.
    q: Option<String>,
    /// 1-50, default 10. Not needed with `cursor`, which carries it.
    limit: Option<u32>,
    /// The `next_cursor` of the page before; absent for the first page.
    cursor: Option<String>,
    /// The server whose Kaltura settings and policy apply (you must be a member).
    guild_id: String,
}

/// One page of videos and where the next one starts.
#[derive(Serialize, utoipa::ToSchema)]
pub struct VideoPage {
    pub videos: Vec<Video>,
    /// Pass as `cursor` for the next page; absent after the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// "esearch" (text, ranked by relevance), or "media.list" (newest first).
    pub engine: String,
}

/// What a cursor holds: the query it continues and the position. Opaque to clients
/// (base64url of this JSON); anything it says is checked as if it were sent as parameters.
#[derive(Serialize, Deserialize, PartialEq, Debug)]
#[serde(deny_unknown_fields)]
struct Cursor {
    q: String,
    limit: u32,
    at: Position,
}

/// The longest cursor taken (a full `Before` position with a 2,000-character query fits).
const MAX_CURSOR: usize = 12 * 1024;

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("a cursor serializes"))
    }

    fn decode(s: &str) -> Result<Self, ApiError> {
        let invalid = || bad("cursor is not one this API gave out (pass next_cursor as it came)");
        if s.len() > MAX_CURSOR {
            return Err(invalid());
        }
        let bytes = URL_SAFE_NO_PAD.decode(s).map_err(|_| invalid())?;
        let c: Cursor = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
        checked_limit(Some(c.limit))?;
        check_text(&c.q)?;
        let position_ok = match &c.at {
            Position::Page { p } => (1..=MAX_PAGE).contains(p),
            Position::Before { seen, .. } => {
                seen.len() <= MAX_SEEN
                    && seen.iter().all(|id| {
                        id.len() <= 20 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    })
            }
        };
        if !position_ok {
            return Err(invalid());
        }
        Ok(c)
    }
}

/// Videos page by page: text is ranked by relevance (eSearch), no text lists the newest
/// first by keyset, so a page does not shift when videos are added meanwhile.
#[utoipa::path(get, path = "/api/v2/videos", tag = "videos", params(ListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = VideoPage), (status = 400, body = ErrorBody, description = "A malformed parameter or cursor, named"), (status = 401, body = ErrorBody)))]
pub async fn list_v2(
    State(s): State<Arc<ApiState>>,
    ForActivity(claims): ForActivity,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<VideoPage>, ApiError> {
    let q = parse_query(q)?;
    let (text, limit, at) = match &q.cursor {
        Some(raw) => {
            let c = Cursor::decode(raw)?;
            let differs = |what: &str| {
                bad(format!(
                    "{what} differs from the cursor's; a cursor continues its own query (drop {what}, or start again without cursor)"
                ))
            };
            if q.q.as_ref().is_some_and(|t| *t != c.q) {
                return Err(differs("q"));
            }
            if q.limit.is_some_and(|l| l != c.limit) {
                return Err(differs("limit"));
            }
            (c.q, c.limit, Some(c.at))
        }
        None => {
            let text = q.q.clone().unwrap_or_default();
            check_text(&text)?;
            (text, checked_limit(q.limit)?, None)
        }
    };
    let (k, c) = s
        .caller(&claims, Some(&q.guild_id), PLUGIN, COMMAND)
        .await?;
    let (page, next) = k.search_from(&c, &text, limit, at).await?;
    Ok(Json(VideoPage {
        videos: page.videos,
        next_cursor: next.map(|at| Cursor { q: text, limit, at }.encode()),
        engine: page.engine,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_forged_ones_are_400s() {
        let c = Cursor {
            q: "all hands ☕".into(),
            limit: 7,
            at: Position::Before {
                t: 1_700_000_000,
                seen: vec!["0_a".into()],
            },
        };
        assert_eq!(Cursor::decode(&c.encode()).unwrap(), c);
        let forge = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());
        for bad in [
            "not base64 !".to_string(),
            forge(serde_json::json!({"q": "", "limit": 99, "at": {"k": "page", "p": 1}})),
            forge(serde_json::json!({"q": "", "limit": 5, "at": {"k": "page", "p": 0}})),
            forge(serde_json::json!({"q": "", "limit": 5, "at": {"k": "page", "p": 1001}})),
            forge(
                serde_json::json!({"q": "", "limit": 5, "at": {"k": "before", "t": 1, "seen": ["0_a,0_b"]}}),
            ),
            forge(
                serde_json::json!({"q": "", "limit": 5, "at": {"k": "before", "t": 1, "seen": []}, "x": 1}),
            ),
            "A".repeat(MAX_CURSOR + 1),
        ] {
            let e = Cursor::decode(&bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(
                e.message.contains("cursor") || e.message.contains("limit"),
                "{}",
                e.message
            );
        }
    }
}
