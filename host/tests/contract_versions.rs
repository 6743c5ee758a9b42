//! Contract stability: a component built against `kaltura-discord:plugin@0.1.0` (frozen in
//! `testkit/contract-history/0.1.0`) still loads and runs on this host, which serves 0.1.1
//! (0.1.1 added `kv.increment`); components of the current contract use the addition.

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn a_plugin_built_for_0_1_0_runs_on_a_0_1_1_host() {
    assert_eq!(kdhost::plugins::bindings::CONTRACT_VERSION, "0.1.1");
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
