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

/// `media.list` parameters: ready entries matching the free text, newest first.
pub fn list_params(query: &str, page_size: u32, page: u32) -> Value {
    let mut filter =
        json!({"objectType": "KalturaMediaEntryFilter", "statusEqual": 2, "orderBy": "-createdAt"});
    if !query.is_empty() {
        filter["freeText"] = json!(query);
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
        assert_eq!(list_params(&q, 5, 1)["filter"]["freeText"], q);
    }
}
