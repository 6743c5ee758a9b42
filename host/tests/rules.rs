//! Guild rules end to end: a signed Kaltura webhook → a rule → a message at the Discord
//! stand-in; rule commands; member joins from the gateway; schedules; the config commands
//! and the guild API (admins only, audited); hot reload of config and rules under traffic.

mod common;

use std::time::Duration;

use common::*;
use kdhost::config::settings::DeliverySettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::BodyFormat;

const NEWS: &str = "910000000000000001";
const LIVE: &str = "910000000000000002";
const WELCOME: &str = "910000000000000003";
const OTHER_GUILD: &str = "600000000000000002";
const ADMIN_ROLE: &str = "800000000000000001";
const ADMIN: &str = "700000000000000010";

const READY_RULE: &str = r##"
fn on_kaltura_event(ev) {
    if ev.kind == "entry_ready" {
        notify("#news", #{ content: template("Rule: {{entry_name}} ({{id}})", ev), embed: #{ title: ev.entry_name, thumbnail: ev.thumbnail_url } });
    }
}
"##;

async fn start(rules: Vec<(&'static str, String)>, guild_config: Value) -> Host {
    let host = Host::start(Setup {
        kaltura: true,
        rules,
        guild_configs: vec![(GUILD.into(), guild_config)],
        default_config: Some(json!({"kaltura": {"enabled": true}})),
        delivery: Some(DeliverySettings {
            retry_base: Duration::from_millis(20),
            retry_max: Duration::from_millis(100),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await;
    host.standin.set_channels(
        GUILD,
        &[(NEWS, "news"), (LIVE, "live"), (WELCOME, "welcome")],
    );
    host.standin.set_guild(
        GUILD,
        "700000000000000099",
        &[(ADMIN_ROLE, "Config team", 0)],
    );
    host
}

async fn post_ready(host: &Host, job: u64) -> String {
    let k = host.kaltura.as_ref().unwrap();
    let entries = k.ready_entry_ids();
    let entry = &entries[job as usize % entries.len()];
    let n = k
        .entry_ready_notification(entry, job, BodyFormat::DataParam, "sha1")
        .unwrap();
    let (status, body) = k
        .deliver_notification(&format!("{}/webhooks/kaltura", host.base), &n)
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    k.entry_name(entry).unwrap()
}

/// A slash command from a member with the given permissions and roles.
async fn command_as(
    host: &Host,
    name: &str,
    options: Value,
    user: &str,
    permissions: &str,
    roles: &[&str],
) -> Value {
    let mut p = host.standin.command(name, options, GUILD, user, roles);
    p["member"]["permissions"] = json!(permissions);
    let (status, body) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// `/kaltura-config-update section key value` as a member with these permissions and roles.
async fn config_update(
    host: &Host,
    (section, key, value): (&str, &str, &str),
    user: &str,
    permissions: &str,
    roles: &[&str],
) -> Value {
    let o = opts(&[
        ("section", json!(section)),
        ("key", json!(key)),
        ("value", json!(value)),
    ]);
    command_as(host, "kaltura-config-update", o, user, permissions, roles).await
}

#[tokio::test]
async fn a_webhook_runs_the_guilds_rule_and_its_message_reaches_discord() {
    let host = start(
        vec![("guilds/600000000000000001/ready.rhai", READY_RULE.into())],
        json!({}),
    )
    .await;
    let name = post_ready(&host, 1).await;
    let m = host.messages(NEWS, 1).await;
    assert_eq!(m[0]["content"], json!(format!("Rule: {name} (job:1)")));
    assert_eq!(m[0]["embeds"][0]["title"], json!(name));
    assert!(
        m[0]["embeds"][0]["thumbnail"]["url"]
            .as_str()
            .unwrap()
            .starts_with("http")
    );
    assert_eq!(m[0]["allowed_mentions"], json!({"parse": [], "roles": []}));
    // The delivery is listed with its source.
    let d = host
        .stores
        .outbox
        .list(GUILD, Some("sent"), 10, None)
        .await
        .unwrap();
    assert_eq!(d[0].source, "rule:guilds/600000000000000001/ready.rhai");
}

#[tokio::test]
async fn a_failing_rule_is_reported_and_the_others_still_deliver() {
    let host = start(
        vec![
            (
                "global/loop.rhai",
                "fn on_kaltura_event(ev) { loop { } }".into(),
            ),
            (
                "global/deep.rhai",
                "fn f(n) { f(n + 1) } fn on_kaltura_event(ev) { f(0) }".into(),
            ),
            (
                "global/huge.rhai",
                "fn on_kaltura_event(ev) { let s = \"x\"; loop { s += s; } }".into(),
            ),
            (
                "global/flood.rhai",
                "fn on_kaltura_event(ev) { for i in 0..1000 { notify(\"#live\", `m${i}`); } }"
                    .into(),
            ),
            ("global/ready.rhai", READY_RULE.into()),
        ],
        json!({}),
    )
    .await;
    post_ready(&host, 2).await;
    host.messages(NEWS, 1).await;
    host.settled().await;
    assert!(
        host.standin.channel_messages(LIVE).is_empty(),
        "the flood sent nothing"
    );
    let list = host.rules.list(GUILD);
    let problem = |n: &str| {
        list.iter()
            .find(|r| r.name == n)
            .and_then(|r| r.problem.clone())
            .unwrap_or_else(|| panic!("{n} has no problem recorded: {list:?}"))
    };
    // Whichever of its two limits comes first on this machine stops the endless loop.
    let looped = problem("global/loop.rhai");
    assert!(
        looped.contains("operations") || looped.contains("ran longer than"),
        "{looped}"
    );
    assert!(problem("global/deep.rhai").contains("nested deeper"));
    assert!(problem("global/huge.rhai").contains("larger than allowed"));
    assert!(problem("global/flood.rhai").contains("message limit"));
    let metrics = host.metrics().await;
    assert!(
        metrics.contains("kd_rule_runs_total{hook=\"on_kaltura_event\",outcome=\"limit\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn rule_commands_answer_and_keep_per_guild_storage() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rules/latest-command.rhai"
    ))
    .unwrap();
    let host = start(vec![("global/latest.rhai", src)], json!({})).await;
    let body = command_as(
        &host,
        "latest",
        json!([{"name": "count", "type": 4, "value": 2}]),
        USER,
        "0",
        &[],
    )
    .await;
    assert_eq!(body["type"], 4, "{body}");
    let embed = &body["data"]["embeds"][0];
    assert_eq!(embed["title"], "Latest videos");
    assert_eq!(embed["fields"].as_array().unwrap().len(), 2);
    assert_eq!(embed["footer"]["text"], "Asked 1 times here");
    let again = command_as(&host, "latest", json!([]), USER, "0", &[]).await;
    assert_eq!(
        again["data"]["embeds"][0]["footer"]["text"],
        "Asked 2 times here"
    );
    // Out of range: the rule's own ephemeral answer.
    let bad = command_as(
        &host,
        "latest",
        json!([{"name": "count", "type": 4, "value": 9}]),
        USER,
        "0",
        &[],
    )
    .await;
    assert!(
        is_ephemeral(&bad) && text_of(&bad).contains("1 to 5"),
        "{bad}"
    );
    // The storage of another guild is its own.
    let mut p = host
        .standin
        .command("latest", json!([]), OTHER_GUILD, USER, &[]);
    p["member"]["permissions"] = json!("0");
    let (_, other) = host.standin.send_interaction(&host.url, &p).await.unwrap();
    assert_eq!(
        other["data"]["embeds"][0]["footer"]["text"],
        "Asked 1 times here"
    );
    // The guild can turn the command off like any other.
    host.guilds
        .write_guild(
            &host.dir.join("config"),
            GUILD,
            Some(json!({"commands": {"latest": {"enabled": false}}})),
        )
        .unwrap();
    let off = command_as(&host, "latest", json!([]), USER, "0", &[]).await;
    assert!(text_of(&off).contains("disabled"), "{off}");
    // The command is registered with Discord next to the plugins' and the config commands.
    let registered = eventually("the command sync", || {
        let puts: Vec<_> = host
            .standin
            .requests()
            .into_iter()
            .filter(|r| r.method == "PUT" && r.path.ends_with("/commands"))
            .collect();
        (!puts.is_empty()).then_some(puts)
    })
    .await;
    let names: Vec<String> = registered[0]
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert!(
        names.contains(&"latest".to_string())
            && names.contains(&"kaltura-config-update".to_string()),
        "{names:?}"
    );
}

#[tokio::test]
async fn member_joins_from_the_gateway_reach_the_welcome_rule() {
    let src = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rules/welcome.rhai"
    ))
    .unwrap();
    let mut host = start(vec![("global/welcome.rhai", src)], json!({})).await;
    host.start_gateway();
    host.gateway_connected().await;
    let join = json!({"guild_id": GUILD, "joined_at": "2026-11-26T09:00:00.000000+00:00", "roles": [], "deaf": false, "mute": false,
        "user": {"id": "700000000000000042", "username": "newcomer", "discriminator": "0", "global_name": "Newcomer", "avatar": null}});
    host.standin
        .send_gateway_event("GUILD_MEMBER_ADD", join.clone());
    let m = host.messages(WELCOME, 1).await;
    assert!(
        m[0]["content"]
            .as_str()
            .unwrap()
            .contains("<@700000000000000042>"),
        "{}",
        m[0]
    );
    assert!(m[0]["embeds"][0]["title"].is_string());
    // The same event again (a resumed session) is not welcomed twice.
    host.standin.send_gateway_event("GUILD_MEMBER_ADD", join);
    // Wait until the host has seen it (and known it), then for all it could cause.
    eventually("the repeated event to be seen as a duplicate", || {
        (kdhost::telemetry::render()
            .contains("kd_gateway_events_total{kind=\"GUILD_MEMBER_ADD\",result=\"duplicate\"}"))
        .then_some(())
    })
    .await;
    host.settled().await;
    assert_eq!(host.standin.channel_messages(WELCOME).len(), 1);
}

#[tokio::test]
async fn scheduled_rules_run_when_their_minute_comes() {
    let rule =
        "schedule(\"30 9 * * 1\");\nfn on_schedule() { notify(\"#news\", \"Monday digest\"); }";
    let host = start(
        vec![("guilds/600000000000000001/digest.rhai", rule.into())],
        json!({}),
    )
    .await;
    let at = |s: &str| {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .with_timezone(&chrono::Utc)
    };
    let run = |t| {
        kdhost::scripts::schedule::run_due(
            &host.rules,
            &host.guilds,
            &host.outbox,
            &host.processor,
            t,
        )
    };
    // Tuesday 09:30: not due. Monday 09:30 (UTC): due.
    assert_eq!(run(at("2026-11-24T09:30:00Z")).await, 0);
    assert_eq!(run(at("2026-11-23T09:30:00Z")).await, 1);
    let m = host.messages(NEWS, 1).await;
    assert_eq!(m[0]["content"], "Monday digest");
}

#[tokio::test]
async fn config_commands_are_for_admins_typed_by_the_schema_and_audited() {
    let host = start(vec![], json!({})).await;
    // Not an admin: refused, audited.
    let no = config_update(&host, ("notifications", "channel", "#news"), USER, "0", &[]).await;
    assert!(
        is_ephemeral(&no) && text_of(&no).contains("only server admins"),
        "{no}"
    );
    let audit = host.stores.audit.list(GUILD, 10, None).await.unwrap();
    assert!(
        audit[0].outcome.starts_with("refused") && audit[0].actor == format!("discord:{USER}"),
        "{audit:?}"
    );
    // Manage Server: allowed, applies at once.
    let ok = config_update(
        &host,
        ("notifications", "channel", "#news"),
        ADMIN,
        "32",
        &[],
    )
    .await;
    assert!(text_of(&ok).contains("is now `\"#news\"`"), "{ok}");
    assert_eq!(
        host.guilds
            .guild(Some(GUILD))
            .typed
            .notifications
            .channel
            .as_deref(),
        Some("#news")
    );
    let name = post_ready(&host, 3).await;
    assert!(
        host.messages(NEWS, 1).await[0]["content"]
            .as_str()
            .unwrap()
            .contains(&name)
    );
    // A wrong type: the schema's expectation, nothing changed.
    let bad = config_update(
        &host,
        ("notifications", "enabled", "sometimes"),
        ADMIN,
        "32",
        &[],
    )
    .await;
    let text = text_of(&bad);
    assert!(
        is_ephemeral(&bad)
            && text.contains("$.notifications.enabled")
            && text.contains("expects boolean"),
        "{text}"
    );
    assert!(host.guilds.guild(Some(GUILD)).typed.notifications.enabled);
    // A member of the configured role (by name) may change it too.
    host.guilds
        .write_guild(&host.dir.join("config"), GUILD, Some(json!({"roles": {"config_admins": ["config team"]}, "notifications": {"channel": "#news"}})))
        .unwrap();
    let by_role = config_update(
        &host,
        ("notifications", "types.live_started", "false"),
        USER,
        "0",
        &[ADMIN_ROLE],
    )
    .await;
    assert!(text_of(&by_role).contains("is now `false`"), "{by_role}");
    // View, and a reset that needs confirm.
    let view = command_as(
        &host,
        "kaltura-config-view",
        opts(&[("section", json!("notifications"))]),
        ADMIN,
        "32",
        &[],
    )
    .await;
    assert!(text_of(&view).contains("\"live_started\": false"), "{view}");
    let mut reset = opts(&[("section", json!("notifications"))]);
    reset
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "confirm", "type": 5, "value": false}));
    let unconfirmed = command_as(
        &host,
        "kaltura-config-reset",
        reset.clone(),
        ADMIN,
        "32",
        &[],
    )
    .await;
    assert!(text_of(&unconfirmed).contains("Nothing changed"));
    reset[1]["value"] = json!(true);
    command_as(&host, "kaltura-config-reset", reset, ADMIN, "32", &[]).await;
    assert_eq!(
        host.guilds.guild(Some(GUILD)).typed.notifications.channel,
        None
    );
    let actions: Vec<String> = host
        .stores
        .audit
        .list(GUILD, 20, None)
        .await
        .unwrap()
        .iter()
        .map(|a| format!("{} {}", a.action, a.outcome))
        .collect();
    assert!(
        actions.contains(&"config.reset ok".to_string()),
        "{actions:?}"
    );
}

struct Api<'h> {
    host: &'h Host,
    http: reqwest::Client,
}

impl Api<'_> {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.host.base))
            .bearer_auth(token);
        if let Some((ct, b)) = body {
            req = req.header("content-type", ct).body(b);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let text = res.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn token(&self, oauth: &str) -> String {
        let res = self
            .http
            .post(format!("{}/api/v1/auth/token", self.host.base))
            .json(&json!({"discord_access_token": oauth}))
            .send()
            .await
            .unwrap();
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

#[tokio::test]
async fn the_guild_api_changes_config_and_rules_for_admins_only() {
    let host = start(vec![], json!({})).await;
    host.add_guild_admin(ADMIN, ADMIN_ROLE, "oauth-admin");
    host.standin.set_member(GUILD, USER, &[]);
    host.standin.add_oauth_user("oauth-user", USER, "Ann");
    let api = Api {
        host: &host,
        http: reqwest::Client::new(),
    };
    let (ada, ann) = (
        api.token("oauth-admin").await,
        api.token("oauth-user").await,
    );
    let base = format!("/api/v1/guilds/{GUILD}");

    let (st, _) = api.call("GET", &format!("{base}/config"), &ann, None).await;
    assert_eq!(st, 403);
    let (st, v) = api.call("GET", &format!("{base}/config"), &ada, None).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["effective"]["kaltura"]["enabled"], true);

    let json_ct = "application/json";
    let (st, v) = api
        .call(
            "PUT",
            &format!("{base}/config"),
            &ada,
            Some((
                json_ct,
                json!({"notifications": {"channel": "#news"}}).to_string(),
            )),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["override"],
        json!({"notifications": {"channel": "#news"}})
    );
    let (st, v) = api
        .call(
            "PATCH",
            &format!("{base}/config"),
            &ada,
            Some((
                "application/merge-patch+json",
                json!({"notifications": {"channel": null, "enabled": false}}).to_string(),
            )),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["override"], json!({"notifications": {"enabled": false}}));
    let (st, v) = api
        .call(
            "PATCH",
            &format!("{base}/config"),
            &ada,
            Some((
                json_ct,
                json!({"notifications": {"enabled": "no"}}).to_string(),
            )),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$.notifications.enabled"),
        "{v}"
    );
    let (st, _) = api
        .call(
            "PUT",
            &format!("{base}/config"),
            &ann,
            Some((json_ct, "{}".into())),
        )
        .await;
    assert_eq!(st, 403);

    // Rules: upload (compiled first), list, read, delete; a non-admin upload is refused.
    let (st, v) = api
        .call(
            "PUT",
            &format!("{base}/scripts/bad.rhai"),
            &ada,
            Some(("text/plain", "fn on_schedule( {".into())),
        )
        .await;
    assert_eq!(st, 400);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("guilds/600000000000000001/bad.rhai:1:"),
        "{v}"
    );
    let (st, v) = api
        .call(
            "PUT",
            &format!("{base}/scripts/ready.rhai"),
            &ada,
            Some(("text/plain", READY_RULE.into())),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["hooks"], json!(["on_kaltura_event"]));
    let (st, _) = api
        .call(
            "PUT",
            &format!("{base}/scripts/evil.rhai"),
            &ann,
            Some(("text/plain", READY_RULE.into())),
        )
        .await;
    assert_eq!(st, 403);
    let (st, v) = api
        .call("GET", &format!("{base}/scripts"), &ada, None)
        .await;
    assert_eq!(
        (st, v["rules"][0]["name"].as_str()),
        (StatusCode::OK, Some("guilds/600000000000000001/ready.rhai"))
    );
    let (st, v) = api
        .call("GET", &format!("{base}/scripts/ready.rhai"), &ada, None)
        .await;
    assert_eq!((st, v.as_str()), (StatusCode::OK, Some(READY_RULE)));
    // Active at once: the next webhook runs it (notifications are off, so only the rule posts).
    post_ready(&host, 4).await;
    host.messages(NEWS, 1).await;
    let (st, v) = api
        .call("GET", &format!("{base}/deliveries?state=sent"), &ada, None)
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        v["deliveries"][0]["source"],
        "rule:guilds/600000000000000001/ready.rhai"
    );
    let (st, _) = api
        .call("GET", &format!("{base}/deliveries?state=lost"), &ada, None)
        .await;
    assert_eq!(st, 400);
    let (st, _) = api
        .call("DELETE", &format!("{base}/scripts/ready.rhai"), &ada, None)
        .await;
    assert_eq!(st, 204);
    assert!(
        !host
            .dir
            .join("scripts/guilds/600000000000000001/ready.rhai")
            .exists()
    );

    let (st, v) = api.call("GET", &format!("{base}/audit"), &ada, None).await;
    assert_eq!(st, 200);
    let lines: Vec<String> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["outcome"].as_str().unwrap().split(':').next().unwrap()
            )
        })
        .collect();
    for want in [
        format!("discord:{ADMIN} script.delete ok"),
        format!("discord:{USER} script.put refused"),
        format!("discord:{ADMIN} script.put ok"),
        format!("discord:{ADMIN} script.put invalid"),
        format!("discord:{USER} config.replace refused"),
        format!("discord:{ADMIN} config.patch ok"),
        format!("discord:{ADMIN} config.replace ok"),
    ] {
        assert!(lines.contains(&want), "missing `{want}` in {lines:?}");
    }
}

