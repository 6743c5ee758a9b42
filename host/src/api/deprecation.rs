//! Routes on their way out (the policy is in `docs/api.md`). One table says which, since
//! when, until when and what replaces each; from it every such route answers with
//! `Deprecation` (RFC 9745), `Sunset` (RFC 8594) and a `Link` to its successor, the
//! OpenAPI spec marks the operation deprecated, and after the sunset the route answers
//! 410 Gone naming the successor instead of running.

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{NaiveDate, Utc};

use super::error::ApiError;

/// A route to be removed.
pub struct Deprecated {
    pub method: &'static str,
    /// As the router and the spec write it (`/api/v1/videos/{id}`).
    pub path: &'static str,
    /// The day it was announced (UTC), `YYYY-MM-DD`.
    pub since: &'static str,
    /// The day it stops answering (UTC midnight), at least [`MIN_NOTICE_DAYS`] later.
    pub sunset: &'static str,
    /// What to call instead.
    pub successor: &'static str,
    /// One line on what changes for a client.
    pub why: &'static str,
}

/// The least time between announcing a removal and doing it (the policy's promise).
pub const MIN_NOTICE_DAYS: i64 = 180;

pub const DEPRECATED: &[Deprecated] = &[Deprecated {
    method: "GET",
    path: "/api/v1/videos",
    since: "2026-12-03",
    sunset: "2027-06-30",
    successor: "/api/v2/videos",
    why: "page numbers shift when videos are added; /api/v2/videos pages with cursors",
}];

impl Deprecated {
    fn day(s: &str) -> i64 {
        NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .unwrap_or_else(|e| panic!("deprecation table: `{s}` is not YYYY-MM-DD: {e}"))
            .and_hms_opt(0, 0, 0)
            .expect("midnight")
            .and_utc()
            .timestamp()
    }

    pub fn since_unix(&self) -> i64 {
        Self::day(self.since)
    }

    pub fn sunset_unix(&self) -> i64 {
        Self::day(self.sunset)
    }

    /// `Deprecation: @<unix>` (a structured-field date).
    pub fn deprecation_header(&self) -> String {
        format!("@{}", self.since_unix())
    }

    /// `Sunset: <IMF-fixdate>`.
    pub fn sunset_header(&self) -> String {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(self.sunset_unix() as u64);
        httpdate::fmt_http_date(at)
    }

    pub fn link_header(&self) -> String {
        format!("<{}>; rel=\"successor-version\"", self.successor)
    }

    /// Whether the route has passed its sunset at `now` (unix seconds).
    pub fn is_gone(&self, now: i64) -> bool {
        now >= self.sunset_unix()
    }

    fn gone(&self) -> ApiError {
        ApiError::new(
            StatusCode::GONE,
            "gone",
            format!(
                "{} {} was removed on {} ({}): use {}",
                self.method, self.path, self.sunset, self.why, self.successor
            ),
        )
    }
}

pub fn find(method: &str, path: &str) -> Option<&'static Deprecated> {
    DEPRECATED
        .iter()
        .find(|d| d.method.eq_ignore_ascii_case(method) && d.path == path)
}

/// Middleware on every route: a deprecated one gets its headers, or 410 after its sunset.
pub async fn announce(path: Option<MatchedPath>, req: Request, next: Next) -> Response {
    let Some(d) = path.and_then(|p| find(req.method().as_str(), p.as_str())) else {
        return next.run(req).await;
    };
    let mut resp = if d.is_gone(Utc::now().timestamp()) {
        d.gone().into_response()
    } else {
        next.run(req).await
    };
    let h = resp.headers_mut();
    for (name, value) in [
        ("deprecation", d.deprecation_header()),
        ("sunset", d.sunset_header()),
        (header::LINK.as_str(), d.link_header()),
    ] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.append(name, v);
        }
    }
    resp
}

/// Marks the table's operations deprecated in the spec and documents their headers.
pub struct InSpec;

impl utoipa::Modify for InSpec {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Deprecated as Flag;
        use utoipa::openapi::header::HeaderBuilder;
        for d in DEPRECATED {
            let Some(item) = openapi.paths.paths.get_mut(d.path) else {
                continue;
            };
            let op = match d.method {
                "GET" => item.get.as_mut(),
                "POST" => item.post.as_mut(),
                "PUT" => item.put.as_mut(),
                "PATCH" => item.patch.as_mut(),
                "DELETE" => item.delete.as_mut(),
                _ => None,
            };
            let Some(op) = op else { continue };
            op.deprecated = Some(Flag::True);
            let note = format!(
                "**Deprecated** since {}, removed on {}: {}. Use `{}`.",
                d.since, d.sunset, d.why, d.successor
            );
            op.description = Some(match op.description.take() {
                Some(was) if !was.is_empty() => format!("{note}\n\n{was}"),
                _ => note,
            });
            for resp in op.responses.responses.values_mut() {
                let utoipa::openapi::RefOr::T(resp) = resp else {
                    continue;
                };
                for (name, what) in [
                    (
                        "Deprecation",
                        format!("`{}`: deprecated since {}", d.deprecation_header(), d.since),
                    ),
                    ("Sunset", format!("`{}`: removed then", d.sunset_header())),
                    ("Link", format!("`{}`", d.link_header())),
                ] {
                    resp.headers.insert(
                        name.to_string(),
                        HeaderBuilder::new().description(Some(what)).build(),
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_keeps_the_policy() {
        for d in DEPRECATED {
            let notice = (d.sunset_unix() - d.since_unix()) / 86_400;
            assert!(
                notice >= MIN_NOTICE_DAYS,
                "{} {}: {notice} days of notice, the policy promises {MIN_NOTICE_DAYS}",
                d.method,
                d.path
            );
            assert!(d.successor.starts_with("/api/"), "{}", d.successor);
        }
    }

    #[test]
    fn headers_are_in_the_rfc_formats() {
        let d = find("get", "/api/v1/videos").unwrap();
        assert_eq!(d.deprecation_header(), "@1796256000");
        assert_eq!(d.sunset_header(), "Wed, 30 Jun 2027 00:00:00 GMT");
        assert_eq!(
            d.link_header(),
            "</api/v2/videos>; rel=\"successor-version\""
        );
        assert!(find("POST", "/api/v1/videos").is_none());
    }

    #[test]
    fn gone_only_from_the_sunset() {
        let d = &DEPRECATED[0];
        assert!(!d.is_gone(d.sunset_unix() - 1));
        assert!(d.is_gone(d.sunset_unix()));
        let e = d.gone();
        assert_eq!(e.status, StatusCode::GONE);
        assert!(e.message.contains("/api/v2/videos"), "{}", e.message);
    }
}
