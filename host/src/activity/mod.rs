//! The Watch Together Activity's server side: the sync rooms (`room`), their wire protocol
//! (`protocol`) and the WebSocket endpoint (`sync`). Sign-in is `POST /api/v1/activity/token`.

pub mod media;
pub mod protocol;
pub mod relay;
pub mod room;
pub mod signin;
pub mod socket;
pub mod sync;

use std::path::Path;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Html;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

/// `/activity/` (the built client) and `/activity/media/` (the demo media). Without a build,
/// `/activity/` says how to make one. `/` leads to `/activity/` with its query: inside
/// Discord the Activity starts at the root URL mapping (`/?frame_id=…&instance_id=…`).
pub fn static_files(dist: &Path, media: &Path) -> Router {
    pages(dist, media)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(PAGE_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
}

/// Who may frame the Activity: Discord (its client and the Activity proxy) and the host
/// itself; no plugins or objects, no `<base>` games.
pub const PAGE_POLICY: &str = "frame-ancestors 'self' https://discord.com https://*.discord.com https://*.discordsays.com; object-src 'none'; base-uri 'self'";

fn pages(dist: &Path, media: &Path) -> Router {
    let router = Router::new()
        .route(
            "/",
            axum::routing::get(|uri: axum::http::Uri| async move {
                let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
                axum::response::Redirect::temporary(&format!("/activity/{query}"))
            }),
        )
        .nest_service("/activity/media", ServeDir::new(media));
    if dist.join("index.html").exists() {
        router.nest_service(
            "/activity",
            ServeDir::new(dist).append_index_html_on_directories(true),
        )
    } else {
        let hint = format!(
            "<h1>Watch Together is not built</h1><p>Run <code>npm ci --prefix activity &amp;&amp; npm run build --prefix activity</code> (looked in <code>{}</code>).</p>",
            dist.display()
        );
        router.route(
            "/activity/{*rest}",
            axum::routing::get(move || {
                let hint = hint.clone();
                async move { (StatusCode::SERVICE_UNAVAILABLE, Html(hint)) }
            }),
        )
    }
}
