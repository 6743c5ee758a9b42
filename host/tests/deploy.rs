//! The deployment files against the host they deploy: the Kubernetes overlays as
//! `kubectl kustomize` renders them, the compose file, the image's Dockerfile, and the
//! dashboard and alert rules against a live host's `/metrics`.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document in `text`, as JSON values (merge keys, `<<: *anchor`, applied as
/// compose applies them).
fn yaml_documents(text: &str, what: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_norway::Deserializer::from_str(text)
        .map(|d| {
            let mut v = Value::deserialize(d).unwrap_or_else(|e| panic!("{what}: {e}"));
            apply_merge_keys(&mut v);
            v
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn apply_merge_keys(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(base) = map.remove("<<") {
                let bases = match base {
                    Value::Array(list) => list,
                    one => vec![one],
                };
                for base in bases {
                    for (k, inherited) in base.as_object().cloned().unwrap_or_default() {
                        map.entry(k).or_insert(inherited);
                    }
                }
            }
            map.values_mut().for_each(apply_merge_keys);
        }
        Value::Array(list) => list.iter_mut().for_each(apply_merge_keys),
        _ => {}
    }
}

/// The environment variables the host reads: every `KD_*`, `DISCORD_*`, `KALTURA_*` and
/// `JWT_*` name its sources spell (clap's `env = "…"` and `std::env::var("…")` alike), and
/// `RUST_LOG`.
fn names_the_host_reads() -> BTreeSet<String> {
    fn walk(dir: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split('"').skip(1).step_by(2) {
                    let prefixed = ["KD_", "DISCORD_", "KALTURA_", "JWT_"]
                        .iter()
                        .any(|p| piece.starts_with(p));
                    if prefixed
                        && piece
                            .chars()
                            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
                    {
                        out.insert(piece.to_string());
                    }
                }
            }
        }
    }
    let mut names = BTreeSet::from(["RUST_LOG".to_string()]);
    walk(&root().join("host/src"), &mut names);
    for must in [
        "KD_LISTEN",
        "KD_DATABASE_URL",
        "DISCORD_SHARDS",
        "JWT_SECRET",
    ] {
        assert!(
            names.contains(must),
            "the source scan missed {must}: {names:?}"
        );
    }
    names
}

/// Runs a tool the deployment files are checked with; fails naming how to install it when
/// it is missing, and with its output when it refuses; its standard output otherwise.
fn run_tool(command: &mut Command, what: &str, install: &str) -> String {
    let program = command.get_program().to_string_lossy().to_string();
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed ({install}): {e}"));
    assert!(
        out.status.success(),
        "{what}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit(':').next().unwrap().parse().unwrap()
}

fn render(overlay: &str) -> Vec<Value> {
    let text = run_tool(
        Command::new("kubectl")
            .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
            .arg(root().join("deploy/k8s/overlays").join(overlay)),
        &format!("kubectl kustomize deploy/k8s/overlays/{overlay}"),
        "the machine's kubectl, or a kubectl of 1.27 or later",
    );
    yaml_documents(&text, overlay)
}

fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn kdhost_containers(docs: &[Value]) -> Vec<(String, &Value, &Value)> {
    docs.iter()
        .filter(|d| d["kind"] == "Deployment")
        .flat_map(|d| {
            let pod = &d["spec"]["template"]["spec"];
            pod["containers"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["name"] == "kdhost")
                .map(move |c| (d["metadata"]["name"].as_str().unwrap().to_string(), pod, c))
        })
        .collect()
}

/// A container's environment as the pod will see it: `env` entries and the keys of the
/// ConfigMaps it imports (the Secret's keys are the operator's, checked by the host).
fn environment(docs: &[Value], container: &Value) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for from in container["envFrom"].as_array().into_iter().flatten() {
        if let Some(name) = from["configMapRef"]["name"].as_str() {
            let map = named(docs, "ConfigMap", name);
            for (k, v) in map["data"].as_object().unwrap() {
                env.insert(k.clone(), v.as_str().unwrap().to_string());
            }
        }
    }
    for e in container["env"].as_array().into_iter().flatten() {
        env.insert(
            e["name"].as_str().unwrap().to_string(),
            e["value"].as_str().unwrap_or_default().to_string(),
        );
    }
    env
}

