//! The WebAssembly plugin host.
//!
//! Every fault is a plugin: a WebAssembly component built against
//! `wit/faultgate.wit`. The host compiles each plugin once (the built-in ones
//! were precompiled by the build script), and makes a fresh instance of it for
//! every connection a fault applies to, from an `InstancePre` and wasmtime's
//! pooling allocator, which takes microseconds.
//!
//! Every call into a plugin runs under an epoch deadline and a memory limit.
//! A plugin that traps, loops or grows past its limit fails the call, the
//! caller fails the one connection that instance served, and the proxy and
//! every other connection go on.

mod bindings;
pub mod engine_config;
mod instance;
mod state;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};

pub use bindings::{
    Action, Attributes, ByteRange, Direction, Header, PgAction, PgMessage, PluginResponse,
    RequestHead, ResponseHead, Step, Value, ValueType,
};
pub use instance::{ConnContext, Exchange, Filter, Live, Session};

use bindings::{
    HttpPlugin, HttpPluginPre, PostgresPlugin, PostgresPluginPre, TcpPlugin, TcpPluginPre,
};
use state::InstanceState;

/// How often the epoch advances. Call deadlines are counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// The built-in plugins, embedded by `build.rs`.
pub(crate) struct BuiltinPlugin {
    crate_name: &'static str,
    wasm: &'static [u8],
    precompiled: &'static [u8],
}
include!(concat!(env!("OUT_DIR"), "/builtin_plugins.rs"));

/// Why a plugin could not be loaded, or a call into it failed.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{source_name}: not a faultgate plugin component: {reason}")]
    Invalid { source_name: String, reason: String },
    #[error("{source_name}: {reason}")]
    BadDescription { source_name: String, reason: String },
    #[error("reading plugin {path}: {error}")]
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("plugin {plugin:?}: {what} failed: {reason}")]
    Call {
        plugin: String,
        what: &'static str,
        reason: String,
    },
    #[error("plugin {plugin:?} refused the connection: {reason}")]
    Refused { plugin: String, reason: String },
    #[error("plugin {plugin:?} answered with a bad step: {reason}")]
    BadStep { plugin: String, reason: String },
}

/// Touched linear memory a freed instance slot keeps (zeroed) instead of
/// giving back to the kernel. A built-in plugin touches ~40 KiB.
const MEMORY_KEEP_RESIDENT: usize = 128 << 10;

/// The same for the slot's tables, which are a page or two.
const TABLE_KEEP_RESIDENT: usize = 16 << 10;

/// Limits every plugin call runs under.
#[derive(Debug, Clone, Copy)]
pub struct PluginLimits {
    /// Linear memory one instance may grow to.
    pub memory_bytes: usize,
    /// Wall time one call may take before it is interrupted.
    pub call_deadline: Duration,
    /// Plugin instances alive at once, across all connections.
    pub max_instances: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 16 << 20,
            call_deadline: Duration::from_millis(100),
            max_instances: 10_000,
        }
    }
}

/// Where a plugin came from, as `GET /plugins` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginSource {
    Builtin,
    File(PathBuf),
    /// Sent to `POST /plugins`; identified by the SHA-256 of its bytes.
    Upload {
        sha256: String,
    },
}

/// What a plugin filters: bytes on a connection, or HTTP exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Exports `faultgate:plugin/tcp`: works on every proxy.
    Tcp,
    /// Exports `faultgate:plugin/http`: works on proxies in `http` mode.
    Http,
    /// Exports `faultgate:plugin/postgres`: works on proxies in `postgres` mode.
    Postgres,
}

/// A plugin's self-description, in the control API's JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub name: String,
    pub kind: PluginKind,
    pub version: String,
    pub summary: String,
    pub attributes: Vec<AttributeDescription>,
    pub wants_bytes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttributeDescription {
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: &'static str,
    pub default: Option<serde_json::Value>,
    pub summary: String,
}

/// A loaded plugin, ready to be instantiated.
pub struct Plugin {
    name: Arc<str>,
    description: Description,
    source: PluginSource,
    pre: PluginPre,
    host: Arc<HostShared>,
}

