//! Contract stability: components built against `kaltura-discord:plugin@0.1.0` and
//! `@0.1.1` (frozen in `testkit/contract-history/`) still load and run on this host, which
//! serves 0.1.2 (0.1.1 added `kv.increment`, 0.1.2 the kv user scope); components of the
//! current contract use the additions (the poll examples).

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_plugin_built_for_0_1_0_runs_on_a_0_1_2_host() {
    assert_eq!(kdhost::plugins::bindings::CONTRACT_VERSION, "0.1.2");
    let host = Host::start(Setup {
        plugins: vec![("old.wasm", "kd_fixture_contract_0_1_0")],
        plugins_json: Some(json!({"plugins": {"old-contract": {"grants": ["kv"]}}}).to_string()),
        ..Default::default()
    })
    .await;
    assert!(host.load_failures.is_empty(), "{:?}", host.load_failures);
    let set = host.app_registry.snapshot();
    assert_eq!(set.get("old-contract").unwrap().contract, "0.1.0");
    assert_eq!(
        host.command_text("old").await,
        "contract 0.1.0 plugin, use 1"
    );
    assert_eq!(
        host.command_text("old").await,
        "contract 0.1.0 plugin, use 2"
    );
    host.stop().await;
}

#[tokio::test]
async fn a_plugin_built_for_0_1_1_runs_on_a_0_1_2_host() {
    let host = Host::start(Setup {
        plugins: vec![("old11.wasm", "kd_fixture_contract_0_1_1")],
        plugins_json: Some(json!({"plugins": {"contract-011": {"grants": ["kv"]}}}).to_string()),
        ..Default::default()
    })
    .await;
    assert!(host.load_failures.is_empty(), "{:?}", host.load_failures);
    let set = host.app_registry.snapshot();
    assert_eq!(set.get("contract-011").unwrap().contract, "0.1.1");
    for n in 1..=2 {
        assert_eq!(
            host.command_text("old11").await,
            format!("contract 0.1.1 plugin, use {n}")
        );
    }
    host.stop().await;
}
