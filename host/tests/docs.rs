//! Every code block in `docs/plugins.md` is checked: Rust blocks are doctests of
//! `kd-plugin` (`plugin-api/src/lib.rs` includes the guide), shell blocks must be `kdhost`
//! command lines its argument parser accepts, JSON blocks must be valid `plugins.json`.
//! `docs/api.md`'s deprecation table is checked against the host's.

use std::path::Path;
use std::process::Command;

fn blocks(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(tag) = line.trim_start().strip_prefix("```") {
            match current.take() {
                Some(block) => out.push(block),
                None => current = Some((tag.trim().to_string(), String::new())),
            }
        } else if let Some((_, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    assert!(current.is_none(), "an unclosed code block");
    out
}

/// Each line is a `kdhost` command line its parser accepts.
fn check_kdhost_lines(at: &str, body: &str) {
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let words = shlex::split(line).unwrap();
        assert_eq!(
            words[0], "kdhost",
            "{at}: a shell line that is not kdhost: {line}"
        );
        // `--help` after the line: clap refuses unknown subcommands and flags first.
        let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(&words[1..])
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{at}: `{line}` is not a valid kdhost command: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn every_code_block_in_the_plugin_guide_is_checked() {
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/plugins.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    let found = blocks(&text);
    assert!(found.len() >= 4, "{found:?}");
    for (tag, body) in found {
        match tag.as_str() {
            // Compiled by `cargo test -p kd-plugin` (the guide is a doc module there).
            "rust" => assert!(
                body.contains("export_plugin!"),
                "a Rust block that is not a whole plugin"
            ),
            "sh" => check_kdhost_lines("docs/plugins.md", &body),
            "json" => {
                kdhost::plugins::grants::GrantsConfig::parse(&body).unwrap_or_else(|e| {
                    panic!("a JSON block is not a valid plugins.json: {e:#}\n{body}")
                });
            }
            other => {
                panic!("a `{other}` block nothing checks: add a check here or use another form")
            }
        }
    }
}

/// `docs/configuration.md` and `docs/rules.md`: Rhai blocks compile as rules, JSON blocks are
/// valid guild files (or, in the rules guide, `script test` events), shell lines are kdhost
/// commands; `text` blocks are output samples.
#[test]
fn every_code_block_in_the_configuration_and_rules_guides_is_checked() {
    let rules = kdhost::scripts::Rules::new(Path::new("."), Default::default(), None, None);
    for doc in ["configuration.md", "rules.md"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../docs")
            .join(doc);
        let text = std::fs::read_to_string(&path).unwrap();
        let found = blocks(&text);
        assert!(found.len() >= 3, "{doc}: {found:?}");
        for (i, (tag, body)) in found.into_iter().enumerate() {
            let at = format!("{doc} block {}", i + 1);
            match tag.as_str() {
                "rhai" => {
                    rules
                        .compile(&format!("global/{i}.rhai"), None, &body)
                        .unwrap_or_else(|e| panic!("{at}: {e}"));
                }
                "json" if doc == "rules.md" => {
                    let v: serde_json::Value =
                        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{at}: {e}"));
                    assert!(v["hook"].is_string(), "{at}: an event names its hook");
                }
                "json" => {
                    kdhost::config::guild::check_text(&at, &body).unwrap_or_else(|e| panic!("{e}"));
                }
                "sh" => check_kdhost_lines(&at, &body),
                "text" => {}
                other => panic!("{at}: a `{other}` block nothing checks"),
            }
        }
    }
}

/// `docs/activity.md`: the protocol examples are real messages (the first JSON block from
/// the page, the second from the server, one per line).
#[test]
fn the_activity_guides_protocol_examples_parse() {
    use kdhost::activity::protocol::{ClientMessage, ServerMessage};
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/activity.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    let json: Vec<String> = blocks(&text)
        .into_iter()
        .filter(|(tag, _)| tag == "json")
        .map(|(_, body)| body)
        .collect();
    assert_eq!(
        json.len(),
        2,
        "one block from the page, one from the server"
    );
    let lines = |b: &str| {
        b.lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect::<Vec<_>>()
    };
    let from_page = lines(&json[0]);
    assert!(from_page.len() >= 9, "every client message has an example");
    for line in from_page {
        serde_json::from_str::<ClientMessage>(&line)
            .unwrap_or_else(|e| panic!("docs/activity.md: not a client message: {e}\n{line}"));
    }
    for line in lines(&json[1]) {
        serde_json::from_str::<ServerMessage>(&line)
            .unwrap_or_else(|e| panic!("docs/activity.md: not a server message: {e}\n{line}"));
    }
}

/// `docs/api.md`'s table of deprecations is the host's: every route in it with its dates
/// and successor, and no row the host does not have.
#[test]
fn the_api_guide_lists_the_deprecations_in_force() {
    use kdhost::api::deprecation::DEPRECATED;
    let guide = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/api.md");
    let text = std::fs::read_to_string(&guide).unwrap();
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("| Route | Deprecated | Sunset |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), DEPRECATED.len(), "docs/api.md: {rows:?}");
    for d in DEPRECATED {
        let row = format!(
            "| `{} {}` | {} | {} | `{} {}` |",
            d.method, d.path, d.since, d.sunset, d.method, d.successor
        );
        assert!(
            rows.iter().any(|r| r.starts_with(&row)),
            "docs/api.md has no row starting {row}"
        );
    }
}