fn matches_labels(selector: &Value, labels: &Value) -> bool {
    selector
        .as_object()
        .unwrap()
        .iter()
        .all(|(k, v)| labels[k] == *v)
}

#[test]
fn the_kubernetes_overlays_render_and_match_what_kdhost_serve_reads() {
    let known = names_the_host_reads();
    let image_user = 10001;
    for overlay in ["dev", "prod"] {
        let docs = render(overlay);
        let containers = kdhost_containers(&docs);
        let names: BTreeSet<&str> = containers.iter().map(|(d, _, _)| d.as_str()).collect();
        assert_eq!(
            names,
            BTreeSet::from(["kdhost", "kdhost-gateway"]),
            "{overlay}: the HTTP side and the gateway"
        );
        for (deployment, pod, c) in &containers {
            let at = format!("{overlay}: Deployment {deployment}");
            let image = c["image"].as_str().unwrap();
            assert!(
                image.starts_with("ghcr.io/kaltura-discord/kdhost:") && !image.ends_with(":latest"),
                "{at}: image {image} (a tag of the kdhost image, never latest)"
            );
            assert_eq!(c["args"][0], "serve", "{at}: runs kdhost serve");
            let env = environment(&docs, c);
            for name in env.keys() {
                assert!(
                    known.contains(name),
                    "{at}: {name} is set but kdhost never reads it"
                );
            }
            if let Some(sources) = c["envFrom"].as_array() {
                assert!(
                    sources
                        .iter()
                        .any(|s| s["secretRef"]["name"] == "kdhost-env"),
                    "{at}: the secrets come from the Secret kdhost-env"
                );
            }
            kdhost::discord::shards::ShardPlan::parse(Some(&env["DISCORD_SHARDS"]), None)
                .unwrap_or_else(|e| panic!("{at}: {e}"));
            let expected_shards = if deployment == "kdhost" {
                "none"
            } else {
                "auto"
            };
            assert_eq!(env["DISCORD_SHARDS"], expected_shards, "{at}");

            // Ports: what the host listens on.
            let port = |name: &str| {
                c["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|p| p["name"] == name)
                    .unwrap_or_else(|| panic!("{at}: no port named {name}"))["containerPort"]
                    .as_u64()
                    .unwrap()
            };
            assert_eq!(port("http"), port_of(&env["KD_LISTEN"]), "{at}: KD_LISTEN");
            assert_eq!(
                port("metrics"),
                port_of(&env["KD_METRICS_LISTEN"]),
                "{at}: KD_METRICS_LISTEN"
            );
            // Probes: /healthz says alive, /readyz says serving.
            for (probe, path) in [
                ("startupProbe", "/healthz"),
                ("livenessProbe", "/healthz"),
                ("readinessProbe", "/readyz"),
            ] {
                assert_eq!(c[probe]["httpGet"]["path"], path, "{at}: {probe}");
                assert_eq!(c[probe]["httpGet"]["port"], "http", "{at}: {probe}");
            }
            // The stop: the grace period covers the preStop wait and the host's own stop.
            let pre_stop: u64 = c["lifecycle"]["preStop"]["exec"]["command"][1]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(c["lifecycle"]["preStop"]["exec"]["command"][0], "sleep");
            let ms = |k: &str| {
                env[k]
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{at}: {k}"))
            };
            let needed =
                pre_stop * 1000 + ms("KD_SHUTDOWN_DELAY_MS") + ms("KD_SHUTDOWN_TIMEOUT_MS");
            let grace = pod["terminationGracePeriodSeconds"].as_u64().unwrap() * 1000;
            assert!(
                grace > needed,
                "{at}: terminationGracePeriodSeconds ({grace} ms) must exceed preStop + KD_SHUTDOWN_DELAY_MS + KD_SHUTDOWN_TIMEOUT_MS ({needed} ms)"
            );
            // The image's user, and the config folder the host reads.
            assert_eq!(pod["securityContext"]["runAsUser"], image_user, "{at}");
            let mount = c["volumeMounts"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["mountPath"] == env["KD_CONFIG"].as_str())
                .unwrap_or_else(|| panic!("{at}: nothing mounted at KD_CONFIG"));
            let volume = pod["volumes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|v| v["name"] == mount["name"])
                .unwrap();
            let config = named(
                &docs,
                "ConfigMap",
                volume["configMap"]["name"].as_str().unwrap(),
            );
            for file in ["default.json", "plugins.json"] {
                assert_eq!(
                    config["data"][file].as_str(),
                    Some(read(&format!("config/{file}")).as_str()),
                    "{at}: the ConfigMap's {file} is config/{file}"
                );
            }
            // Memory: the limit leaves the plugins' budget room beside the host itself.
            let limit = c["resources"]["limits"]["memory"].as_str().unwrap();
            let limit_mib: u64 = limit.trim_end_matches("Mi").parse().unwrap();
            assert!(
                limit_mib >= ms("KD_PLUGIN_MEMORY_MB") + 256,
                "{at}: memory limit {limit} against KD_PLUGIN_MEMORY_MB"
            );
        }

        // Everything points at something that exists.
        let pods_of = |selector: &Value| {
            containers
                .iter()
                .filter(|(d, _, _)| {
                    let deployment = named(&docs, "Deployment", d);
                    matches_labels(
                        selector,
                        &deployment["spec"]["template"]["metadata"]["labels"],
                    )
                })
                .count()
        };
        let service = named(&docs, "Service", "kdhost");
        assert_eq!(
            pods_of(&service["spec"]["selector"]),
            1,
            "{overlay}: Service kdhost → the HTTP pods"
        );
        let metrics = named(&docs, "Service", "kdhost-metrics");
        assert_eq!(
            pods_of(&metrics["spec"]["selector"]),
            2,
            "{overlay}: metrics from both"
        );
        let ingress = named(&docs, "Ingress", "kdhost");
        assert_eq!(
            ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
            "kdhost"
        );
        let hpa = named(&docs, "HorizontalPodAutoscaler", "kdhost");
        assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], "kdhost");
        // The HTTP side starts at the HPA's floor; the gateway keeps its own count (a patch
        // meant for one must not reach the other).
        let replicas = |name: &str| named(&docs, "Deployment", name)["spec"]["replicas"].clone();
        assert_eq!(replicas("kdhost"), hpa["spec"]["minReplicas"], "{overlay}");
        let gateway = if overlay == "prod" { 2 } else { 1 };
        assert_eq!(
            replicas("kdhost-gateway"),
            gateway,
            "{overlay}: kdhost-gateway replicas"
        );
        for pdb in docs.iter().filter(|d| d["kind"] == "PodDisruptionBudget") {
            assert_eq!(
                pods_of(&pdb["spec"]["selector"]["matchLabels"]),
                1,
                "{overlay}: {pdb}"
            );
        }
        let monitor = named(&docs, "ServiceMonitor", "kdhost");
        assert!(matches_labels(
            &monitor["spec"]["selector"]["matchLabels"],
            &metrics["metadata"]["labels"]
        ));
        let policy = named(&docs, "NetworkPolicy", "kdhost");
        let open: Vec<u64> = policy["spec"]["ingress"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["ports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| p["port"].as_u64().unwrap())
            })
            .collect();
        assert_eq!(
            open,
            [8080, 9090],
            "{overlay}: the NetworkPolicy lets in HTTP and metrics"
        );
    }
}

