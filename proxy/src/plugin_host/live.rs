//! What a connection holds of a fault's instance: a [`Filter`] serves one
//! direction of one connection (TCP plugins), a [`Session`] one direction of
//! one Postgres session (Postgres plugins), an [`Exchange`] one HTTP request
//! (HTTP plugins). Each is the guest's resource in the fault's shared
//! instance, with the connection's own random stream; dropping it drops the
//! resource in the guest.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio_util::sync::WaitForCancellationFutureOwned;
use wasmtime::component::ResourceAny;

use super::bindings::{
    Action, Chunk, ConnInfo, Direction, HttpPlugin, PgAction, PgMessage, PostgresPlugin,
    RequestHead, ResponseHead, Step, TcpPlugin,
};
use super::error::PluginError;
use super::http_host::HttpEdits;
use super::plugin::Plugin;
use super::requests::ConnRequests;
use super::shared::{SharedInstance, World};

/// What a plugin is told about the connection a resource serves.
#[derive(Debug, Clone)]
pub struct ConnContext {
    pub id: u64,
    pub proxy: String,
    pub client: String,
    pub upstream: String,
    pub stream: Direction,
    /// Seeds the connection's `host.random` stream.
    pub random_seed: u64,
    /// Where the host functions `delay-connect` and `half-close` record
    /// what the plugin asks of the connection; none: nothing to ask.
    pub requests: Option<Arc<ConnRequests>>,
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

/// A connection's resource in a fault's shared instance.
pub struct Live<W: World> {
    instance: Arc<SharedInstance<W>>,
    handle: ResourceAny,
    conn_id: u64,
    rng: ChaCha8Rng,
    /// The connection's requests, and the direction this resource serves.
    requests: Option<(Arc<ConnRequests>, Direction)>,
}

/// A TCP plugin's filter for one connection direction.
pub type Filter = Live<TcpPlugin>;
/// A Postgres plugin's session for one connection direction.
pub type Session = Live<PostgresPlugin>;
/// An HTTP plugin's exchange for one request.
pub type Exchange = Live<HttpPlugin>;

impl<W: World> Live<W> {
    /// Opens the guest's resource for `conn` in `instance`.
    pub async fn open(
        instance: &Arc<SharedInstance<W>>,
        conn: &ConnContext,
    ) -> Result<Self, PluginError> {
        let mut rng = ChaCha8Rng::seed_from_u64(conn.random_seed);
        let requests = conn.requests.clone().map(|r| (r, conn.stream));
        let handle = instance
            .open(&conn.info(), &mut rng, requests.clone())
            .await?;
        Ok(Self {
            instance: instance.clone(),
            handle,
            conn_id: conn.id,
            rng,
            requests,
        })
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.instance.plugin
    }

    /// Completes when the instance has failed (every call then fails too).
    pub fn failed(&self) -> WaitForCancellationFutureOwned {
        self.instance.failed()
    }
}

impl<W: World> Drop for Live<W> {
    fn drop(&mut self) {
        self.instance.release(self.handle);
    }
}

/// One hook of a resource: enter the instance, call, finish.
macro_rules! hook {
    ($self:ident, $name:literal, |$store:ident, $bindings:ident, $handle:ident| $call:expr) => {{
        let $handle = $self.handle;
        let requests = $self.requests.clone();
        let mut call = $self
            .instance
            .enter($self.conn_id, &mut $self.rng, requests)
            .await?;
        let ($store, $bindings, _) = call.parts();
        let result = $call.await;
        call.finish($name, result)
    }};
}

impl Filter {
    /// Steps to run before any data of this direction.
    pub async fn on_open(&mut self) -> Result<Vec<Step>, PluginError> {
        hook!(self, "on-open", |store, b, handle| b
            .faultgate_plugin_tcp()
            .filter()
            .call_on_open(store, handle))
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
            bytes: self.plugin().description.wants_bytes.then(|| data.to_vec()),
        };
        hook!(self, "on-data", |store, b, handle| b
            .faultgate_plugin_tcp()
            .filter()
            .call_on_data(store, handle, &chunk))
    }

    /// Steps for a `wake` whose time has come.
    pub async fn on_wake(&mut self) -> Result<Vec<Step>, PluginError> {
        hook!(self, "on-wake", |store, b, handle| b
            .faultgate_plugin_tcp()
            .filter()
            .call_on_wake(store, handle))
    }

    /// Steps to run when the sending side has finished.
    pub async fn on_close(&mut self) -> Result<Vec<Step>, PluginError> {
        hook!(self, "on-close", |store, b, handle| b
            .faultgate_plugin_tcp()
            .filter()
            .call_on_close(store, handle))
    }
}

impl Session {
    pub async fn on_open(&mut self) -> Result<Vec<PgAction>, PluginError> {
        hook!(self, "on-open", |store, b, handle| b
            .faultgate_plugin_postgres()
            .session()
            .call_on_open(store, handle))
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
                .plugin()
                .description
                .wants_bytes
                .then(|| message.to_vec()),
        };
        self.call_on_message(message).await
    }

    /// Actions for a message of `len` bytes too long to hold whole: the
    /// plugin is told its type and length only, never its bytes.
    pub async fn on_message_unseen(
        &mut self,
        tag: u8,
        len: u32,
        arrived_us: u64,
    ) -> Result<Vec<PgAction>, PluginError> {
        let message = PgMessage {
            tag,
            len,
            arrived_us,
            bytes: None,
        };
        self.call_on_message(message).await
    }

    async fn call_on_message(&mut self, message: PgMessage) -> Result<Vec<PgAction>, PluginError> {
        hook!(self, "on-message", |store, b, handle| b
            .faultgate_plugin_postgres()
            .session()
            .call_on_message(store, handle, &message))
    }

    pub async fn on_wake(&mut self) -> Result<Vec<PgAction>, PluginError> {
        hook!(self, "on-wake", |store, b, handle| b
            .faultgate_plugin_postgres()
            .session()
            .call_on_wake(store, handle))
    }

    pub async fn on_close(&mut self) -> Result<Vec<PgAction>, PluginError> {
        hook!(self, "on-close", |store, b, handle| b
            .faultgate_plugin_postgres()
            .session()
            .call_on_close(store, handle))
    }
}

/// One HTTP hook: the exchange's call into its instance, and what the hook
/// asked of the host (`http-host`) beside its actions.
macro_rules! exchange_hook {
    ($self:ident, $name:literal, $call:ident, $head:expr) => {{
        let handle = $self.handle;
        let mut call = $self
            .instance
            .enter($self.conn_id, &mut $self.rng, None)
            .await?;
        let (store, b, _) = call.parts();
        let result = b
            .faultgate_plugin_http()
            .exchange()
            .$call(&mut *store, handle, $head)
            .await;
        let edits = store.data_mut().take_http_edits();
        Ok((call.finish($name, result)?, edits))
    }};
}

impl Exchange {
    /// Actions before the request goes upstream, and what the hook asked
    /// of the host (`http-host`).
    pub async fn on_request(
        &mut self,
        head: &RequestHead,
    ) -> Result<(Vec<Action>, HttpEdits), PluginError> {
        exchange_hook!(self, "on-request", call_on_request, head)
    }

    /// Actions before the response goes back, and what the hook asked of
    /// the host (`http-host`).
    pub async fn on_response(
        &mut self,
        head: &ResponseHead,
    ) -> Result<(Vec<Action>, HttpEdits), PluginError> {
        exchange_hook!(self, "on-response", call_on_response, head)
    }
}
