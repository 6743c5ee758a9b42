//! `/api/v1/me/data`: a person's own data, for the Discord user the token is for (service
//! accounts have none): `GET` exports everything the host keeps about them, `DELETE`
//! erases it everywhere (`docs/privacy.md`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::auth::{Authenticated, Claims, SubjectKind};
use super::error::ApiError;
use super::{ApiState, ErrorBody, err};
use crate::privacy::{Erased, Export, Requester};

fn person(claims: &Claims) -> Result<&str, ApiError> {
    match claims.kind {
        SubjectKind::Discord => Ok(&claims.sub),
        SubjectKind::Service => Err(err(
            StatusCode::FORBIDDEN,
            "not_a_person",
            "a service account keeps no personal data: /api/v1/me/data is for Discord users' tokens",
        )),
    }
}

pub(super) fn storage(e: anyhow::Error) -> ApiError {
    tracing::error!(error = %e, "personal data could not be read or erased");
    err(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "storage did not answer; try again",
    )
}

/// Everything the host keeps about you, as one JSON document.
#[utoipa::path(get, path = "/api/v1/me/data", tag = "privacy",
    security(("bearer" = [])),
    responses((status = 200, body = Export), (status = 403, body = ErrorBody, description = "A service account's token")))]
pub async fn export(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Export>, ApiError> {
    let user = person(&claims)?;
    s.privacy.export(user).await.map(Json).map_err(storage)
}

/// Erases everything the host keeps about you, in every server and in DMs; says what.
#[utoipa::path(delete, path = "/api/v1/me/data", tag = "privacy",
    security(("bearer" = [])),
    responses((status = 200, body = Erased), (status = 403, body = ErrorBody, description = "A service account's token")))]
pub async fn erase(
    State(s): State<Arc<ApiState>>,
    Authenticated(claims): Authenticated,
) -> Result<Json<Erased>, ApiError> {
    let user = person(&claims)?;
    s.privacy
        .erase(user, None, Requester::Themselves)
        .await
        .map(Json)
        .map_err(storage)
}
