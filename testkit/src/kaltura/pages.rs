//! The pages people open from Discord, as the stand-in serves them: the virtual-classroom
//! launch (`/virtualEvent/launch?ks=`) and the iframe player
//! (`/p/{pid}/embedPlaykitJs/uiconf_id/{uiconf}?iframeembed=true&entry_id=`). Each checks the
//! session like Kaltura would and says what it let the person do. The same URL without
//! `iframeembed` is the Player v7 script (`player.js`, the API subset an embed uses), and
//! `playManifest` serves an entry's media: this partner's access control asks for a session
//! that may view the entry (`sview:<id>`, `sview:*`, or an ADMIN session).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use kaltura_ks::{KsInfo, SessionType};
use tower::ServiceExt;
use tower_http::services::ServeFile;

use super::{Inner, accounts, media, now, params, rooms, virtual_events};
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

/// The `ks` query parameter checked like Kaltura would, and the object its privilege
/// `name` names; else the page that refuses.
fn session_naming(
    s: &Inner,
    q: &HashMap<String, String>,
    name: &str,
) -> Result<(KsInfo, String), Box<Response>> {
    let p = json!({"ks": q.get("ks").cloned().unwrap_or_default()});
    let info = accounts::check_ks(&s.opts, &p, false)
        .map_err(|e| Box::new(page(StatusCode::FORBIDDEN, "Cannot join", &e.code)))?;
    let named = privilege(&info.privileges, name)
        .map(String::from)
        .ok_or_else(|| {
            Box::new(page(
                StatusCode::FORBIDDEN,
                "Cannot join",
                &format!("the session names no {name}"),
            ))
        })?;
    Ok((info, named))
}

