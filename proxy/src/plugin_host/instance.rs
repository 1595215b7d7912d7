//! One plugin instance serving one direction of one connection.

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::{Attributes, Chunk, ConnInfo, Direction, Step, TcpPlugin};
use super::state::InstanceState;
use super::{Plugin, PluginError};

/// What a filter instance is told about its connection.
#[derive(Debug, Clone)]
pub struct ConnContext {
    pub id: u64,
    pub proxy: String,
    pub client: String,
    pub upstream: String,
    pub stream: Direction,
    /// Seeds the instance's `host.random` stream.
    pub random_seed: u64,
}

/// A live filter: its own store (memory, limits, random stream) and the
/// guest's `filter` resource. Dropping it frees the instance's pool slot.
pub struct Filter {
    plugin: Arc<Plugin>,
    store: Store<InstanceState>,
    bindings: TcpPlugin,
    handle: ResourceAny,
}

impl Plugin {
    /// Instantiates the plugin for one connection and direction.
    pub async fn open(
        self: &Arc<Self>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Filter, PluginError> {
        let mut store = self
            .host
            .store(self.name.clone(), conn.id, conn.random_seed);
        let bindings = self.instantiate(&mut store, "open").await?;
        let info = ConnInfo {
            id: conn.id,
            proxy: conn.proxy.clone(),
            client: conn.client.clone(),
            upstream: conn.upstream.clone(),
            stream: conn.stream,
        };
        let opened = bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_open(&mut store, &info, attributes)
            .await
            .map_err(|e| self.call_error("open", e))?;
        let handle = opened.map_err(|reason| PluginError::Refused {
            plugin: self.name.to_string(),
            reason,
        })?;
        Ok(Filter {
            plugin: self.clone(),
            store,
            bindings,
            handle,
        })
    }
}

impl Filter {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Steps to run before any data of this direction.
    pub async fn on_open(&mut self) -> Result<Vec<Step>, PluginError> {
        self.arm();
        let result = self
            .bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_on_open(&mut self.store, self.handle)
            .await;
        result.map_err(|e| self.plugin.call_error("on-open", e))
    }

    /// Steps for one chunk. The bytes are copied into the plugin only when
    /// its description asks for them.
    pub async fn on_data(
        &mut self,
        data: &[u8],
        arrived_us: u64,
    ) -> Result<Vec<Step>, PluginError> {
        self.arm();
        let chunk = Chunk {
            len: data.len() as u32,
            arrived_us,
            bytes: self.plugin.description.wants_bytes.then(|| data.to_vec()),
        };
        let result = self
            .bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_on_data(&mut self.store, self.handle, &chunk)
            .await;
        result.map_err(|e| self.plugin.call_error("on-data", e))
    }

    /// Steps to run when the sending side has finished.
    pub async fn on_close(&mut self) -> Result<Vec<Step>, PluginError> {
        self.arm();
        let result = self
            .bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_on_close(&mut self.store, self.handle)
            .await;
        result.map_err(|e| self.plugin.call_error("on-close", e))
    }

    /// Every call gets the full deadline, counted from its start.
    fn arm(&mut self) {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
    }
}
