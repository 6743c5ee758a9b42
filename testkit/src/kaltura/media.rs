//! Media entries and categories: `media.get`, `media.list` (filter + pager + orderBy;
//! `createdAt…OrEqual` and `idNotIn` for keyset paging as Kaltura advises past 10,000),
//! `elasticsearch_esearch.searchEntry` and `category.list`, with Kaltura's entitlement: a
//! category with a privacy context shows its entries only to its members when the session
//! enforces entitlement (a USER session, or an ADMIN one with `enableentitlement`; never
//! with `disableentitlement`). The session's own `privacycontext` is not modelled.

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
    // `directEntriesCount`: entries in the category itself; `entriesCount`: with the
    // entries of its sub-categories (full names are `Parent>Child`).
    let mut categories = opts.fixtures.categories.clone();
    let full_names: Vec<(String, String)> = categories
        .iter()
        .map(|c| {
            (
                int(&c["id"]).unwrap_or(0).to_string(),
                text(&c["fullName"]).unwrap_or_default(),
            )
        })
        .collect();
    let in_category = |e: &Value, under: &str, direct: bool| {
        text(&e["categoriesIds"]).is_some_and(|ids| {
            ids.split(',').any(|i| {
                full_names.iter().any(|(id, name)| {
                    id == i.trim()
                        && (name == under || (!direct && name.starts_with(&format!("{under}>"))))
                })
            })
        })
    };
    for c in &mut categories {
        let name = text(&c["fullName"]).unwrap_or_default();
        let count = |direct| {
            entries
                .iter()
                .filter(|e| in_category(e, &name, direct))
                .count()
        };
        c["partnerId"] = json!(pid);
        c["directEntriesCount"] = json!(count(true));
        c["entriesCount"] = json!(count(false));
    }
    let users = opts
        .fixtures
        .users
        .iter()
        .filter_map(|u| Some((text(&u["id"])?, u.clone())))
        .collect();
    let lowered = entries.iter().map(searched_text).collect();
    Data {
        entries,
        lowered,
        categories,
        users,
        events: Default::default(),
        next_event_id: 1001,
        virtual_events: Default::default(),
        next_virtual_event_id: 5001,
        rooms: Default::default(),
        next_room: 0,
    }
}

/// Adds an entry as a finished upload leaves it: ready and created now unless it says
/// otherwise.
pub fn push(data: &mut Data, mut e: Value) {
    for (field, default) in [("status", json!(2)), ("createdAt", json!(super::now()))] {
        if e[field].is_null() {
            e[field] = default;
        }
    }
    e["objectType"] = json!("KalturaMediaEntry");
    data.lowered.push(searched_text(&e));
    data.entries.push(e);
}

/// What a session may see of the entries.
#[derive(Debug, Clone)]
pub struct Entitlement {
    enforced: bool,
    user: String,
}

impl Entitlement {
    pub fn of(ks: &kaltura_ks::KsInfo) -> Self {
        let has = |name: &str| {
            ks.privileges
                .split(',')
                .any(|p| p.trim().split(':').next() == Some(name))
        };
        let user_session = ks.session_type == kaltura_ks::SessionType::User;
        Self {
            enforced: (user_session || has("enableentitlement")) && !has("disableentitlement"),
            user: ks.user_id.clone(),
        }
    }

    /// Not enforced: the server's own look-ups (a page then checks the session itself).
    pub fn none() -> Self {
        Self {
            enforced: false,
            user: String::new(),
        }
    }

    /// Whether the session may see this entry: entries of a category with a privacy
    /// context are for that category's members.
    pub fn may_see(&self, data: &Data, e: &Value) -> bool {
        if !self.enforced {
            return true;
        }
        let ids = csv(&e["categoriesIds"]);
        let restricted: Vec<&Value> = data
            .categories
            .iter()
            .filter(|c| {
                ids.contains(&int(&c["id"]).unwrap_or(0).to_string())
                    && !text(&c["privacyContext"]).unwrap_or_default().is_empty()
            })
            .collect();
        restricted.is_empty()
            || restricted.iter().any(|c| {
                c["members"]
                    .as_array()
                    .is_some_and(|m| m.iter().any(|u| u == self.user.as_str()))
            })
    }
}

fn not_found(id: &str) -> ApiError {
    ApiError::new("ENTRY_ID_NOT_FOUND", format!("Entry id \"{id}\" not found"))
        .with_args(json!({"ENTRY_ID": id}))
}

pub fn get(data: &Data, p: &Value, who: &Entitlement) -> ApiResult {
    let id = text(&p["entryId"]).unwrap_or_default();
    data.entries
        .iter()
        .find(|e| {
            e["id"] == id.as_str() && int(&e["status"]) != Some(DELETED) && who.may_see(data, e)
        })
        .cloned()
        .ok_or_else(|| not_found(&id))
}

/// The fields free text and eSearch look at.
const SEARCHED: [&str; 3] = ["name", "description", "tags"];

