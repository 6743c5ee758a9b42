//! The Activity's sign-in: `POST /api/v1/activity/token` exchanges the SDK's code with
//! Discord (form-encoded, client secret), verifies the user, and issues a host token.

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_code_from_the_sdk_becomes_discords_token_and_a_host_token_for_that_user() {
    let host = Host::start(Setup::default()).await;
    host.standin.add_oauth_user("at-ann", USER, "Ann");
    host.standin.add_oauth_code("code-1", "at-ann");
    let (status, body) = host.activity_token(json!({"code": "code-1"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["access_token"], "at-ann");
    assert_eq!(body["user"]["id"], USER);
    assert_eq!(body["token_expires_in"], 3600);
    // The host token works on the API as that user.
    let r = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/activity/launch?channel_id=200000000000000001",
            host.base
        ))
        .bearer_auth(body["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "authenticated, just no launch yet");
    // [harden] 7: an Activity token is not an API key: the guild API refuses it.
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/guilds/{GUILD}/config", host.base))
        .bearer_auth(body["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let refused: Value = r.json().await.unwrap();
    assert_eq!(refused["error"]["code"], "wrong_token", "{refused}");
    // The exchange was form-encoded with the client secret.
    let req = host
        .standin
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("/oauth2/token"))
        .unwrap();
    let form = req.body.as_str().unwrap();
    assert!(
        form.contains("grant_type=authorization_code")
            && form.contains("client_secret=standin-client-secret"),
        "{form}"
    );

    // A code is good once; a bad one is refused with Discord's reason and nothing issued.
    let (status, body) = host.activity_token(json!({"code": "code-1"})).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("invalid_grant"),
        "{body}"
    );
    assert!(body["token"].is_null());
    let (status, _) = host.activity_token(json!({"nope": 1})).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn the_mock_code_only_in_dev_mode() {
    let host = Host::start(Setup::default()).await;
    let mock = json!({"code": "mock_code", "mock_user": {"id": "700000000000000005", "username": "tab-5"}});
    let (status, body) = host.activity_token(mock.clone()).await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("dev/demo mode"),
        "{body}"
    );

    let dev = Host::start(Setup {
        activity_dev: true,
        ..Default::default()
    })
    .await;
    let (status, body) = dev.activity_token(mock).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["id"], "700000000000000005");
    assert_eq!(body["access_token"], "mock_token");
}

async fn activity_config(host: &Host) -> Value {
    reqwest::get(format!("{}/api/v1/activity/config", host.base))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_page_learns_its_player_and_url_mappings_without_any_secret() {
    // With Kaltura playback set up: Player v7, and mappings for its CDN and API.
    let host = start_with_kaltura(|_| {}).await;
    let kal = host.kaltura.as_ref().unwrap();
    let c = activity_config(&host).await;
    assert_eq!(c["player"], "kaltura", "{c}");
    assert_eq!(c["dev_mode"], false);
    assert_eq!(c["kaltura"]["partner_id"], kal.partner_id().to_string());
    assert_eq!(c["kaltura"]["cdn_url"], kal.url);
    let target = kal.url.trim_start_matches("http://");
    let mappings = c["url_mappings"].as_array().unwrap();
    for (prefix, to) in [
        ("/discord-cdn", "cdn.discordapp.com"),
        ("/kaltura-cdn", target),
        ("/kaltura-api", target),
    ] {
        assert!(
            mappings
                .iter()
                .any(|m| m["prefix"] == prefix && m["target"] == to),
            "{prefix} → {to} missing: {c}"
        );
    }
    let text = c.to_string();
    assert!(!text.contains(kal.admin_secret()), "a secret in {text}");

    // Dev mode plays the demo media; without Kaltura there is nothing to map to it.
    let dev = start_with_kaltura(|s| s.activity_dev = true).await;
    assert_eq!(activity_config(&dev).await["player"], "html5");
    let bare = Host::start(Setup::default()).await;
    let c = activity_config(&bare).await;
    assert_eq!(
        (c["player"].as_str(), c["kaltura"].is_null()),
        (Some("html5"), true)
    );
    assert_eq!(c["url_mappings"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn discord_starts_the_activity_at_the_root_and_is_led_to_the_page_with_its_query() {
    let host = Host::start(Setup::default()).await;
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/?frame_id=f1&instance_id=i-1&platform=desktop",
            host.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"],
        "/activity/?frame_id=f1&instance_id=i-1&platform=desktop"
    );
    // [harden] low: only Discord (and the host) may frame the page; no type sniffing.
    let page = reqwest::get(format!("{}/activity/", host.base))
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("frame-ancestors 'self' https://discord.com")
            && csp.contains("discordsays.com"),
        "{csp}"
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
}