#[tokio::test]
async fn config_and_rules_hot_reload_under_traffic() {
    let host = start(
        vec![("global/ready.rhai", READY_RULE.replace("#news", "#live"))],
        json!({"notifications": {"channel": "#news", "templates": {"entry_ready": "v1 {{id}}"}}}),
    )
    .await;
    let cfg_file = host.dir.join(format!("config/guilds/{GUILD}.json"));
    let rule_file = host.dir.join("scripts/global/ready.rhai");
    // Events flow the whole time; each phase waits for the host to show the change, then
    // for more events, so the verdict never depends on how fast the reload is.
    let posted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poster = {
        let base = host.base.clone();
        let k = host.kaltura.clone().unwrap();
        let (posted, stop) = (posted.clone(), stop.clone());
        tokio::spawn(async move {
            let entry = k.ready_entry_ids()[0].clone();
            let mut job = 100u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let n = k
                    .entry_ready_notification(&entry, job, BodyFormat::Json, "sha1")
                    .unwrap();
                let (st, _) = k
                    .deliver_notification(&format!("{base}/webhooks/kaltura"), &n)
                    .await
                    .unwrap();
                assert_eq!(st, 200);
                job += 1;
                posted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let ten_more = |what: &'static str| {
        let posted = posted.clone();
        let target = posted.load(std::sync::atomic::Ordering::SeqCst) + 10;
        async move {
            eventually(what, || {
                (posted.load(std::sync::atomic::Ordering::SeqCst) >= target).then_some(())
            })
            .await
        }
    };
    ten_more("events before the edits").await;
    // A broken edit of each: the last good versions keep serving.
    std::fs::write(&cfg_file, "{\"notifications\": ").unwrap();
    std::fs::write(&rule_file, "fn on_kaltura_event(ev) { notify(").unwrap();
    eventually("both broken files to be refused", || {
        let cfg = !host.guilds.problems().is_empty();
        let rule = host.rules.problems().contains_key("global/ready.rhai");
        (cfg && rule).then_some(())
    })
    .await;
    ten_more("events while the files are broken").await;
    // Fixed edits: new template, the rule posts to #news now.
    std::fs::write(
        &cfg_file,
        json!({"notifications": {"channel": "#news", "templates": {"entry_ready": "v2 {{id}}"}}})
            .to_string(),
    )
    .unwrap();
    std::fs::write(&rule_file, READY_RULE.replace("Rule:", "Rule v2:")).unwrap();
    eventually("both fixed files to be applied", || {
        let cfg = host
            .guilds
            .guild(Some(GUILD))
            .typed
            .notifications
            .templates
            .entry_ready
            .as_deref()
            == Some("v2 {{id}}");
        let rule = host
            .rules
            .for_guild(GUILD)
            .iter()
            .any(|r| r.source.contains("Rule v2:"));
        (cfg && rule).then_some(())
    })
    .await;
    ten_more("events after the fix").await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    poster.await.unwrap();
    let n = posted.load(std::sync::atomic::Ordering::SeqCst) as usize;
    // Every event: one notification and one rule message, nothing lost on the way.
    eventually("every event's two messages", || {
        let total =
            host.standin.channel_messages(NEWS).len() + host.standin.channel_messages(LIVE).len();
        (total >= 2 * n).then_some(())
    })
    .await;
    host.settled().await;
    let news = host.standin.channel_messages(NEWS);
    let live = host.standin.channel_messages(LIVE);
    let notes: Vec<&str> = news
        .iter()
        .filter_map(|m| m["content"].as_str())
        .filter(|c| c.starts_with("v"))
        .collect();
    let rule_posts = news
        .iter()
        .filter(|m| m["content"].as_str().unwrap_or("").starts_with("Rule v2:"))
        .count();
    assert_eq!(
        notes.len() + rule_posts + live.len(),
        2 * n,
        "news {} live {}",
        news.len(),
        live.len()
    );
    assert_eq!(notes.len(), n);
    assert!(
        notes.first().unwrap().starts_with("v1 ") && notes.last().unwrap().starts_with("v2 "),
        "{notes:?}"
    );
    assert!(
        !live.is_empty() && rule_posts > 0,
        "the rule changed channel mid-stream"
    );
    for (i, c) in notes.iter().enumerate() {
        assert!(c.ends_with(&format!("job:{}", 100 + i)), "order: {notes:?}");
    }
    assert!(host.guilds.problems().is_empty());
}

/// `kdhost script check` and `kdhost script test` on every shipped example rule, with the
/// Kaltura stand-in behind the rules that read Kaltura (served by the runtime's other
/// thread while this one waits for the CLI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_rules_compile_and_dry_run() {
    let examples = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/rules"));
    let kaltura =
        testkit::KalturaStandIn::start("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();
    let kdhost = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(args)
            .current_dir(examples)
            .env("KALTURA_PARTNER_ID", kaltura.partner_id().to_string())
            .env("KALTURA_ADMIN_SECRET", kaltura.admin_secret())
            .env("KALTURA_SERVICE_URL", &kaltura.url)
            .env("RUST_LOG", "off")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let mut rules: Vec<String> = std::fs::read_dir(examples)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().to_string()))
        .filter(|n| n.ends_with(".rhai"))
        .collect();
    rules.sort();
    assert_eq!(rules.len(), 5, "{rules:?}");
    for r in &rules {
        let (ok, out, err) = kdhost(&["script", "check", r]);
        assert!(ok && out.starts_with("ok global/"), "{r}: {out}{err}");
    }
    let cases = [
        (
            "recording-ready.rhai",
            "recording-ready.json",
            "#recordings",
            "All-hands recording",
        ),
        (
            "live-started.rhai",
            "live-started.json",
            "#live",
            "@here 🔴 **Quarterly town hall** is live now!",
        ),
        (
            "tag-routing.rhai",
            "entry-ready-tagged.json",
            "#announcements",
            "Optics, lecture 3",
        ),
        (
            "welcome.rhai",
            "member-join.json",
            "#welcome",
            "Welcome <@700000000000000042>",
        ),
        ("latest-command.rhai", "latest.json", "", "Latest videos"),
    ];
    for (rule, event, channel, text) in cases {
        let (ok, out, err) = kdhost(&[
            "script",
            "test",
            rule,
            "--event",
            &format!("events/{event}"),
            "--config",
            "config",
        ]);
        assert!(ok, "{rule}: {out}{err}");
        let report: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(report["error"], Value::Null);
        let effects = report["effects"].to_string();
        assert!(
            effects.contains(channel) && effects.contains(text),
            "{rule}: {effects}"
        );
    }
    // A broken rule: file:line:col and a failing exit code.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.rhai");
    std::fs::write(&bad, "fn on_schedule() {\n  notify(\"#x\" \"y\");\n}").unwrap();
    let (ok, _, err) = kdhost(&["script", "check", bad.to_str().unwrap()]);
    assert!(!ok && err.starts_with("global/bad.rhai:2:"), "{err}");
}

