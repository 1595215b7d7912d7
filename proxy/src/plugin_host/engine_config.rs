//! The wasmtime settings every plugin is compiled with.
//!
//! This file is shared, by `#[path]`, between the build script (which
//! precompiles the built-in plugins) and the host (which loads them): a
//! precompiled plugin only loads into an engine whose code-generation settings
//! match the ones it was compiled with, so there must be exactly one place that
//! says what they are. It may use nothing but `wasmtime`.

/// Address space reserved for each plugin's linear memory. Plugins are
/// limited to less than this at run time (see `PluginLimits`); the reservation
/// only bounds what the limit can be raised to. Keeping it small lets tens of
/// thousands of plugin instances share one process.
pub const MEMORY_RESERVATION: u64 = 64 << 20;

/// Guard region after each linear memory.
pub const MEMORY_GUARD: u64 = 64 << 10;

/// Deepest native stack a plugin call may use.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// The code-generation settings. The host adds run-time settings (the pooling
/// allocator) on top; those do not affect compiled code.
pub fn codegen_config() -> wasmtime::Config {
    let mut config = wasmtime::Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .memory_reservation(MEMORY_RESERVATION)
        .memory_guard_size(MEMORY_GUARD)
        .memory_reservation_for_growth(0)
        .max_wasm_stack(MAX_WASM_STACK)
        .cranelift_opt_level(wasmtime::OptLevel::Speed)
        // Copy a plugin's (small) initial memory rather than map its image:
        // a mapping per instance would count against the kernel's limit of
        // 65,530 mappings per process, and a proxy holds thousands.
        .memory_init_cow(false);
    config
}
