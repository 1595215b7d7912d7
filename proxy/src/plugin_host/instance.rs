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
use super::description::PluginKind;
use super::error::PluginError;
use super::plugin::Plugin;
use super::state::InstanceState;
use super::worlds::Bindings;

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

/// A world whose instances serve one connection (or request) through one
/// guest resource, made by the resource's `open`.
pub trait Opens: TryFrom<Bindings, Error = PluginKind> + Send + Sized {
    /// What the caller uses the plugin as, for the message when the plugin
    /// is of another kind.
    const USED_AS: &'static str;

    /// Calls the guest's `open`.
    fn call_open(
        &self,
        store: &mut Store<InstanceState>,
        conn: &ConnInfo,
        attributes: &Attributes,
    ) -> impl Future<Output = wasmtime::Result<Result<ResourceAny, String>>> + Send;
}

impl Opens for TcpPlugin {
    const USED_AS: &'static str = "a TCP fault";

    async fn call_open(
        &self,
        store: &mut Store<InstanceState>,
        conn: &ConnInfo,
        attributes: &Attributes,
    ) -> wasmtime::Result<Result<ResourceAny, String>> {
        let filter = self.faultgate_plugin_tcp().filter();
        filter.call_open(store, conn, attributes).await
    }
}

impl Opens for PostgresPlugin {
    const USED_AS: &'static str = "a Postgres fault";

    async fn call_open(
        &self,
        store: &mut Store<InstanceState>,
        conn: &ConnInfo,
        attributes: &Attributes,
    ) -> wasmtime::Result<Result<ResourceAny, String>> {
        let session = self.faultgate_plugin_postgres().session();
        session.call_open(store, conn, attributes).await
    }
}

impl Opens for HttpPlugin {
    const USED_AS: &'static str = "an HTTP fault";

    async fn call_open(
        &self,
        store: &mut Store<InstanceState>,
        conn: &ConnInfo,
        attributes: &Attributes,
    ) -> wasmtime::Result<Result<ResourceAny, String>> {
        let exchange = self.faultgate_plugin_http().exchange();
        exchange.call_open(store, conn, attributes).await
    }
}

impl<B: Opens> Live<B> {
    /// A fresh store and instance of `plugin` for `conn`, opened with
    /// `attributes`. For an HTTP plugin `conn.stream` is the stream the
    /// fault is attached to.
    pub async fn open(
        plugin: &Arc<Plugin>,
        conn: &ConnContext,
        attributes: &Attributes,
    ) -> Result<Self, PluginError> {
        let mut store = plugin
            .host
            .store(plugin.name.clone(), conn.id, conn.random_seed);
        let bindings = plugin.instantiate(&mut store, "open").await?;
        let bindings = B::try_from(bindings).map_err(|kind| PluginError::Call {
            plugin: plugin.name.to_string(),
            what: "open",
            reason: format!("used as {}, but it is a {kind:?} plugin", B::USED_AS),
        })?;
        let opened = bindings
            .call_open(&mut store, &conn.info(), attributes)
            .await;
        let opened = opened.map_err(|e| plugin.call_error("open", e))?;
        let handle = opened.map_err(|reason| PluginError::Refused {
            plugin: plugin.name.to_string(),
            reason,
        })?;
        Ok(Self {
            plugin: plugin.clone(),
            store,
            bindings,
            handle,
        })
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
