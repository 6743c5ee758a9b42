//! Media as Kaltura sends it (lenient: numbers arrive as numbers or strings, nulls are
//! omitted) and as this host hands it on.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use serde_with::{DisplayFromStr, PickFirst, serde_as};

use super::error::KalturaError;

/// A `KalturaMediaEntry` on the wire.
#[serde_as]
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireEntry {
    id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    thumbnail_url: Option<String>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    duration: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    media_type: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    status: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    plays: Option<i64>,
    #[serde_as(as = "Option<PickFirst<(_, DisplayFromStr)>>")]
    #[serde(default)]
    created_at: Option<i64>,
    #[serde(default)]
    tags: Option<String>,
    #[serde(default)]
    categories: Option<String>,
}

/// A media entry as the host's API and plugins see it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Video {
    pub id: String,
    pub name: String,
    pub description: String,
    pub thumbnail_url: Option<String>,
    /// Seconds.
    pub duration: u32,
    /// 1 video, 2 image, 5 audio, 201+ live.
    pub media_type: u32,
    /// 2 = ready.
    pub status: i32,
    pub tags: Vec<String>,
    /// Full category names, e.g. "Training>Security".
    pub categories: Vec<String>,
    pub plays: u32,
    /// Unix seconds.
    pub created_at: i64,
}

fn split(list: Option<String>) -> Vec<String> {
    list.unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn clamp_u32(v: Option<i64>) -> u32 {
    v.unwrap_or(0).clamp(0, u32::MAX as i64) as u32
}

impl Video {
    pub fn from_wire(v: Value) -> Result<Self, KalturaError> {
        let w: WireEntry = serde_json::from_value(v)
            .map_err(|e| KalturaError::Decode(format!("a media entry: {e}")))?;
        Ok(Self {
            id: w.id,
            name: w.name,
            description: w.description.unwrap_or_default(),
            thumbnail_url: w.thumbnail_url,
            duration: clamp_u32(w.duration),
            media_type: clamp_u32(w.media_type),
            status: w
                .status
                .unwrap_or(0)
                .clamp(i32::MIN as i64, i32::MAX as i64) as i32,
            tags: split(w.tags),
            categories: split(w.categories),
            plays: clamp_u32(w.plays),
            created_at: w.created_at.unwrap_or(0),
        })
    }

    pub fn is_ready(&self) -> bool {
        self.status == 2
    }
}

/// One page of search results.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchResult {
    pub total: u32,
    pub videos: Vec<Video>,
    /// "esearch", or "media.list" when the account has no eSearch.
    pub engine: String,
}

#[serde_as]
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Category {
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    pub id: i64,
    #[serde(default)]
    pub name: String,
    #[serde(default, rename(deserialize = "fullName"))]
    pub full_name: String,
    #[serde_as(as = "PickFirst<(_, DisplayFromStr)>")]
    #[serde(default, rename(deserialize = "entriesCount"))]
    pub entries_count: u32,
}

/// The longest search text sent to Kaltura; longer input is cut (at a character boundary).
pub const MAX_QUERY_CHARS: usize = 256;

/// Trims and bounds user search text. Quotes, emoji and any other character pass as is:
/// parameters travel as JSON, never spliced into a query language.
pub fn clean_query(q: &str) -> String {
    q.trim().chars().take(MAX_QUERY_CHARS).collect()
}

/// eSearch parameters for a unified partial-match search on every word (AND).
pub fn esearch_params(query: &str, page_size: u32, page: u32) -> Value {
    let items: Vec<Value> = query
        .split_whitespace()
        .map(|w| {
            json!({"objectType": "KalturaESearchUnifiedItem", "searchTerm": w, "itemType": 2, "addHighlight": false})
        })
        .collect();
    json!({
        "searchParams": {
            "objectType": "KalturaESearchEntryParams",
            "searchOperator": {"objectType": "KalturaESearchEntryOperator", "operator": 1, "searchItems": items},
        },
        "pager": {"objectType": "KalturaFilterPager", "pageSize": page_size, "pageIndex": page},
    })
}

/// Where a listing goes on from (the v2 API's cursors carry one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "k", rename_all = "snake_case", deny_unknown_fields)]
pub enum Position {
    /// A page of a relevance-ranked listing (eSearch), from 1.
    Page { p: u32 },
    /// Newest first (`media.list`): entries created at or before `t`, less those at `t`
    /// already listed. Unlike a page index this does not shift when videos are added.
    Before { t: i64, seen: Vec<String> },
}

/// The most entries sharing one creation second a `Before` position remembers; past this
/// (a bulk import) a listing may show an entry twice, never skip one.
pub const MAX_SEEN: usize = 100;

