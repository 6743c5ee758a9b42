//! The `kdhost` command line, run as a person would.

mod common;

use std::path::Path;
use std::process::Command;

use common::guest;
use serde_json::Value;

fn kdhost(args: &[&str], cwd: &Path) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kdhost"));
    cmd.args(args).current_dir(cwd);
    // The machine's own Discord settings must not leak into these runs.
    for var in [
        "DISCORD_PUBLIC_KEY",
        "DISCORD_APPLICATION_ID",
        "DISCORD_BOT_TOKEN",
        "DISCORD_API_BASE",
        "DISCORD_DEV_GUILD_ID",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn plugin_check_prints_the_manifest_and_refuses_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let hello = guest("kd_plugin_rust_hello");
    let (code, out, err) = kdhost(
        &["plugin", "check", hello.to_str().unwrap(), "--json"],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "hello");
    assert_eq!(v["version"], "0.1.0");
    assert_eq!(v["contract"], "kaltura-discord:plugin@0.1.2");
    assert_eq!(v["commands"][0]["name"], "hello");
    assert_eq!(v["commands"][0]["options"][0]["type"], 6);

    let (code, out, _) = kdhost(
        &["plugin", "check", guest("kd_plugin_core").to_str().unwrap()],
        tmp.path(),
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("capabilities: host") && out.contains("/help"),
        "{out}"
    );

    let (code, _, err) = kdhost(
        &[
            "plugin",
            "check",
            guest("kd_fixture_liar").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("liar.wasm: refused: imports capabilities its manifest does not request: kv"),
        "{err}"
    );

    // The contract version a component was built for, and a refused major, by name.
    let (code, out, err) = kdhost(
        &[
            "plugin",
            "check",
            guest("kd_fixture_contract_0_1_0").to_str().unwrap(),
            "--json",
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["contract"], "kaltura-discord:plugin@0.1.0");
    let (code, _, err) = kdhost(
        &[
            "plugin",
            "check",
            guest("kd_fixture_future_contract").to_str().unwrap(),
        ],
        tmp.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("built for contract kaltura-discord:plugin@0.2.0, a different major version; this host serves kaltura-discord:plugin@0.1.0 to 0.1.2"),
        "{err}"
    );
    // With --json the refusal says its kind, for scripts to decide on.
    let (code, out, _) = kdhost(
        &[
            "plugin",
            "check",
            guest("kd_fixture_liar").to_str().unwrap(),
            "--json",
        ],
        tmp.path(),
    );
    assert_eq!(code, 1);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["error_kind"], "unrequested_capabilities", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .contains("does not request: kv"),
        "{v}"
    );
}

#[test]
fn commands_sync_dry_run_prints_the_diff_and_sends_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("plugins")).unwrap();
    std::fs::copy(
        guest("kd_plugin_rust_hello"),
        tmp.path().join("plugins/hello.wasm"),
    )
    .unwrap();
    let (code, out, err) = kdhost(&["commands", "sync", "--dry-run"], tmp.path());
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("15 commands (global), changes since the last sync:"),
        "{out}"
    );
    for line in [
        "+ /about",
        "+ /hello",
        "+ /help",
        "+ /kaltura-start",
        "+ /kaltura-video-search",
        "+ /kaltura-get-ks",
        "+ /kaltura-config-update",
    ] {
        assert!(out.contains(line), "{out}");
    }
    let (code, _, err) = kdhost(&["commands", "sync"], tmp.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("needs DISCORD_APPLICATION_ID and DISCORD_BOT_TOKEN"),
        "{err}"
    );
}

