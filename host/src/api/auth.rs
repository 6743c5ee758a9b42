//! Host API tokens: `POST /api/v1/auth/token` issues a JWT (HS256, `JWT_SECRET`, lifetime
//! `JWT_EXPIRY`) only for a verified identity: a Discord OAuth2 access token that Discord
//! says was issued to this application (`GET /oauth2/@me`), or a service account from
//! `config/api.json`. Roles are
//! never taken from the request; they are computed per call from Discord's data.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ApiState;
use super::error::ApiError;
use crate::config::secret::Secret;
use crate::kaltura::identity::KalturaRole;

const ISSUER: &str = "kdhost";

/// What a token is for (`aud`): each route accepts the audiences it serves, so a token
/// handed to the Activity's page is not an API key, and the reverse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// `POST /api/v1/auth/token`: the API.
    Api,
    /// `POST /api/v1/activity/token`: the Activity's page (its sync socket, its video reads).
    Activity,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "kdhost-api",
            Self::Activity => "kdhost-activity",
        }
    }
}

/// Who a token was issued to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// A Discord user, verified with Discord.
    Discord,
    /// A service account from `config/api.json`.
    Service,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// Discord user id, or the service account's name.
    pub sub: String,
    pub kind: SubjectKind,
    pub name: String,
    /// The Discord avatar hash (Activity tokens; shown to the room).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub avatar: Option<String>,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    /// [`Audience::as_str`].
    pub aud: String,
}

impl Claims {
    pub fn is_for(&self, audience: Audience) -> bool {
        self.aud == audience.as_str()
    }
}

/// Signs and checks tokens.
pub struct Jwt {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    pub expiry: std::time::Duration,
}

impl Jwt {
    pub fn new(secret: &Secret, expiry: std::time::Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[Audience::Api.as_str(), Audience::Activity.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(secret.expose().as_bytes()),
            validation,
            expiry,
        }
    }

    pub fn issue(
        &self,
        sub: &str,
        kind: SubjectKind,
        name: &str,
    ) -> Result<(String, Claims), ApiError> {
        self.issue_for(Audience::Api, sub, kind, name, None, self.expiry)
    }

    /// A token for an audience, with its own lifetime (the Activity's are shorter).
    pub fn issue_for(
        &self,
        audience: Audience,
        sub: &str,
        kind: SubjectKind,
        name: &str,
        avatar: Option<&str>,
        ttl: std::time::Duration,
    ) -> Result<(String, Claims), ApiError> {
        let now = crate::kaltura::sessions::now();
        let claims = Claims {
            sub: sub.to_string(),
            kind,
            name: name.to_string(),
            avatar: avatar.map(String::from),
            iat: now,
            exp: now + ttl.as_secs() as i64,
            iss: ISSUER.into(),
            aud: audience.as_str().into(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("cannot sign a token: {e}"),
            )
        })?;
        Ok((token, claims))
    }

    pub fn check(&self, token: &str) -> Result<Claims, ApiError> {
        use jsonwebtoken::errors::ErrorKind;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| {
                let why = match e.kind() {
                    ErrorKind::ExpiredSignature => {
                        "the token has expired: get a new one from POST /api/v1/auth/token"
                    }
                    ErrorKind::InvalidSignature => "the token's signature is not valid",
                    ErrorKind::InvalidIssuer => "the token was not issued by this host",
                    ErrorKind::InvalidAudience | ErrorKind::MissingRequiredClaim(_) => {
                        "the token is not one of this host's API or Activity tokens"
                    }
                    _ => "the token is not a valid host token",
                };
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_token", why)
            })
    }
}

/// A service account (`config/api.json` → `service_accounts.<name>`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    /// Hex SHA-256 of the account's secret (the secret itself is never stored).
    pub secret_sha256: String,
    /// Guild ids it may act in (`"*"` for any).
    #[serde(default)]
    pub guilds: Vec<String>,
    /// Its Kaltura role in those guilds.
    #[serde(default = "viewer")]
    pub role: KalturaRole,
}

fn viewer() -> KalturaRole {
    KalturaRole::Viewer
}

