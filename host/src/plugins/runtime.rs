//! One guest call: a fresh store from the plugin's `InstancePre`, a CPU budget enforced by
//! epoch ticks, an outer wall-clock timeout, and a memory cap. A failure ends this call only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Store, Trap, UpdateDeadline};

use super::admission::{Admission, Class};
use super::bindings::types::{
    CommandInput, CommandNote, ComponentInput, Event, Manifest, ModalInput, Response,
};
use super::bindings::{Plugin, PluginPre};
use super::caps::Capabilities;
use super::engine::PluginEngine;
use super::grants::PluginGrants;
use super::state::{CallScope, PluginState};
use crate::telemetry::METRICS;

/// What to call in the guest.
pub enum Call {
    Manifest,
    /// The optional `command-notes` export (contract 0.1.2); none when not exported.
    CommandNotes,
    Command(CommandInput),
    Component(ComponentInput),
    Autocomplete(CommandInput),
    Modal(ModalInput),
    Event(Event),
}

impl Call {
    pub fn entry(&self) -> &'static str {
        match self {
            Call::Manifest => "manifest",
            Call::CommandNotes => "command-notes",
            Call::Command(_) => "command",
            Call::Component(_) => "component",
            Call::Autocomplete(_) => "autocomplete",
            Call::Modal(_) => "modal",
            Call::Event(_) => "event",
        }
    }
}

/// What the guest returned.
pub enum Output {
    Manifest(Manifest),
    CommandNotes(Vec<CommandNote>),
    Response(Result<Response, String>),
    Event(Result<(), String>),
}

/// Why a call did not return.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("used up its CPU budget of {0} ms")]
    OutOfCpu(u64),
    #[error("did not finish within {0} ms")]
    Timeout(u64),
    #[error("exceeded its memory limit of {0} MiB")]
    OutOfMemory(usize),
    #[error("crashed: {0}")]
    Trap(String),
    #[error("could not be started: {0}")]
    Instantiate(String),
    /// No room now (its own limit, the pool, or the memory budget): see [`Admission`].
    #[error("{0}")]
    Busy(String),
}

impl CallError {
    fn outcome(&self) -> &'static str {
        match self {
            CallError::OutOfCpu(_) => "cpu",
            CallError::Timeout(_) => "timeout",
            CallError::OutOfMemory(_) => "memory",
            CallError::Trap(_) => "trap",
            CallError::Instantiate(_) => "instantiate",
            CallError::Busy(_) => "busy",
        }
    }
}

/// The engine, the linker with every capability, and the concurrency gate.
pub struct Runtime {
    pub engine: PluginEngine,
    pub linker: Linker<PluginState>,
    pub caps: Arc<Capabilities>,
    admission: Admission,
}

