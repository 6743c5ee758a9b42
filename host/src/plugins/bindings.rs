//! Host-side bindings of the contract in `wit/` (world `host-view`: the plugin world
//! without its optional exports, which [`super::runtime`] looks up by name).

wasmtime::component::bindgen!({
    path: "../wit",
    world: "host-view",
    // `tracing`: each host call is a TRACE span + events (arguments, result) that
    // `kdhost plugin test` shows authors; off (one cached check) at the usual levels.
    imports: { default: async | tracing | verbose_tracing },
    exports: { default: async },
});

pub use kaltura_discord::plugin::types;

/// The contract package every plugin import is checked against.
pub const CONTRACT_PACKAGE: &str = "kaltura-discord:plugin";
/// The contract version this host implements.
pub const CONTRACT_VERSION: &str = "0.1.2";

/// The contract's WIT files, for plugin projects in other languages (`kdhost plugin new`
/// and `plugin build` write them to `wit/deps/kaltura-discord-plugin/`).
pub const CONTRACT_FILES: [(&str, &str); 3] = [
    ("types.wit", include_str!("../../../wit/types.wit")),
    (
        "capabilities.wit",
        include_str!("../../../wit/capabilities.wit"),
    ),
    ("world.wit", include_str!("../../../wit/world.wit")),
];

/// The world's instance and pre-instance under the names the host uses.
pub use HostView as Plugin;
pub use HostViewPre as PluginPre;