#[tokio::test]
async fn rules_read_kaltura_only_with_the_operators_grant() {
    let rule = r##"fn on_kaltura_event(ev) { let e = kaltura_entry(ev.entry_id); notify("#news", "read: " + e.name); }"##;
    let mut grants: Value = serde_json::from_str(&default_grants()).unwrap();
    grants["plugins"]["rules"] = json!({"grants": []});
    let host = Host::start(Setup {
        kaltura: true,
        rules: vec![("global/read.rhai", rule.into())],
        plugins_json: Some(grants.to_string()),
        guild_configs: vec![(GUILD.into(), json!({"kaltura": {"enabled": true}}))],
        ..Default::default()
    })
    .await;
    host.standin.set_channels(GUILD, &[(NEWS, "news")]);
    post_ready(&host, 9001).await;
    let problem = eventually("the refused read to be reported", || {
        host.rules.list(GUILD).into_iter().find_map(|r| r.problem)
    })
    .await;
    assert!(
        problem.contains("has not granted `kaltura` to guild rules"),
        "{problem}"
    );
    assert!(host.standin.channel_messages(NEWS).is_empty());
    // The operator grants it (plugins.json hot-reloads): the next event reads Kaltura.
    grants["plugins"]["rules"] = json!({"grants": ["kaltura"]});
    std::fs::write(host.dir.join("config/plugins.json"), grants.to_string()).unwrap();
    eventually("the new grants to load", || {
        let wanted =
            std::collections::BTreeSet::from([kdhost::plugins::grants::CapabilityName::Kaltura]);
        host.app_registry
            .grants()
            .for_loaded("rules", true, &wanted)
            .capabilities
            .contains(&kdhost::plugins::grants::CapabilityName::Kaltura)
            .then_some(())
    })
    .await;
    let name = post_ready(&host, 9002).await;
    let m = host.messages(NEWS, 1).await;
    assert_eq!(m[0]["content"], json!(format!("read: {name}")));
}

