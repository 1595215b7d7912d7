//! Proxy operations: create, update, delete and reset (populate is in
//! `populate`). Each checks everything and binds the sockets it needs
//! before it changes anything, so a refusal leaves every proxy, its
//! listener and its connections as they were.

use std::sync::Arc;

use super::Registry;
use super::error::ControlError;
use super::listen::{Giver, Socket, bind_after_release, bind_or_wait, check_listen, names};
use super::spec::{DEFAULT_LISTEN, ProxySpec, required};
use crate::faults::Chain;
use crate::listener::{Bound, Endpoints, Proxy};

impl Registry {
    /// Creates a proxy and, unless `enabled` is false, starts it listening.
    pub async fn create(&self, spec: ProxySpec) -> Result<Arc<Proxy>, ControlError> {
        self.create_as(spec, Giver::Api).await
    }

    /// Creates a proxy of the config file read at start-up, which may listen
    /// on any address.
    pub async fn create_from_config_file(
        &self,
        spec: ProxySpec,
    ) -> Result<Arc<Proxy>, ControlError> {
        self.create_as(spec, Giver::ConfigFile).await
    }

    async fn create_as(&self, spec: ProxySpec, giver: Giver) -> Result<Arc<Proxy>, ControlError> {
        let mut proxies = self.proxies.lock().await;
        let (name, upstream) = required(&spec, "")?;
        if proxies.contains_key(&name) {
            return Err(ControlError::ProxyExists);
        }
        let listen = spec
            .listen
            .clone()
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| DEFAULT_LISTEN.into());
        check_listen(&listen, giver, self.api_listen).await?;
        let proxy = self
            .prepare(&spec, name.clone(), upstream, listen.clone(), giver)
            .await?;
        if spec.enabled.unwrap_or(true) {
            proxy.start_on(Bound::bind(&listen).await?);
        }
        proxies.insert(name, proxy.clone());
        Ok(proxy)
    }

    /// Makes a proxy from a spec, with its faults, checking everything; it
    /// does not listen yet. Nothing changes: the caller decides. `giver`:
    /// a config file's toxics are read strictly, the API's as Toxiproxy
    /// reads them unless `--strict-toxics`.
    pub(super) async fn prepare(
        &self,
        spec: &ProxySpec,
        name: String,
        upstream: String,
        listen: String,
        giver: Giver,
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
            let fault = self.fault(toxic.clone(), &chain, mode, giver).await?;
            chain.faults.push(Arc::new(fault));
        }
        let proxy = Proxy::new(name, mode, listen, endpoints, self.seed);
        proxy.set_chain(chain);
        Ok(proxy)
    }

    /// Changes a proxy's listen address, upstream, TLS settings or enabled
    /// state. Everything is checked, and the socket it is to listen on
    /// bound, before anything changes.
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
        // A new address, unless it names the one the proxy has.
        let moved_to = match spec.listen.filter(|l| !l.is_empty()) {
            Some(listen) if !names(&listen, &proxy.listen()).await => Some(listen),
            _ => None,
        };
        if let Some(listen) = &moved_to {
            check_listen(listen, Giver::Api, self.api_listen).await?;
        }
        let listening = proxy.enabled();
        let enable = spec.enabled.unwrap_or(listening);
        let socket = match (&moved_to, enable) {
            (_, false) => None,
            (None, true) if listening => None,
            (None, true) => Some(bind_or_wait(&proxy.listen(), &[]).await?),
            (Some(listen), true) if listening => {
                Some(bind_or_wait(listen, std::slice::from_ref(&proxy)).await?)
            }
            (Some(listen), true) => Some(bind_or_wait(listen, &[]).await?),
        };
        // Nothing has changed yet. A socket on the port the proxy holds is
        // bound once it let go, and if it cannot be, the proxy gets its own
        // back and nothing changed.
        let socket = match socket {
            None => None,
            Some(Socket::Ready(bound)) => Some(bound),
            Some(Socket::AfterRelease { listen, holder }) => {
                bind_after_release(vec![(listen, holder)]).await?.pop()
            }
        };
        // From here on nothing fails.
        if let Some(endpoints) = endpoints {
            proxy.set_endpoints(endpoints);
        }
        match socket {
            Some(bound) => {
                // Moved (its old listener and connections close, as
                // Toxiproxy's do) or started.
                proxy.stop().await;
                proxy.start_on(bound);
            }
            None => {
                if listening && !enable {
                    proxy.stop().await;
                }
                if let Some(listen) = moved_to {
                    proxy.set_listen(listen);
                }
            }
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

    /// Toxiproxy's `POST /reset`: every proxy enabled, every fault removed.
    /// The disabled proxies' sockets are bound first, so a port taken
    /// meanwhile refuses the whole reset before any fault is removed.
    pub async fn reset(&self) -> Result<(), ControlError> {
        let proxies = self.proxies.lock().await;
        let mut sockets = Vec::new();
        for proxy in proxies.values().filter(|p| !p.enabled()) {
            sockets.push((proxy, Bound::bind(&proxy.listen()).await?));
        }
        for (proxy, bound) in sockets {
            proxy.start_on(bound);
        }
        for proxy in proxies.values() {
            proxy.set_chain(Chain::default());
        }
        Ok(())
    }
}
