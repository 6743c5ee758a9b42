//! API versioning ([people] 3): `GET /api/v1/videos` is deprecated (headers and spec say
//! so and name `/api/v2/videos`), and v2 pages with cursors that do not shift when a video
//! is added between two pages, where v1's page numbers repeat one.

mod common;

use std::collections::HashSet;

use common::*;
use serde_json::{Value, json};

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    async fn start(host: &Host) -> Client {
        host.standin.set_member(GUILD, USER, &[]);
        host.standin.add_oauth_user("oauth-user", USER, "Ann");
        Client {
            http: reqwest::Client::new(),
            base: host.base.clone(),
            token: host.api_token("oauth-user").await,
        }
    }

    async fn get(&self, path: &str) -> (u16, reqwest::header::HeaderMap, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        (status, headers, r.json().await.unwrap())
    }

    /// Every page of a v2 listing, following `next_cursor`; after the first page, `between`
    /// runs once.
    async fn all_v2(&self, first: &str, between: impl FnOnce()) -> (Vec<String>, Vec<String>) {
        let mut ids = Vec::new();
        let mut engines = Vec::new();
        let mut path = first.to_string();
        let mut between = Some(between);
        loop {
            let (st, h, r) = self.get(&path).await;
            assert_eq!(st, 200, "{path}: {r}");
            assert!(h.get("deprecation").is_none(), "v2 is not deprecated");
            ids.extend(ids_of(&r));
            engines.push(r["engine"].as_str().unwrap().to_string());
            if let Some(f) = between.take() {
                f();
            }
            let Some(c) = r["next_cursor"].as_str() else {
                break;
            };
            assert!(ids.len() < 500, "the cursors go round in circles");
            path = format!("/api/v2/videos?guild_id={GUILD}&cursor={c}");
        }
        (ids, engines)
    }
}