/// [harden] 1: a guild admin cannot choose Kaltura session privileges, through Discord or
/// the API; nothing is written and the error names the JSON path.
#[tokio::test]
async fn guild_admins_cannot_widen_kaltura_sessions_by_discord_or_api() {
    let host = start(vec![], json!({})).await;
    host.add_guild_admin(ADMIN, ADMIN_ROLE, "oauth-admin");
    let before = host.guilds.guild_override(GUILD);
    for value in [
        "disableentitlement,sview:*,edit:*,setrole:5",
        "sview:*",
        "*",
        "list:*",
        "download:0_x",
        "_secret",
    ] {
        let said = config_update(
            &host,
            ("kaltura", "session.privileges.default", value),
            ADMIN,
            "32",
            &[],
        )
        .await;
        let text = text_of(&said);
        assert!(
            is_ephemeral(&said)
                && text.contains("$.kaltura.session.privileges.default")
                && text.contains("refused"),
            "{value}: {text}"
        );
    }
    let api = Api {
        host: &host,
        http: reqwest::Client::new(),
    };
    let ada = api.token("oauth-admin").await;
    let (st, v) = api
        .call(
            "PATCH",
            &format!("/api/v1/guilds/{GUILD}/config"),
            &ada,
            Some((
                "application/merge-patch+json",
                json!({"kaltura": {"session": {"privileges": {"video": "disableentitlement"}}}})
                    .to_string(),
            )),
        )
        .await;
    assert_eq!(st, 400, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("$.kaltura.session.privileges.video"),
        "{v}"
    );
    // Nothing was written or applied; every refusal is in the audit log.
    assert_eq!(host.guilds.guild_override(GUILD), before);
    assert!(
        !std::fs::read_to_string(host.dir.join(format!("config/guilds/{GUILD}.json")))
            .unwrap_or_default()
            .contains("disableentitlement")
    );
    let audit = host.stores.audit.list(GUILD, 20, None).await.unwrap();
    assert!(
        audit
            .iter()
            .filter(|a| a.outcome.starts_with("refused") || a.outcome.starts_with("invalid"))
            .count()
            >= 7,
        "{audit:?}"
    );
}

