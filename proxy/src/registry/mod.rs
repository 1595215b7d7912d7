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
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
}

impl Registry {
    pub fn new(host: Arc<PluginHost>, seed: u64, api_listen: ApiListen) -> Self {
        Self {
            host,
            seed,
            api_listen,
            proxies: Mutex::new(BTreeMap::new()),
        }
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