#[test]
fn the_compose_file_runs_three_instances_behind_the_proxy_and_prometheus_scrapes_each() {
    let known = names_the_host_reads();
    let compose = &yaml_documents(&read("deploy/compose.yaml"), "deploy/compose.yaml")[0];
    let services = compose["services"].as_object().unwrap();
    let instances: Vec<&String> = services
        .keys()
        .filter(|k| k.starts_with("kdhost-"))
        .collect();
    assert_eq!(instances.len(), 3, "three kdhost instances");
    let nginx = read("deploy/compose/nginx.conf");
    let prometheus = read("deploy/compose/prometheus.yml");
    for name in &instances {
        let s = &services[name.as_str()];
        assert_eq!(s["build"]["dockerfile"], "deploy/Dockerfile", "{name}");
        let env = s["environment"].as_object().unwrap();
        for key in env.keys() {
            assert!(
                known.contains(key),
                "{name}: {key} is set but kdhost never reads it"
            );
        }
        assert!(
            env["KD_DATABASE_URL"]
                .as_str()
                .unwrap()
                .starts_with("postgres://")
        );
        assert!(
            env["KD_REDIS_URL"]
                .as_str()
                .unwrap()
                .starts_with("redis://")
        );
        let metrics_port = port_of(env["KD_METRICS_LISTEN"].as_str().unwrap());
        assert!(
            nginx.contains(&format!("server {name}:8080")),
            "nginx sends to {name}"
        );
        assert!(
            prometheus.contains(&format!("\"{name}:{metrics_port}\"")),
            "Prometheus scrapes {name}"
        );
        let grace = s["stop_grace_period"].as_str().unwrap();
        assert!(
            grace.trim_end_matches('s').parse::<u64>().unwrap() > 25,
            "{name}: {grace}"
        );
    }
    for upgrade in [
        "proxy_set_header Upgrade $http_upgrade",
        "location = /metrics { return 404; }",
    ] {
        assert!(nginx.contains(upgrade), "nginx.conf: {upgrade}");
    }
    for volume in services["grafana"]["volumes"].as_array().unwrap() {
        let local = volume.as_str().unwrap().split(':').next().unwrap();
        assert!(
            root().join("deploy").join(local).exists(),
            "grafana mounts {local}"
        );
    }
}