/// [harden] 2: a guild's rules and notifications reach only that guild's channels.
#[tokio::test]
async fn rules_and_notifications_cannot_post_into_another_guild() {
    const FOREIGN: &str = "920000000000000001";
    let rule =
        format!("fn on_kaltura_event(ev) {{ notify(\"{FOREIGN}\", \"hello from elsewhere\"); }}");
    let host = start(
        vec![("guilds/600000000000000001/reach.rhai", rule)],
        json!({"notifications": {"channel": FOREIGN}}),
    )
    .await;
    // The bot is in both guilds; the channel is the other guild's.
    host.standin
        .set_channels(OTHER_GUILD, &[(FOREIGN, "general")]);
    post_ready(&host, 4242).await;
    host.settled().await;
    assert!(
        host.standin.channel_messages(FOREIGN).is_empty(),
        "a message reached the other guild"
    );
    let dead = host
        .stores
        .outbox
        .list(GUILD, Some("dead"), 10, None)
        .await
        .unwrap();
    assert_eq!(
        dead.len(),
        2,
        "the notification and the rule's message: {dead:?}"
    );
    for d in &dead {
        assert!(
            d.last_error
                .as_deref()
                .unwrap_or_default()
                .contains(&format!("channel {FOREIGN} is not in this guild")),
            "{d:?}"
        );
    }
}

