//! The WebAssembly plugin host.
//!
//! Every fault is a plugin: a WebAssembly component built against
//! `wit/faultgate.wit`. The host compiles each plugin once (the built-in ones
//! were precompiled by the build script; others are kept in a compile
//! cache), and makes one instance of it for every attached fault, shared by
//! every connection the fault applies to; each connection gets its own
//! resource in it (a TCP `filter`, a Postgres `session`, an HTTP `exchange`)
//! and its own random stream. A proxy with no fault has no instance at all.
//!
//! Every call into a plugin runs under a deadline (yielding to other tasks
//! at every epoch tick meanwhile) and a memory limit. A plugin that traps,
//! loops or grows past its limit ends its instance: the connections it
//! served fail, the next connection gets a fresh instance, and the proxy,
//! other faults and other proxies go on.
//!
//! The rooms: `engine` (the engine, its pool and deadlines), `cache` (the
//! compile cache), `load` (checking, linking and describing a component),
//! `description` (what a plugin says of itself), `worlds` (the three kinds
//! behind one enum), `plugin` (a loaded plugin), `shared` (a fault's one
//! instance, its calls serialized), `slot` (making it again after a
//! failure, with back-off), `live` (a connection's resource and its hooks),
//! `state` (what an instance's store holds and the host functions it
//! imports), `guest_output` (a plugin's stdout and stderr as log lines),
//! `http_host` (what an HTTP fault asks of the host besides its
//! actions).

mod bindings;
mod cache;
mod declarations;
mod description;
mod engine;
pub mod engine_config;
mod error;
mod guest_output;
mod http_host;
mod kind;
mod live;
mod load;
mod plugin;
mod requests;
mod shared;
mod slot;
mod state;
mod worlds;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use wasmtime::component::{Component, HasSelf, Linker};

pub use bindings::{
    Action, Attributes, ByteRange, Direction, Header, PgAction, PgMessage, PluginResponse,
    RequestHead, ResponseHead, Step, Value, ValueType,
};
pub use cache::sha256_hex;
pub use description::{AttributeDescription, Description, PluginSource};
pub use engine::PluginLimits;
pub use error::PluginError;
pub use http_host::{HttpEdit, HttpEdits};
pub use kind::PluginKind;
pub use live::{ConnContext, Exchange, Filter, Live, Session};
pub use plugin::Plugin;
pub use requests::ConnRequests;
pub use shared::SharedInstance;
pub use slot::{AnyInstance, Failures, Fresh, InstanceSlot};

use bindings::TcpPlugin;
use cache::CompileCache;
use engine::HostShared;
use state::InstanceState;

/// The built-in plugins, embedded by `build.rs`.
pub(crate) struct BuiltinPlugin {
    crate_name: &'static str,
    wasm: &'static [u8],
    precompiled: &'static [u8],
}
include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// The engine and every plugin loaded into it, by name.
pub struct PluginHost {
    shared: Arc<HostShared>,
    linker: Linker<InstanceState>,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    cache: Option<Arc<CompileCache>>,
    /// One compilation at a time (each uses every core already).
    compiles: tokio::sync::Semaphore,
}