#[test]
fn the_dockerfile_sets_only_what_kdhost_reads_and_checks_its_health_with_kdhost() {
    let known = names_the_host_reads();
    let dockerfile = read("deploy/Dockerfile");
    let env_block: String = dockerfile
        .split("\nENV ")
        .nth(1)
        .expect("an ENV block")
        .lines()
        .take_while(|l| l.trim_end().ends_with('\\') || l.contains('='))
        .collect::<Vec<_>>()
        .join(" ");
    let names: Vec<&str> = env_block
        .split_whitespace()
        .filter_map(|w| w.split_once('=').map(|(k, _)| k))
        .collect();
    assert!(
        names.contains(&"KD_LISTEN") && names.len() >= 5,
        "{names:?}"
    );
    for name in names {
        assert!(
            known.contains(name),
            "deploy/Dockerfile sets {name}, which kdhost never reads"
        );
    }
    assert!(dockerfile.contains("USER 10001:10001"));
    assert!(dockerfile.contains("EXPOSE 8080 9090"));
    assert!(dockerfile.contains(r#"CMD ["kdhost", "health"]"#));
    // The HEALTHCHECK's verb exists and fails when nothing answers.
    let out = Command::new(env!("CARGO_BIN_EXE_kdhost"))
        .args(["health", "--url", "http://127.0.0.1:9/healthz"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no answer"),
        "{out:?}"
    );
}

/// The `kd_*` names a PromQL text mentions.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    expr.split(|c: char| !word(c))
        .filter(|w| w.starts_with("kd_"))
        .map(str::to_string)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_dashboard_and_the_alerts_name_is_exported_by_a_live_host() {
    // What the panels and alerts ask for.
    let dashboard: Value =
        serde_json::from_str(&read("deploy/observability/grafana-dashboard.json")).unwrap();
    let mut wanted: BTreeMap<String, String> = BTreeMap::new();
    let mut panels = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            panels += 1;
            for name in metric_names(target["expr"].as_str().unwrap()) {
                wanted.insert(name, format!("panel {:?}", panel["title"]));
            }
        }
    }
    let alerts = &yaml_documents(&read("deploy/observability/alerts.yml"), "alerts.yml")[0];
    let mut rules = 0;
    for group in alerts["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            rules += 1;
            assert!(rule["labels"]["severity"].is_string(), "{rule}");
            assert!(rule["annotations"]["summary"].is_string(), "{rule}");
            for name in metric_names(rule["expr"].as_str().unwrap()) {
                wanted.insert(name, format!("alert {}", rule["alert"]));
            }
        }
    }
    assert!(
        panels >= 20 && rules >= 8,
        "{panels} panel queries, {rules} rules"
    );

    // What a live host exports (families without series yet are named by `# HELP`).
    let host = common::Host::start(common::Setup::default()).await;
    host.command("help", serde_json::json!([])).await;
    let text = host.metrics().await;
    // The image's HEALTHCHECK verb says yes to a live host, found as `serve` finds its
    // address (KD_LISTEN), or at a URL given.
    let listen = host.base.trim_start_matches("http://");
    for args in [
        vec!["health", "--ready"],
        vec!["health", "--url", &format!("{}/readyz", host.base)],
    ] {
        let health = tokio::process::Command::new(env!("CARGO_BIN_EXE_kdhost"))
            .args(&args)
            .env("KD_LISTEN", listen)
            .env_remove("KD_TLS_CERT")
            .output()
            .await
            .unwrap();
        assert!(health.status.success(), "{args:?}: {health:?}");
        assert!(
            String::from_utf8_lossy(&health.stdout).contains("/readyz: 200"),
            "{health:?}"
        );
    }
    host.stop().await;
    let mut exported = BTreeSet::new();
    for line in text.lines() {
        let name = match line.strip_prefix("# HELP ") {
            Some(rest) => rest.split(' ').next().unwrap(),
            None if line.starts_with('#') => continue,
            None => line.split(['{', ' ']).next().unwrap(),
        };
        exported.insert(name.to_string());
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| {
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            !exported.contains(name.as_str()) && !exported.contains(base)
        })
        .map(|(name, by)| format!("{name} (named by {by})"))
        .collect();
    assert!(missing.is_empty(), "not exported by kdhost: {missing:#?}");
    // The families that do have series carry values (the check above is not vacuous).
    assert!(
        text.contains("kd_interactions_total{result=\"accepted\",transport=\"http\"} 1"),
        "{text}"
    );
}

#[test]
fn the_compose_file_and_the_ci_workflow_follow_their_published_schemas() {
    for (schema, file) in [
        ("vendor.compose-spec", "deploy/compose.yaml"),
        ("vendor.github-workflows", ".github/workflows/ci.yml"),
    ] {
        run_tool(
            Command::new("check-jsonschema")
                .args(["--builtin-schema", schema])
                .arg(root().join(file)),
            &format!("{file} against {schema}"),
            "pip install -r testkit/python/requirements.txt",
        );
    }
}

#[test]
fn promtool_accepts_the_alert_rules_and_their_unit_tests_pass() {
    for args in [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts.test.yml"],
    ] {
        run_tool(
            Command::new("promtool")
                .args(args)
                .current_dir(root().join("deploy/observability")),
            &format!("promtool {}", args.join(" ")),
            "Debian's prometheus package: apt-get install -y prometheus",
        );
    }
}