/// A linked plugin, by the world it implements.
enum PluginPre {
    Tcp(TcpPluginPre<InstanceState>),
    Http(HttpPluginPre<InstanceState>),
    Postgres(PostgresPluginPre<InstanceState>),
}

/// A plugin instance's exports, by world.
enum Bindings {
    Tcp(TcpPlugin),
    Http(HttpPlugin),
    Postgres(PostgresPlugin),
}

struct HostShared {
    engine: Engine,
    limits: PluginLimits,
    deadline_ticks: u64,
}

/// The engine and every plugin loaded into it, by name.
pub struct PluginHost {
    shared: Arc<HostShared>,
    linker: Linker<InstanceState>,
    plugins: RwLock<BTreeMap<String, Arc<Plugin>>>,
    cache: Option<CompileCache>,
}

impl PluginHost {
    /// Makes the engine and loads the built-in plugins. Plugins loaded later
    /// are compiled once and kept in `cache_dir`, when given, so a restart
    /// does not compile them again.
    pub async fn new(
        limits: PluginLimits,
        cache_dir: Option<PathBuf>,
    ) -> Result<Self, PluginError> {
        let mut config = engine_config::codegen_config();
        let mut pool = PoolingAllocationConfig::new();
        // A Rust wasm32-wasip2 component holds a few core instances and
        // tables around its one memory.
        pool.total_component_instances(limits.max_instances)
            .total_memories(limits.max_instances)
            .total_core_instances(limits.max_instances.saturating_mul(4))
            .total_tables(limits.max_instances.saturating_mul(4))
            .max_memory_size(engine_config::MEMORY_RESERVATION as usize)
            // Every live store keeps the fiber stack of its async calls.
            .total_stacks(limits.max_instances)
            .max_unused_warm_slots(256)
            // Resetting a freed slot with madvise costs a TLB shootdown on
            // every core, the largest cost of a short faulted connection.
            // Instead the pages an instance touched (found with Linux's
            // PAGEMAP_SCAN where the kernel has it) are zeroed in place, up
            // to these sizes; only what lies beyond is given back.
            .pagemap_scan(wasmtime::Enabled::Auto)
            .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
            .table_keep_resident(TABLE_KEEP_RESIDENT);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| PluginError::Invalid {
            source_name: "engine".into(),
            reason: format!("{e:#}"),
        })?;
        start_epoch_ticker(engine.weak());

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("linking WASI");
        TcpPlugin::add_to_linker::<_, HasSelf<_>>(&mut linker, |state| state)
            .expect("linking the faultgate host interface");

