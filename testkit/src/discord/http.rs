//! The stand-in's front door: every request is recorded, injected faults come first, then
//! OAuth2 and bearer routes, the bot token check, the global limit and Discord-style route
//! buckets (with their headers); then the resource answers.

use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{Bucket, Inner, Recorded, applications, channels, control, discord_error, guilds};
use super::{attachments, interactions, not_found, now_secs, oauth};
use std::sync::Arc;

type Extra = Vec<(&'static str, String)>;

/// Routes that need the bot token (interaction and webhook-token routes do not).
fn needs_bot_auth(segments: &[&str]) -> bool {
    !matches!(
        segments.first(),
        Some(&"interactions") | Some(&"webhooks") | Some(&"oauth2")
    )
}

/// The rate-limit bucket of a route: path with ids, minus the top-level resource id for
/// webhooks' tokens (which are secrets, so never echoed).
fn bucket_key(method: &Method, segments: &[&str]) -> String {
    format!(
        "{method} {}",
        segments
            .iter()
            .take(4)
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    )
}

pub(super) async fn handle(
    State(s): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_string();
    if method == Method::GET
        && let Some(file) = path.strip_prefix("/attachments/")
    {
        return match attachments::serve(&s, file) {
            Some((ctype, bytes)) => ([("content-type", ctype)], bytes).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body_json: Value = if body.is_empty() {
        Value::Null
    } else if content_type.starts_with("multipart/form-data") {
        match attachments::read(&s, &content_type, body).await {
            Ok(v) => v,
            Err(why) => {
                let (st, b) = super::discord_error(StatusCode::BAD_REQUEST, 50035, &why);
                return (st, axum::Json(b)).into_response();
            }
        }
    } else {
        serde_json::from_slice(&body)
            .unwrap_or(Value::String(String::from_utf8_lossy(&body).into()))
    };
    let authorized = match &s.opts.bot_token {
        Some(t) => {
            headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bot {t}"))
        }
        None => true,
    };

    if let Some(rest) = path.strip_prefix("/_testkit/") {
        if method == Method::POST && rest == "send" {
            return control::send_route(&s, body_json).await.into_response();
        }
        return control::testkit_route(&s, &method, rest, body_json).into_response();
    }

    let (status, reply, extra) = api(&s, &method, &path, &headers, &body_json, authorized).await;
    s.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        body: body_json,
        status: status.as_u16(),
        at_ms: s.started.elapsed().as_millis() as u64,
        authorized,
    });
    let mut resp = if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, axum::Json(reply)).into_response()
    };
    for (k, v) in extra {
        resp.headers_mut()
            .insert(k, HeaderValue::from_str(&v).unwrap());
    }
    resp
}

type Answer = (StatusCode, Value, Extra);

async fn api(
    s: &Inner,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Value,
    authorized: bool,
) -> Answer {
    let Some(rest) = path.strip_prefix("/api/v10/") else {
        let (st, b) = not_found();
        return (st, b, vec![]);
    };
    let seg: Vec<&str> = rest.split('/').collect();
    // Injected faults come first.
    if let Some(answer) = injected_fault(s, path).await {
        return answer;
    }
    if method == Method::POST && seg.as_slice() == ["oauth2", "token"] {
        let (st, b) = oauth::oauth_token(s, body);
        return (st, b, vec![]);
    }
    if let Some((st, b)) = oauth::bearer_route(s, &seg, headers) {
        return (st, b, vec![]);
    }
    if needs_bot_auth(&seg) && !authorized {
        let (st, b) = discord_error(StatusCode::UNAUTHORIZED, 0, "401: Unauthorized");
        return (st, b, vec![]);
    }
    if let Some(limited) = global_limit(s) {
        return limited;
    }
    let headers = match take_from_bucket(s, &bucket_key(method, &seg)) {
        Ok(headers) => headers,
        Err(limited) => return limited,
    };
    let app = s.opts.application_id.as_str();
    let (status, reply) = route(s, method, &seg, body, app).await;
    (status, reply, headers)
}

