//! Plugin instances: a [`Filter`] serves one direction of one connection
//! (TCP plugins), a [`Session`] one direction of one Postgres session
//! (Postgres plugins), an [`Exchange`] one HTTP request (HTTP plugins).

use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::{
    Action, Attributes, Chunk, ConnInfo, Direction, HttpPlugin, PgAction, PgMessage,
    PostgresPlugin, RequestHead, ResponseHead, Step, TcpPlugin,
};
use super::state::InstanceState;
use super::{Bindings, Plugin, PluginError};

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
        let Bindings::Tcp(bindings) = self.instantiate(&mut store, "open").await? else {
            return Err(self.wrong_kind("a TCP fault"));
        };
        let opened = bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_open(&mut store, &conn.info(), attributes)
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

impl ConnContext {
    fn info(&self) -> ConnInfo {
        ConnInfo {
            id: self.id,
            proxy: self.proxy.clone(),
            client: self.client.clone(),
            upstream: self.upstream.clone(),
            stream: self.stream,
        }
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

/// A live HTTP fault instance for one request: its own store and the
/// guest's `exchange` resource.
pub struct Exchange {
    plugin: Arc<Plugin>,
    store: Store<InstanceState>,
    bindings: HttpPlugin,
    handle: ResourceAny,
}

impl Plugin {
    /// Instantiates the plugin for one HTTP request. `conn.stream` is the
    /// stream the fault is attached to.
    pub async fn open_exchange(
        self: &Arc<Self>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Exchange, PluginError> {
        let mut store = self
            .host
            .store(self.name.clone(), conn.id, conn.random_seed);
        let Bindings::Http(bindings) = self.instantiate(&mut store, "open").await? else {
            return Err(self.wrong_kind("an HTTP fault"));
        };
        let opened = bindings
            .faultgate_plugin_http()
            .exchange()
            .call_open(&mut store, &conn.info(), attributes)
            .await
            .map_err(|e| self.call_error("open", e))?;
        let handle = opened.map_err(|reason| PluginError::Refused {
            plugin: self.name.to_string(),
            reason,
        })?;
        Ok(Exchange {
            plugin: self.clone(),
            store,
            bindings,
            handle,
        })
    }

    fn wrong_kind(&self, wanted: &str) -> PluginError {
        PluginError::Call {
            plugin: self.name.to_string(),
            what: "open",
            reason: format!("used as {wanted}, but it is a {:?} plugin", self.kind()),
        }
    }
}

impl Exchange {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Actions before the request goes upstream.
    pub async fn on_request(&mut self, head: &RequestHead) -> Result<Vec<Action>, PluginError> {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
        let result = self
            .bindings
            .faultgate_plugin_http()
            .exchange()
            .call_on_request(&mut self.store, self.handle, head)
            .await;
        result.map_err(|e| self.plugin.call_error("on-request", e))
    }

    /// Actions before the response goes back.
    pub async fn on_response(&mut self, head: &ResponseHead) -> Result<Vec<Action>, PluginError> {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
        let result = self
            .bindings
            .faultgate_plugin_http()
            .exchange()
            .call_on_response(&mut self.store, self.handle, head)
            .await;
        result.map_err(|e| self.plugin.call_error("on-response", e))
    }
}

/// A live Postgres fault instance for one direction of one connection.
pub struct Session {
    plugin: Arc<Plugin>,
    store: Store<InstanceState>,
    bindings: PostgresPlugin,
    handle: ResourceAny,
}

impl Plugin {
    /// Instantiates the plugin for one direction of a Postgres connection.
    pub async fn open_session(
        self: &Arc<Self>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Session, PluginError> {
        let mut store = self
            .host
            .store(self.name.clone(), conn.id, conn.random_seed);
        let Bindings::Postgres(bindings) = self.instantiate(&mut store, "open").await? else {
            return Err(self.wrong_kind("a Postgres fault"));
        };
        let opened = bindings
            .faultgate_plugin_postgres()
            .session()
            .call_open(&mut store, &conn.info(), attributes)
            .await
            .map_err(|e| self.call_error("open", e))?;
        let handle = opened.map_err(|reason| PluginError::Refused {
            plugin: self.name.to_string(),
            reason,
        })?;
        Ok(Session {
            plugin: self.clone(),
            store,
            bindings,
            handle,
        })
    }
}

impl Session {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    pub async fn on_open(&mut self) -> Result<Vec<PgAction>, PluginError> {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
        let result = self
            .bindings
            .faultgate_plugin_postgres()
            .session()
            .call_on_open(&mut self.store, self.handle)
            .await;
        result.map_err(|e| self.plugin.call_error("on-open", e))
    }

    /// Actions for one whole message. Its bytes are copied into the plugin
    /// only when its description asks for them.
    pub async fn on_message(
        &mut self,
        tag: u8,
        message: &[u8],
        arrived_us: u64,
    ) -> Result<Vec<PgAction>, PluginError> {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
        let message = PgMessage {
            tag,
            len: message.len() as u32,
            arrived_us,
            bytes: self
                .plugin
                .description
                .wants_bytes
                .then(|| message.to_vec()),
        };
        let result = self
            .bindings
            .faultgate_plugin_postgres()
            .session()
            .call_on_message(&mut self.store, self.handle, &message)
            .await;
        result.map_err(|e| self.plugin.call_error("on-message", e))
    }

    pub async fn on_close(&mut self) -> Result<Vec<PgAction>, PluginError> {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
        let result = self
            .bindings
            .faultgate_plugin_postgres()
            .session()
            .call_on_close(&mut self.store, self.handle)
            .await;
        result.map_err(|e| self.plugin.call_error("on-close", e))
    }
}
