//! The set of proxies and their faults, with Toxiproxy's semantics.
//!
//! This is what the control API and the config file drive. Every change is
//! validated completely before anything is touched, so a bad request changes
//! nothing. Changes are serialized by one lock that the data path never
//! takes: connections only ever see a proxy's chain through its watch channel.
//!
//! The rooms: `spec` (the API's bodies), `error` (why an operation was
//! refused, with its status), `listen` (where a proxy may listen, and the
//! sockets an operation binds before it changes anything), and the
//! operations on `proxies` (`populate` apart), `toxics` and `plugins`, each
//! an `impl Registry` of its own.

mod error;
mod lenient;
mod listen;
mod plugins;
mod populate;
mod proxies;
mod spec;
mod toxics;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

pub use error::ControlError;
pub use listen::ApiListen;
pub use spec::{DEFAULT_LISTEN, ProxySpec, ToxicSpec, deserialize_mode};

use crate::listener::Proxy;
use crate::plugin_host::PluginHost;

pub struct Registry {
    host: Arc<PluginHost>,
    seed: u64,
    /// Where proxies made or moved through the API may listen.
    api_listen: ApiListen,
    /// `--strict-toxics`: refuse what Toxiproxy takes and faultgate would
    /// otherwise read with a warning (see `lenient`).
    strict_toxics: bool,
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
}

impl Registry {
    pub fn new(host: Arc<PluginHost>, seed: u64, api_listen: ApiListen) -> Self {
        Self {
            host,
            seed,
            api_listen,
            strict_toxics: false,
            proxies: Mutex::new(BTreeMap::new()),
        }
    }

    /// Refuse toxics that Toxiproxy would take but that name an attribute
    /// the plugin does not have, or give a value out of its range, instead
    /// of reading them as Toxiproxy does with a warning.
    pub fn with_strict_toxics(mut self, strict: bool) -> Self {
        self.strict_toxics = strict;
        self
    }

    pub fn plugins(&self) -> &Arc<PluginHost> {
        &self.host
    }

    pub async fn list(&self) -> Vec<Arc<Proxy>> {
        self.proxies.lock().await.values().cloned().collect()
    }

    pub async fn get(&self, name: &str) -> Result<Arc<Proxy>, ControlError> {
        self.proxies
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or(ControlError::ProxyNotFound)
    }
}
