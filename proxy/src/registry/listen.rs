//! Where a proxy may listen, and the sockets an operation needs, got before
//! it changes anything.
//!
//! Through the control API a proxy listens on loopback only, unless
//! `faultgate serve` was told otherwise ([`ApiListen::Anywhere`]): one call
//! must not expose to the network an upstream that trusts loopback (a
//! Postgres that trusts 127.0.0.1). A config file is the operator's own and
//! may listen anywhere.
//!
//! Binding is the part of an operation that can fail (an address in use),
//! so every socket is bound before anything changes. A proxy that keeps its
//! address keeps its socket, or hands it to its replacement. A socket whose
//! port is held by a proxy the same operation stops listening (a proxy moved
//! between two addresses of one port, a port passed from one proxy to
//! another) is bound once that proxy let go of it, and if it still cannot
//! be, that proxy gets its own socket back.

use std::net::SocketAddr;
use std::sync::Arc;

use super::error::ControlError;
use crate::listener::{Bound, ListenError, Proxy, resolve};

/// Where proxies made or moved through the control API may listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiListen {
    /// On loopback only (127.0.0.0/8, ::1): the default.
    LoopbackOnly,
    /// On any address (`faultgate serve --allow-non-loopback-listen`).
    Anywhere,
}

/// Who gives a proxy its listen address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Giver {
    Api,
    ConfigFile,
}

/// Checks a listen address a proxy is given (made with it, or moved to it):
/// that it is an address, and, from the API, that it is on loopback unless
/// the opt-in allows any.
pub(super) async fn check_listen(
    listen: &str,
    giver: Giver,
    policy: ApiListen,
) -> Result<(), ControlError> {
    let addrs = resolve(listen).await?;
    let beyond_loopback = addrs.iter().find(|a| !a.ip().is_loopback());
    match beyond_loopback {
        Some(addr) if giver == Giver::Api && policy == ApiListen::LoopbackOnly => {
            Err(ControlError::NotLoopback {
                listen: listen.to_owned(),
                addr: *addr,
            })
        }
        _ => Ok(()),
    }
}

/// Whether `listen` names the address a proxy has now (`current`: the
/// address it bound, or the one it was given and has not bound yet).
pub(super) async fn names(listen: &str, current: &str) -> bool {
    if listen == current {
        return true;
    }
    match current.parse::<SocketAddr>() {
        // Port 0 is a new port at every bind, never the same one.
        Ok(addr) if addr.port() != 0 => resolve(listen)
            .await
            .is_ok_and(|addrs| addrs.contains(&addr)),
        _ => false,
    }
}

/// A socket an operation needs.
pub(super) enum Socket {
    Ready(Bound),
    /// The port of `listen` is held by `holder`, a proxy the operation
    /// stops listening: bound by [`bind_after_release`].
    AfterRelease {
        listen: String,
        holder: Arc<Proxy>,
    },
}

/// Binds `listen`, unless its port is held by one of `released` (proxies the
/// operation stops listening), which must let go of it first.
pub(super) async fn bind_or_wait(
    listen: &str,
    released: &[Arc<Proxy>],
) -> Result<Socket, ControlError> {
    let refused = match Bound::bind(listen).await {
        Ok(bound) => return Ok(Socket::Ready(bound)),
        Err(refused) => refused,
    };
    let ListenError::Bind { error, .. } = &refused;
    if error.kind() != std::io::ErrorKind::AddrInUse {
        return Err(refused.into());
    }
    let ports: Vec<u16> = resolve(listen).await?.iter().map(|a| a.port()).collect();
    let holder = released.iter().find(|proxy| {
        proxy
            .bound()
            .is_some_and(|bound| ports.contains(&bound.addr().port()))
    });
    match holder {
        Some(holder) => Ok(Socket::AfterRelease {
            listen: listen.to_owned(),
            holder: holder.clone(),
        }),
        None => Err(refused.into()),
    }
}

/// Binds sockets that wait on proxies letting go of their ports (each
/// `(listen, holder)` of a [`Socket::AfterRelease`]): those proxies stop
/// listening (their connections stay open), then every socket is bound, in
/// order. If one cannot be, the proxies listen again where they did and the
/// error is returned: nothing changed.
pub(super) async fn bind_after_release(
    waiting: Vec<(String, Arc<Proxy>)>,
) -> Result<Vec<Bound>, ControlError> {
    let mut released: Vec<(Arc<Proxy>, SocketAddr)> = Vec::new();
    for (_, holder) in &waiting {
        if released.iter().any(|(p, _)| Arc::ptr_eq(p, holder)) {
            continue;
        }
        if let Some(addr) = holder.bound().map(|bound| bound.addr()) {
            holder.stop_listening().await;
            released.push((holder.clone(), addr));
        }
    }
    let mut bound = Vec::new();
    for (listen, _) in &waiting {
        match Bound::bind(listen).await {
            Ok(socket) => bound.push(socket),
            Err(refused) => {
                drop(bound);
                for (proxy, addr) in released {
                    match Bound::bind(&addr.to_string()).await {
                        Ok(socket) => proxy.start_on(socket),
                        // Only if another process took the port in the
                        // moment it was free.
                        Err(error) => tracing::error!(
                            proxy = proxy.name(),
                            %error,
                            "a refused change could not give the proxy its listener back; it is disabled"
                        ),
                    }
                }
                return Err(refused.into());
            }
        }
    }
    Ok(bound)
}