impl Runtime {
    pub fn new(caps: Arc<Capabilities>) -> anyhow::Result<Self> {
        let engine = PluginEngine::new()?;
        let mut linker = Linker::new(&engine.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Plugin::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
        Ok(Self {
            engine,
            linker,
            caps,
            admission: Admission::default(),
        })
    }

    /// The host-wide memory budget for instances in flight (`KD_PLUGIN_MEMORY_MB`).
    pub fn with_memory_budget(mut self, mib: u32) -> Self {
        self.admission = Admission::new(mib);
        self
    }

    /// Runs one call in a fresh instance.
    pub async fn call(
        &self,
        pre: &PluginPre<PluginState>,
        plugin: &Arc<str>,
        grants: &Arc<PluginGrants>,
        scope: CallScope,
        call: Call,
    ) -> Result<Output, CallError> {
        let entry = call.entry();
        let started = Instant::now();
        let class = match call {
            Call::Manifest => Class::Load,
            Call::Event(_) => Class::Event(Duration::from_millis(grants.limits.timeout_ms)),
            _ => Class::Interactive,
        };
        let _room = match self.admission.admit(plugin, &grants.limits, class).await {
            Ok(room) => room,
            Err(busy) => {
                METRICS
                    .plugin_calls
                    .with_label_values(&[plugin, entry, "busy"])
                    .inc();
                tracing::warn!(plugin = %plugin, entry, why = %busy.0, "plugin call refused: no room");
                return Err(CallError::Busy(busy.0));
            }
        };
        let state = PluginState::new(plugin.clone(), grants.clone(), scope, self.caps.clone());
        let mut store = Store::new(&self.engine.engine, state);
        store.limiter(|s| &mut s.memory);
        // Each tick the guest runs past its deadline costs one tick of budget; host I/O
        // happens outside wasm and so is never charged.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|mut ctx| {
            let s = ctx.data_mut();
            s.ticks += 1;
            if s.ticks > s.budget_ticks {
                s.out_of_cpu = true;
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let timeout = Duration::from_millis(grants.limits.timeout_ms);
        let result = tokio::time::timeout(timeout, run(pre, &mut store, call)).await;
        let result = match result {
            Err(_) => Err(CallError::Timeout(grants.limits.timeout_ms)),
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(classify(e, store.data())),
        };

        let outcome = match &result {
            Ok(Output::Response(Err(_)) | Output::Event(Err(_))) => "error",
            Ok(_) => "ok",
            Err(e) => e.outcome(),
        };
        METRICS
            .plugin_calls
            .with_label_values(&[plugin, entry, outcome])
            .inc();
        METRICS
            .plugin_latency
            .with_label_values(&[plugin, entry])
            .observe(started.elapsed().as_secs_f64());
        if let Err(e) = &result {
            match e {
                CallError::OutOfCpu(_) | CallError::Timeout(_) => METRICS
                    .plugin_deadline_kills
                    .with_label_values(&[plugin])
                    .inc(),
                CallError::OutOfMemory(_) => METRICS
                    .plugin_memory_kills
                    .with_label_values(&[plugin])
                    .inc(),
                CallError::Trap(_) => METRICS.plugin_traps.with_label_values(&[plugin]).inc(),
                CallError::Instantiate(_) | CallError::Busy(_) => {}
            }
            let stderr = String::from_utf8_lossy(&store.data().stderr.contents())
                .trim()
                .to_string();
            tracing::warn!(plugin = %plugin, entry, error = %e, guest_stderr = %stderr, "plugin call failed");
        }
        result
    }
}

async fn run(
    pre: &PluginPre<PluginState>,
    store: &mut Store<PluginState>,
    call: Call,
) -> wasmtime::Result<Output> {
    if let Call::CommandNotes = call {
        return command_notes(pre, store).await.map(Output::CommandNotes);
    }
    let p = pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| e.context(Instantiation))?;
    Ok(match call {
        Call::Manifest => Output::Manifest(p.call_manifest(&mut *store).await?),
        Call::Command(i) => Output::Response(p.call_handle_command(&mut *store, &i).await?),
        Call::Component(i) => Output::Response(p.call_handle_component(&mut *store, &i).await?),
        Call::Autocomplete(i) => {
            Output::Response(p.call_handle_autocomplete(&mut *store, &i).await?)
        }
        Call::Modal(i) => Output::Response(p.call_handle_modal(&mut *store, &i).await?),
        Call::Event(e) => Output::Event(p.call_handle_event(&mut *store, &e).await?),
        Call::CommandNotes => unreachable!("answered above"),
    })
}

/// The export the host's bindings leave out (older components lack it): looked up by name.
async fn command_notes(
    pre: &PluginPre<PluginState>,
    store: &mut Store<PluginState>,
) -> wasmtime::Result<Vec<CommandNote>> {
    let instance = pre
        .instance_pre()
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| e.context(Instantiation))?;
    let Some(f) = instance.get_func(&mut *store, COMMAND_NOTES) else {
        return Ok(Vec::new());
    };
    let f = f.typed::<(), (Vec<CommandNote>,)>(&*store)?;
    let (notes,) = f.call_async(&mut *store, ()).await?;
    Ok(notes)
}

/// The optional export's name in the contract (`world command-versions`).
pub const COMMAND_NOTES: &str = "command-notes";

/// Marks errors raised while instantiating.
#[derive(Debug)]
struct Instantiation;

impl std::fmt::Display for Instantiation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("instantiation failed")
    }
}

fn classify(e: wasmtime::Error, s: &PluginState) -> CallError {
    if s.out_of_cpu {
        return CallError::OutOfCpu(s.grants.limits.cpu_ms);
    }
    if s.memory.hit {
        return CallError::OutOfMemory(s.grants.limits.memory_bytes >> 20);
    }
    if e.downcast_ref::<Instantiation>().is_some() {
        return CallError::Instantiate(format!("{e:#}"));
    }
    let what = match e.downcast_ref::<Trap>() {
        Some(Trap::StackOverflow) => "stack overflow".to_string(),
        Some(Trap::UnreachableCodeReached) => "panicked".to_string(),
        Some(t) => t.to_string(),
        None => format!("{e:#}"),
    };
    CallError::Trap(what)
}