        let tick = EPOCH_TICK.as_micros().max(1);
        let host = Self {
            shared: Arc::new(HostShared {
                engine,
                limits,
                deadline_ticks: (limits.call_deadline.as_micros().div_ceil(tick) as u64).max(1),
            }),
            linker,
            plugins: RwLock::new(BTreeMap::new()),
            cache: None,
        };
        let host = Self {
            cache: cache_dir.map(|dir| CompileCache::new(dir, &host.shared.engine)),
            ..host
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
            let plugin = host
                .describe(builtin.crate_name, component, PluginSource::Builtin)
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
        check_header(bytes).map_err(invalid)?;
        let component = match &self.cache {
            Some(cache) => cache.component(&self.shared.engine, source_name, bytes),
            None => Component::new(&self.shared.engine, bytes).map_err(|e| format!("{e:#}")),
        }
        .map_err(invalid)?;
        self.describe(source_name, component, source).await
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

    async fn describe(
        &self,
        source_name: &str,
        component: Component,
        source: PluginSource,
    ) -> Result<Arc<Plugin>, PluginError> {
        let invalid = |e: wasmtime::Error| PluginError::Invalid {
            source_name: source_name.to_owned(),
            reason: format!("{e:#}"),
        };
        let contract = |e: wasmtime::Error| PluginError::Invalid {
            source_name: source_name.to_owned(),
            reason: format!(
                "{e:#} (a plugin imports only faultgate:plugin/host and WASI, and exports \
                 faultgate:plugin/meta and one of faultgate:plugin/tcp, /http or /postgres: \
                 see wit/faultgate.wit)"
            ),
        };
        let instance_pre = self.linker.instantiate_pre(&component).map_err(contract)?;
        // Which kind the plugin means to be, by what it exports; the bindings
        // then check the rest and say what is missing.
        let exports = |interface: &str| {
            component
                .component_type()
                .exports(&self.shared.engine)
                .any(|(name, _)| name.starts_with(&format!("faultgate:plugin/{interface}@")))
        };
        let pre = if exports("http") {
            PluginPre::Http(HttpPluginPre::new(instance_pre).map_err(contract)?)
        } else if exports("postgres") {
            PluginPre::Postgres(PostgresPluginPre::new(instance_pre).map_err(contract)?)
        } else {
            PluginPre::Tcp(TcpPluginPre::new(instance_pre).map_err(contract)?)
        };
        let mut store = self.shared.store(source_name.into(), 0, 0);
        let bindings = pre.instantiate(&mut store).await.map_err(invalid)?;
        let raw = bindings.describe(&mut store).await.map_err(invalid)?;
        let kind = match pre {
            PluginPre::Tcp(_) => PluginKind::Tcp,
            PluginPre::Http(_) => PluginKind::Http,
            PluginPre::Postgres(_) => PluginKind::Postgres,
        };
        let description =
            convert_description(raw, kind).map_err(|reason| PluginError::BadDescription {
                source_name: source_name.to_owned(),
                reason,
            })?;
        Ok(Arc::new(Plugin {
            name: description.name.as_str().into(),
            description,
            source,
            pre,
            host: self.shared.clone(),
        }))
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

impl HostShared {
    fn store(&self, plugin: Arc<str>, conn_id: u64, seed: u64) -> Store<InstanceState> {
        let state = InstanceState::new(plugin, conn_id, seed, self.limits.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(self.deadline_ticks);
        store
    }
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

    async fn instantiate(
        &self,
        store: &mut Store<InstanceState>,
        what: &'static str,
    ) -> Result<Bindings, PluginError> {
        self.pre
            .instantiate(store)
            .await
            .map_err(|e| self.call_error(what, e))
    }

    fn call_error(&self, what: &'static str, error: wasmtime::Error) -> PluginError {
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

/// Catches the usual wrong files before wasmtime's parser does, with advice.
/// Text (the WebAssembly text format) is let through for the parser.
fn check_header(bytes: &[u8]) -> Result<(), String> {
    const MAGIC: &[u8] = b"\0asm";
    const CORE_MODULE: &[u8] = &[1, 0, 0, 0];
    let text = std::str::from_utf8(bytes).is_ok_and(|t| t.trim_start().starts_with(['(', ';']));
    if text {
        return Ok(());
    }
    if bytes.len() < 8 || &bytes[..4] != MAGIC {
        return Err("this is not a WebAssembly file (no \\0asm header)".into());
    }
    if &bytes[4..8] == CORE_MODULE {
        return Err(
            "this is a core WebAssembly module, not a component; build the plugin \
                    with `cargo build --target wasm32-wasip2`, which makes a component"
                .into(),
        );
    }
    Ok(())
}

/// Compiled plugins on disk, keyed by the SHA-256 of the component and by
/// everything in the engine that compiled code depends on (wasmtime's version
/// and settings), so a stale entry is never used.
///
/// Loading an entry runs the code in it: the directory must be writable only
/// by the user faultgate runs as (it is created with mode 0700).
struct CompileCache {
    dir: PathBuf,
    engine_key: u64,
}

impl CompileCache {
    fn new(dir: PathBuf, engine: &Engine) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: hasher.finish(),
        }
    }

    fn component(
        &self,
        engine: &Engine,
        source_name: &str,
        bytes: &[u8],
    ) -> Result<Component, String> {
        let path = self.dir.join(format!(
            "{}-{:016x}.cwasm",
            sha256_hex(bytes),
            self.engine_key
        ));
        if path.exists() {
            // Safety: the file was written by `precompile_component` of an
            // engine with the same compatibility hash, into a directory only
            // faultgate writes (see the type's documentation).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    tracing::info!(plugin = source_name, cache = %path.display(), "plugin loaded from the compile cache");
                    return Ok(component);
                }
                Err(error) => {
                    tracing::warn!(cache = %path.display(), %error, "unusable compile cache entry; recompiling")
                }
            }
        }
        let started = std::time::Instant::now();
        let compiled = engine
            .precompile_component(bytes)
            .map_err(|e| format!("{e:#}"))?;
        tracing::info!(plugin = source_name, took = ?started.elapsed(), "plugin compiled");
        if let Err(error) = self.store(&path, &compiled) {
            tracing::warn!(cache = %self.dir.display(), %error, "cannot write the compile cache; going on without it");
        }
        // Safety: `compiled` was just produced by this engine.
        unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| format!("{e:#}"))
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let partial = path.with_extension(format!("partial{}", std::process::id()));
        std::fs::write(&partial, compiled)?;
        std::fs::rename(&partial, path)
    }
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Advances the engine's epoch for as long as the engine lives, so that every
/// plugin call's deadline is enforced without the call having to check a clock.
fn start_epoch_ticker(engine: wasmtime::EngineWeak) {
    std::thread::Builder::new()
        .name("faultgate-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

impl PluginPre {
    async fn instantiate(&self, store: &mut Store<InstanceState>) -> wasmtime::Result<Bindings> {
        Ok(match self {
            Self::Tcp(pre) => Bindings::Tcp(pre.instantiate_async(store).await?),
            Self::Http(pre) => Bindings::Http(pre.instantiate_async(store).await?),
            Self::Postgres(pre) => Bindings::Postgres(pre.instantiate_async(store).await?),
        })
    }
}

/// `meta` is exported by every world; these reach it whichever one it is.
impl Bindings {
    async fn describe(
        &self,
        store: &mut Store<InstanceState>,
    ) -> wasmtime::Result<bindings::Description> {
        match self {
            Self::Tcp(b) => b.faultgate_plugin_meta().call_describe(store).await,
            Self::Http(b) => b.faultgate_plugin_meta().call_describe(store).await,
            Self::Postgres(b) => b.faultgate_plugin_meta().call_describe(store).await,
        }
    }

    async fn validate(
        &self,
        store: &mut Store<InstanceState>,
        attributes: &Attributes,
    ) -> wasmtime::Result<Result<(), String>> {
        match self {
            Self::Tcp(b) => {
                b.faultgate_plugin_meta()
                    .call_validate(store, attributes)
                    .await
            }
            Self::Http(b) => {
                b.faultgate_plugin_meta()
                    .call_validate(store, attributes)
                    .await
            }
            Self::Postgres(b) => {
                b.faultgate_plugin_meta()
                    .call_validate(store, attributes)
                    .await
            }
        }
    }
}

fn convert_description(
    raw: bindings::Description,
    kind: PluginKind,
) -> Result<Description, String> {
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "describe() names the plugin {:?}; a name is letters, digits, '_' and '-'",
            raw.name
        ));
    }
    let attributes = raw
        .attributes
        .into_iter()
        .map(|spec| AttributeDescription {
            name: spec.name,
            value_type: match spec.type_ {
                ValueType::Integer => "integer",
                ValueType::Float => "float",
                ValueType::Boolean => "boolean",
                ValueType::Text => "text",
            },
            default: spec.default.as_ref().map(value_to_json),
            summary: spec.summary,
        })
        .collect();
    Ok(Description {
        name: raw.name,
        kind,
        version: raw.version,
        summary: raw.summary,
        attributes,
        wants_bytes: raw.wants_bytes,
    })
}

/// An attribute value as JSON, for the API.
pub fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Integer(i) => (*i).into(),
        Value::Float(f) => (*f).into(),
        Value::Boolean(b) => (*b).into(),
        Value::Text(s) => s.clone().into(),
    }
}

/// Converts the API's JSON `attributes` object into the contract's shape.
/// The error names the attribute.
pub fn attributes_from_json(
    json: &serde_json::Map<String, serde_json::Value>,
) -> Result<Attributes, String> {
    json.iter()
        .map(|(name, value)| {
            let value = match value {
                serde_json::Value::Bool(b) => Value::Boolean(*b),
                serde_json::Value::String(s) => Value::Text(s.clone()),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
                },
                other => {
                    return Err(format!(
                        "attribute {name:?}: expected a number, boolean or string, got {other}"
                    ));
                }
            };
            Ok((name.clone(), value))
        })
        .collect()
}