impl ServiceAccount {
    pub fn may_act_in(&self, guild_id: &str) -> bool {
        self.guilds.iter().any(|g| g == "*" || g == guild_id)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApiFile {
    #[serde(default)]
    service_accounts: HashMap<String, ServiceAccount>,
}

/// Reads `config/api.json` (optional); an error names the file and the problem.
pub fn load_service_accounts(path: &Path) -> anyhow::Result<HashMap<String, ServiceAccount>> {
    if !path.exists() {
        return Ok(HashMap::new());
    }
    let text = std::fs::read_to_string(path)?;
    let file: ApiFile = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{}: line {}, column {}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    for (name, acct) in &file.service_accounts {
        if acct.secret_sha256.len() != 64 || hex::decode(&acct.secret_sha256).is_err() {
            anyhow::bail!(
                "{}: service_accounts.{name}.secret_sha256 must be 64 hex characters (sha256 of the secret)",
                path.display()
            );
        }
    }
    Ok(file.service_accounts)
}

/// `config/api.json`, re-read when it changes (checked when a service account is used):
/// a valid new file replaces the accounts, an invalid one keeps the last good version.
pub struct ServiceAccounts {
    path: std::path::PathBuf,
    current: arc_swap::ArcSwap<(
        Option<std::time::SystemTime>,
        HashMap<String, ServiceAccount>,
    )>,
}

impl ServiceAccounts {
    /// Loads the file (optional); an error names the file and the problem.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        Ok(Self {
            path: path.to_path_buf(),
            current: arc_swap::ArcSwap::from_pointee((modified, load_service_accounts(path)?)),
        })
    }

    /// The accounts as the file says now.
    pub fn get(
        &self,
    ) -> Arc<(
        Option<std::time::SystemTime>,
        HashMap<String, ServiceAccount>,
    )> {
        let modified = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        let now = self.current.load_full();
        if modified == now.0 {
            return now;
        }
        match load_service_accounts(&self.path) {
            Ok(accounts) => {
                tracing::info!(file = %self.path.display(), accounts = accounts.len(), "service accounts reloaded");
                let next = Arc::new((modified, accounts));
                self.current.store(next.clone());
                next
            }
            Err(e) => {
                tracing::error!(
                    error = format!("{e:#}"),
                    "service accounts not reloaded; the previous ones stay"
                );
                // Remember the bad version so it is not re-read on every request.
                let next = Arc::new((modified, now.1.clone()));
                self.current.store(next.clone());
                next
            }
        }
    }

    pub fn account(&self, name: &str) -> Option<ServiceAccount> {
        self.get().1.get(name).cloned()
    }
}

/// Service secrets are at least this long (a short one could be guessed).
pub const MIN_SERVICE_SECRET: usize = 32;

/// `POST /api/v1/auth/token` body: one of the two identities.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TokenRequest {
    /// A Discord OAuth2 access token (scope `identify`).
    Discord { discord_access_token: String },
    /// A service account and its secret.
    Service { service: String, secret: String },
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub token: String,
    pub token_type: &'static str,
    /// Seconds.
    pub expires_in: u64,
    pub subject: String,
    pub kind: SubjectKind,
    pub name: String,
}

/// Discord's answer about an access token, as the API reports it: refused (401) or not
/// reachable (502).
fn discord_refusal(e: crate::discord::rest::RestError) -> ApiError {
    match e {
        crate::discord::rest::RestError::Api {
            status: 400 | 401 | 403,
            ..
        } => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_discord_token",
            "Discord did not accept that access token",
        ),
        other => {
            tracing::warn!(error = %other, "cannot verify a Discord access token");
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "discord_unavailable",
                "Discord could not be asked who this is; try again",
            )
        }
    }
}

/// (id, display name) of a Discord user object.
fn identity_of(user: &serde_json::Value) -> Result<(String, String), ApiError> {
    let id = user["id"].as_str().unwrap_or_default().to_string();
    if id.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            "discord_unavailable",
            "Discord answered without a user id",
        ));
    }
    let name = user["global_name"]
        .as_str()
        .or(user["username"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok((id, name))
}

/// A Discord access token is printable ASCII of reasonable length; anything else is
/// refused before Discord is asked (a junk token costs nothing).
fn plausible_access_token(token: &str) -> Result<(), ApiError> {
    if (1..=512).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_graphic()) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "invalid_discord_token",
        "that is not a Discord access token",
    ))
}

impl ApiState {
    fn discord_rest(&self) -> Result<&crate::discord::rest::DiscordRest, ApiError> {
        self.discord.as_deref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "discord_not_configured",
                "this host cannot verify Discord users: the operator sets DISCORD_APPLICATION_ID",
            )
        })
    }

    /// Asks Discord who an OAuth2 access token belongs to (`GET /users/@me`): (id, display
    /// name, the user object). Never trusts an id a client sends. For tokens the host got
    /// itself (its own code exchange); a token a client brings goes through
    /// [`ApiState::authorized_discord_user`].
    pub(crate) async fn verified_discord_user(
        &self,
        access_token: &str,
    ) -> Result<(String, String, serde_json::Value), ApiError> {
        plausible_access_token(access_token)?;
        let user = self
            .discord_rest()?
            .user_from_access_token(access_token)
            .await
            .map_err(discord_refusal)?;
        let (id, name) = identity_of(&user)?;
        Ok((id, name, user))
    }

    /// The user of an access token a client brings, accepted only if Discord says it was
    /// issued to this application (`GET /oauth2/@me`): a token another app obtained from
    /// the user must not open this host's API.
    pub(crate) async fn authorized_discord_user(
        &self,
        access_token: &str,
    ) -> Result<(String, String), ApiError> {
        plausible_access_token(access_token)?;
        let rest = self.discord_rest()?;
        let auth = rest
            .authorization_of(access_token)
            .await
            .map_err(discord_refusal)?;
        if auth["application"]["id"].as_str() != Some(rest.application_id.as_str()) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "foreign_discord_token",
                "that access token was issued to another application; sign in with this one",
            ));
        }
        if !auth["user"].is_object() {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_discord_token",
                "that access token lacks the `identify` scope",
            ));
        }
        identity_of(&auth["user"])
    }
}

