//! The one instance of a plugin that serves a fault (an attached toxic),
//! shared by every connection the fault applies to.
//!
//! Calls are serialized: a call waits for the one ahead of it. A call that
//! traps, runs past its deadline or grows past the memory limit ends the
//! instance ([`SharedInstance::failed`] fires): the call's connection and
//! every other connection it serves fail, and the fault's slot (see
//! `slot.rs`) makes a fresh instance for the next connection.

use std::sync::{Arc, OnceLock};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use tokio::sync::{MutexGuard, OwnedSemaphorePermit};
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};
use wasmtime::Store;
use wasmtime::component::ResourceAny;

use super::bindings::{Attributes, ConnInfo, Direction, HttpPlugin, PostgresPlugin, TcpPlugin};
use super::error::PluginError;
use super::kind::PluginKind;
use super::plugin::Plugin;
use super::requests::ConnRequests;
use super::state::InstanceState;
use super::worlds::Bindings;

/// One of the contract's worlds, as a fault's instance uses it: making the
/// guest's `fault` from attributes, and opening a per-connection (or
/// per-request) resource from it.
pub trait World: TryFrom<Bindings, Error = PluginKind> + Send + Sync + Sized + 'static {
    /// What the caller uses the plugin as, for the message when the plugin
    /// is of another kind.
    const USED_AS: &'static str;

    /// Calls the guest's `fault.create`.
    fn call_create(
        &self,
        store: &mut Store<InstanceState>,
        attributes: &Attributes,
    ) -> impl Future<Output = wasmtime::Result<Result<ResourceAny, String>>> + Send;

    /// Calls the guest's `fault.open`.
    fn call_open(
        &self,
        store: &mut Store<InstanceState>,
        fault: ResourceAny,
        conn: &ConnInfo,
    ) -> impl Future<Output = wasmtime::Result<Result<ResourceAny, String>>> + Send;
}

/// Implements [`World`] for a world whose interface is `$interface`.
macro_rules! world {
    ($bindings:ident, $interface:ident, $used_as:literal) => {
        impl World for $bindings {
            const USED_AS: &'static str = $used_as;

            async fn call_create(
                &self,
                store: &mut Store<InstanceState>,
                attributes: &Attributes,
            ) -> wasmtime::Result<Result<ResourceAny, String>> {
                self.$interface()
                    .fault()
                    .call_create(store, attributes)
                    .await
            }

            async fn call_open(
                &self,
                store: &mut Store<InstanceState>,
                fault: ResourceAny,
                conn: &ConnInfo,
            ) -> wasmtime::Result<Result<ResourceAny, String>> {
                self.$interface()
                    .fault()
                    .call_open(store, fault, conn)
                    .await
            }
        }
    };
}

world!(TcpPlugin, faultgate_plugin_tcp, "a TCP fault");
world!(HttpPlugin, faultgate_plugin_http, "an HTTP fault");
world!(
    PostgresPlugin,
    faultgate_plugin_postgres,
    "a Postgres fault"
);

/// A fault's instance.
pub struct SharedInstance<W> {
    pub(super) plugin: Arc<Plugin>,
    toxic: Arc<str>,
    inner: tokio::sync::Mutex<Inner<W>>,
    /// Cancelled when the instance fails.
    failed: CancellationToken,
    failure: OnceLock<String>,
    /// Guest resources of connections that ended, to drop at the next
    /// call (or by a task of their own, when no call comes).
    released: std::sync::Mutex<Vec<ResourceAny>>,
    /// Told of every failure: the fault's slot counts them.
    on_failure: Arc<dyn Fn(&str) + Send + Sync>,
    /// Its place under `--max-plugin-instances`.
    _permit: OwnedSemaphorePermit,
}

struct Inner<W> {
    store: Store<InstanceState>,
    bindings: W,
    /// The guest's `fault` resource.
    fault: ResourceAny,
    /// The fault's own random stream, for calls no connection makes.
    rng: ChaCha8Rng,
}

impl<W: World> SharedInstance<W> {
    /// Instantiates `plugin` and makes the guest's fault from `attributes`.
    /// `seed` seeds the fault's own random stream.
    pub(super) async fn make(
        plugin: &Arc<Plugin>,
        toxic: Arc<str>,
        attributes: &Attributes,
        seed: u64,
        on_failure: Arc<dyn Fn(&str) + Send + Sync>,
    ) -> Result<Arc<Self>, PluginError> {
        let host = &plugin.host;
        let permit = host
            .fault_instances
            .clone()
            .try_acquire_owned()
            .map_err(|_| PluginError::InstanceLimit {
                plugin: plugin.name.to_string(),
                limit: host.limits.max_instances,
            })?;
        let mut store = host.store(plugin.name.clone(), toxic.clone(), seed, plugin.limits);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        host.arm(&mut store, 0, &mut rng);
        let made = async {
            let bindings = plugin.pre.instantiate(&mut store).await?;
            let bindings = W::try_from(bindings).map_err(|kind| {
                wasmtime::format_err!("used as {}, but it is a {kind:?} plugin", W::USED_AS)
            })?;
            let created = bindings.call_create(&mut store, attributes).await?;
            Ok::<_, wasmtime::Error>((bindings, created))
        }
        .await;
        store.data_mut().end_call(&mut rng);
        let (bindings, created) = made.map_err(|e| plugin.call_error("create", e))?;
        let fault = created.map_err(|reason| PluginError::Refused {
            plugin: plugin.name.to_string(),
            reason,
        })?;
        Ok(Arc::new(Self {
            plugin: plugin.clone(),
            toxic,
            inner: tokio::sync::Mutex::new(Inner {
                store,
                bindings,
                fault,
                rng,
            }),
            failed: CancellationToken::new(),
            failure: OnceLock::new(),
            released: std::sync::Mutex::new(Vec::new()),
            on_failure,
            _permit: permit,
        }))
    }

