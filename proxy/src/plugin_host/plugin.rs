//! A loaded plugin: what it describes itself as, where it came from, and
//! its component linked against the host, ready to be instantiated.

use std::sync::Arc;

use wasmtime::Store;

use super::bindings::Attributes;
use super::description::{Description, PluginKind, PluginSource};
use super::engine::HostShared;
use super::error::PluginError;
use super::state::InstanceState;
use super::worlds::{Bindings, PluginPre};

/// A loaded plugin, ready to be instantiated.
pub struct Plugin {
    pub(super) name: Arc<str>,
    pub(super) description: Description,
    pub(super) source: PluginSource,
    pub(super) pre: PluginPre,
    pub(super) host: Arc<HostShared>,
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
        let mut store = self.host.store(self.name.clone(), 0, 0);
        let bindings = self.instantiate(&mut store, "validate").await?;
        let verdict = bindings
            .validate(&mut store, attributes)
            .await
            .map_err(|e| self.call_error("validate", e))?;
        verdict.map_err(|reason| PluginError::Refused {
            plugin: self.name.to_string(),
            reason,
        })
    }

    pub(super) async fn instantiate(
        &self,
        store: &mut Store<InstanceState>,
        what: &'static str,
    ) -> Result<Bindings, PluginError> {
        self.pre
            .instantiate(store)
            .await
            .map_err(|e| self.call_error(what, e))
    }

    pub(super) fn call_error(&self, what: &'static str, error: wasmtime::Error) -> PluginError {
        let reason = match error.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => format!(
                "exceeded its time limit of {:?}",
                self.host.limits.call_deadline
            ),
            _ => format!("{error:#}"),
        };
        PluginError::Call {
            plugin: self.name.to_string(),
            what,
            reason,
        }
    }
}
