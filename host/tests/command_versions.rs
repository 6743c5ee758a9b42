//! [people] 4: command versioning. A plugin's `command-notes` (contract 0.1.2) and a rule's
//! declaration mark commands and options deprecated with a replacement and a sunset: until
//! the sunset they stay registered (their description says so) and every answer carries a
//! one-line notice; from the sunset they are left out of the sync and a stale client that
//! still sends one is told what replaced it. `/help` lists versions and deprecations.

mod common;

use common::*;
use serde_json::{Value, json};

const FAR: &str = "2099-01-01";

async fn start() -> Host {
    let rule = format!(
        r#"
command("report", "Weekly report", [
    #{{ name: "week", type: "integer", description: "Which week" }},
    #{{ name: "format", description: "Old output format", deprecated: #{{ replacement: "the `week` option", sunset: "{FAR}" }} }},
]);
command("old-report", "The old report", [], #{{ replacement: "/report", sunset: "{FAR}" }});
command("ancient-report", "The first report", [], #{{ replacement: "/report", sunset: "2021-06-01" }});

fn on_command(ctx) {{
    reply(`${{ctx.command}} ran`);
}}
"#
    );
    Host::start(Setup {
        plugins: vec![("versions.wasm", "kd_fixture_versions")],
        rules: vec![(
            Box::leak(format!("guilds/{GUILD}/reports.rhai").into_boxed_str()),
            rule,
        )],
        ..Default::default()
    })
    .await
}

async fn run(host: &Host, name: &str, options: Value) -> Value {
    let (status, body) = host.command(name, options).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The first bulk overwrite of the commands of `guild` (`None`: the global ones) with `has`.
async fn registered(host: &Host, guild: Option<&str>, has: &str) -> Vec<Value> {
    let scope = |path: &str| match guild {
        Some(g) => path.ends_with(&format!("/guilds/{g}/commands")),
        None => path.ends_with("/commands") && !path.contains("/guilds/"),
    };
    let put = host
        .standin
        .wait_for(HANG, |r| {
            r.method == "PUT" && scope(&r.path) && r.body.to_string().contains(has)
        })
        .await
        .unwrap_or_else(|| panic!("no PUT of {guild:?}'s commands with {has}"));
    put.body.as_array().unwrap().clone()
}

fn named<'a>(list: &'a [Value], name: &str) -> Option<&'a Value> {
    list.iter().find(|c| c["name"] == name)
}

fn option_names(c: &Value) -> Vec<&str> {
    c["options"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|o| o["name"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_plugins_deprecated_commands_are_kept_with_a_notice_until_their_sunset_then_gone() {
    let host = start().await;

    // Registered: /poll marked, /vote's `anonymous` marked and `legacy` left out, no /ballot.
    let global = registered(&host, None, "\"vote\"").await;
    let poll = named(&global, "poll").expect("/poll is still registered");
    assert_eq!(poll["description"], "Deprecated (use /vote): Start a poll");
    assert!(
        named(&global, "ballot").is_none(),
        "/ballot is past its sunset"
    );
    let vote = named(&global, "vote").unwrap();
    assert_eq!(option_names(vote), vec!["question", "anonymous", "secret"]);
    assert_eq!(
        vote["options"][1]["description"],
        "Deprecated (use the `secret` option): Hide who voted"
    );

    // Used before its sunset: the answer as the plugin gave it, plus one line.
    let body = run(&host, "poll", opts(&[("question", json!("Lunch?"))])).await;
    assert_eq!(
        body["data"]["content"],
        "/poll asked: Lunch?\n-# ⚠️ /poll is deprecated and goes away on 2099-01-01: use /vote instead."
    );
    // A deprecated option adds its notice only when it is sent.
    let plain = run(&host, "vote", opts(&[("question", json!("Tea?"))])).await;
    assert_eq!(plain["data"]["content"], "/vote asked: Tea?");
    let with = run(
        &host,
        "vote",
        json!([{"name": "question", "type": 3, "value": "Tea?"},
               {"name": "anonymous", "type": 5, "value": true}]),
    )
    .await;
    assert_eq!(
        with["data"]["content"],
        "/vote asked: Tea?\n-# ⚠️ the `anonymous` option of /vote is deprecated and goes away on 2099-01-01: use the `secret` option instead."
    );

    // After the sunset a stale client is told what replaced it; the plugin is not called.
    let gone = run(&host, "ballot", json!([])).await;
    assert!(is_ephemeral(&gone));
    assert_eq!(
        text_of(&gone),
        "/ballot was retired on 2020-01-01: use /vote instead."
    );
    let old_option = run(
        &host,
        "vote",
        json!([{"name": "question", "type": 3, "value": "?"},
               {"name": "legacy", "type": 3, "value": "x"}]),
    )
    .await;
    assert_eq!(
        text_of(&old_option),
        "The `legacy` option of /vote was retired on 2020-01-01: use nothing instead."
    );

    // /help shows the plugin's version and what is on its way out; retired ones are gone.
    let help = run(&host, "help", opts(&[("plugin", json!("versions"))])).await;
    let field = &help["data"]["embeds"][0]["fields"][0];
    assert_eq!(field["name"], "versions v2.1.0");
    let text = field["value"].as_str().unwrap();
    assert!(
        text.contains("`/poll` — Start a poll\n  ⚠️ deprecated: use /vote (goes away 2099-01-01)")
            && text.contains("⚠️ option `anonymous` deprecated: use the `secret` option")
            && !text.contains("/ballot")
            && !text.contains("legacy"),
        "{text}"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_rules_deprecated_commands_get_the_same_through_its_declaration() {
    let host = start().await;
    let guild = registered(&host, Some(GUILD), "report").await;
    let names: Vec<&str> = guild.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        vec!["old-report", "report"],
        "ancient-report is retired"
    );
    assert_eq!(
        named(&guild, "old-report").unwrap()["description"],
        "Deprecated (use /report): The old report"
    );

    let old = run(&host, "old-report", json!([])).await;
    assert_eq!(
        old["data"]["content"],
        "old-report ran\n-# ⚠️ /old-report is deprecated and goes away on 2099-01-01: use /report instead."
    );
    let with_format = run(
        &host,
        "report",
        json!([{"name": "format", "type": 3, "value": "csv"}]),
    )
    .await;
    assert!(
        text_of(&with_format).ends_with(
            "-# ⚠️ the `format` option of /report is deprecated and goes away on 2099-01-01: use the `week` option instead."
        ),
        "{with_format}"
    );
    let retired = run(&host, "ancient-report", json!([])).await;
    assert_eq!(
        text_of(&retired),
        "/ancient-report was retired on 2021-06-01: use /report instead."
    );
    host.stop().await;
}

#[tokio::test]
async fn a_bad_deprecation_is_refused_with_where_and_why() {
    let host = start().await;
    // A rule whose declaration has a bad sunset does not load; its problem names it.
    let file = host.dir.join(format!("scripts/guilds/{GUILD}/bad.rhai"));
    std::fs::write(
        &file,
        r#"command("x", "X", [], #{ replacement: "/y", sunset: "soon" });"#,
    )
    .unwrap();
    let problem = eventually("the bad rule's problem", || {
        host.rules
            .list(GUILD)
            .into_iter()
            .find(|r| r.name.ends_with("bad.rhai"))
            .and_then(|r| r.problem)
    })
    .await;
    assert!(
        problem.contains("command(): /x") && problem.contains("`sunset` is `soon`"),
        "{problem}"
    );
    host.stop().await;
}
