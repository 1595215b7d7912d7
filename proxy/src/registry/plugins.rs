//! Plugin operations: upload (replacing a plugin of the same name, its
//! faults rebound) and delete.

use std::sync::Arc;

use super::Registry;
use super::error::ControlError;
use crate::faults::Chain;
use crate::listener::Proxy;
use crate::plugin_host::{Plugin, PluginError, PluginSource, sha256_hex};

impl Registry {
    /// Loads a plugin sent as component bytes (`POST /plugins`). A plugin of
    /// the same name is replaced: faults using it are rebound to the new
    /// version, which new connections get, while connections already open
    /// keep the old one until they close. If the new version rejects the
    /// attributes of a fault in use, nothing changes.
    pub async fn upload_plugin(&self, bytes: &[u8]) -> Result<Arc<Plugin>, ControlError> {
        let sha256 = sha256_hex(bytes);
        let plugin = self
            .host
            .compile("uploaded plugin", bytes, PluginSource::Upload { sha256 })
            .await
            .map_err(|e| ControlError::BadPlugin(e.to_string()))?;
        let proxies = self.proxies.lock().await;
        let rebound = match self.rebind(&plugin, proxies.values()).await {
            Ok(rebound) => rebound,
            Err(refused) => {
                // Refused: its compiled code is not kept for a next start.
                self.host.discard(bytes);
                return Err(refused);
            }
        };
        if let Some(old) = self.host.install(plugin.clone()) {
            tracing::info!(plugin = plugin.name(), previous = %old.description().version, version = %plugin.description().version, "plugin replaced");
        } else {
            tracing::info!(plugin = plugin.name(), "plugin uploaded");
        }
        for (proxy, chain) in rebound {
            proxy.set_chain(chain);
        }
        Ok(plugin)
    }

    /// The chains of the proxies whose faults use a plugin of `plugin`'s
    /// name, with those faults rebound to `plugin`; refused if it rejects
    /// the attributes of one of them. Nothing changes.
    async fn rebind(
        &self,
        plugin: &Arc<Plugin>,
        proxies: impl Iterator<Item = &Arc<Proxy>>,
    ) -> Result<Vec<(Arc<Proxy>, Chain)>, ControlError> {
        let mut rebound = Vec::new();
        for proxy in proxies {
            let mut chain = (*proxy.chain()).clone();
            let mut uses = false;
            for fault in chain
                .faults
                .iter_mut()
                .filter(|f| f.plugin.name() == plugin.name())
            {
                plugin
                    .validate(&fault.contract_attributes)
                    .await
                    .map_err(|e| ControlError::ReplacementRejects {
                        plugin: plugin.name().to_owned(),
                        proxy: proxy.name().to_owned(),
                        toxic: fault.name.clone(),
                        reason: match e {
                            PluginError::Refused { reason, .. } => reason,
                            other => other.to_string(),
                        },
                    })?;
                *fault = Arc::new(fault.rebind(plugin.clone(), self.seed).await.map_err(|e| {
                    ControlError::ReplacementRejects {
                        plugin: plugin.name().to_owned(),
                        proxy: proxy.name().to_owned(),
                        toxic: fault.name.clone(),
                        reason: e.to_string(),
                    }
                })?);
                uses = true;
            }
            if uses {
                rebound.push((proxy.clone(), chain));
            }
        }
        Ok(rebound)
    }

    /// Unloads a plugin, unless a fault uses it.
    pub async fn delete_plugin(&self, name: &str) -> Result<(), ControlError> {
        let proxies = self.proxies.lock().await;
        self.host.get(name).ok_or(ControlError::PluginNotFound)?;
        for proxy in proxies.values() {
            if let Some(fault) = proxy
                .chain()
                .faults
                .iter()
                .find(|f| f.plugin.name() == name)
            {
                return Err(ControlError::PluginInUse {
                    plugin: name.to_owned(),
                    proxy: proxy.name().to_owned(),
                    toxic: fault.name.clone(),
                });
            }
        }
        self.host.remove(name);
        tracing::info!(plugin = name, "plugin removed");
        Ok(())
    }
}