/// The first injected fault for this path, used once (after its delay); `None` when there
/// is none or it lets the request through (status 200 with a delay).
async fn injected_fault(s: &Inner, path: &str) -> Option<Answer> {
    let f = {
        let mut faults = s.faults.lock().unwrap();
        let i = faults
            .iter()
            .position(|f| path.contains(&f.path_contains))?;
        let f = faults[i].clone();
        if faults[i].count <= 1 {
            faults.remove(i);
        } else {
            faults[i].count -= 1;
        }
        f
    };
    if f.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.delay_ms)).await;
    }
    match f.status {
        429 => Some(rate_limited(f.retry_after, false)),
        200 => None,
        other => {
            let st = StatusCode::from_u16(other).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            Some((st, json!({"message": "injected fault", "code": 0}), vec![]))
        }
    }
}

/// The bot's global limit (requests per one-second window), when one is set.
fn global_limit(s: &Inner) -> Option<Answer> {
    let limit = s.opts.global_limit?;
    let mut w = s.global_window.lock().unwrap();
    if w.0.elapsed() >= Duration::from_secs(1) {
        *w = (Instant::now(), 0);
    }
    if w.1 >= limit {
        let wait = Duration::from_secs(1).saturating_sub(w.0.elapsed());
        return Some(rate_limited(wait.as_secs_f64(), true));
    }
    w.1 += 1;
    None
}

/// Takes one request from the route's bucket: Discord's rate-limit headers, or a 429.
fn take_from_bucket(s: &Inner, key: &str) -> Result<Extra, Answer> {
    let (remaining, reset_after) = {
        let mut buckets = s.buckets.lock().unwrap();
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            window_start: Instant::now(),
            used: 0,
        });
        if b.window_start.elapsed() >= s.opts.bucket_window {
            *b = Bucket {
                window_start: Instant::now(),
                used: 0,
            };
        }
        let reset_after = s
            .opts
            .bucket_window
            .saturating_sub(b.window_start.elapsed())
            .as_secs_f64();
        if b.used >= s.opts.bucket_limit {
            return Err(rate_limited(reset_after, false));
        }
        b.used += 1;
        (s.opts.bucket_limit - b.used, reset_after)
    };
    Ok(vec![
        ("x-ratelimit-limit", s.opts.bucket_limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        (
            "x-ratelimit-reset",
            format!("{:.3}", now_secs() as f64 + reset_after),
        ),
        ("x-ratelimit-reset-after", format!("{reset_after:.3}")),
        ("x-ratelimit-bucket", format!("{:016x}", fxhash(key))),
    ])
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100000001b3)
    })
}

fn rate_limited(retry_after: f64, global: bool) -> Answer {
    let mut headers: Extra = vec![
        ("retry-after", format!("{retry_after:.3}")),
        (
            "x-ratelimit-scope",
            if global { "global" } else { "user" }.into(),
        ),
        ("x-ratelimit-remaining", "0".into()),
        ("x-ratelimit-reset-after", format!("{retry_after:.3}")),
    ];
    if global {
        headers.push(("x-ratelimit-global", "true".into()));
    }
    (
        StatusCode::TOO_MANY_REQUESTS,
        json!({"message": "You are being rate limited.", "retry_after": retry_after, "global": global}),
        headers,
    )
}

/// The resource a route belongs to answers it.
async fn route(
    s: &Inner,
    method: &Method,
    seg: &[&str],
    body: &Value,
    app: &str,
) -> (StatusCode, Value) {
    match seg.first().copied() {
        Some("users" | "guilds") => guilds::route(s, method, seg, body, app),
        Some("applications" | "gateway") => applications::route(s, method, seg, body, app),
        Some("interactions" | "webhooks") => interactions::route(s, method, seg, body, app).await,
        Some("channels") => channels::route(s, method, seg, body),
        _ => not_found(),
    }
}
