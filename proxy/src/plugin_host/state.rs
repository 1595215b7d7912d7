//! What each plugin instance's store holds, and the host functions it imports.

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Host, Level, TypesHost};
use crate::clock;

/// Per-instance state. The WASI context is empty on purpose: Rust's std makes
/// every wasm32-wasip2 guest import a few WASI interfaces, so they must be
/// linked, but with no files, sockets, environment or arguments behind them.
/// It is made on a plugin's first WASI call, which most plugins never make
/// (std calls WASI to print a panic): building one per connection seeded a
/// random generator and boxed half a dozen streams and clocks for nothing.
pub struct InstanceState {
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    pub(super) limits: StoreLimits,
    rng: ChaCha8Rng,
    plugin: std::sync::Arc<str>,
    conn_id: u64,
}

impl InstanceState {
    pub fn new(
        plugin: std::sync::Arc<str>,
        conn_id: u64,
        random_seed: u64,
        memory_limit: usize,
    ) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits: wasmtime::StoreLimitsBuilder::new()
                .memory_size(memory_limit)
                .instances(64)
                .trap_on_grow_failure(true)
                .build(),
            rng: ChaCha8Rng::seed_from_u64(random_seed),
            plugin,
            conn_id,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

impl TypesHost for InstanceState {}

impl Host for InstanceState {
    fn log(&mut self, level: Level, message: String) {
        let (plugin, conn) = (&*self.plugin, self.conn_id);
        match level {
            Level::Trace => tracing::trace!(plugin, conn, "{message}"),
            Level::Debug => tracing::debug!(plugin, conn, "{message}"),
            Level::Info => tracing::info!(plugin, conn, "{message}"),
            Level::Warn => tracing::warn!(plugin, conn, "{message}"),
            Level::Error => tracing::error!(plugin, conn, "{message}"),
        }
    }

    fn now_us(&mut self) -> u64 {
        clock::now_us()
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}