#[test]
fn plugin_new_scaffolds_a_crate_that_builds_and_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let (code, out, err) = kdhost(&["plugin", "new", "weather"], tmp.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("Created plugin `weather`"));
    let (code, _, err) = kdhost(&["plugin", "new", "Bad Name"], tmp.path());
    assert_eq!(code, 1);
    assert!(err.contains("must be 1-32 lowercase"), "{err}");

    // Build it as generated, sharing one target folder across runs to save time.
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scaffold-test");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet"])
        .current_dir(tmp.path().join("weather"))
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTFLAGS")
        .status()
        .unwrap();
    assert!(status.success(), "the scaffolded plugin does not build");
    let wasm = target.join("wasm32-wasip2/release/weather.wasm");
    let (code, out, err) = kdhost(
        &["plugin", "check", wasm.to_str().unwrap(), "--json"],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["name"], "weather");
    assert_eq!(v["commands"][0]["name"], "weather");
}

/// A child process that is killed when the test ends, even by a failed assertion.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `kdhost serve` with JSON logs on a free port; returns the child, its address, the log
/// lines up to the end of the startup report, and the rest of its log stream.
fn serve_json(
    cwd: &Path,
    env: &[(&str, &str)],
) -> (
    Running,
    String,
    Vec<Value>,
    std::io::Lines<std::io::BufReader<std::process::ChildStderr>>,
) {
    use std::io::{BufRead, BufReader};
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kdhost"));
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--log-format", "json"])
        .current_dir(cwd)
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    for var in [
        "DISCORD_PUBLIC_KEY",
        "DISCORD_APPLICATION_ID",
        "DISCORD_BOT_TOKEN",
    ] {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        let v: Value = serde_json::from_str(&line)
            .unwrap_or_else(|_| panic!("--log-format json printed a non-JSON line: {line}"));
        if let Some(a) = v["listen"].as_str() {
            addr = Some(a.to_string());
        }
        let done = v["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("hot-reload");
        seen.push(v);
        if done {
            break;
        }
    }
    (
        Running(child),
        addr.expect("the listen address is logged"),
        seen,
        lines,
    )
}

#[test]
fn serve_without_credentials_starts_and_says_what_is_off() {
    let tmp = tempfile::tempdir().unwrap();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_at = format!("127.0.0.1:{metrics_port}");
    // The log stays read: a process writing to a closed pipe dies of it.
    let (_child, addr, seen, _log) =
        serve_json(tmp.path(), &[("KD_METRICS_LISTEN", metrics_at.as_str())]);
    let all: Vec<&str> = seen.iter().filter_map(|v| v["message"].as_str()).collect();
    let all = all.join("\n");
    assert!(
        all.contains("discord-interactions: off: set DISCORD_PUBLIC_KEY"),
        "{all}"
    );
    assert!(
        all.contains("discord-gateway: off: set DISCORD_BOT_TOKEN"),
        "{all}"
    );
    // It serves: a plain HTTP/1.1 GET of /healthz.
    use std::io::{Read, Write};
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200") && resp.contains(r#"{"status":"ok"}"#),
        "{resp}"
    );
    // [harden] 10: metrics on their own listener, not on the public one.
    let get = |at: &str, path: &str| {
        let mut conn = std::net::TcpStream::connect(at).unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).unwrap();
        resp
    };
    assert!(get(&addr, "/metrics").starts_with("HTTP/1.1 404"));
    let m = get(&metrics_at, "/metrics");
    assert!(m.starts_with("HTTP/1.1 200") && m.contains("kd_"), "{m}");
    assert!(
        all.contains(&format!("metrics: on: http://{metrics_at}/metrics")),
        "{all}"
    );
}

