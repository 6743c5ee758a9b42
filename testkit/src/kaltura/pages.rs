//! The pages people open from Discord, as the stand-in serves them: the virtual-classroom
//! launch (`/virtualEvent/launch?ks=`) and the iframe player
//! (`/p/{pid}/embedPlaykitJs/uiconf_id/{uiconf}?iframeembed=true&entry_id=`). Each checks the
//! session like Kaltura would and says what it let the person do.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

use super::{Inner, accounts, media, now};
use serde_json::json;

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    (
        status,
        Html(format!(
            "<!doctype html><meta charset=utf-8><title>{0}</title><body style=\"font-family:sans-serif;margin:2rem\"><h1>{0}</h1><p>{1}</p><p><small>Kaltura stand-in</small></p>",
            esc(title),
            esc(body)
        )),
    )
        .into_response()
}

fn privilege<'a>(privileges: &'a str, name: &str) -> Option<&'a str> {
    privileges.split(',').find_map(|p| {
        let (n, v) = p.trim().split_once(':')?;
        (n == name).then_some(v)
    })
}

pub async fn launch(
    State(s): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let p = json!({"ks": q.get("ks").cloned().unwrap_or_default()});
    let info = match accounts::check_ks(&s.opts, &p, false) {
        Ok(i) => i,
        Err(e) => return page(StatusCode::FORBIDDEN, "Cannot join", &e.code),
    };
    let Some(event) = privilege(&info.privileges, "eventId") else {
        return page(
            StatusCode::FORBIDDEN,
            "Cannot join",
            "the session names no eventId",
        );
    };
    let found = s
        .data
        .lock()
        .unwrap()
        .events
        .get(&event.parse().unwrap_or(-1))
        .cloned();
    match found {
        Some(ev) if ev["status"] == 2 => page(
            StatusCode::OK,
            &format!("Joined “{}”", ev["summary"].as_str().unwrap_or_default()),
            &format!(
                "as {} ({}), role {}; session valid for {} more seconds",
                privilege(&info.privileges, "firstName").unwrap_or("?"),
                info.user_id,
                privilege(&info.privileges, "role").unwrap_or("?"),
                info.expiry - now()
            ),
        ),
        Some(_) => page(StatusCode::GONE, "This meeting has ended", event),
        None => page(StatusCode::NOT_FOUND, "No such meeting", event),
    }
}

pub async fn player(
    State(s): State<Arc<Inner>>,
    Path((pid, uiconf)): Path<(u64, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if pid != s.opts.partner_id {
        return page(StatusCode::NOT_FOUND, "Unknown partner", &pid.to_string());
    }
    let entry_id = q.get("entry_id").cloned().unwrap_or_default();
    let entry = media::get(&s.data.lock().unwrap(), &json!({"entryId": entry_id}));
    let Ok(entry) = entry else {
        return page(StatusCode::NOT_FOUND, "Entry not found", &entry_id);
    };
    let access = match q.get("ks") {
        None => "no session: public playback only".to_string(),
        Some(ks) => match accounts::check_ks(&s.opts, &json!({"ks": ks}), false) {
            Ok(info)
                if privilege(&info.privileges, "sview") == Some(entry_id.as_str())
                    || privilege(&info.privileges, "sview") == Some("*") =>
            {
                format!("session of {} allows viewing this entry", info.user_id)
            }
            Ok(_) => {
                return page(
                    StatusCode::FORBIDDEN,
                    "Not allowed",
                    "the session does not allow this entry",
                );
            }
            Err(e) => return page(StatusCode::FORBIDDEN, "Not allowed", &e.code),
        },
    };
    page(
        StatusCode::OK,
        entry["name"].as_str().unwrap_or_default(),
        &format!("Player {uiconf} for entry {entry_id}: {access}"),
    )
}