/// The fields searches look at, lower-cased.
fn searched_text(e: &Value) -> [String; 3] {
    SEARCHED.map(|f| text(&e[f]).unwrap_or_default().to_lowercase())
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

fn matches_filter(e: &Value, lowered: &[String; 3], f: &Value) -> bool {
    let status = int(&e["status"]).unwrap_or(0);
    let status_ok = match (int(&f["statusEqual"]), text(&f["statusIn"])) {
        (Some(s), _) => status == s,
        (None, Some(list)) => list.split(',').any(|s| s.trim().parse() == Ok(status)),
        // By default the server leaves deleted entries out.
        _ => status != DELETED,
    };
    let free = text(&f["freeText"]).map(|t| {
        t.split_whitespace().all(|w| {
            let w = w.to_lowercase();
            lowered.iter().any(|field| field.contains(&w))
        })
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
    let id_not_in = (!f["idNotIn"].is_null()).then(|| {
        let ids = csv(&f["idNotIn"]);
        !ids.iter().any(|i| e["id"] == i.as_str())
    });
    let created = int(&e["createdAt"]).unwrap_or(0);
    let created_le = int(&f["createdAtLessThanOrEqual"]).map(|t| created <= t);
    let created_ge = int(&f["createdAtGreaterThanOrEqual"]).map(|t| created >= t);
    let media_type = int(&f["mediaTypeEqual"]).map(|m| int(&e["mediaType"]) == Some(m));
    let user = text(&f["userIdEqual"]).map(|u| e["userId"] == u.as_str());
    let categories = (!f["categoriesIdsMatchOr"].is_null()).then(|| {
        let want = csv(&f["categoriesIdsMatchOr"]);
        csv(&e["categoriesIds"]).iter().any(|c| want.contains(c))
    });
    status_ok
        && [
            free, name_like, tags_like, id_in, id_not_in, created_le, created_ge, media_type, user,
            categories,
        ]
        .into_iter()
        .all(|c| c.unwrap_or(true))
}

/// `orderBy`: `+field` ascending, `-field` descending (default `-createdAt`).
fn sort(list: &mut [&Value], order_by: Option<String>) {
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

pub fn list(data: &Data, p: &Value, who: &Entitlement) -> ApiResult {
    let f = &p["filter"];
    let mut found: Vec<&Value> = data
        .entries
        .iter()
        .zip(&data.lowered)
        .filter(|(e, lc)| matches_filter(e, lc, f) && who.may_see(data, e))
        .map(|(e, _)| e)
        .collect();
    sort(&mut found, text(&f["orderBy"]));
    let objects = page(&found, &p["pager"]).into_iter().cloned().collect();
    Ok(list_response(
        "KalturaMediaListResponse",
        found.len(),
        objects,
    ))
}

/// eSearch unified items: each `searchTerm` must (AND) or may (OR) appear in the name,
/// description or tags; nested operators are evaluated the same way. Adds the number of
/// matching fields to `hits` (relevance).
fn esearch_match(lowered: &[String; 3], op: &Value, hits: &mut usize) -> bool {
    let Some(items) = op["searchItems"].as_array().filter(|i| !i.is_empty()) else {
        return true;
    };
    let or = int(&op["operator"]) == Some(2);
    let mut any = false;
    let mut all = true;
    for item in items {
        let hit = if item["searchItems"].is_array() {
            esearch_match(lowered, item, hits)
        } else {
            let term = text(&item["searchTerm"]).unwrap_or_default().to_lowercase();
            let n = lowered
                .iter()
                .filter(|f| !term.is_empty() && f.contains(&term))
                .count();
            *hits += n;
            n > 0
        };
        any |= hit;
        all &= hit;
    }
    if or { any } else { all }
}

/// The highlight objects for one result: the fields where a term appears.
fn highlights(e: &Value, lowered: &[String; 3], op: &Value) -> Vec<Value> {
    let mut terms = Vec::new();
    collect_terms(op, &mut terms);
    SEARCHED
        .iter()
        .zip(lowered)
        .filter(|(_, lc)| terms.iter().any(|t| !t.is_empty() && lc.contains(t.as_str())))
        .map(|(field, _)| {
            json!({"objectType": "KalturaESearchHighlight", "fieldName": field, "hits": [e[*field].clone()]})
        })
        .collect()
}

fn collect_terms(op: &Value, out: &mut Vec<String>) {
    for item in op["searchItems"].as_array().into_iter().flatten() {
        if item["searchItems"].is_array() {
            collect_terms(item, out);
        } else {
            out.push(text(&item["searchTerm"]).unwrap_or_default().to_lowercase());
        }
    }
}

pub fn esearch(data: &Data, p: &Value, who: &Entitlement) -> ApiResult {
    let params = &p["searchParams"];
    let op = &params["searchOperator"];
    if op.is_null() {
        return Err(ApiError::new(
            "EMPTY_SEARCH_ITEMS_NOT_ALLOWED",
            "empty search items are not allowed",
        ));
    }
    let mut found: Vec<(usize, usize)> = data
        .entries
        .iter()
        .zip(&data.lowered)
        .enumerate()
        .filter(|(_, (e, _))| int(&e["status"]) == Some(READY) && who.may_see(data, e))
        .filter_map(|(i, (_, lc))| {
            let mut hits = 0;
            esearch_match(lc, op, &mut hits).then_some((i, hits))
        })
        .collect();
    // Relevance: more matching fields first, then the newest.
    let created = |i: usize| int(&data.entries[i]["createdAt"]);
    found.sort_by(|(a, ha), (b, hb)| match hb.cmp(ha) {
        Ordering::Equal => created(*b).cmp(&created(*a)),
        o => o,
    });
    let objects = page(&found, &p["pager"])
        .into_iter()
        .map(|(i, _)| {
            let e = &data.entries[i];
            json!({"objectType": "KalturaESearchEntryResult", "object": e,
                   "highlight": highlights(e, &data.lowered[i], op), "itemsData": []})
        })
        .collect();
    Ok(list_response(
        "KalturaESearchEntryResponse",
        found.len(),
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
