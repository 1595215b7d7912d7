//! The set of proxies and their faults, with Toxiproxy's semantics.
//!
//! This is what the control API and the config file drive. Every change is
//! validated completely before anything is touched, so a bad request changes
//! nothing. Changes are serialized by one lock that the data path never
//! takes: connections only ever see a proxy's chain through its watch channel.
//!
//! The rooms: `spec` (the API's bodies), `error` (why an operation was
//! refused, with its status), and the operations on `proxies`, `toxics` and
//! `plugins`, each an `impl Registry` of its own.

mod error;
mod plugins;
mod proxies;
mod spec;
mod toxics;

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::Mutex;

pub use error::ControlError;
pub use spec::{DEFAULT_LISTEN, ProxySpec, ToxicSpec, deserialize_mode};

use crate::listener::Proxy;
use crate::plugin_host::PluginHost;

pub struct Registry {
    host: Arc<PluginHost>,
    seed: u64,
    proxies: Mutex<BTreeMap<String, Arc<Proxy>>>,
}

impl Registry {
    pub fn new(host: Arc<PluginHost>, seed: u64) -> Self {
        Self {
            host,
            seed,
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
