//! What a guest's `Store` holds during one call.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::types::{CapError, Capability};
use super::caps::Capabilities;
use super::grants::{CapabilityName, PluginGrants};
use crate::telemetry::METRICS;

/// The contract's shared `types` interface has no functions of its own.
impl super::bindings::types::Host for PluginState {}

/// Who and where the call is for; capabilities are scoped by it.
#[derive(Debug, Clone, Default)]
pub struct CallScope {
    pub guild_id: Option<String>,
    pub channel_id: Option<String>,
    pub user_id: Option<String>,
    pub interaction_id: Option<String>,
    /// The invoker's display name, role ids and permission bitset, as Discord sent them
    /// (the host derives Kaltura roles from these, never from the guest).
    pub user_name: String,
    pub roles: Vec<String>,
    pub permissions: Option<String>,
}

impl From<&crate::discord::model::Interaction> for CallScope {
    /// Who invoked an interaction, where: what a guest call for it is scoped to.
    fn from(ix: &crate::discord::model::Interaction) -> Self {
        Self {
            guild_id: ix.guild_id.clone(),
            channel_id: ix.channel_id.clone(),
            user_id: ix.invoker().map(|u| u.id.clone()),
            interaction_id: Some(ix.id.clone()),
            user_name: ix.display_name(),
            roles: ix.roles().to_vec(),
            permissions: ix.permissions().map(String::from),
        }
    }
}

impl CallScope {
    /// The kv namespace: the guild; outside guilds (DMs) the user, so one person's direct
    /// messages never see another's data.
    pub fn kv_scope(&self) -> String {
        match (&self.guild_id, &self.user_id) {
            (Some(g), _) => g.clone(),
            (None, Some(u)) => format!("dm:{u}"),
            (None, None) => "global".into(),
        }
    }
}

/// Caps linear memory growth per store and remembers that the cap was hit.
pub struct MemoryCap {
    pub max_bytes: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The store data of one guest call.
pub struct PluginState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub memory: MemoryCap,
    pub plugin: Arc<str>,
    pub grants: Arc<PluginGrants>,
    pub scope: CallScope,
    pub caps: Arc<Capabilities>,
    /// Epoch ticks the guest has run for; the budget is checked against it.
    pub ticks: u64,
    pub budget_ticks: u64,
    pub out_of_cpu: bool,
    /// What the guest wrote to stderr (panic messages), capped.
    pub stderr: MemoryOutputPipe,
    /// Lines logged through the `log` capability in this call.
    pub log_lines: u32,
    /// The invoker resolved for Kaltura, once per call.
    pub kaltura_caller: Option<crate::kaltura::Caller>,
}

impl PluginState {
    pub fn new(
        plugin: Arc<str>,
        grants: Arc<PluginGrants>,
        scope: CallScope,
        caps: Arc<Capabilities>,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(4096);
        // No files, no environment, no network: the guest reaches the world only through
        // the contract's capabilities.
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        let memory = MemoryCap {
            max_bytes: grants.limits.memory_bytes,
            hit: false,
        };
        let tick_ms = super::engine::TICK.as_millis() as u64;
        let budget_ticks = grants.limits.cpu_ms.div_ceil(tick_ms).max(1);
        Self {
            wasi,
            table: ResourceTable::new(),
            memory,
            plugin,
            grants,
            scope,
            caps,
            ticks: 0,
            budget_ticks,
            out_of_cpu: false,
            stderr,
            log_lines: 0,
            kaltura_caller: None,
        }
    }

    /// Checks the operator's grant; a denial is counted and explained to the guest.
    pub fn require(&self, cap: Capability) -> Result<(), CapError> {
        if self.grants.allows(cap) {
            return Ok(());
        }
        let name = CapabilityName::from(cap);
        METRICS
            .capability_denied
            .with_label_values(&[&*self.plugin, name.as_str()])
            .inc();
        tracing::warn!(plugin = %self.plugin, capability = %name, "capability call denied: not granted");
        Err(CapError::Denied(format!(
            "the `{name}` capability is not granted to plugin `{}` (operator: add it to plugins.{}.grants in config/plugins.json)",
            self.plugin, self.plugin
        )))
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
