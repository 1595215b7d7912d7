//! A loaded plugin: what it describes itself as, where it came from, and
//! its component linked against the host, ready to be instantiated.

use std::sync::Arc;

use rand::SeedableRng;
use wasmtime::Store;

use super::bindings::Attributes;
use super::description::{Description, PluginSource};
use super::engine::HostShared;
use super::error::PluginError;
use super::kind::PluginKind;
use super::state::{InstanceLimits, InstanceState, MemoryLimit};
use super::worlds::{Bindings, PluginPre};

/// A loaded plugin, ready to be instantiated.
pub struct Plugin {
    pub(super) name: Arc<str>,
    pub(super) description: Description,
    pub(super) source: PluginSource,
    pub(super) pre: PluginPre,
    pub(super) host: Arc<HostShared>,
    /// The host's limits, raised to what the plugin declares it needs.
    pub(super) limits: InstanceLimits,
}

impl Plugin {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &Description {
        &self.description
    }

    pub fn source(&self) -> &PluginSource {
        &self.source
    }

    pub fn kind(&self) -> PluginKind {
        self.description.kind
    }

    /// Asks the plugin whether `attributes` are acceptable. `Err` carries the
    /// plugin's own message, for the API caller.
    pub async fn validate(&self, attributes: &Attributes) -> Result<(), PluginError> {
        let verdict = self
            .check("validate", async |store, bindings| {
                bindings.validate(store, attributes).await
            })
            .await?;
        verdict.map_err(|reason| PluginError::Refused {
            plugin: self.name.to_string(),
            reason,
        })
    }

    /// Runs `call` in an instance of its own, from the host's reserve for
    /// checks (so checking works however many faults are in use), under the
    /// call deadline.
    pub(super) async fn check<T>(
        &self,
        what: &'static str,
        call: impl AsyncFnOnce(&mut Store<InstanceState>, &Bindings) -> wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        check_instance(&self.host, &self.pre, &self.name, self.limits, what, call)
            .await
            .map_err(|e| self.call_error(what, e))
    }

    /// The error of a failed call: a trap, the time limit or the memory
    /// limit, said in a line (the full error, with the guest's backtrace,
    /// goes to the debug log).
    pub(super) fn call_error(&self, what: &'static str, error: wasmtime::Error) -> PluginError {
        tracing::debug!(plugin = %self.name, what, "{error:?}");
        let reason = match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                format!("exceeded its time limit of {:?}", self.limits.call_deadline)
            }
            // A trap says "wasm trap: ..." itself.
            Some(trap) => trap.to_string(),
            None => match error.downcast_ref::<MemoryLimit>() {
                Some(limit) => limit.to_string(),
                None => error.root_cause().to_string(),
            },
        };
        PluginError::Call {
            plugin: self.name.to_string(),
            what,
            reason,
        }
    }
}

/// Instantiates `pre` in a store of its own (from the reserve for checks)
/// and runs `call` in it under `limits`.
pub(super) async fn check_instance<T>(
    host: &HostShared,
    pre: &PluginPre,
    name: &Arc<str>,
    limits: InstanceLimits,
    what: &'static str,
    call: impl AsyncFnOnce(&mut Store<InstanceState>, &Bindings) -> wasmtime::Result<T>,
) -> wasmtime::Result<T> {
    let _permit = host
        .checks
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let mut store = host.store(name.clone(), what.into(), 0, limits);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    host.arm(&mut store, 0, &mut rng);
    let result = async {
        let bindings = pre.instantiate(&mut store).await?;
        call(&mut store, &bindings).await
    }
    .await;
    store.data_mut().end_call(&mut rng);
    result
}
