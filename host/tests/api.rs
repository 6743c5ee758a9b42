//! `/api/v1` end to end: tokens only for verified identities, 401/403/400/404 as promised,
//! meetings and videos against the Kaltura stand-in, the OpenAPI spec, no ADMIN session in
//! any response.

mod common;

use common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const OTHER: &str = "700000000000000002";
/// The service account's secret (service secrets are at least 32 characters).
const REPORTING_SECRET: &str = "reporting-secret-0123456789abcdef0123";
const STRANGER: &str = "700000000000000003";

struct Api {
    host: Host,
    http: reqwest::Client,
    /// Every response body, for the ADMIN-session scan.
    seen: std::sync::Mutex<String>,
}

impl Api {
    async fn start() -> Api {
        let service_secret_sha = hex::encode(Sha256::digest(REPORTING_SECRET.as_bytes()));
        let host = start_with_kaltura(|s| {
            s.api_json = Some(json!({"service_accounts": {
                "reporting": {"secret_sha256": service_secret_sha, "guilds": [GUILD], "role": "moderator"}
            }}));
        })
        .await;
        host.standin.set_member(GUILD, USER, &[]);
        host.standin.set_member(GUILD, OTHER, &[]);
        host.standin.add_oauth_user("oauth-user", USER, "Ann");
        host.standin.add_oauth_user("oauth-other", OTHER, "Bob");
        host.standin
            .add_oauth_user("oauth-stranger", STRANGER, "Eve");
        Api {
            host,
            http: reqwest::Client::new(),
            seen: Default::default(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.host.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        self.seen.lock().unwrap().push_str(&text);
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn token(&self, discord_token: &str) -> String {
        let (st, body) = self
            .call(
                "POST",
                "/api/v1/auth/token",
                None,
                Some(json!({"discord_access_token": discord_token})),
            )
            .await;
        assert_eq!(st, 200, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

#[tokio::test]
async fn tokens_are_issued_only_for_verified_identities_and_checked_on_every_route() {
    let api = Api::start().await;
    let (st, body) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"discord_access_token": "oauth-user"})),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(
        (
            body["subject"].as_str(),
            body["kind"].as_str(),
            body["expires_in"].as_u64()
        ),
        (Some(USER), Some("discord"), Some(3600))
    );
    let (st, body) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"discord_access_token": "forged"})),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_discord_token")
    );
    // Roles or ids the caller asserts are not a way in.
    let (st, body) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"user_id": USER, "roles": ["admin"]})),
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::BAD_REQUEST, "invalid_body"));
    let (st, body) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"service": "reporting", "secret": "wrong"})),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_credentials")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at least 32"),
        "{body}"
    );
    // [harden] low: config/api.json is re-read when it changes: an account removed from
    // the file can no longer sign in.
    let api_json = api.host.dir.join("config/api.json");
    let before = std::fs::read_to_string(&api_json).unwrap();
    std::fs::write(&api_json, r#"{"service_accounts": {}}"#).unwrap();
    let (st, _) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"service": "reporting", "secret": REPORTING_SECRET})),
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    std::fs::write(&api_json, before).unwrap();

    // Missing, malformed, foreign and expired tokens: 401 everywhere.
    let (st, body) = api
        .call(
            "GET",
            &format!("/api/v1/videos?guild_id={GUILD}&q=x"),
            None,
            None,
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "missing_token")
    );
    let (st, _) = api
        .call(
            "GET",
            &format!("/api/v1/videos?guild_id={GUILD}&q=x"),
            Some("not.a.jwt"),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    let now = kdhost::kaltura::sessions::now();
    let claims = json!({"sub": USER, "kind": "discord", "name": "Ann", "iat": now - 7200, "exp": now - 3600, "iss": "kdhost", "aud": "kdhost-api"});
    let expired = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (st, body) = api
        .call("GET", "/api/v1/meetings?guild_id=1", Some(&expired), None)
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expired"),
        "{body}"
    );
    let mut fresh = claims.clone();
    fresh["exp"] = json!(now + 3600);
    // A token without an audience (what this host issued before) is not accepted.
    let mut no_aud = fresh.clone();
    no_aud.as_object_mut().unwrap().remove("aud");
    let no_aud = jsonwebtoken::encode(
        &header,
        &no_aud,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (st, body) = api
        .call("GET", "/api/v1/meetings?guild_id=1", Some(&no_aud), None)
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "invalid_token"),
        "{body}"
    );
    let foreign = jsonwebtoken::encode(
        &header,
        &fresh,
        &jsonwebtoken::EncodingKey::from_secret(b"some-other-secret-0123456789abcdef"),
    )
    .unwrap();
    let (st, _) = api
        .call(
            "DELETE",
            "/api/v1/meetings/1?guild_id=1",
            Some(&foreign),
            None,
        )
        .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    api.host.stop().await;
}

