//! Proxy operations: create, update, delete, populate and reset.

use std::sync::Arc;

use super::Registry;
use super::error::ControlError;
use super::spec::{DEFAULT_LISTEN, ProxySpec};
use crate::faults::Chain;
use crate::listener::{Endpoints, Proxy};

impl Registry {
    /// Creates a proxy and, unless `enabled` is false, starts it listening.
    pub async fn create(&self, spec: ProxySpec) -> Result<Arc<Proxy>, ControlError> {
        let mut proxies = self.proxies.lock().await;
        let (name, upstream) = required(&spec, "")?;
        if proxies.contains_key(&name) {
            return Err(ControlError::ProxyExists);
        }
        let proxy = self.build(&spec, name.clone(), upstream).await?;
        proxies.insert(name, proxy.clone());
        Ok(proxy)
    }

    /// Makes a proxy from a checked spec, attaches its faults and starts it.
    async fn build(
        &self,
        spec: &ProxySpec,
        name: String,
        upstream: String,
    ) -> Result<Arc<Proxy>, ControlError> {
        let mode = spec.mode.unwrap_or_default();
        let endpoints = Endpoints::prepare(
            mode,
            &upstream,
            spec.upstream_tls.clone(),
            spec.tls.clone(),
            spec.postgres_tls,
        )?;
        let mut chain = Chain::default();
        for toxic in spec.toxics.iter().flatten() {
            let fault = self.fault(toxic.clone(), &chain, mode).await?;
            chain.faults.push(Arc::new(fault));
        }
        let listen = spec.listen.clone().unwrap_or_else(|| DEFAULT_LISTEN.into());
        let proxy = Proxy::new(name, mode, listen, endpoints, self.seed);
        proxy.set_chain(chain);
        if spec.enabled.unwrap_or(true) {
            proxy.start().await?;
        }
        Ok(proxy)
    }

    /// Changes a proxy's listen address, upstream, TLS settings or enabled
    /// state. Everything is checked before anything changes.
    pub async fn update(&self, name: &str, spec: ProxySpec) -> Result<Arc<Proxy>, ControlError> {
        let proxies = self.proxies.lock().await;
        let proxy = proxies
            .get(name)
            .ok_or(ControlError::ProxyNotFound)?
            .clone();
        if spec.mode.is_some_and(|mode| mode != proxy.mode()) {
            return Err(ControlError::ModeChange {
                proxy: name.to_owned(),
                mode: proxy.mode(),
            });
        }
        let upstream = spec.upstream.filter(|u| !u.is_empty());
        let changes_endpoints = upstream.is_some()
            || spec.tls.is_some()
            || spec.upstream_tls.is_some()
            || spec.postgres_tls.is_some();
        let endpoints = if changes_endpoints {
            Some(Endpoints::prepare(
                proxy.mode(),
                &upstream.unwrap_or_else(|| proxy.upstream()),
                spec.upstream_tls.or_else(|| proxy.upstream_tls()),
                spec.tls.or_else(|| proxy.tls()),
                spec.postgres_tls.or_else(|| proxy.postgres_tls()),
            )?)
        } else {
            None
        };
        if let Some(listen) = spec.listen.filter(|l| !l.is_empty()) {
            proxy.set_listen(listen).await?;
        }
        if let Some(endpoints) = endpoints {
            proxy.set_endpoints(endpoints);
        }
        match spec.enabled {
            Some(true) => proxy.start().await?,
            Some(false) => proxy.stop().await,
            None => {}
        }
        Ok(proxy)
    }

    pub async fn delete(&self, name: &str) -> Result<(), ControlError> {
        let proxy = self
            .proxies
            .lock()
            .await
            .remove(name)
            .ok_or(ControlError::ProxyNotFound)?;
        proxy.stop().await;
        Ok(())
    }

    /// Creates or replaces proxies from a list, Toxiproxy's `POST /populate`:
    /// a proxy whose listen and upstream are unchanged is left alone (with its
    /// faults and connections), so populating twice is harmless. Every entry
    /// is checked before any is applied. On a failure part-way the proxies
    /// done so far are returned with the error.
    pub async fn populate(&self, specs: Vec<ProxySpec>) -> (Vec<Arc<Proxy>>, Option<ControlError>) {
        for (i, spec) in specs.iter().enumerate() {
            if let Err(e) = required(spec, &format!(" at proxy {}", i + 1)) {
                return (Vec::new(), Some(e));
            }
        }
        let mut proxies = self.proxies.lock().await;
        let mut done = Vec::new();
        for spec in specs {
            let (name, upstream) = required(&spec, "").expect("checked above");
            if let Some(existing) = proxies.get(&name) {
                let same_listen = spec
                    .listen
                    .as_deref()
                    .is_none_or(|l| l == existing.listen());
                let same_endpoints = spec.mode.unwrap_or_default() == existing.mode()
                    && spec.tls == existing.tls()
                    && spec.upstream_tls == existing.upstream_tls()
                    && spec
                        .postgres_tls
                        .is_none_or(|t| Some(t) == existing.postgres_tls());
                if same_listen && existing.upstream() == upstream && same_endpoints {
                    done.push(existing.clone());
                    continue;
                }
                existing.stop().await;
                proxies.remove(&name);
            }
            match self.build(&spec, name.clone(), upstream).await {
                Ok(proxy) => {
                    proxies.insert(name, proxy.clone());
                    done.push(proxy);
                }
                Err(e) => return (done, Some(e)),
            }
        }
        (done, None)
    }

    /// Toxiproxy's `POST /reset`: every proxy enabled, every fault removed.
    pub async fn reset(&self) -> Result<(), ControlError> {
        for proxy in self.proxies.lock().await.values() {
            proxy.start().await?;
            proxy.set_chain(Chain::default());
        }
        Ok(())
    }
}

/// The name and upstream a create needs; `at` says where, for populate.
fn required(spec: &ProxySpec, at: &str) -> Result<(String, String), ControlError> {
    let name = spec.name.clone().filter(|n| !n.is_empty());
    let upstream = spec.upstream.clone().filter(|u| !u.is_empty());
    match (name, upstream) {
        (None, _) => Err(ControlError::MissingField(format!("name{at}"))),
        (_, None) => Err(ControlError::MissingField(format!("upstream{at}"))),
        (Some(name), Some(upstream)) => Ok((name, upstream)),
    }
}