#[tokio::test]
async fn log_lines_of_a_request_carry_its_request_id() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path().join("plugins")).unwrap();
    std::fs::copy(
        guest("kd_fixture_hostile"),
        tmp.path().join("plugins/hostile.wasm"),
    )
    .unwrap();
    let standin =
        testkit::DiscordStandIn::start("127.0.0.1:0".parse().unwrap(), Default::default())
            .await
            .unwrap();
    let key = standin.public_key_hex();
    let (_child, addr, _, mut lines) =
        serve_json(tmp.path(), &[("DISCORD_PUBLIC_KEY", key.as_str())]);
    let payload = standin.command(
        "panic",
        serde_json::json!([]),
        "600000000000000001",
        "700000000000000001",
        &[],
    );
    let (status, _) = standin
        .send_interaction(&format!("http://{addr}/interactions"), &payload)
        .await
        .unwrap();
    assert_eq!(status, 200);
    let failure = tokio::task::spawn_blocking(move || {
        lines.find_map(|l| {
            let v: Value = serde_json::from_str(&l.ok()?).ok()?;
            (v["message"] == "plugin call failed").then_some(v)
        })
    })
    .await
    .unwrap()
    .expect("the guest failure is logged");
    assert_eq!(failure["plugin"], "hostile");
    let id = failure["span"]["request_id"].as_str().unwrap_or_default();
    assert!(id.len() >= 32, "no request id on the log line: {failure}");
}

/// Reads lines from a child's stdout until `stop` matches one; returns them.
fn read_until(child: &mut std::process::Child, stop: &str) -> Vec<String> {
    use std::io::{BufRead, BufReader};
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in out.lines() {
        let line = line.unwrap();
        let done = line.contains(stop);
        lines.push(line);
        if done {
            break;
        }
    }
    lines
}

#[test]
fn standin_discord_runs_standalone_and_prints_how_to_use_it() {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Running(
        Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(["standin", "discord", "--listen", "127.0.0.1:0"])
            .current_dir(tmp.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let lines = read_until(&mut child.0, "requests it received");
    let all = lines.join("\n");
    let base = lines
        .iter()
        .find_map(|l| l.strip_prefix("  DISCORD_API_BASE="))
        .expect("prints its base URL")
        .to_string();
    let key = lines
        .iter()
        .find_map(|l| l.strip_prefix("  DISCORD_PUBLIC_KEY="))
        .expect("prints its public key");
    assert_eq!(key.len(), 64, "{all}");
    // It answers like Discord.
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(conn, "GET /api/v10/users/@me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bot standin-bot-token\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200")
            && resp.contains("x-ratelimit-limit")
            && resp.contains("\"bot\":true"),
        "{resp}"
    );
    // It knows the shipped guilds: their channels, and the bot's guild list.
    let get = |path: &str| {
        let mut conn = std::net::TcpStream::connect(addr).unwrap();
        write!(conn, "GET /api/v10{path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bot standin-bot-token\r\nConnection: close\r\n\r\n").unwrap();
        let mut resp = String::new();
        conn.read_to_string(&mut resp).unwrap();
        resp
    };
    let channels = get("/guilds/600000000000000001/channels");
    assert!(
        channels.contains("\"recordings\"") && channels.contains("910000000000000001"),
        "{channels}"
    );
    let guilds = get("/users/@me/guilds");
    assert!(
        guilds.contains("Kaltura Community") && guilds.contains("Partner Academy"),
        "{guilds}"
    );
    assert!(all.contains("(2 guilds)"), "{all}");
}

#[test]
fn demo_sends_real_interactions_and_prints_the_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["demo", "--once", "--listen", "127.0.0.1:0"])
        .current_dir(tmp.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "→ /help",
        "core v0.1.0: `/help` — List every command",
        "hello v0.1.0: `/hello` — Greet someone",
        "button \"Wave back\" → hello:wave",
        "waves back",
        "/nope is not available right now",
        "PUT /api/v10/applications/100000000000000001/commands → 200 (15 commands)",
        "embed \"Security awareness 2026\"",
        "button \"Open the player\"",
        "embed \"Demo stand-up\"",
        "embed \"Active meetings\"",
        "button \"Open the meeting\"",
    ] {
        assert!(
            stdout.contains(expected),
            "missing `{expected}` in:\n{stdout}"
        );
    }
}

