//! A server's admins erase a member's data in their server only (through Discord and the
//! API); anyone else is refused, and the refusal is audited. A service account has no
//! personal data. (Export and self-deletion with plugins: `tests/examples.rs`.)

mod common;

use common::*;
use kdhost::store::kv::user_scope;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MEMBER: &str = "700000000000000042";
const ELSEWHERE: &str = "600000000000000009";
const ADMIN_SECRET: &str = "admin-service-secret-0123456789abcdef01";

async fn seed(host: &Host) {
    let kv = &host.stores.kv;
    for guild in [GUILD, ELSEWHERE] {
        let scope = user_scope(Some(guild), MEMBER);
        kv.set("poll", &scope, "vote", b"1", 1 << 20).await.unwrap();
    }
    kv.set("poll", GUILD, "shared", b"x", 1 << 20)
        .await
        .unwrap();
}

fn erase_command(host: &Host, by: &str, permissions: &str, confirm: bool) -> Value {
    let mut p = host.standin.command(
        "kaltura-privacy-member",
        json!([{"type": 1, "name": "erase", "options": [
            {"name": "member", "type": 6, "value": MEMBER},
            {"name": "confirm", "type": 5, "value": confirm}
        ]}]),
        GUILD,
        by,
        &[],
    );
    p["member"]["permissions"] = json!(permissions);
    p
}

#[tokio::test]
async fn guild_admins_erase_a_members_data_in_their_server_only() {
    let sha = hex::encode(Sha256::digest(ADMIN_SECRET.as_bytes()));
    let host = Host::start(Setup {
        api_json: Some(json!({"service_accounts": {
            "ops": {"secret_sha256": sha, "guilds": [GUILD], "role": "admin"}
        }})),
        ..Default::default()
    })
    .await;
    seed(&host).await;
    let kv = &host.stores.kv;

    // A member without Manage Server is refused, and nothing goes.
    let refused = erase_command(&host, USER, "0", true);
    let (_, body) = host
        .standin
        .send_interaction(&host.url, &refused)
        .await
        .unwrap();
    assert!(text_of(&body).contains("Refused"), "{body}");
    assert_eq!(kv.user_rows(MEMBER, None).await.unwrap().len(), 2);
    // An admin without confirm: nothing goes either.
    let unsure = erase_command(&host, USER, "8", false);
    let (_, body) = host
        .standin
        .send_interaction(&host.url, &unsure)
        .await
        .unwrap();
    assert!(text_of(&body).contains("Nothing was erased"), "{body}");

    let erase = erase_command(&host, USER, "8", true);
    let (_, body) = host
        .standin
        .send_interaction(&host.url, &erase)
        .await
        .unwrap();
    assert!(is_ephemeral(&body), "{body}");
    assert!(text_of(&body).contains("1 value(s)"), "{body}");
    // Only this server's: the member's data elsewhere and the server's own stay.
    let left = kv.user_rows(MEMBER, None).await.unwrap();
    assert_eq!(left.len(), 1);
    assert!(left[0].scope.starts_with(ELSEWHERE), "{left:?}");
    assert!(kv.get("poll", GUILD, "shared").await.unwrap().is_some());
    // Audited with the admin, without the member.
    let log = host.stores.audit.list(GUILD, 10, None).await.unwrap();
    let erased = log
        .iter()
        .find(|e| e.action == "privacy.erase" && e.outcome == "ok");
    let erased = erased.unwrap_or_else(|| panic!("no erasure audited: {log:?}"));
    assert_eq!(erased.actor, format!("discord:{USER}"));
    assert!(
        !serde_json::to_string(&log)
            .unwrap()
            .contains(&format!("discord:{MEMBER}"))
    );
    assert!(
        log.iter()
            .any(|e| e.action == "privacy.erase" && e.outcome.starts_with("refused")),
        "the refusal is audited: {log:?}"
    );

    // Through the API, a service account with the admin role for this server.
    seed(&host).await;
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{}/api/v1/auth/token", host.base))
        .json(&json!({"service": "ops", "secret": ADMIN_SECRET}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["token"].as_str().unwrap_or_else(|| panic!("{token}"));
    let url = |guild: &str| format!("{}/api/v1/guilds/{guild}/members/{MEMBER}/data", host.base);
    let r = http
        .delete(url(GUILD))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["plugin_values"], 1, "{body}");
    // Not its server: refused.
    let r = http
        .delete(url(ELSEWHERE))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(kv.user_rows(MEMBER, None).await.unwrap().len(), 1);
    // A service account has no data of its own.
    let r = http
        .get(format!("{}/api/v1/me/data", host.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_a_person");
    host.stop().await;
}
