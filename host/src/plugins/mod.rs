//! WebAssembly plugins: the engine, the sandbox, one module per capability, the registry
//! and hot reload.

pub mod admission;
pub mod bindings;
pub mod builtin;
pub mod caps;
pub mod egress;
pub mod engine;
pub mod grants;
pub mod loader;
pub mod manifest;
pub mod registry;
pub mod runtime;
pub mod state;
pub mod trace;

pub use loader::{LoadedPlugin, Source};
pub use registry::{PluginSet, Registry};
pub use runtime::{Call, CallError, Output, Runtime};
pub use state::CallScope;