impl Position {
    /// After a page of `-createdAt` results: before the oldest one shown.
    pub fn before_last(from: Option<&Position>, videos: &[Video]) -> Option<Position> {
        let t = videos.iter().map(|v| v.created_at).min()?;
        let mut seen: Vec<String> = match from {
            Some(Position::Before { t: was, seen }) if *was == t => seen.clone(),
            _ => Vec::new(),
        };
        seen.extend(
            videos
                .iter()
                .filter(|v| v.created_at == t)
                .map(|v| v.id.clone()),
        );
        let skip = seen.len().saturating_sub(MAX_SEEN);
        seen.drain(..skip);
        Some(Position::Before { t, seen })
    }
}

/// `media.list` parameters: ready entries matching the free text, newest first, from
/// `at` (a page index, or keyset: `createdAtLessThanOrEqual` + `idNotIn`).
pub fn list_params(query: &str, page_size: u32, at: Option<&Position>) -> Value {
    let mut filter =
        json!({"objectType": "KalturaMediaEntryFilter", "statusEqual": 2, "orderBy": "-createdAt"});
    if !query.is_empty() {
        filter["freeText"] = json!(query);
    }
    let mut page = 1;
    match at {
        Some(Position::Page { p }) => page = *p,
        Some(Position::Before { t, seen }) => {
            filter["createdAtLessThanOrEqual"] = json!(t);
            if !seen.is_empty() {
                filter["idNotIn"] = json!(seen.join(","));
            }
        }
        None => {}
    }
    json!({
        "filter": filter,
        "pager": {"objectType": "KalturaFilterPager", "pageSize": page_size, "pageIndex": page},
    })
}

/// A list response (`{totalCount, objects}`); eSearch wraps each entry in `object`.
pub fn parse_list(mut v: Value, engine: &str) -> Result<SearchResult, KalturaError> {
    let total = v["totalCount"].as_u64();
    let objects = match v["objects"].take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    let videos = objects
        .into_iter()
        .map(|mut o| {
            if o["object"].is_object() {
                Video::from_wire(o["object"].take())
            } else {
                Video::from_wire(o)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SearchResult {
        total: total.unwrap_or(videos.len() as u64) as u32,
        videos,
        engine: engine.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_strings_and_missing_fields_are_fine() {
        let v = Video::from_wire(json!({"id": "0_a", "name": "A", "duration": "12",
            "mediaType": 1, "status": "2", "tags": "a, b", "objectType": "KalturaMediaEntry"}))
        .unwrap();
        assert_eq!((v.duration, v.media_type, v.status), (12, 1, 2));
        assert_eq!(v.tags, ["a", "b"]);
        assert!(v.thumbnail_url.is_none());
    }

    #[test]
    fn queries_are_bounded_not_escaped() {
        let long = "é\"☕".repeat(1000);
        let q = clean_query(&long);
        assert_eq!(q.chars().count(), MAX_QUERY_CHARS);
        assert_eq!(list_params(&q, 5, None)["filter"]["freeText"], q);
    }

    fn video(id: &str, created_at: i64) -> Video {
        Video::from_wire(json!({"id": id, "createdAt": created_at})).unwrap()
    }

    #[test]
    fn keyset_positions_skip_what_was_shown_at_the_oldest_second() {
        let page = [video("0_a", 30), video("0_b", 20), video("0_c", 20)];
        let at = Position::before_last(None, &page).unwrap();
        assert_eq!(
            at,
            Position::Before {
                t: 20,
                seen: vec!["0_b".into(), "0_c".into()]
            }
        );
        let p = list_params("", 3, Some(&at));
        assert_eq!(p["filter"]["createdAtLessThanOrEqual"], 20);
        assert_eq!(p["filter"]["idNotIn"], "0_b,0_c");
        assert_eq!(p["pager"]["pageIndex"], 1);
        // A next page still at second 20 adds to what was seen there; an older one starts over.
        let same = Position::before_last(Some(&at), &[video("0_d", 20)]).unwrap();
        assert!(matches!(&same, Position::Before { t: 20, seen } if seen.len() == 3));
        let older = Position::before_last(Some(&at), &[video("0_e", 10)]).unwrap();
        assert!(matches!(&older, Position::Before { t: 10, seen } if seen == &["0_e"]));
        let many: Vec<Video> = (0..150).map(|i| video(&format!("0_{i}"), 5)).collect();
        let capped = Position::before_last(None, &many).unwrap();
        assert!(
            matches!(&capped, Position::Before { seen, .. } if seen.len() == MAX_SEEN && seen[0] == "0_50")
        );
        assert_eq!(Position::before_last(None, &[]), None);
    }

    #[test]
    fn a_page_position_pages() {
        let p = list_params("x", 10, Some(&Position::Page { p: 4 }));
        assert_eq!(p["pager"]["pageIndex"], 4);
        assert!(p["filter"]["createdAtLessThanOrEqual"].is_null());
    }
}
