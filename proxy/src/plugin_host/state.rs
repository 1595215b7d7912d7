//! What a plugin instance's store holds, and the host functions it imports.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{Direction, Host, HttpHost, Level, TypesHost};
use super::guest_output::{Channel, GuestOutput};
use super::http_host::{HttpEdit, HttpEdits};
use super::requests::ConnRequests;
use crate::clock;

/// The limits one instance runs under.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimits {
    /// Linear memory the instance may grow to (the fault's and every
    /// connection's state together).
    pub memory_bytes: usize,
    /// Wall time one call (and the instantiation) may take before it is
    /// interrupted.
    pub call_deadline: Duration,
}

/// Per-instance state. One instance serves every connection of a toxic, so
/// what a call needs to know of its connection (its id for the log, its
/// random stream) is lent to the store for the length of the call.
///
/// The WASI context is empty on purpose: Rust's std makes every
/// wasm32-wasip2 guest import a few WASI interfaces, so they must be linked,
/// but with no files, sockets, environment or arguments behind them. It is
/// made on a plugin's first WASI call, which most plugins never make (std
/// calls WASI to print a panic). What a plugin writes to its standard
/// output and error goes to the log (`guest_output`): a language runtime's
/// last words before a trap, such as a Python traceback.
pub struct InstanceState {
    wasi: Option<WasiCtx>,
    table: ResourceTable,
    /// Its memory limit and call deadline.
    limits: InstanceLimits,
    plugin: Arc<str>,
    /// The toxic the instance serves ("" while a plugin is described or
    /// validates attributes).
    toxic: Arc<str>,
    /// The connection the running call is for (0: the fault itself).
    conn_id: u64,
    /// The random stream of the connection the running call is for.
    rng: ChaCha8Rng,
    /// When the running call started, and how long it may take.
    call: Option<(Instant, Duration)>,
    /// The requests of the connection the running call is for, and the
    /// direction it serves: where `delay-connect` and `half-close` go.
    requests: Option<(Arc<ConnRequests>, Direction)>,
    /// What the running HTTP hook asked of the host (`http-host`).
    http_edits: HttpEdits,
}

impl InstanceState {
    pub fn new(
        plugin: Arc<str>,
        toxic: Arc<str>,
        random_seed: u64,
        limits: InstanceLimits,
    ) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            limits,
            plugin,
            toxic,
            conn_id: 0,
            rng: ChaCha8Rng::seed_from_u64(random_seed),
            call: None,
            requests: None,
            http_edits: HttpEdits::default(),
        }
    }

    /// A call for connection `conn_id` starts; its random stream is lent to
    /// the store until [`InstanceState::end_call`] gives it back.
    pub fn begin_call(&mut self, conn_id: u64, rng: &mut ChaCha8Rng) {
        self.conn_id = conn_id;
        std::mem::swap(&mut self.rng, rng);
        self.call = Some((Instant::now(), self.limits.call_deadline));
        self.http_edits = HttpEdits::default();
    }

    /// What the running call has asked of the host so far (`http-host`).
    pub(super) fn http_edits(&mut self) -> &mut HttpEdits {
        &mut self.http_edits
    }

    /// Takes what the call that just ran asked of the host.
    pub(super) fn take_http_edits(&mut self) -> HttpEdits {
        std::mem::take(&mut self.http_edits)
    }

    /// The call about to start serves this connection direction, whose
    /// requests the host functions record (until [`InstanceState::end_call`]).
    pub fn lend_requests(&mut self, requests: Option<(Arc<ConnRequests>, Direction)>) {
        self.requests = requests;
    }

    /// The call is over: the connection's stream goes back to it.
    pub fn end_call(&mut self, rng: &mut ChaCha8Rng) {
        std::mem::swap(&mut self.rng, rng);
        self.conn_id = 0;
        self.call = None;
        self.requests = None;
    }

    /// Called at every epoch tick while the instance runs: the call goes on
    /// after letting other tasks run, or, past its deadline, is interrupted.
    /// Yielding keeps a plugin that loops from holding a runtime thread for
    /// its whole deadline.
    pub fn on_tick(&self) -> UpdateDeadline {
        match self.call {
            Some((started, deadline)) if started.elapsed() >= deadline => UpdateDeadline::Interrupt,
            _ => UpdateDeadline::Yield(1),
        }
    }
}

/// A plugin asked for more memory than its limit: the call fails with
/// this, and the instance ends.
#[derive(Debug, thiserror::Error)]
#[error("grew past its memory limit of {} MiB (it asked for {} MiB)", .limit >> 20, .wanted.div_ceil(1 << 20))]
pub struct MemoryLimit {
    pub limit: usize,
    pub wanted: usize,
}

impl ResourceLimiter for InstanceState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            return Err(MemoryLimit {
                limit: self.limits.memory_bytes,
                wanted: desired,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }

    /// A Rust wasm32-wasip2 component holds a few core instances.
    fn instances(&self) -> usize {
        64
    }

    fn tables(&self) -> usize {
        64
    }

    fn memories(&self) -> usize {
        8
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let (plugin, toxic) = (&self.plugin, &self.toxic);
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| {
                let output = |channel| GuestOutput::new(channel, plugin.clone(), toxic.clone());
                WasiCtx::builder()
                    .stdout(output(Channel::Stdout))
                    .stderr(output(Channel::Stderr))
                    .build()
            }),
            table: &mut self.table,
        }
    }
}

impl TypesHost for InstanceState {}

impl Host for InstanceState {
    fn log(&mut self, level: Level, message: String) {
        let (plugin, toxic, conn) = (&*self.plugin, &*self.toxic, self.conn_id);
        match level {
            Level::Trace => tracing::trace!(plugin, toxic, conn, "{message}"),
            Level::Debug => tracing::debug!(plugin, toxic, conn, "{message}"),
            Level::Info => tracing::info!(plugin, toxic, conn, "{message}"),
            Level::Warn => tracing::warn!(plugin, toxic, conn, "{message}"),
            Level::Error => tracing::error!(plugin, toxic, conn, "{message}"),
        }
    }

    fn now_us(&mut self) -> u64 {
        clock::now_us()
    }

    fn random(&mut self) -> u64 {
        self.rng.next_u64()
    }

    fn delay_connect(&mut self, micros: u64) {
        if let Some((requests, _)) = &self.requests {
            requests.delay_connect(micros);
        }
    }

    fn half_close(&mut self) {
        if let Some((requests, direction)) = &self.requests {
            requests.half_close(*direction);
        }
    }
}

impl HttpHost for InstanceState {
    fn set_response_status(&mut self, status: u16) {
        self.http_edits().record(HttpEdit::Status(status));
    }

    fn set_response_header(&mut self, name: String, value: String) {
        self.http_edits()
            .record(HttpEdit::SetHeader { name, value });
    }

    fn remove_response_header(&mut self, name: String) {
        self.http_edits().record(HttpEdit::RemoveHeader(name));
    }

    fn replace_response_body(&mut self, body: Vec<u8>) {
        self.http_edits().record(HttpEdit::Body(body));
    }

    fn repeat_request(&mut self, count: u32, answer: u32) {
        self.http_edits().record(HttpEdit::Repeat { count, answer });
    }
}
