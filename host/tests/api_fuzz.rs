//! An API fuzzer driven by the published spec: for every operation of
//! `/api/v1/openapi.json`, generated valid and invalid path values, query parameters and
//! bodies, with no token, a junk token and a real one. No answer may be a 5xx, and every
//! answer must be one the spec documents for that operation (status, and the error
//! envelope as JSON).

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A small deterministic generator (the run is the same every time).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Values for a path parameter: plausible ones for this host, and hostile ones.
fn path_values(name: &str) -> Vec<String> {
    let mut v = vec![
        "x".to_string(),
        "..%2F..%2Fetc".into(),
        "%00".into(),
        "a".repeat(300),
        "%F0%9F%A5%90".into(),
        "0".into(),
    ];
    match name {
        "id" => v.extend([GUILD.to_string(), "1_ujzde8gx".into(), "1001".into()]),
        "name" => v.extend(["latest.rhai".to_string(), "bad name.rhai".into()]),
        _ => {}
    }
    v
}

/// Values for a query parameter of a type.
fn query_values(name: &str, ty: &str) -> Vec<String> {
    let mut v = vec![
        String::new(),
        "abc".into(),
        "-1".into(),
        "99999999999999999999999".into(),
        "%27%3B--".into(),
        "z".repeat(3000),
    ];
    match (name, ty) {
        ("guild_id", _) => v.extend([GUILD.to_string(), "600000000000000002".into()]),
        ("channel_id", _) => v.push("200000000000000001".into()),
        ("instance_id", _) => v.push("i-1".into()),
        (_, "integer") => v.extend(["1".to_string(), "10".into(), "0".into()]),
        (_, "boolean") => v.extend(["true".to_string()]),
        _ => v.extend(["hello".to_string(), "dead".into()]),
    }
    v
}

fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("application/json", b"{}".to_vec()),
        ("application/json", b"{".to_vec()),
        ("application/json", b"[]".to_vec()),
        (
            "application/json",
            br#"{"guild_id": "600000000000000001", "title": "T", "kind": "meeting"}"#.to_vec(),
        ),
        (
            "application/json",
            br#"{"notifications": {"enabled": "no"}}"#.to_vec(),
        ),
        (
            "application/json",
            br#"{"discord_access_token": 5}"#.to_vec(),
        ),
        (
            "application/merge-patch+json",
            br#"{"kaltura": {"session": {"privileges": {"default": "sview:*"}}}}"#.to_vec(),
        ),
        ("text/plain", b"fn on_schedule() {}".to_vec()),
        ("text/plain", b"\xff\xfe not utf-8".to_vec()),
        ("application/x-www-form-urlencoded", b"code=x".to_vec()),
        ("application/json", vec![b' '; 200 * 1024]),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_only_what_the_spec_documents() {
    let host = start_with_kaltura(|_| {}).await;
    host.standin.set_guild(
        GUILD,
        "700000000000000099",
        &[("800000000000000001", "Admins", 8)],
    );
    host.standin
        .set_member(GUILD, USER, &["800000000000000001"]);
    host.standin.add_oauth_user("oauth-fuzz", USER, "Ann");
    let http = reqwest::Client::new();
    let token = host.api_token("oauth-fuzz").await;
    let spec: Value = http
        .get(format!("{}/api/v1/openapi.json", host.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut rng = Gen(0x5eed_cafe_f00d_0001);
    let mut sent = 0;
    let mut seen: std::collections::BTreeMap<u16, usize> = Default::default();
    let mut problems = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let Ok(m) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            let documented: Vec<String> = op["responses"]
                .as_object()
                .map(|r| r.keys().cloned().collect())
                .unwrap_or_default();
            let params: Vec<(String, String, String)> = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| {
                    (
                        p["name"].as_str().unwrap_or_default().to_string(),
                        p["in"].as_str().unwrap_or_default().to_string(),
                        p["schema"]["type"]
                            .as_str()
                            .or(p["schema"]["type"][0].as_str())
                            .unwrap_or("string")
                            .to_string(),
                    )
                })
                .collect();
            let takes_body = op["requestBody"].is_object();
            for round in 0..24 {
                // The path, its parameters filled.
                let mut url = path.clone();
                for (name, at, _) in params.iter().filter(|p| p.1 == "path") {
                    let values = path_values(name);
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    url = url.replace(&format!("{{{name}}}"), rng.pick(&refs));
                    let _ = at;
                }
                // Some query parameters, some missing, some unknown.
                let mut query = Vec::new();
                for (name, _, ty) in params.iter().filter(|p| p.1 == "query") {
                    if rng.next().is_multiple_of(4) {
                        continue;
                    }
                    let values = query_values(name, ty);
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
                    query.push(format!("{name}={}", rng.pick(&refs)));
                }
                if round % 7 == 0 {
                    query.push("unknown_param=1".into());
                }
                let full = if query.is_empty() {
                    format!("{}{url}", host.base)
                } else {
                    format!("{}{url}?{}", host.base, query.join("&"))
                };
                let mut req = http.request(m.clone(), &full);
                match round % 3 {
                    0 => {}
                    1 => req = req.bearer_auth("junk.token.here"),
                    _ => req = req.bearer_auth(&token),
                }
                if takes_body || round % 5 == 0 {
                    let all = bodies();
                    let (ct, body) = &all[(rng.next() % all.len() as u64) as usize];
                    req = req.header("content-type", *ct).body(body.clone());
                }
                let resp = req.send().await.unwrap();
                sent += 1;
                let status = resp.status();
                *seen.entry(status.as_u16()).or_default() += 1;
                let ct = resp
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body = resp.text().await.unwrap_or_default();
                let what = format!("{method} {full} → {status}");
                if status.is_server_error() {
                    problems.push(format!(
                        "{what}: a 5xx: {}",
                        &body.chars().take(200).collect::<String>()
                    ));
                }
                if !documented.iter().any(|d| d == status.as_str())
                    && status != StatusCode::SWITCHING_PROTOCOLS
                {
                    problems.push(format!("{what}: not documented ({documented:?})"));
                }
                if status.as_u16() >= 400 {
                    let envelope = serde_json::from_str::<Value>(&body)
                        .ok()
                        .is_some_and(|v| v["error"]["code"].is_string());
                    if !ct.starts_with("application/json") || !envelope {
                        problems.push(format!(
                            "{what}: not the error envelope ({ct}): {}",
                            &body.chars().take(120).collect::<String>()
                        ));
                    }
                }
            }
        }
    }
    assert!(sent > 300, "only {sent} requests");
    eprintln!("api fuzzer: {sent} requests, answers by status: {seen:?}");
    // The run reached past the front door: successes and refusals both.
    assert!(seen.contains_key(&200) && seen.contains_key(&400) && seen.contains_key(&401));
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}
