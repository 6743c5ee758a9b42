//! Messages with files, as Discord takes them: `multipart/form-data` with the message as
//! `payload_json` and each file as `files[n]` (its `attachments` entry `{id: n, filename}`
//! names it). The message comes back with `attachments: [{id, filename, size,
//! content_type, url}]`; the url serves the file from this stand-in, as Discord's CDN does.

use std::collections::HashMap;

use axum::body::Bytes;
use serde_json::{Value, json};

use super::Inner;

/// A stored file: its content type and bytes.
pub(super) type Files = HashMap<String, (String, Vec<u8>)>;

/// Discord's largest upload for an unboosted server (10 MiB).
const MAX_FILE: usize = 10 * 1024 * 1024;

/// The message of a multipart body, its files stored and listed in `attachments`; an
/// error names what Discord would refuse.
pub(super) async fn read(s: &Inner, content_type: &str, body: Bytes) -> Result<Value, String> {
    let boundary = multer::parse_boundary(content_type).map_err(|e| e.to_string())?;
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut payload = Value::Null;
    let mut files: Vec<(usize, String, String, Vec<u8>)> = Vec::new();
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "payload_json" {
            let text = field.text().await.map_err(|e| e.to_string())?;
            payload = serde_json::from_str(&text).map_err(|e| format!("payload_json: {e}"))?;
        } else if let Some(n) = name
            .strip_prefix("files[")
            .and_then(|r| r.strip_suffix(']'))
            .and_then(|n| n.parse::<usize>().ok())
        {
            let filename = field.file_name().unwrap_or("file").to_string();
            let ctype = field
                .content_type()
                .map(|m| m.to_string())
                .unwrap_or_else(|| "application/octet-stream".into());
            let bytes = field.bytes().await.map_err(|e| e.to_string())?.to_vec();
            if bytes.len() > MAX_FILE {
                return Err(format!("files[{n}] is over {MAX_FILE} bytes"));
            }
            files.push((n, filename, ctype, bytes));
        } else {
            return Err(format!("unknown form field `{name}`"));
        }
    }
    if !payload.is_object() {
        return Err("no payload_json".into());
    }
    let described = payload["attachments"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut listed = Vec::new();
    for (n, filename, ctype, bytes) in files {
        let named = described.iter().find(|a| {
            a["id"].as_u64() == Some(n as u64) || a["id"].as_str() == Some(&n.to_string())
        });
        let filename = named
            .and_then(|a| a["filename"].as_str())
            .map(String::from)
            .unwrap_or(filename);
        let id = s.next_snowflake();
        let url = format!("http://{}/attachments/{id}/{filename}", s.addr);
        listed.push(json!({"id": id, "filename": filename, "size": bytes.len(),
            "content_type": ctype, "url": url, "proxy_url": url}));
        s.files
            .lock()
            .unwrap()
            .insert(format!("{id}/{filename}"), (ctype, bytes));
    }
    payload["attachments"] = Value::Array(listed);
    Ok(payload)
}

/// `GET /attachments/{id}/{filename}`: the file, or 404.
pub(super) fn serve(s: &Inner, path: &str) -> Option<(String, Vec<u8>)> {
    s.files.lock().unwrap().get(path).cloned()
}
