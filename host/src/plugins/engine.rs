//! The one wasmtime `Engine`: pooling allocator, epoch interruption, and the ticker thread.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use anyhow::Result;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// One epoch tick. Guest compute is charged in whole ticks.
pub const TICK: Duration = Duration::from_millis(5);

/// Largest linear memory any plugin may be configured for (the pool's slot size).
pub const MAX_MEMORY_BYTES: usize = 1 << 30;

/// Instances that may be alive at once (one per call in flight).
pub const MAX_CONCURRENT_INSTANCES: u32 = 128;

/// Owns the engine and stops the ticker when dropped.
pub struct PluginEngine {
    pub engine: Engine,
    stop: Arc<AtomicBool>,
}

impl PluginEngine {
    pub fn new() -> Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_CONCURRENT_INSTANCES)
            .total_core_instances(MAX_CONCURRENT_INSTANCES * 4)
            .total_memories(MAX_CONCURRENT_INSTANCES * 2)
            .total_tables(MAX_CONCURRENT_INSTANCES * 4)
            .total_stacks(MAX_CONCURRENT_INSTANCES)
            .max_memory_size(MAX_MEMORY_BYTES)
            .max_memories_per_module(2)
            .max_tables_per_module(4)
            // Reset the first pages of a slot with memset and batch the rest of the decommits:
            // each `madvise` flushes every core's TLB, which dominated small calls.
            .linear_memory_keep_resident(64 << 10)
            .table_keep_resident(16 << 10)
            .decommit_batch_size(16);

        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            // Deep recursion in a guest is a trap, not a host crash.
            .max_wasm_stack(1 << 20)
            // Copy data segments instead of mapping a copy-on-write image: an mmap and its
            // teardown per call cost more than copying a plugin's small data (measured: trivial
            // call 17.3 -> 14.5 us, interaction throughput +25%).
            .memory_init_cow(false);
        let engine = Engine::new(&config)?;

        // The ticker runs on its own OS thread: a busy async runtime must not starve it.
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, flag) = (engine.weak(), stop.clone());
        thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    thread::sleep(TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self { engine, stop })
    }
}

impl Drop for PluginEngine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
