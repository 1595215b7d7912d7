//! The wasmtime engine every plugin runs in: its instance pool, the epoch
//! ticker that enforces call deadlines, and the store each instance gets.

use std::sync::Arc;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use tokio::sync::Semaphore;
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

use super::engine_config;
use super::error::PluginError;
use super::state::{InstanceLimits, InstanceState};

/// How often the epoch advances. Call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(2);

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
    /// Plugin instances serving faults at once: one per attached toxic
    /// (and per plugin version still in use by open connections).
    pub max_instances: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 16 << 20,
            call_deadline: Duration::from_millis(100),
            max_instances: 1_000,
        }
    }
}

impl PluginLimits {
    /// What an instance of a plugin runs under: these limits, raised to
    /// what the plugin declares it needs (`@memory-mib`, `@deadline-ms`;
    /// see `declarations.rs`, which bounds what may be declared).
    pub(super) fn raised_to(
        &self,
        memory_mib: Option<u64>,
        deadline_ms: Option<u64>,
    ) -> InstanceLimits {
        InstanceLimits {
            memory_bytes: self
                .memory_bytes
                .max(memory_mib.map_or(0, |mib| (mib as usize) << 20)),
            call_deadline: self
                .call_deadline
                .max(deadline_ms.map_or(Duration::ZERO, Duration::from_millis)),
        }
    }
}

/// Instances the host keeps for describing plugins and checking attributes,
/// beside those that serve faults, so the control API can always check a
/// plugin or a toxic, however many faults are in use.
const CHECK_RESERVE: u32 = 8;

/// The engine and the limits, shared by the host and every plugin.
pub(super) struct HostShared {
    pub engine: Engine,
    pub limits: PluginLimits,
    /// One permit per instance that serves a fault.
    pub fault_instances: Arc<Semaphore>,
    /// One permit per instance made to describe a plugin or check
    /// attributes (the reserve).
    pub checks: Semaphore,
}

impl HostShared {
    /// Makes the engine with its instance pool, and starts the epoch ticker.
    pub fn new(limits: PluginLimits) -> Result<Arc<Self>, PluginError> {
        let mut config = engine_config::codegen_config();
        let mut pool = PoolingAllocationConfig::new();
        // A Rust wasm32-wasip2 component holds a few core instances and
        // tables around its one memory.
        let slots = limits.max_instances.saturating_add(CHECK_RESERVE);
        pool.total_component_instances(slots)
            .total_memories(slots)
            .total_core_instances(slots.saturating_mul(4))
            .total_tables(slots.saturating_mul(4))
            .max_memory_size(engine_config::MEMORY_RESERVATION as usize)
            // Every live store keeps the fiber stack of its async calls.
            .total_stacks(slots)
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
        Ok(Arc::new(Self {
            engine,
            limits,
            fault_instances: Arc::new(Semaphore::new(limits.max_instances as usize)),
            checks: Semaphore::new(CHECK_RESERVE as usize),
        }))
    }

    /// A fresh store for an instance of `plugin` serving `toxic`, under
    /// `limits`. Every epoch tick while it runs lets other tasks run, and
    /// interrupts a call past its deadline (see [`InstanceState::on_tick`]).
    pub fn store(
        &self,
        plugin: Arc<str>,
        toxic: Arc<str>,
        seed: u64,
        limits: InstanceLimits,
    ) -> Store<InstanceState> {
        let state = InstanceState::new(plugin, toxic, seed, limits);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state);
        store.epoch_deadline_callback(|context| Ok(context.data().on_tick()));
        store
    }

    /// Makes the next call into `store` run under its call deadline, for
    /// connection `conn_id` with its random stream `rng`.
    pub fn arm(&self, store: &mut Store<InstanceState>, conn_id: u64, rng: &mut ChaCha8Rng) {
        store.data_mut().begin_call(conn_id, rng);
        store.set_epoch_deadline(1);
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
