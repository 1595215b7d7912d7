//! The wasmtime engine every plugin runs in: its instance pool, the epoch
//! ticker that enforces call deadlines, and the store each instance gets.

use std::sync::Arc;
use std::time::Duration;

use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use super::engine_config;
use super::error::PluginError;
use super::state::InstanceState;

/// How often the epoch advances. Call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Touched linear memory a freed instance slot keeps (zeroed) instead of
/// giving back to the kernel. A built-in plugin touches ~40 KiB.
const MEMORY_KEEP_RESIDENT: usize = 128 << 10;

/// The same for the slot's tables, which are a page or two.
const TABLE_KEEP_RESIDENT: usize = 16 << 10;

/// Limits every plugin call runs under.
#[derive(Debug, Clone, Copy)]
pub struct PluginLimits {
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Wall time one call may take before it is interrupted.
    pub call_deadline: Duration,
    /// Plugin instances alive at once, across all connections.
    pub max_instances: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 16 << 20,
            call_deadline: Duration::from_millis(100),
            max_instances: 10_000,
        }
    }
}

/// The engine and the limits, shared by the host and every plugin.
pub(super) struct HostShared {
    pub engine: Engine,
    pub limits: PluginLimits,
    /// `limits.call_deadline` in epoch ticks.
    pub deadline_ticks: u64,
}

impl HostShared {
    /// Makes the engine with its instance pool, and starts the epoch ticker.
    pub fn new(limits: PluginLimits) -> Result<Arc<Self>, PluginError> {
        let mut config = engine_config::codegen_config();
        let mut pool = PoolingAllocationConfig::new();
        // A Rust wasm32-wasip2 component holds a few core instances and
        // tables around its one memory.
        pool.total_component_instances(limits.max_instances)
            .total_memories(limits.max_instances)
            .total_core_instances(limits.max_instances.saturating_mul(4))
            .total_tables(limits.max_instances.saturating_mul(4))
            .max_memory_size(engine_config::MEMORY_RESERVATION as usize)
            // Every live store keeps the fiber stack of its async calls.
            .total_stacks(limits.max_instances)
            .max_unused_warm_slots(256)
            // Resetting a freed slot with madvise costs a TLB shootdown on
            // every core, the largest cost of a short faulted connection.
            // Instead the pages an instance touched (found with Linux's
            // PAGEMAP_SCAN where the kernel has it) are zeroed in place, up
            // to these sizes; only what lies beyond is given back.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PluginError::Invalid {
            source_name: "engine".into(),
            reason: format!("{e:#}"),
        })?;
        start_epoch_ticker(engine.weak());
        let tick = EPOCH_TICK.as_micros().max(1);
        Ok(Arc::new(Self {
            engine,
            limits,
            deadline_ticks: (limits.call_deadline.as_micros().div_ceil(tick) as u64).max(1),
        }))
    }

    pub fn store(&self, plugin: Arc<str>, conn_id: u64, seed: u64) -> Store<InstanceState> {
        let state = InstanceState::new(plugin, conn_id, seed, self.limits.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        store
    }
}

/// Advances the engine's epoch for as long as the engine lives, so that every
/// plugin call's deadline is enforced without the call having to check a clock.
fn start_epoch_ticker(engine: wasmtime::EngineWeak) {
    std::thread::Builder::new()
        .name("faultgate-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}