    /// Opens the guest's resource for one connection (or request).
    pub(super) async fn open(
        self: &Arc<Self>,
        conn: &ConnInfo,
        rng: &mut ChaCha8Rng,
        requests: Option<(Arc<ConnRequests>, Direction)>,
    ) -> Result<ResourceAny, PluginError> {
        let mut call = self.enter(conn.id, rng, requests).await?;
        let (store, bindings, fault) = call.parts();
        let opened = bindings.call_open(store, fault, conn).await;
        let opened = call.finish("open", opened)?;
        opened.map_err(|reason| PluginError::Refused {
            plugin: self.plugin.name.to_string(),
            reason,
        })
    }

    /// Waits for the calls ahead, then arms a call for connection `conn_id`.
    /// `requests`: the connection's, and the direction the call serves.
    pub(super) async fn enter<'a>(
        &'a self,
        conn_id: u64,
        rng: &'a mut ChaCha8Rng,
        requests: Option<(Arc<ConnRequests>, Direction)>,
    ) -> Result<Call<'a, W>, PluginError> {
        let mut inner = self.inner.lock().await;
        self.check()?;
        self.drop_released(&mut inner).await?;
        self.plugin.host.arm(&mut inner.store, conn_id, rng);
        inner.store.data_mut().lend_requests(requests);
        Ok(Call {
            instance: self,
            inner,
            rng,
            done: false,
        })
    }

    /// `Err` once the instance has failed.
    fn check(&self) -> Result<(), PluginError> {
        match self.failure.get() {
            Some(reason) => Err(PluginError::Failed {
                plugin: self.plugin.name.to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Drops the guest resources of connections that ended.
    async fn drop_released(&self, inner: &mut Inner<W>) -> Result<(), PluginError> {
        let released = std::mem::take(&mut *self.released.lock().unwrap());
        if released.is_empty() {
            return Ok(());
        }
        let Inner { store, rng, .. } = inner;
        self.plugin.host.arm(store, 0, rng);
        let mut result = Ok(());
        for resource in released {
            result = resource.resource_drop_async(&mut *store).await;
            if result.is_err() {
                break;
            }
        }
        store.data_mut().end_call(rng);
        result.map_err(|e| self.fail(self.plugin.call_error("drop", e)))
    }

    /// Gives back a connection's resource; it is dropped in the guest at the
    /// next call, or by a task of its own.
    pub(super) fn release(self: &Arc<Self>, resource: ResourceAny) {
        if self.failure.get().is_some() {
            return;
        }
        let first = {
            let mut released = self.released.lock().unwrap();
            released.push(resource);
            released.len() == 1
        };
        if first && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let instance = self.clone();
            runtime.spawn(async move {
                let mut inner = instance.inner.lock().await;
                if instance.check().is_ok() {
                    let _ = instance.drop_released(&mut inner).await;
                }
            });
        }
    }

    /// Ends the instance; every connection it serves fails.
    fn fail(&self, error: PluginError) -> PluginError {
        if self.failure.set(error.to_string()).is_ok() {
            tracing::warn!(
                plugin = %self.plugin.name,
                toxic = ?&*self.toxic,
                "{error}; the instance is ended, with every connection it served; the next connection gets a fresh instance"
            );
            self.failed.cancel();
            (self.on_failure)(&error.to_string());
        }
        error
    }

    /// Completes when the instance has failed.
    pub fn failed(&self) -> WaitForCancellationFutureOwned {
        self.failed.clone().cancelled_owned()
    }

    /// Whether the instance has failed.
    pub fn has_failed(&self) -> bool {
        self.failed.is_cancelled()
    }

    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }
}

/// One call in progress: the instance entered (calls behind it wait), the
/// deadline armed, the connection's random stream lent to the store. A call
/// dropped before it finished (its future was abandoned) ends the
/// instance: the guest may have been stopped anywhere.
pub(super) struct Call<'a, W: World> {
    instance: &'a SharedInstance<W>,
    inner: MutexGuard<'a, Inner<W>>,
    rng: &'a mut ChaCha8Rng,
    done: bool,
}

impl<W: World> Call<'_, W> {
    /// The store, the world's exports and the guest's fault, for the call.
    pub fn parts(&mut self) -> (&mut Store<InstanceState>, &W, ResourceAny) {
        let inner = &mut *self.inner;
        (&mut inner.store, &inner.bindings, inner.fault)
    }

    /// The call's result; a failed call ends the instance.
    pub fn finish<T>(
        mut self,
        hook: &'static str,
        result: wasmtime::Result<T>,
    ) -> Result<T, PluginError> {
        self.done = true;
        self.inner.store.data_mut().end_call(self.rng);
        result.map_err(|e| self.instance.fail(self.instance.plugin.call_error(hook, e)))
    }
}

impl<W: World> Drop for Call<'_, W> {
    fn drop(&mut self) {
        if !self.done {
            self.inner.store.data_mut().end_call(self.rng);
            self.instance.fail(PluginError::Failed {
                plugin: self.instance.plugin.name.to_string(),
                reason: "a call was abandoned before it finished".into(),
            });
        }
    }
}
