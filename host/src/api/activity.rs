//! `/api/v1/activity/launch`: what the caller's last Watch Together press asked for, so the
//! Activity that Discord opens next can start on that video.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::auth::{Authenticated, SubjectKind};
use super::error::ApiError;
use super::{ApiState, ErrorBody, check_snowflake, err, query};

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
    Authenticated(claims): Authenticated,
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
    let l = s.launches.get(&q.channel_id, &claims.sub).ok_or_else(|| {
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
