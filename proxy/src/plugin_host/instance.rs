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

/// What an instance is told about its connection.
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

/// A live instance: its own store (memory, limits, random stream), the
/// world's exports, and the guest's resource (`filter`, `session` or
/// `exchange`). Dropping it frees the instance's pool slot.
pub struct Live<B> {
    plugin: Arc<Plugin>,
    store: Store<InstanceState>,
    bindings: B,
    handle: ResourceAny,
}

/// A TCP plugin's instance for one connection direction.
pub type Filter = Live<TcpPlugin>;
/// A Postgres plugin's instance for one connection direction.
pub type Session = Live<PostgresPlugin>;
/// An HTTP plugin's instance for one request.
pub type Exchange = Live<HttpPlugin>;

impl<B> Live<B> {
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Every call gets the full deadline, counted from its start.
    fn arm(&mut self) -> (&mut Store<InstanceState>, &B, ResourceAny) {
        self.store
            .set_epoch_deadline(self.plugin.host.deadline_ticks);
        (&mut self.store, &self.bindings, self.handle)
    }

    /// A call's result, or the error naming the plugin and the hook.
    fn called<T>(&self, hook: &'static str, result: wasmtime::Result<T>) -> Result<T, PluginError> {
        result.map_err(|e| self.plugin.call_error(hook, e))
    }
}

impl Plugin {
    /// A fresh store and instance for `conn`, with the world's exports
    /// picked out by `world` (`None`: the plugin is of another kind).
    async fn start<B>(
        &self,
        conn: &ConnContext,
        world: fn(Bindings) -> Option<B>,
        wanted: &str,
    ) -> Result<(Store<InstanceState>, B), PluginError> {
        let mut store = self
            .host
            .store(self.name.clone(), conn.id, conn.random_seed);
        let bindings = self.instantiate(&mut store, "open").await?;
        let bindings = world(bindings).ok_or_else(|| PluginError::Call {
            plugin: self.name.to_string(),
            what: "open",
            reason: format!("used as {wanted}, but it is a {:?} plugin", self.kind()),
        })?;
        Ok((store, bindings))
    }

    /// The live instance, once the guest's `open` answered.
    fn opened<B>(
        self: &Arc<Self>,
        store: Store<InstanceState>,
        bindings: B,
        opened: wasmtime::Result<Result<ResourceAny, String>>,
    ) -> Result<Live<B>, PluginError> {
        let opened = opened.map_err(|e| self.call_error("open", e))?;
        let handle = opened.map_err(|reason| PluginError::Refused {
            plugin: self.name.to_string(),
            reason,
        })?;
        Ok(Live {
            plugin: self.clone(),
            store,
            bindings,
            handle,
        })
    }

    /// Instantiates a TCP plugin for one connection and direction.
    pub async fn open(
        self: &Arc<Self>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Filter, PluginError> {
        let world = |b| match b {
            Bindings::Tcp(b) => Some(b),
            _ => None,
        };
        let (mut store, bindings) = self.start(conn, world, "a TCP fault").await?;
        let opened = bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_open(&mut store, &conn.info(), attributes)
            .await;
        self.opened(store, bindings, opened)
    }

    /// Instantiates a Postgres plugin for one direction of a connection.
    pub async fn open_session(
        self: &Arc<Self>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Session, PluginError> {
        let world = |b| match b {
            Bindings::Postgres(b) => Some(b),
            _ => None,
        };
        let (mut store, bindings) = self.start(conn, world, "a Postgres fault").await?;
        let opened = bindings
            .faultgate_plugin_postgres()
            .session()
            .call_open(&mut store, &conn.info(), attributes)
            .await;
        self.opened(store, bindings, opened)
    }

    /// Instantiates an HTTP plugin for one request. `conn.stream` is the
    /// stream the fault is attached to.
    pub async fn open_exchange(
        self: &Arc<Self>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Exchange, PluginError> {
        let world = |b| match b {
            Bindings::Http(b) => Some(b),
            _ => None,
        };
        let (mut store, bindings) = self.start(conn, world, "an HTTP fault").await?;
        let opened = bindings
            .faultgate_plugin_http()
            .exchange()
            .call_open(&mut store, &conn.info(), attributes)
            .await;
        self.opened(store, bindings, opened)
    }
}

impl Filter {
    /// Steps to run before any data of this direction.
    pub async fn on_open(&mut self) -> Result<Vec<Step>, PluginError> {
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_on_open(store, handle)
            .await;
        self.called("on-open", result)
    }

    /// Steps for one chunk. The bytes are copied into the plugin only when
    /// its description asks for them.
    pub async fn on_data(
        &mut self,
        data: &[u8],
        arrived_us: u64,
    ) -> Result<Vec<Step>, PluginError> {
        let chunk = Chunk {
            len: data.len() as u32,
            arrived_us,
            bytes: self.plugin.description.wants_bytes.then(|| data.to_vec()),
        };
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_on_data(store, handle, &chunk)
            .await;
        self.called("on-data", result)
    }

    /// Steps to run when the sending side has finished.
    pub async fn on_close(&mut self) -> Result<Vec<Step>, PluginError> {
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_tcp()
            .filter()
            .call_on_close(store, handle)
            .await;
        self.called("on-close", result)
    }
}

impl Session {
    pub async fn on_open(&mut self) -> Result<Vec<PgAction>, PluginError> {
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_postgres()
            .session()
            .call_on_open(store, handle)
            .await;
        self.called("on-open", result)
    }

    /// Actions for one whole message. Its bytes are copied into the plugin
    /// only when its description asks for them.
    pub async fn on_message(
        &mut self,
        tag: u8,
        message: &[u8],
        arrived_us: u64,
    ) -> Result<Vec<PgAction>, PluginError> {
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
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_postgres()
            .session()
            .call_on_message(store, handle, &message)
            .await;
        self.called("on-message", result)
    }

    pub async fn on_close(&mut self) -> Result<Vec<PgAction>, PluginError> {
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_postgres()
            .session()
            .call_on_close(store, handle)
            .await;
        self.called("on-close", result)
    }
}

impl Exchange {
    /// Actions before the request goes upstream.
    pub async fn on_request(&mut self, head: &RequestHead) -> Result<Vec<Action>, PluginError> {
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_http()
            .exchange()
            .call_on_request(store, handle, head)
            .await;
        self.called("on-request", result)
    }

    /// Actions before the response goes back.
    pub async fn on_response(&mut self, head: &ResponseHead) -> Result<Vec<Action>, PluginError> {
        let (store, bindings, handle) = self.arm();
        let result = bindings
            .faultgate_plugin_http()
            .exchange()
            .call_on_response(store, handle, head)
            .await;
        self.called("on-response", result)
    }
}