/// Issues a host token for a verified identity.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "auth",
    request_body = TokenRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 400, body = super::ErrorBody, description = "Malformed body"),
        (status = 401, body = super::ErrorBody, description = "Discord refused the token, it was issued to another application, or wrong service credentials"),
        (status = 503, body = super::ErrorBody, description = "JWT_SECRET or Discord is not configured")))]
pub async fn issue_token(
    State(s): State<Arc<ApiState>>,
    body: Result<Json<TokenRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<TokenResponse>, ApiError> {
    let jwt = s.jwt()?;
    let Json(req) = body.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_body",
            format!("{}: send {{\"discord_access_token\": \"...\"}} or {{\"service\": \"name\", \"secret\": \"...\"}}", e.body_text()),
        )
    })?;
    let (sub, kind, name) = match req {
        TokenRequest::Discord {
            discord_access_token,
        } => {
            let (id, name) = s.authorized_discord_user(&discord_access_token).await?;
            (id, SubjectKind::Discord, name)
        }
        TokenRequest::Service { service, secret } => {
            if secret.len() < MIN_SERVICE_SECRET {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    format!("service secrets are at least {MIN_SERVICE_SECRET} characters"),
                ));
            }
            let digest = hex::encode(Sha256::digest(secret.as_bytes()));
            let known = s.service_accounts.account(&service).is_some_and(|a| {
                bool::from(
                    a.secret_sha256
                        .to_ascii_lowercase()
                        .as_bytes()
                        .ct_eq(digest.as_bytes()),
                )
            });
            if !known {
                return Err(ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "invalid_credentials",
                    "unknown service account or wrong secret",
                ));
            }
            (service.clone(), SubjectKind::Service, service)
        }
    };
    let (token, claims) = jwt.issue(&sub, kind, &name)?;
    tracing::info!(subject = %sub, kind = ?kind, "issued an API token");
    Ok(Json(TokenResponse {
        token,
        token_type: "Bearer",
        expires_in: (claims.exp - claims.iat).max(0) as u64,
        subject: sub,
        kind,
        name,
    }))
}

/// The verified claims of a request's `Authorization: Bearer` token: an API token.
pub struct Authenticated(pub Claims);

/// The token of an `Authorization: Bearer <token>` header, if there is one.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Like [`Authenticated`], for the routes the Activity's page calls too (video reads,
/// launches): an API token or an Activity token.
pub struct ForActivity(pub Claims);

impl ApiState {
    /// The bearer token's claims if it is for one of `audiences`, within the subject's quota.
    fn bearer(&self, parts: &Parts, audiences: &[Audience]) -> Result<Claims, ApiError> {
        let jwt = self.jwt()?;
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing_token",
                    "send Authorization: Bearer <token> (from POST /api/v1/auth/token)",
                )
            })?;
        let token = header.strip_prefix("Bearer ").ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing_token",
                "the Authorization header must be `Bearer <token>`",
            )
        })?;
        let claims = jwt.check(token.trim())?;
        if !audiences.iter().any(|a| claims.is_for(*a)) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "wrong_token",
                "this token is not for this route: the API takes tokens from POST /api/v1/auth/token",
            ));
        }
        self.limits.check_subject(&claims.sub)?;
        Ok(claims)
    }
}

impl FromRequestParts<Arc<ApiState>> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<ApiState>) -> Result<Self, ApiError> {
        s.bearer(parts, &[Audience::Api]).map(Authenticated)
    }
}

impl FromRequestParts<Arc<ApiState>> for ForActivity {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &Arc<ApiState>) -> Result<Self, ApiError> {
        s.bearer(parts, &[Audience::Api, Audience::Activity])
            .map(ForActivity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_tampering_or_expiry_is_refused() {
        let jwt = Jwt::new(
            &Secret::new("x".repeat(32)),
            std::time::Duration::from_secs(60),
        );
        let (t, _) = jwt.issue("42", SubjectKind::Discord, "Ann").unwrap();
        assert_eq!(jwt.check(&t).unwrap().sub, "42");
        let other = Jwt::new(
            &Secret::new("y".repeat(32)),
            std::time::Duration::from_secs(60),
        );
        assert_eq!(
            other.check(&t).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        let expired = Jwt::new(
            &Secret::new("x".repeat(32)),
            std::time::Duration::from_secs(0),
        );
        let mut c = jwt.check(&t).unwrap();
        c.exp = c.iat - 100;
        let old =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &c, &expired.encoding).unwrap();
        assert!(jwt.check(&old).unwrap_err().message.contains("expired"));
    }
}
