//! Who gets to run a guest now. One plugin cannot take every slot: each has its own
//! concurrency limit (`concurrency` in `config/plugins.json`, default 16); interactions
//! and events draw on separate capacity, so a burst of events never delays a person's
//! command; and the memory limits of the instances in flight add up to at most the host's
//! budget (`KD_PLUGIN_MEMORY_MB`). An interaction that finds no room is answered at once
//! with "busy" (Discord's 3 s would pass in a queue); an event waits, for a bounded time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::engine::MAX_CONCURRENT_INSTANCES;
use super::grants::Limits;

/// Instance slots for interactions (commands, buttons, autocomplete, modals).
pub const INTERACTIVE_SLOTS: usize = 96;
/// Instance slots for event handlers; the rest of the pool is kept for loading plugins.
pub const EVENT_SLOTS: usize = 24;
const _: () = assert!(INTERACTIVE_SLOTS + EVENT_SLOTS + 8 <= MAX_CONCURRENT_INSTANCES as usize);

/// The host's default memory budget for instances in flight, in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 2048;

/// What kind of call asks for room.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A person is waiting: fail fast.
    Interactive,
    /// A background event: wait at most this long.
    Event(Duration),
    /// Reading a manifest while loading: the pool's reserve, no waiting on the others.
    Load,
}

/// Why a call got no room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Busy(pub String);

/// Room for one call; released when dropped.
pub struct Admitted {
    _permits: Vec<OwnedSemaphorePermit>,
}

pub struct Admission {
    interactive: Arc<Semaphore>,
    events: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    memory_mib: u32,
    /// Plugin → (its limit, its gate); a changed limit gets a new gate.
    per_plugin: Mutex<HashMap<Arc<str>, PluginGate>>,
}

/// A plugin's concurrency limit and the gate that enforces it.
type PluginGate = (u32, Arc<Semaphore>);

impl Default for Admission {
    fn default() -> Self {
        Self::new(DEFAULT_MEMORY_MIB)
    }
}

impl Admission {
    pub fn new(memory_mib: u32) -> Self {
        let memory_mib = memory_mib.max(1);
        Self {
            interactive: Arc::new(Semaphore::new(INTERACTIVE_SLOTS)),
            events: Arc::new(Semaphore::new(EVENT_SLOTS)),
            memory: Arc::new(Semaphore::new(memory_mib as usize)),
            memory_mib,
            per_plugin: Mutex::new(HashMap::new()),
        }
    }

    fn plugin_gate(&self, plugin: &Arc<str>, limit: u32) -> Arc<Semaphore> {
        let limit = limit.max(1);
        let mut gates = self.per_plugin.lock().unwrap();
        match gates.get(plugin) {
            Some((l, g)) if *l == limit => g.clone(),
            _ => {
                let g = Arc::new(Semaphore::new(limit as usize));
                gates.insert(plugin.clone(), (limit, g.clone()));
                g
            }
        }
    }

    /// Room for a call of `plugin` with these limits, or why there is none.
    pub async fn admit(
        &self,
        plugin: &Arc<str>,
        limits: &Limits,
        class: Class,
    ) -> Result<Admitted, Busy> {
        if class == Class::Load {
            return Ok(Admitted { _permits: vec![] });
        }
        let mib = ((limits.memory_bytes >> 20) as u32).clamp(1, self.memory_mib);
        let gates = [
            (self.plugin_gate(plugin, limits.concurrency), 1, "plugin"),
            (
                match class {
                    Class::Event(_) => self.events.clone(),
                    _ => self.interactive.clone(),
                },
                1,
                "pool",
            ),
            (self.memory.clone(), mib, "memory"),
        ];
        let mut permits = Vec::with_capacity(3);
        for (gate, n, which) in gates {
            let got = match class {
                Class::Event(wait) => tokio::time::timeout(wait, gate.acquire_many_owned(n))
                    .await
                    .ok()
                    .and_then(Result::ok),
                _ => gate.try_acquire_many_owned(n).ok(),
            };
            match got {
                Some(p) => permits.push(p),
                None => {
                    crate::telemetry::METRICS
                        .plugin_busy
                        .with_label_values(&[plugin, which])
                        .inc();
                    return Err(Busy(match which {
                        "plugin" => format!(
                            "is busy ({} calls in flight, its limit); try again in a moment",
                            limits.concurrency
                        ),
                        "pool" => "could not start: the host is busy; try again in a moment".into(),
                        _ => "could not start: the host's plugin memory is in use; try again in a moment".into(),
                    }));
                }
            }
        }
        Ok(Admitted { _permits: permits })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: u32, memory_mib: usize) -> Limits {
        Limits {
            concurrency,
            memory_bytes: memory_mib << 20,
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn one_plugin_cannot_take_every_slot_and_memory_is_budgeted() {
        let a = Admission::new(100);
        let (greedy, other): (Arc<str>, Arc<str>) = ("greedy".into(), "other".into());
        let l = limits(2, 10);
        let held = [
            a.admit(&greedy, &l, Class::Interactive).await.unwrap(),
            a.admit(&greedy, &l, Class::Interactive).await.unwrap(),
        ];
        let busy = a
            .admit(&greedy, &l, Class::Interactive)
            .await
            .err()
            .unwrap();
        assert!(busy.0.contains("busy (2 calls in flight"), "{busy:?}");
        // Another plugin still gets in.
        let _o = a.admit(&other, &l, Class::Interactive).await.unwrap();
        drop(held);
        // Memory: 100 MiB of budget, 60 MiB calls: one at a time.
        let big = limits(16, 60);
        let first = a.admit(&other, &big, Class::Interactive).await.unwrap();
        let busy = a
            .admit(&greedy, &big, Class::Interactive)
            .await
            .err()
            .unwrap();
        assert!(busy.0.contains("memory"), "{busy:?}");
        // An event waits for room (bounded), and gets it when the call ends.
        let waiting = a.admit(&greedy, &big, Class::Event(Duration::from_secs(3600)));
        drop(first);
        waiting.await.unwrap();
    }
}