pub async fn launch(
    State(s): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (info, event) = match session_naming(&s, &q, "eventId") {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let event = event.as_str();
    let data = s.data.lock().unwrap();
    let found = data.events.get(&event.parse().unwrap_or(-1));
    // A webinar's session also names its virtual event, which the main event must be part of.
    if let Some(ve) = privilege(&info.privileges, "virtualEventId") {
        let part_of =
            found.is_some_and(|ev| params::text(&ev["virtualEventId"]).as_deref() == Some(ve));
        if !part_of || !virtual_events::is_active(&data, ve.parse().unwrap_or(-1)) {
            return page(StatusCode::NOT_FOUND, "No such virtual event", ve);
        }
    }
    match found {
        Some(ev) if ev["status"] == 2 => joined(&info, params::text(&ev["summary"])),
        Some(_) => page(StatusCode::GONE, "This meeting has ended", event),
        None => page(StatusCode::NOT_FOUND, "No such meeting", event),
    }
}

/// "Joined …": who, with which role, for how long.
fn joined(info: &KsInfo, title: Option<String>) -> Response {
    page(
        StatusCode::OK,
        &format!("Joined “{}”", title.unwrap_or_default()),
        &format!(
            "as {} ({}), role {}; session valid for {} more seconds",
            privilege(&info.privileges, "firstName").unwrap_or("?"),
            info.user_id,
            privilege(&info.privileges, "role").unwrap_or("?"),
            info.expiry - now()
        ),
    )
}

/// The room launch (`/room/launch?ks=`): the session names the room (`roomId`), which must
/// exist and be within its scheduling window.
pub async fn room_launch(
    State(s): State<Arc<Inner>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (info, room_id) = match session_naming(&s, &q, "roomId") {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    let room_id = room_id.as_str();
    let room = s.data.lock().unwrap().rooms.get(room_id).cloned();
    match room {
        Some(r) if params::int(&r["status"]) == Some(rooms::DELETED) => {
            page(StatusCode::NOT_FOUND, "No such room", room_id)
        }
        Some(r) if params::int(&r["endDate"]).is_some_and(|end| end <= now()) => {
            page(StatusCode::GONE, "This meeting has ended", room_id)
        }
        Some(r) => joined(&info, params::text(&r["name"])),
        None => page(StatusCode::NOT_FOUND, "No such room", room_id),
    }
}

/// May this session view the entry?
fn may_view(info: &KsInfo, entry_id: &str) -> bool {
    info.session_type == SessionType::Admin
        || matches!(privilege(&info.privileges, "sview"), Some(v) if v == entry_id || v == "*")
}

pub async fn player(
    State(s): State<Arc<Inner>>,
    Path((pid, uiconf)): Path<(u64, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if pid != s.opts.partner_id {
        return page(StatusCode::NOT_FOUND, "Unknown partner", &pid.to_string());
    }
    if q.get("iframeembed").map(String::as_str) != Some("true") {
        let js = include_str!("player.js")
            .replace("__PARTNER_ID__", &pid.to_string())
            .replace("__UICONF_ID__", &uiconf.replace(['"', '\\', '<'], ""));
        return (
            [(
                header::CONTENT_TYPE,
                "application/javascript; charset=utf-8",
            )],
            js,
        )
            .into_response();
    }
    let entry_id = q.get("entry_id").cloned().unwrap_or_default();
    let entry = media::get(
        &s.data.lock().unwrap(),
        &json!({"entryId": entry_id}),
        &media::Entitlement::none(),
    );
    let Ok(entry) = entry else {
        return page(StatusCode::NOT_FOUND, "Entry not found", &entry_id);
    };
    let access = match q.get("ks") {
        None => "no session: public playback only".to_string(),
        Some(ks) => match accounts::check_ks(&s.opts, &json!({"ks": ks}), false) {
            Ok(info) if may_view(&info, &entry_id) => {
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

/// `/p/{pid}/sp/{pid}00/playManifest/entryId/{id}/format/url/protocol/{http|https}[/a.wav]
/// ?ks=`: the entry's media (one small generated WAV for every ready entry), with ranges.
pub async fn play_manifest(
    State(s): State<Arc<Inner>>,
    Path((pid, rest)): Path<(u64, String)>,
    Query(q): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let text = |status: StatusCode, msg: &str| (status, msg.to_string()).into_response();
    if pid != s.opts.partner_id {
        return text(StatusCode::NOT_FOUND, "unknown partner");
    }
    let mut parts = rest.split('/');
    let entry_id = match (parts.next(), parts.next()) {
        (Some("entryId"), Some(id)) if !id.is_empty() => id.to_string(),
        _ => return text(StatusCode::BAD_REQUEST, "playManifest needs /entryId/{id}/"),
    };
    let entry = media::get(
        &s.data.lock().unwrap(),
        &json!({"entryId": entry_id}),
        &media::Entitlement::none(),
    );
    match entry {
        Ok(e) if e["status"] == 2 => {}
        Ok(_) => return text(StatusCode::NOT_FOUND, "the entry is not ready"),
        Err(_) => return text(StatusCode::NOT_FOUND, "no such entry"),
    }
    let ks = q.get("ks").cloned().unwrap_or_default();
    match accounts::check_ks(&s.opts, &json!({"ks": ks}), false) {
        Ok(info) if may_view(&info, &entry_id) => {}
        Ok(_) => {
            return text(
                StatusCode::FORBIDDEN,
                "the session does not allow this entry",
            );
        }
        Err(e) => return text(StatusCode::FORBIDDEN, &e.code),
    }
    match sample_media() {
        Ok(path) => match ServeFile::new(path).oneshot(req).await {
            Ok(r) => r.into_response(),
            Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
        },
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

/// A 60 s tone (4 kHz mono, 8-bit, ~240 KB) written once per machine to the temp folder.
fn sample_media() -> Result<&'static std::path::Path, String> {
    static PATH: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = std::env::temp_dir().join("kd-testkit-kaltura-sample-v1.wav");
        if path.exists() {
            return Ok(path);
        }
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 4_000,
            bits_per_sample: 8,
            sample_format: hound::SampleFormat::Int,
        };
        let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
        let write = || -> Result<(), hound::Error> {
            let mut w = hound::WavWriter::create(&tmp, spec)?;
            for i in 0..4_000 * 60 {
                let t = i as f64 / 4_000.0;
                // 330 Hz, beeping at 660 Hz for the first tenth of every 5 s.
                let f = if t % 5.0 < 0.1 { 660.0 } else { 330.0 };
                w.write_sample((60.0 * (2.0 * std::f64::consts::PI * f * t).sin()) as i8)?;
            }
            w.finalize()
        };
        write().map_err(|e| format!("cannot write the sample media: {e}"))?;
        std::fs::rename(&tmp, &path).map_err(|e| format!("cannot place the sample media: {e}"))?;
        Ok(path)
    })
    .as_ref()
    .map(PathBuf::as_path)
    .map_err(Clone::clone)
}