#[test]
fn demo_with_three_instances_answers_on_each_and_handles_a_webhook_once() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args([
            "demo",
            "--instances",
            "3",
            "--once",
            "--listen",
            "127.0.0.1:0",
        ])
        .current_dir(tmp.path())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for i in 0..3 {
        assert!(
            stdout.contains(&format!("→ /about on instance {i}\n  ← HTTP 200")),
            "{stdout}"
        );
    }
    assert_eq!(
        stdout.matches("\"status\":\"duplicate\"").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("#recordings has 1 message(s)"), "{stdout}");
    // Asked for one instance, or for too many: told what it takes.
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["demo", "--instances", "9", "--once"])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--instances takes 2 to 8"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kaltura_ks_signs_locally_and_ks_info_reads_it_back() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |args: &[&str], secret: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_kdhost"));
        cmd.args(args)
            .current_dir(tmp.path())
            .env_remove("KALTURA_PARTNER_ID")
            .env_remove("KALTURA_ADMIN_SECRET");
        if let Some(s) = secret {
            cmd.env("KALTURA_PARTNER_ID", "1234567")
                .env("KALTURA_ADMIN_SECRET", s);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let secret = "0123456789abcdef0123456789abcdef";
    let (code, ks, err) = run(
        &[
            "kaltura",
            "ks",
            "--user",
            "discord_42",
            "--privileges",
            "sview:0_abc",
            "--expiry",
            "600",
        ],
        Some(secret),
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(
        ks.trim().starts_with("djJ8MTIzNDU2N3"),
        "a v2 KS for partner 1234567: {ks}"
    );
    let (code, out, err) = run(
        &["kaltura", "ks-info", ks.trim()],
        Some(&format!("rotated-secret,{secret}")),
    );
    assert_eq!(code, Some(0), "{err}");
    for line in [
        "user:       discord_42",
        "type:       User",
        "privileges: sview:0_abc",
        "expires:    in ",
    ] {
        assert!(out.contains(line), "missing `{line}` in {out}");
    }
    let (code, _, err) = run(
        &["kaltura", "ks-info", ks.trim()],
        Some("another-partner-secret"),
    );
    assert_eq!(code, Some(1));
    assert!(
        err.contains("does not match any of the partner's secrets"),
        "{err}"
    );
    let (code, _, err) = run(&["kaltura", "ks", "--user", "x"], None);
    assert_eq!(code, Some(1));
    assert!(err.contains("set KALTURA_PARTNER_ID"), "{err}");
    assert!(!err.contains(secret));
}

#[tokio::test]
async fn standin_kaltura_runs_standalone_and_validates_sessions() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args([
            "standin",
            "kaltura",
            "--listen",
            "127.0.0.1:0",
            "--partner-id",
            "4242",
            "--admin-secret",
            "cli-secret",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Stopped when the test ends, even by a failed assertion.
    let child = Running(child);
    let mut first = String::new();
    // Kept open until the child is stopped (a closed pipe would fail its later prints).
    let mut out = std::io::BufReader::new(stdout);
    out.read_line(&mut first).unwrap();
    // "Kaltura stand-in on http://127.0.0.1:PORT (partner 4242, 57 entries)"
    let url = first.split_whitespace().nth(3).unwrap().to_string();
    assert!(first.contains("57 entries"), "{first}");
    let call = async |form: &[(&str, &str)]| -> Value {
        reqwest::Client::new()
            .post(format!("{url}/api_v3/service/session/action/start"))
            .form(form)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    };
    let ks = call(&[
        ("format", "1"),
        ("secret", "cli-secret"),
        ("partnerId", "4242"),
        ("type", "2"),
    ])
    .await;
    let info = kdhost::kaltura::ks::decode(ks.as_str().unwrap(), 4242, &["cli-secret"]).unwrap();
    assert_eq!(info.partner_id, 4242);
    let refused = call(&[("format", "1"), ("secret", "wrong"), ("partnerId", "4242")]).await;
    assert_eq!(refused["code"], "START_SESSION_ERROR");
    drop(child);
    drop(out);
}

#[test]
fn plugin_test_prints_the_response_and_every_host_call() {
    let tmp = tempfile::tempdir().unwrap();
    let caps = guest("kd_fixture_caps");
    let (code, out, err) = kdhost(
        &[
            "plugin",
            "test",
            caps.to_str().unwrap(),
            "--command",
            "/count",
            "--json",
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["response"]["data"]["content"], "count=1");
    let calls: Vec<String> = v["host_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            format!(
                "{}.{} → {}",
                c["capability"].as_str().unwrap(),
                c["function"].as_str().unwrap(),
                c["result"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(calls, ["kv.get → Ok(None)", "kv.set → Ok(())"]);
    assert_eq!(v["host_calls"][0]["args"], "key: \"count\"");

    // Against the Kaltura stand-in, with typed options; text output.
    let meetings = guest("kd_plugin_kaltura_meetings");
    let (code, out, err) = kdhost(
        &[
            "plugin",
            "test",
            meetings.to_str().unwrap(),
            "--command",
            "/kaltura-start type:webinar title:\"Demo day\"",
        ],
        tmp.path(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("1. kaltura.create-meeting(kind: MeetingKind::Webinar, title: \"Demo day\""),
        "{out}"
    );
    assert!(
        out.contains("\"custom_id\": \"kaltura-meetings:kaltura-end:"),
        "{out}"
    );

    // Mistakes in the command line are explained; a failing plugin exits 1 with the reason.
    let (code, _, err) = kdhost(
        &[
            "plugin",
            "test",
            meetings.to_str().unwrap(),
            "--command",
            "/kaltura-start title:x",
        ],
        tmp.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("/kaltura-start needs the option `type`"),
        "{err}"
    );
    let hostile = guest("kd_fixture_hostile");
    let (code, out, _) = kdhost(
        &[
            "plugin",
            "test",
            hostile.to_str().unwrap(),
            "--command",
            "/panic",
        ],
        tmp.path(),
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("problem: the call failed"), "{out}");
}

/// `kdhost plugin new --lang js|python` projects build as generated and their own tests pass.
#[test]
fn js_and_python_scaffolds_build_and_pass_their_tests() {
    let tmp = tempfile::tempdir().unwrap();
    let kdhost_bin = env!("CARGO_BIN_EXE_kdhost");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for (name, lang, test) in [
        ("greet-js", "js", vec!["node", "--test"]),
        ("greet_py", "python", vec!["python3", "-m", "unittest"]),
    ] {
        let (code, out, err) = kdhost(&["plugin", "new", name, "--lang", lang], tmp.path());
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("kdhost plugin build"), "{out}");
        let dir = tmp.path().join(name);
        assert!(dir.join("README.md").exists());
        assert!(
            dir.join("wit/deps/kaltura-discord-plugin/capabilities.wit")
                .exists(),
            "the contract"
        );
        // Without its toolchain, the build says in one line what to install.
        let missing = Command::new(kdhost_bin)
            .args(["plugin", "build", name])
            .current_dir(tmp.path())
            .env("PATH", "/usr/bin:/bin")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&missing.stderr);
        assert!(!missing.status.success());
        let hint = if lang == "js" {
            "run `npm install` there"
        } else {
            "pip install componentize-py"
        };
        assert!(
            err.lines().last().unwrap_or_default().contains(hint),
            "{err}"
        );
        if lang == "js" {
            // The toolchain the README's test command installed for the JS example.
            std::os::unix::fs::symlink(
                repo.join("examples/js-poll/node_modules")
                    .canonicalize()
                    .unwrap(),
                dir.join("node_modules"),
            )
            .unwrap();
        }
        let (code, out, err) = kdhost(&["plugin", "build", name], tmp.path());
        assert_eq!(code, 0, "{name}: {out}\n{err}");
        assert!(out.contains(&format!("/{name} — Say hello")), "{out}");
        let ran = Command::new(test[0])
            .args(&test[1..])
            .current_dir(&dir)
            .env("KDHOST", kdhost_bin)
            .output()
            .unwrap();
        assert!(
            ran.status.success(),
            "{name}: its own test failed:\n{}\n{}",
            String::from_utf8_lossy(&ran.stdout),
            String::from_utf8_lossy(&ran.stderr)
        );
    }
    // Not a project: one line that says what is missing.
    let (code, _, err) = kdhost(&["plugin", "build", "."], tmp.path());
    assert_eq!(code, 1);
    assert!(
        err.contains("is not a plugin project") && err.contains("--lang rust|js|python"),
        "{err}"
    );
}

#[test]
fn serve_refuses_a_wrong_setting_and_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    for (var, value) in [
        ("KD_ACTIVITY_GRACE_MS", "soon"),
        ("KD_ACTIVITY_GRACE_MS", "5"),
        ("KD_DELIVERY_MAX_ATTEMPTS", "0"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .current_dir(tmp.path())
            .env(var, value)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{var}={value} was accepted");
        assert!(
            err.contains(&format!("{var} must be a whole number")) && err.contains(value),
            "{var}={value}: {err}"
        );
    }
    // [harden] 7: dev mode (anyone signs in as anyone) never runs with real credentials.
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(tmp.path())
        .env("KD_ACTIVITY_DEV", "true")
        .env("DISCORD_CLIENT_SECRET", "a-real-looking-secret")
        .env_remove("DISCORD_API_BASE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "dev mode ran with real credentials");
    assert!(
        err.contains("KD_ACTIVITY_DEV") && !err.contains("a-real-looking-secret"),
        "{err}"
    );
    // Other variables are HTTP limits.
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .current_dir(tmp.path())
        .env("KD_CLIENT_IP_HEADER", "not a header")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("KD_CLIENT_IP_HEADER"));
}

#[tokio::test]
async fn serve_speaks_https_with_its_certificate_and_names_a_bad_file() {
    use common::processes::{free_port, serve_command};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["kdhost.test".to_string()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    let standin = testkit::DiscordStandIn::start(
        "127.0.0.1:0".parse().unwrap(),
        testkit::StandInOptions::default(),
    )
    .await
    .unwrap();
    let port = free_port();
    let mut child = serve_command(dir, &dir.join("data"), port, &standin, "tls-test-secret")
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The certificate's name, resolved to the listener, trusted as the only root.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let https = reqwest::Client::builder()
        .use_rustls_tls()
        .add_root_certificate(reqwest::Certificate::from_pem(made.cert.pem().as_bytes()).unwrap())
        .resolve("kdhost.test", addr)
        .build()
        .unwrap();
    let until = std::time::Instant::now() + common::HANG;
    let healthy = loop {
        match https
            .get(format!("https://kdhost.test:{port}/healthz"))
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) => {
                assert!(std::time::Instant::now() < until, "no HTTPS answer: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(healthy.status(), 200);
    // Plain HTTP to a TLS listener gets no answer.
    let plain = reqwest::get(format!("http://127.0.0.1:{port}/healthz")).await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() != 200));
    let _ = child.kill();
    let _ = child.wait();

    // A key that is not a key, or half the pair: refused at start with the file named.
    let run = |args: &[&std::ffi::OsStr]| {
        let out = serve_command(
            dir,
            &dir.join("data"),
            free_port(),
            &standin,
            "tls-test-secret",
        )
        .args(args)
        .output()
        .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, err) = run(&[
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        cert.as_os_str(),
    ]);
    assert!(
        !ok && err.contains("cert.pem: not a PEM private key"),
        "{err}"
    );
    let (ok, err) = run(&["--tls-cert".as_ref(), cert.as_os_str()]);
    assert!(
        !ok && err.contains("--tls-key (KD_TLS_KEY) is not"),
        "{err}"
    );
}