fn ids_of(r: &Value) -> Vec<String> {
    r["videos"]
        .as_array()
        .unwrap_or_else(|| panic!("no videos in {r}"))
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

fn no_repeats(ids: &[String]) -> bool {
    ids.iter().collect::<HashSet<_>>().len() == ids.len()
}

#[tokio::test]
async fn v1_videos_is_deprecated_in_headers_and_spec_and_v2_pages_by_cursor() {
    let host = start_with_kaltura(|_| {}).await;
    let kal = host.kaltura.clone().unwrap();
    let api = Client::start(&host).await;

    // v1 answers as before, with the deprecation headers, on errors too.
    let (st, h, r) = api
        .get(&format!("/api/v1/videos?guild_id={GUILD}&limit=7"))
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(h["deprecation"], "@1796256000");
    assert_eq!(h["sunset"], "Wed, 30 Jun 2027 00:00:00 GMT");
    assert_eq!(h["link"], "</api/v2/videos>; rel=\"successor-version\"");
    let v1_first = ids_of(&r);
    let (st, h, _) = api
        .get(&format!("/api/v1/videos?guild_id={GUILD}&limit=99"))
        .await;
    assert_eq!((st, h.contains_key("sunset")), (400, true));
    // The routes that stay have none.
    let (_, h, _) = api
        .get(&format!("/api/v1/videos/{}?guild_id={GUILD}", v1_first[0]))
        .await;
    assert!(h.get("deprecation").is_none());

    // Everything v1 lists (page by page, 50 at a time), v2 lists once, 7 at a time.
    let mut v1_all = Vec::new();
    for page in 1.. {
        let (_, _, r) = api
            .get(&format!(
                "/api/v1/videos?guild_id={GUILD}&limit=50&page={page}"
            ))
            .await;
        let ids = ids_of(&r);
        v1_all.extend(ids.iter().cloned());
        if ids.len() < 50 {
            break;
        }
    }
    assert!(v1_all.len() > 14, "the fixtures have enough videos to page");
    let (v2_all, engines) = api
        .all_v2(&format!("/api/v2/videos?guild_id={GUILD}&limit=7"), || {})
        .await;
    assert_eq!(v2_all, v1_all, "v2 lists what v1 lists, in the same order");
    assert!(engines.iter().all(|e| e == "media.list"));

    // A video uploaded between two pages: v1's page 2 repeats page 1's last video; v2's
    // cursor goes on where it was, nothing twice, nothing missed.
    kal.add_entry(json!({"id": "0_newest1", "name": "Just uploaded", "mediaType": 1}));
    let (_, _, r) = api
        .get(&format!("/api/v1/videos?guild_id={GUILD}&limit=7&page=2"))
        .await;
    assert_eq!(ids_of(&r)[0], v1_first[6], "v1 shifted by the upload");
    let (v2_again, _) = api
        .all_v2(&format!("/api/v2/videos?guild_id={GUILD}&limit=7"), || {
            kal.add_entry(json!({"id": "0_newest2", "name": "Another", "mediaType": 1}));
        })
        .await;
    assert!(no_repeats(&v2_again), "{v2_again:?}");
    assert_eq!(v2_again[0], "0_newest1");
    assert_eq!(&v2_again[1..], &v1_all[..], "nothing missed");

    // Text: eSearch pages by relevance; the cursor carries the query.
    let (hits, engines) = api
        .all_v2(
            &format!("/api/v2/videos?guild_id={GUILD}&q=all%20hands&limit=2"),
            || {},
        )
        .await;
    assert_eq!(
        (hits.len(), engines.join(",")),
        (3, "esearch,esearch".into())
    );
    assert!(no_repeats(&hits));
    // Without eSearch the same query lists by keyset through media.list.
    kal.set_esearch(false);
    let (fallback, engines) = api
        .all_v2(
            &format!("/api/v2/videos?guild_id={GUILD}&q=all%20hands&limit=2"),
            || {},
        )
        .await;
    kal.set_esearch(true);
    assert!(engines.iter().all(|e| e == "media.list"));
    assert_eq!(
        fallback.iter().collect::<HashSet<_>>(),
        hits.iter().collect::<HashSet<_>>()
    );

    // A cursor is the API's own: forged or mismatched ones are named 400s.
    let (_, _, r) = api
        .get(&format!(
            "/api/v2/videos?guild_id={GUILD}&q=all%20hands&limit=2"
        ))
        .await;
    let cursor = r["next_cursor"].as_str().unwrap().to_string();
    for (query, named) in [
        (format!("cursor={cursor}&q=other"), "q differs"),
        (format!("cursor={cursor}&limit=3"), "limit differs"),
        ("cursor=not-a-cursor".to_string(), "cursor"),
        ("limit=0".to_string(), "limit"),
        ("page=2".to_string(), "page"),
    ] {
        let (st, _, r) = api
            .get(&format!("/api/v2/videos?guild_id={GUILD}&{query}"))
            .await;
        assert_eq!(st, 400, "{query}: {r}");
        let msg = r["error"]["message"].as_str().unwrap();
        assert!(msg.contains(named), "{query}: {msg}");
    }
    // The same q and limit beside the cursor are fine.
    let (st, _, r) = api
        .get(&format!(
            "/api/v2/videos?guild_id={GUILD}&cursor={cursor}&q=all%20hands&limit=2"
        ))
        .await;
    assert_eq!((st, ids_of(&r).len()), (200, 1));

    // The spec: v1's operation is deprecated with the headers documented; v2 is there.
    let (st, _, spec) = api.get("/api/v1/openapi.json").await;
    assert_eq!(st, 200);
    let v1 = &spec["paths"]["/api/v1/videos"]["get"];
    assert_eq!(v1["deprecated"], true);
    assert!(
        v1["description"]
            .as_str()
            .unwrap()
            .contains("/api/v2/videos"),
        "{v1}"
    );
    for header in ["Deprecation", "Sunset", "Link"] {
        assert!(
            v1["responses"]["200"]["headers"][header].is_object(),
            "{header} is not documented: {v1}"
        );
    }
    let v2 = &spec["paths"]["/api/v2/videos"]["get"];
    assert!(v2.is_object() && v2["deprecated"].is_null(), "{v2}");
    assert!(spec["components"]["schemas"]["VideoPage"].is_object());
    let (_, _, spec2) = api.get("/api/v2/openapi.json").await;
    assert_eq!(spec, spec2);
    let (st, _, r) = api.get("/api/v2/nothing").await;
    assert_eq!((st, r["error"]["code"].as_str()), (404, Some("not_found")));

    host.stop().await;
}