#[tokio::test]
async fn meetings_over_the_api_follow_the_same_rules_as_the_commands() {
    let api = Api::start().await;
    let kal = api.host.kaltura.as_ref().unwrap();
    let ann = api.token("oauth-user").await;
    let bob = api.token("oauth-other").await;
    let eve = api.token("oauth-stranger").await;

    let (st, m) = api.call("POST", "/api/v1/meetings", Some(&ann), Some(json!({"guild_id": GUILD, "kind": "classroom", "title": "Algebra", "description": "Ch. 3"}))).await;
    assert_eq!(st, StatusCode::CREATED, "{m}");
    assert_eq!(
        (
            m["kind"].as_str(),
            m["owner_id"].as_str(),
            m["active"].as_bool()
        ),
        (Some("classroom"), Some(USER), Some(true))
    );
    let id = m["id"].as_str().unwrap().to_string();

    let (st, list) = api
        .call(
            "GET",
            &format!("/api/v1/meetings?guild_id={GUILD}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(list["meetings"][0]["id"], id.as_str());
    let (st, one) = api
        .call(
            "GET",
            &format!("/api/v1/meetings/{id}?guild_id={GUILD}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (st, one["title"].as_str()),
        (StatusCode::OK, Some("Algebra"))
    );

    // A join link with a USER session for the caller, viewer role for Bob.
    let (st, join) = api
        .call(
            "POST",
            &format!("/api/v1/meetings/{id}/join?guild_id={GUILD}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(st, 200, "{join}");
    let session = sessions_in(join["url"].as_str().unwrap()).remove(0);
    let info = verify_session(kal, &session);
    assert_eq!(info.user_id, format!("discord_{OTHER}"));
    assert!(
        info.privileges.contains("role:viewerRole"),
        "{}",
        info.privileges
    );

    // Not a member of the server: 403. Another user's meeting: 403. Unknown: 404.
    let (st, body) = api
        .call(
            "GET",
            &format!("/api/v1/meetings?guild_id={GUILD}"),
            Some(&eve),
            None,
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::FORBIDDEN, "not_a_member"));
    let (st, body) = api
        .call(
            "DELETE",
            &format!("/api/v1/meetings/{id}?guild_id={GUILD}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::FORBIDDEN, "forbidden"),
        "{body}"
    );
    let (st, body) = api
        .call(
            "GET",
            &format!("/api/v1/meetings/424242?guild_id={GUILD}"),
            Some(&bob),
            None,
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));
    // The owner ends it.
    let (st, ended) = api
        .call(
            "DELETE",
            &format!("/api/v1/meetings/{id}?guild_id={GUILD}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(
        (st, ended["active"].as_bool()),
        (StatusCode::OK, Some(false))
    );

    // Malformed input: 400 naming the field.
    let (st, body) = api.call("GET", "/api/v1/meetings", Some(&ann), None).await;
    assert_eq!(st, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("guild_id"),
        "{body}"
    );
    let (st, body) = api
        .call("GET", "/api/v1/meetings?guild_id=abc", Some(&ann), None)
        .await;
    assert!(
        st == 400
            && body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("guild_id"),
        "{body}"
    );
    for (bad, field) in [
        (
            json!({"guild_id": GUILD, "kind": "party", "title": "x"}),
            "kind",
        ),
        (
            json!({"guild_id": GUILD, "kind": "meeting", "title": ""}),
            "title",
        ),
        (json!({"guild_id": GUILD, "kind": "meeting"}), "title"),
        (
            json!({"guild_id": GUILD, "kind": "meeting", "title": "x", "owner": "1"}),
            "owner",
        ),
    ] {
        let (st, body) = api
            .call("POST", "/api/v1/meetings", Some(&ann), Some(bad))
            .await;
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(st == 400 && message.contains(field), "{field}: {body}");
    }

    // A service account acts only in its guilds, with its configured role.
    let (st, svc) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"service": "reporting", "secret": REPORTING_SECRET})),
        )
        .await;
    assert_eq!(st, 200, "{svc}");
    let svc = svc["token"].as_str().unwrap().to_string();
    let (st, m) = api
        .call(
            "POST",
            "/api/v1/meetings",
            Some(&svc),
            Some(json!({"guild_id": GUILD, "kind": "webinar", "title": "Report"})),
        )
        .await;
    assert_eq!(
        (st, m["owner_id"].as_str()),
        (StatusCode::CREATED, Some("service:reporting")),
        "{m}"
    );
    let (st, body) = api
        .call(
            "GET",
            "/api/v1/meetings?guild_id=600000000000000777",
            Some(&svc),
            None,
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::FORBIDDEN, "forbidden"));

    assert_no_admin_session(kal, &api.seen.lock().unwrap(), "an API response");
    api.host.stop().await;
}

