//! Toxiproxy's `POST /populate`: proxies created or replaced from a list,
//! all or none. Every entry is checked, its faults made and its socket bound
//! (a replaced proxy on the same address hands its socket over) before any
//! proxy changes; Toxiproxy itself keeps the proxy whose replacement failed,
//! and here nothing at all changes.

use std::sync::Arc;

use super::Registry;
use super::error::ControlError;
use super::listen::{Giver, Socket, bind_after_release, bind_or_wait, check_listen, names};
use super::spec::{DEFAULT_LISTEN, ProxySpec, required};
use crate::listener::{Bound, Proxy};

/// What one entry comes to.
enum Planned {
    /// Listen, upstream and settings unchanged: left alone, with its faults
    /// and connections.
    Keep(Arc<Proxy>),
    Make(Made),
}

/// A proxy made for an entry, not yet in the registry.
struct Made {
    proxy: Arc<Proxy>,
    listen: String,
    enabled: bool,
    replaces: Option<Arc<Proxy>>,
    /// The socket it will accept on, if enabled.
    socket: Option<Bound>,
}

impl Registry {
    /// Creates or replaces proxies from a list. A proxy whose listen and
    /// upstream (and mode and TLS settings) are unchanged is left alone,
    /// with its faults and connections, so populating twice is harmless.
    /// A proxy named twice is refused. On a refusal nothing changed, and no
    /// proxy is returned with the error.
    pub async fn populate(&self, specs: Vec<ProxySpec>) -> (Vec<Arc<Proxy>>, Option<ControlError>) {
        match self.populate_all(specs).await {
            Ok(done) => (done, None),
            Err(error) => (Vec::new(), Some(error)),
        }
    }

    async fn populate_all(&self, specs: Vec<ProxySpec>) -> Result<Vec<Arc<Proxy>>, ControlError> {
        let mut entries: Vec<(String, String)> = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let (name, upstream) = required(spec, &format!(" at proxy {}", i + 1))?;
            if let Some(first) = entries.iter().position(|(n, _)| *n == name) {
                return Err(ControlError::BadRequest(format!(
                    "proxy {name:?} is given twice, at proxies {} and {}",
                    first + 1,
                    i + 1
                )));
            }
            entries.push((name, upstream));
        }
        let mut proxies = self.proxies.lock().await;

        // What each entry comes to, checked completely: nothing changes.
        let mut plan = Vec::new();
        for (spec, (name, upstream)) in specs.iter().zip(entries) {
            let existing = proxies.get(&name).cloned();
            let listen = spec.listen.clone().filter(|l| !l.is_empty());
            let same_listen = match (&existing, &listen) {
                (None, _) => false,
                (Some(_), None) => true,
                (Some(existing), Some(listen)) => names(listen, &existing.listen()).await,
            };
            if let Some(existing) = &existing {
                let same_endpoints = spec.mode.unwrap_or_default() == existing.mode()
                    && spec.tls == existing.tls()
                    && spec.upstream_tls == existing.upstream_tls()
                    && spec
                        .postgres_tls
                        .is_none_or(|t| Some(t) == existing.postgres_tls());
                if same_listen && existing.upstream() == upstream && same_endpoints {
                    plan.push(Planned::Keep(existing.clone()));
                    continue;
                }
            }
            // A replacement given no address keeps its predecessor's.
            let listen = match (&existing, listen) {
                (Some(existing), _) if same_listen => existing.listen(),
                (_, Some(listen)) => listen,
                (_, None) => DEFAULT_LISTEN.into(),
            };
            if !same_listen {
                check_listen(&listen, Giver::Api, self.api_listen).await?;
            }
            let enabled = spec.enabled.unwrap_or(true);
            let proxy = self
                .prepare(spec, name, upstream, listen.clone(), Giver::Api)
                .await?;
            let socket = match &existing {
                Some(existing) if same_listen && enabled => existing.bound(),
                _ => None,
            };
            plan.push(Planned::Make(Made {
                proxy,
                listen,
                enabled,
                replaces: existing,
                socket,
            }));
        }

        // The sockets still to bind. Replaced proxies that do not hand their
        // socket over let go of it: a port one of them holds waits for that.
        let released: Vec<Arc<Proxy>> = plan
            .iter()
            .filter_map(|planned| match planned {
                Planned::Make(Made {
                    replaces: Some(old),
                    socket: None,
                    ..
                }) if old.enabled() => Some(old.clone()),
                _ => None,
            })
            .collect();
        let mut waiting = Vec::new();
        for (i, planned) in plan.iter_mut().enumerate() {
            let Planned::Make(made) = planned else {
                continue;
            };
            if !made.enabled || made.socket.is_some() {
                continue;
            }
            match bind_or_wait(&made.listen, &released).await? {
                Socket::Ready(bound) => made.socket = Some(bound),
                Socket::AfterRelease { listen, holder } => waiting.push((i, listen, holder)),
            }
        }

        // Nothing has changed yet. The waiting sockets are bound first: if
        // one cannot be, the proxies that let go listen again, and nothing
        // changed.
        if !waiting.is_empty() {
            let at: Vec<usize> = waiting.iter().map(|(i, _, _)| *i).collect();
            let bound = bind_after_release(
                waiting
                    .into_iter()
                    .map(|(_, listen, holder)| (listen, holder))
                    .collect(),
            )
            .await?;
            for (i, socket) in at.into_iter().zip(bound) {
                if let Planned::Make(made) = &mut plan[i] {
                    made.socket = Some(socket);
                }
            }
        }

        // From here on nothing fails.
        let mut done = Vec::new();
        for planned in plan {
            match planned {
                Planned::Keep(proxy) => done.push(proxy),
                Planned::Make(made) => {
                    if let Some(old) = made.replaces {
                        old.stop().await;
                    }
                    proxies.insert(made.proxy.name().to_owned(), made.proxy.clone());
                    if let Some(socket) = made.socket {
                        made.proxy.start_on(socket);
                    }
                    done.push(made.proxy);
                }
            }
        }
        Ok(done)
    }
}