impl PluginHost {
    /// Makes the engine and loads the built-in plugins. Plugins loaded later
    /// are compiled once and kept in `cache_dir`, when given, so a restart
    /// does not compile them again.
    pub async fn new(
        limits: PluginLimits,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, PluginError> {
        let shared = HostShared::new(limits)?;
        let mut linker = Linker::new(&shared.engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("linking WASI");
        TcpPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .expect("linking the faultgate host interface");
        bindings::add_http_host_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .expect("linking the faultgate http-host interface");
        let host = Self {
            cache: cache_dir.and_then(|dir| CompileCache::open(dir, &shared.engine).map(Arc::new)),
            compiles: tokio::sync::Semaphore::new(1),
            shared,
            linker,
            plugins: RwLock::new(BTreeMap::new()),
        };
        for builtin in BUILTIN_PLUGINS {
            // Safety: the bytes were produced by `Engine::precompile_component`
            // in build.rs with the same wasmtime and codegen settings, and are
            // embedded read-only in this binary.
            let component = match unsafe {
                Component::deserialize(&host.shared.engine, builtin.precompiled)
            } {
                Ok(component) => component,
                Err(error) => {
                    // e.g. the binary runs on a CPU without a feature the
                    // build machine had: compile from the embedded wasm.
                    tracing::info!(plugin = builtin.crate_name, %error, "precompiled plugin unusable here; compiling it");
                    Component::new(&host.shared.engine, builtin.wasm).map_err(|e| {
                        PluginError::Invalid {
                            source_name: builtin.crate_name.into(),
                            reason: format!("{e:#}"),
                        }
                    })?
                }
            };
            let plugin = load::link(
                &host.shared,
                &host.linker,
                builtin.crate_name,
                component,
                PluginSource::Builtin,
            )
            .await?;
            host.install(plugin);
        }
        Ok(host)
    }

    /// Loads a plugin component from a file and makes it available by the
    /// name it describes itself with, replacing any plugin of that name.
    pub async fn load_file(&self, path: &Path) -> Result<Arc<Plugin>, PluginError> {
        let bytes = std::fs::read(path).map_err(|error| PluginError::Read {
            path: path.to_owned(),
            error,
        })?;
        let plugin = self
            .compile(
                &path.display().to_string(),
                &bytes,
                PluginSource::File(path.to_owned()),
            )
            .await?;
        self.install(plugin.clone());
        Ok(plugin)
    }

    /// Compiles (or takes from the cache), links and describes a component,
    /// without making it available yet: see [`PluginHost::install`].
    pub async fn compile(
        &self,
        source_name: &str,
        bytes: &[u8],
        source: PluginSource,
    ) -> Result<Arc<Plugin>, PluginError> {
        let invalid = |reason: String| PluginError::Invalid {
            source_name: source_name.to_owned(),
            reason,
        };
        load::check_header(bytes).map_err(invalid)?;
        // Compiling takes seconds for a large plugin: off the runtime's
        // threads, one at a time, so the API and the data path go on.
        let _turn = self.compiles.acquire().await.expect("never closed");
        let (engine, cache) = (self.shared.engine.clone(), self.cache.clone());
        let (name, owned) = (source_name.to_owned(), bytes.to_vec());
        let component = tokio::task::spawn_blocking(move || match &cache {
            Some(cache) => cache.component(&engine, &name, &owned),
            None => Component::new(&engine, &owned).map_err(|e| format!("{e:#}")),
        })
        .await
        .unwrap_or_else(|e| Err(format!("the compilation stopped: {e}")))
        .map_err(invalid)?;
        let linked = load::link(&self.shared, &self.linker, source_name, component, source).await;
        if linked.is_err() {
            // Compiled, but no plugin: not kept in the cache.
            self.discard(bytes);
        }
        linked
    }

    /// Forgets the compiled code of a component that was refused (it
    /// compiled, but is no plugin, or was refused where it was to go), so
    /// the compile cache does not keep it; unless a plugin uploaded with the
    /// same bytes is loaded.
    pub fn discard(&self, bytes: &[u8]) {
        let Some(cache) = &self.cache else {
            return;
        };
        let sha256 = sha256_hex(bytes);
        let loaded = self.list().iter().any(
            |plugin| matches!(plugin.source(), PluginSource::Upload { sha256: s } if *s == sha256),
        );
        if !loaded {
            cache.remove(bytes);
        }
    }

    /// Makes `plugin` available by its name; returns the one it replaces.
    /// Faults already attached keep the plugin they were made with until
    /// they are rebound (see `Registry::upload_plugin`).
    pub fn install(&self, plugin: Arc<Plugin>) -> Option<Arc<Plugin>> {
        tracing::debug!(plugin = %plugin.name, "plugin installed");
        self.plugins
            .write()
            .unwrap()
            .insert(plugin.description.name.clone(), plugin)
    }

    /// Makes the plugin called `name` unavailable.
    pub fn remove(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.write().unwrap().remove(name)
    }

    /// The plugin attached by toxic `type` `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Plugin>> {
        self.plugins.read().unwrap().get(name).cloned()
    }

    /// Every loaded plugin, by name.
    pub fn list(&self) -> Vec<Arc<Plugin>> {
        self.plugins.read().unwrap().values().cloned().collect()
    }

    /// The names of every loaded plugin, for error messages.
    pub fn names(&self) -> Vec<String> {
        self.plugins.read().unwrap().keys().cloned().collect()
    }
}
