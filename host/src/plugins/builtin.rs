//! First-party plugins compiled into the binary by `build.rs` (from `plugins/*`).

include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// (file name, component bytes) of every built-in plugin.
pub fn all() -> &'static [(&'static str, &'static [u8])] {
    BUILTIN_PLUGINS
}

/// Directory of the guest crates built by `build.rs` (plugins, examples, test fixtures).
pub const GUEST_WASM_DIR: &str = env!("KD_GUEST_WASM_DIR");