#[tokio::test]
async fn videos_search_get_and_play_and_bad_queries_are_400s_never_500s() {
    let api = Api::start().await;
    let kal = api.host.kaltura.as_ref().unwrap();
    let ann = api.token("oauth-user").await;
    let (st, r) = api
        .call(
            "GET",
            &format!("/api/v1/videos?guild_id={GUILD}&q=all%20hands&limit=2"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(
        (
            r["total"].as_u64(),
            r["videos"].as_array().unwrap().len(),
            r["engine"].as_str()
        ),
        (Some(3), 2, Some("esearch"))
    );
    let (st, r2) = api
        .call(
            "GET",
            &format!("/api/v1/videos?guild_id={GUILD}&q=all%20hands&limit=2&page=2"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(
        (st, r2["videos"].as_array().unwrap().len()),
        (StatusCode::OK, 1)
    );
    let id = r["videos"][0]["id"].as_str().unwrap().to_string();

    for q in [
        "%22quoted%22",
        "caf%C3%A9%20%E2%98%95%20%F0%9F%A5%90",
        &"z".repeat(2000),
        "%27%3B%20--",
        "",
    ] {
        let (st, body) = api
            .call(
                "GET",
                &format!("/api/v1/videos?guild_id={GUILD}&q={q}"),
                Some(&ann),
                None,
            )
            .await;
        assert_eq!(st, 200, "q={q}: {body}");
    }
    for (query, field) in [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("limit=51", "limit"),
        ("page=0", "page"),
        ("colour=red", "colour"),
        ("guild_id=x1", "guild_id"),
        ("guild_id=", "guild_id"),
    ] {
        let (st, body) = api
            .call(
                "GET",
                &if query.starts_with("guild_id") {
                    format!("/api/v1/videos?q=a&{query}")
                } else {
                    format!("/api/v1/videos?guild_id={GUILD}&q=a&{query}")
                },
                Some(&ann),
                None,
            )
            .await;
        assert_eq!(st, 400, "{query}: {body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(field),
            "{query}: {body}"
        );
    }
    let (st, body) = api
        .call(
            "GET",
            &format!("/api/v1/videos?guild_id={GUILD}&q={}", "z".repeat(2001)),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::BAD_REQUEST, "invalid_query")
    );

    let (st, v) = api
        .call(
            "GET",
            &format!("/api/v1/videos/{id}?guild_id={GUILD}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!((st, v["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    let (st, body) = api
        .call(
            "GET",
            &format!("/api/v1/videos/0_nothere?guild_id={GUILD}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    let (st, p) = api
        .call(
            "POST",
            &format!("/api/v1/videos/{id}/play?guild_id={GUILD}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(st, 200, "{p}");
    let info = verify_session(kal, p["session"]["ks"].as_str().unwrap());
    assert_eq!(info.session_type, kdhost::kaltura::ks::SessionType::User);
    assert!(
        info.privileges.starts_with(&format!("sview:{id}")),
        "{}",
        info.privileges
    );
    assert!(p["embed_code"].as_str().unwrap().starts_with("<iframe"));
    // What the Activity's Kaltura player does with it: the Player v7 script, then the media
    // with the scoped session (ranges for seeking); another entry's media is refused.
    let http = reqwest::Client::new();
    let script = http
        .get(p["script_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(
        script.headers()["content-type"],
        "application/javascript; charset=utf-8"
    );
    assert!(
        script
            .text()
            .await
            .unwrap()
            .contains("KalturaPlayer = { setup")
    );
    let pid = p["partner_id"].as_str().unwrap();
    let ks = p["session"]["ks"].as_str().unwrap();
    let media = |entry: &str, ks: &str| {
        format!(
            "{}/p/{pid}/sp/{pid}00/playManifest/entryId/{entry}/format/url/protocol/http/a.wav?ks={ks}",
            kal.url
        )
    };
    let r = http
        .get(media(&id, ks))
        .header("range", "bytes=0-43")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(&r.bytes().await.unwrap()[..4], b"RIFF");
    let other = if id == "1_ujzde8gx" {
        "1_10epf91d"
    } else {
        "1_ujzde8gx"
    };
    assert_eq!(
        http.get(media(other, ks)).send().await.unwrap().status(),
        403
    );
    assert_eq!(http.get(media(&id, "")).send().await.unwrap().status(), 403);

    let (st, spec) = api.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(st, 200);
    for path in [
        "/api/v1/auth/token",
        "/api/v1/meetings",
        "/api/v1/meetings/{id}",
        "/api/v1/meetings/{id}/join",
        "/api/v1/videos",
        "/api/v1/videos/{id}",
        "/api/v1/videos/{id}/play",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the spec"
        );
    }
    assert!(spec["components"]["securitySchemes"]["bearer"].is_object());
    let (st, body) = api.call("GET", "/api/v1/nothing", Some(&ann), None).await;
    assert_eq!((st, code(&body)), (StatusCode::NOT_FOUND, "not_found"));

    assert_no_admin_session(kal, &api.seen.lock().unwrap(), "an API response");
    api.host.stop().await;
}

/// [harden] 3: a Discord token another application obtained from the user does not open
/// this host's API; a malformed one is a 401 that costs no Discord call.
#[tokio::test]
async fn tokens_issued_to_other_applications_are_refused() {
    let api = Api::start().await;
    api.host
        .standin
        .add_foreign_oauth_user("oauth-elsewhere", USER, "Ann", "999999999999999999");
    let (st, body) = api
        .call(
            "POST",
            "/api/v1/auth/token",
            None,
            Some(json!({"discord_access_token": "oauth-elsewhere"})),
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::UNAUTHORIZED, "foreign_discord_token"),
        "{body}"
    );
    // The same user's token for this application works.
    api.token("oauth-user").await;
    let asked = || {
        api.host
            .standin
            .requests()
            .iter()
            .filter(|r| r.path.contains("oauth2/@me"))
            .count()
    };
    let before = asked();
    for junk in ["", "has spaces in it", "\u{7f}ctl", &"x".repeat(5000)] {
        let (st, body) = api
            .call(
                "POST",
                "/api/v1/auth/token",
                None,
                Some(json!({"discord_access_token": junk})),
            )
            .await;
        assert_eq!(
            (st, code(&body)),
            (StatusCode::UNAUTHORIZED, "invalid_discord_token"),
            "{body}"
        );
    }
    assert_eq!(asked(), before, "junk tokens were sent to Discord");
}

/// [harden] 6: videos are read in a server the caller belongs to, with entitlement on: a
/// private category's entries reach its members only; no server, no videos.
#[tokio::test]
async fn videos_need_a_server_and_respect_entitlement() {
    let api = Api::start().await;
    let (ann, bob) = (
        api.token("oauth-user").await,
        api.token("oauth-other").await,
    );
    let search = |token: String| {
        let api = &api;
        async move {
            api.call(
                "GET",
                &format!("/api/v1/videos?guild_id={GUILD}&q=confidential"),
                Some(&token),
                None,
            )
            .await
        }
    };
    let (st, r) = search(ann.clone()).await;
    assert_eq!(
        (st, r["videos"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{r}"
    );
    // Bob is a member of the Leadership category in Kaltura.
    let (st, r) = search(bob.clone()).await;
    assert_eq!(
        (st, r["videos"][0]["id"].as_str()),
        (StatusCode::OK, Some("1_c0nf1den")),
        "{r}"
    );
    let (st, body) = api
        .call(
            "GET",
            &format!("/api/v1/videos/1_c0nf1den?guild_id={GUILD}"),
            Some(&ann),
            None,
        )
        .await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::NOT_FOUND, "not_found"),
        "{body}"
    );
    // Without a server: refused, naming the parameter; a stranger to the server: 403.
    let (st, body) = api
        .call("GET", "/api/v1/videos?q=confidential", Some(&bob), None)
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("guild_id"),
        "{body}"
    );
    let eve = api.token("oauth-stranger").await;
    let (st, body) = search(eve).await;
    assert_eq!(
        (st, code(&body)),
        (StatusCode::FORBIDDEN, "not_a_member"),
        "{body}"
    );
    // Every read went out with entitlement on.
    let kal = api.host.kaltura.as_ref().unwrap();
    for c in kal
        .calls()
        .iter()
        .filter(|c| c.action == "searchEntry" || c.action == "get")
    {
        if c.service == "media" || c.action == "searchEntry" {
            assert!(
                c.ks_privileges
                    .as_deref()
                    .unwrap_or_default()
                    .contains("enableentitlement"),
                "{c:?}"
            );
        }
    }
}

/// [harden] 5: a stranger cannot make the host spend Discord's invalid-request budget: the
/// sign-in routes are limited per IP, a refused token is remembered, a random guild's
/// refusal is cached, and the API is limited per token.
#[tokio::test]
async fn strangers_cannot_make_the_host_hammer_discord() {
    let host = start_with_kaltura(|s| {
        s.http = Some(kdhost::config::settings::HttpSettings {
            anonymous_per_minute: 12,
            subject_per_minute: 12,
            client_ip_header: None,
        });
    })
    .await;
    host.standin.set_member(GUILD, USER, &[]);
    host.standin.add_oauth_user("oauth-user", USER, "Ann");
    let http = reqwest::Client::new();
    let asked = |path: &str| {
        host.standin
            .requests()
            .iter()
            .filter(|r| r.path.contains(path))
            .count()
    };
    let sign_in = |token: &'static str| {
        let (http, base) = (http.clone(), host.base.clone());
        async move {
            let r = http
                .post(format!("{base}/api/v1/auth/token"))
                .json(&json!({"discord_access_token": token}))
                .send()
                .await
                .unwrap();
            let retry = r.headers().get("retry-after").cloned();
            (r.status(), retry, r.json::<Value>().await.unwrap())
        }
    };
    // A junk token: one question to Discord, then the refusal is remembered.
    let (st, _, _) = sign_in("junk-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    let (st, _, _) = sign_in("junk-token").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(
        asked("oauth2/@me"),
        1,
        "the same junk token was asked about twice"
    );
    // The per-IP quota (12 a minute, a burst of 2): the third attempt is refused with
    // Retry-After before Discord is asked.
    let (st, retry, body) = sign_in("other-junk").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(code(&body), "rate_limited");
    assert!(retry.is_some());
    assert_eq!(asked("oauth2/@me"), 1);

    // A random guild id: Discord refuses once, the refusal is reused.
    let jwt = kdhost::api::auth::Jwt::new(
        &kdhost::config::secret::Secret::new(JWT_SECRET),
        std::time::Duration::from_secs(600),
    );
    let (token, _) = jwt
        .issue(USER, kdhost::api::auth::SubjectKind::Discord, "Ann")
        .unwrap();
    let random = "612345678901234567";
    for _ in 0..2 {
        let r = http
            .get(format!("{}/api/v1/videos?guild_id={random}&q=x", host.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(asked(&format!("guilds/{random}/members")), 1);
    // The token's own quota: a burst of 2 is spent; the next call waits.
    let r = http
        .get(format!("{}/api/v1/videos?guild_id={random}&q=x", host.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
    // Refusals Discord counts are counted by the host too.
    let metrics = host.metrics().await;
    let counted: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("kd_discord_invalid_answers_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(counted >= 1.0, "{metrics}");
}