/// [harden] 4: a rule cannot block its worker (no `sleep`), its Kaltura reads are counted
/// and bounded by its deadline, and one guild's slow rules do not stop another guild's.
#[tokio::test]
async fn a_guilds_slow_rules_are_stopped_and_other_guilds_still_get_their_messages() {
    const B: &str = "600000000000000003";
    const B_NEWS: &str = "930000000000000001";
    let host = Host::start(Setup {
        kaltura: true,
        rules: vec![
            (
                "guilds/600000000000000001/nap.rhai",
                "fn on_kaltura_event(ev) { sleep(3600); notify(\"#news\", \"woke\"); }".into(),
            ),
            (
                "guilds/600000000000000001/hog.rhai",
                "fn on_kaltura_event(ev) { loop { kaltura_entry(ev.entry_id); } }".into(),
            ),
            (
                "guilds/600000000000000001/stall.rhai",
                "fn on_kaltura_event(ev) { kaltura_search(\"stall\"); notify(\"#news\", \"late\"); }".into(),
            ),
            (
                "guilds/600000000000000003/ok.rhai",
                "fn on_kaltura_event(ev) { notify(\"#news\", `B: ${ev.entry_name}`); }".into(),
            ),
        ],
        default_config: Some(json!({"kaltura": {"enabled": true}})),
        ..Default::default()
    })
    .await;
    host.standin.set_channels(GUILD, &[(NEWS, "news")]);
    host.standin.set_channels(B, &[(B_NEWS, "news")]);
    // Kaltura's search hangs (far longer than any rule may wait).
    host.kaltura
        .as_ref()
        .unwrap()
        .inject(testkit::KalturaFault {
            action: "searchEntry".into(),
            kind: testkit::kaltura::FaultKind::Latency { ms: 600_000 },
            count: 1,
        });
    let name = post_ready(&host, 5151).await;
    let m = host.messages(B_NEWS, 1).await;
    assert_eq!(m[0]["content"], json!(format!("B: {name}")));
    host.settled().await;
    assert!(host.standin.channel_messages(NEWS).is_empty());
    let problems = host.rules.problems();
    let problem = |n: &str| {
        problems
            .get(&format!("guilds/600000000000000001/{n}"))
            .cloned()
            .unwrap_or_else(|| panic!("{n}: no problem recorded: {problems:?}"))
    };
    assert!(
        problem("nap.rhai").contains("sleep"),
        "{}",
        problem("nap.rhai")
    );
    assert!(
        problem("hog.rhai").contains("host call limit reached (20 per run)"),
        "{}",
        problem("hog.rhai")
    );
    assert!(
        problem("stall.rhai").contains("ran longer than"),
        "{}",
        problem("stall.rhai")
    );
}
