//! Media entries and categories: `media.get`, `media.list` (filter + pager + orderBy),
//! `elasticsearch_esearch.searchEntry` and `category.list`.

use std::cmp::Ordering;

use serde_json::{Value, json};

use super::params::{int, text};
use super::{ApiError, ApiResult, Data, KalturaOptions};

const READY: i64 = 2;
const DELETED: i64 = 3;

/// Loads the fixtures, filling what the server computes (partner id, URLs, counts).
pub fn seed(opts: &KalturaOptions, base_url: &str) -> Data {
    let pid = opts.partner_id;
    let mut entries = opts.fixtures.entries.clone();
    for e in &mut entries {
        let id = text(&e["id"]).unwrap_or_default();
        e["partnerId"] = json!(pid);
        if e["thumbnailUrl"].is_null() {
            e["thumbnailUrl"] = json!(format!(
                "{base_url}/p/{pid}/sp/{pid}00/thumbnail/entry_id/{id}/version/100000"
            ));
        }
        if e["dataUrl"].is_null() {
            e["dataUrl"] = json!(format!(
                "{base_url}/p/{pid}/sp/{pid}00/playManifest/entryId/{id}/format/url/protocol/https"
            ));
        }
    }
    let mut categories = opts.fixtures.categories.clone();
    for c in &mut categories {
        let cid = int(&c["id"]).unwrap_or(0).to_string();
        let count = entries
            .iter()
            .filter(|e| {
                text(&e["categoriesIds"]).is_some_and(|ids| ids.split(',').any(|i| i.trim() == cid))
            })
            .count();
        c["partnerId"] = json!(pid);
        c["entriesCount"] = json!(count);
    }
    let users = opts
        .fixtures
        .users
        .iter()
        .filter_map(|u| Some((text(&u["id"])?, u.clone())))
        .collect();
    Data {
        entries,
        categories,
        users,
        events: Default::default(),
        next_event_id: 1001,
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new("ENTRY_ID_NOT_FOUND", format!("Entry id \"{id}\" not found"))
        .with_args(json!({"ENTRY_ID": id}))
}

pub fn get(data: &Data, p: &Value) -> ApiResult {
    let id = text(&p["entryId"]).unwrap_or_default();
    data.entries
        .iter()
        .find(|e| e["id"] == id.as_str() && int(&e["status"]) != Some(DELETED))
        .cloned()
        .ok_or_else(|| not_found(&id))
}

/// Name, description and tags, lower-cased: what free text searches.
fn haystack(e: &Value) -> String {
    ["name", "description", "tags"]
        .iter()
        .filter_map(|f| text(&e[*f]))
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn csv(v: &Value) -> Vec<String> {
    text(v)
        .map(|s| {
            s.split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

fn matches_filter(e: &Value, f: &Value) -> bool {
    let status = int(&e["status"]).unwrap_or(0);
    let status_ok = match (int(&f["statusEqual"]), text(&f["statusIn"])) {
        (Some(s), _) => status == s,
        (None, Some(list)) => list.split(',').any(|s| s.trim().parse() == Ok(status)),
        // By default the server leaves deleted entries out.
        _ => status != DELETED,
    };
    let free = text(&f["freeText"]).map(|t| {
        let hay = haystack(e);
        t.split_whitespace()
            .all(|w| hay.contains(&w.to_lowercase()))
    });
    let name_like = text(&f["nameLike"]).map(|n| {
        text(&e["name"])
            .unwrap_or_default()
            .to_lowercase()
            .contains(&n.to_lowercase())
    });
    let tags_like = text(&f["tagsLike"]).map(|t| {
        text(&e["tags"])
            .unwrap_or_default()
            .to_lowercase()
            .contains(&t.to_lowercase())
    });
    let id_in = (!f["idIn"].is_null()).then(|| {
        let ids = csv(&f["idIn"]);
        ids.iter().any(|i| e["id"] == i.as_str())
    });
    let media_type = int(&f["mediaTypeEqual"]).map(|m| int(&e["mediaType"]) == Some(m));
    let user = text(&f["userIdEqual"]).map(|u| e["userId"] == u.as_str());
    let categories = (!f["categoriesIdsMatchOr"].is_null()).then(|| {
        let want = csv(&f["categoriesIdsMatchOr"]);
        csv(&e["categoriesIds"]).iter().any(|c| want.contains(c))
    });
    status_ok
        && [
            free, name_like, tags_like, id_in, media_type, user, categories,
        ]
        .into_iter()
        .all(|c| c.unwrap_or(true))
}

/// `orderBy`: `+field` ascending, `-field` descending (default `-createdAt`).
fn sort(list: &mut [Value], order_by: Option<String>) {
    let order = order_by.unwrap_or_else(|| "-createdAt".into());
    let (desc, field) = match order.split_at_checked(1) {
        Some(("-", f)) => (true, f.to_string()),
        Some(("+", f)) => (false, f.to_string()),
        _ => (false, order.clone()),
    };
    list.sort_by(|a, b| {
        let ord = match (int(&a[&field]), int(&b[&field])) {
            (Some(x), Some(y)) => x.cmp(&y),
            _ => text(&a[&field])
                .unwrap_or_default()
                .to_lowercase()
                .cmp(&text(&b[&field]).unwrap_or_default().to_lowercase()),
        };
        let ord = if desc { ord.reverse() } else { ord };
        ord.then_with(|| text(&a["id"]).cmp(&text(&b["id"])))
    });
}

/// `pageSize` ≤ 500 (default 30), `pageIndex` from 1.
pub fn page<T: Clone>(items: &[T], pager: &Value) -> Vec<T> {
    let size = int(&pager["pageSize"]).unwrap_or(30).clamp(1, 500) as usize;
    let index = int(&pager["pageIndex"]).unwrap_or(1).max(1) as usize;
    items
        .iter()
        .skip((index - 1) * size)
        .take(size)
        .cloned()
        .collect()
}

pub fn list_response(object_type: &str, total: usize, objects: Vec<Value>) -> Value {
    json!({"objectType": object_type, "totalCount": total, "objects": objects})
}

pub fn list(data: &Data, p: &Value) -> ApiResult {
    let f = &p["filter"];
    let mut found: Vec<Value> = data
        .entries
        .iter()
        .filter(|e| matches_filter(e, f))
        .cloned()
        .collect();
    sort(&mut found, text(&f["orderBy"]));
    let objects = page(&found, &p["pager"]);
    Ok(list_response(
        "KalturaMediaListResponse",
        found.len(),
        objects,
    ))
}

/// eSearch unified items: each `searchTerm` must (AND) or may (OR) appear in the name,
/// description or tags; nested operators are evaluated the same way.
fn esearch_match(e: &Value, op: &Value, highlights: &mut Vec<Value>) -> bool {
    let items = op["searchItems"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        return true;
    }
    let or = int(&op["operator"]) == Some(2);
    let results = items.iter().map(|item| {
        if item["searchItems"].is_array() {
            return esearch_match(e, item, highlights);
        }
        let term = text(&item["searchTerm"]).unwrap_or_default().to_lowercase();
        let mut hit = false;
        for field in ["name", "description", "tags"] {
            let value = text(&e[field]).unwrap_or_default();
            if !term.is_empty() && value.to_lowercase().contains(&term) {
                hit = true;
                highlights.push(json!({
                    "objectType": "KalturaESearchHighlight",
                    "fieldName": field,
                    "hits": [value],
                }));
            }
        }
        hit
    });
    if or {
        results.fold(false, |acc, r| acc | r)
    } else {
        results.fold(true, |acc, r| acc & r)
    }
}

pub fn esearch(data: &Data, p: &Value) -> ApiResult {
    let params = &p["searchParams"];
    let op = &params["searchOperator"];
    if op.is_null() {
        return Err(ApiError::new(
            "EMPTY_SEARCH_ITEMS_NOT_ALLOWED",
            "empty search items are not allowed",
        ));
    }
    let mut found: Vec<(Value, Vec<Value>)> = data
        .entries
        .iter()
        .filter(|e| int(&e["status"]) == Some(READY))
        .filter_map(|e| {
            let mut hl = Vec::new();
            esearch_match(e, op, &mut hl).then(|| (e.clone(), hl))
        })
        .collect();
    // Relevance: more highlighted fields first, then the newest.
    found.sort_by(|(a, ha), (b, hb)| match hb.len().cmp(&ha.len()) {
        Ordering::Equal => int(&b["createdAt"]).cmp(&int(&a["createdAt"])),
        o => o,
    });
    let results: Vec<Value> = found
        .iter()
        .map(|(e, hl)| {
            json!({"objectType": "KalturaESearchEntryResult", "object": e, "highlight": hl, "itemsData": []})
        })
        .collect();
    let objects = page(&results, &p["pager"]);
    Ok(list_response(
        "KalturaESearchEntryResponse",
        results.len(),
        objects,
    ))
}

pub fn categories(data: &Data, p: &Value) -> ApiResult {
    let f = &p["filter"];
    let found: Vec<Value> = data
        .categories
        .iter()
        .filter(|c| int(&f["parentIdEqual"]).is_none_or(|pid| int(&c["parentId"]) == Some(pid)))
        .filter(|c| {
            text(&f["fullNameStartsWith"])
                .is_none_or(|s| text(&c["fullName"]).unwrap_or_default().starts_with(&s))
        })
        .cloned()
        .collect();
    let objects = page(&found, &p["pager"]);
    Ok(list_response(
        "KalturaCategoryListResponse",
        found.len(),
        objects,
    ))
}
