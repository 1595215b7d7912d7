//! A proxy's listening socket, apart from the proxy: binding is the part of
//! starting a proxy that can fail, so the registry binds every socket an
//! operation needs before it changes anything, and a proxy replaced on the
//! same address hands its socket to its replacement instead of letting the
//! port go (where another process could take it).

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use super::ListenError;

/// A socket bound and listening, that no proxy may be accepting on yet.
/// Clones are the same socket; it closes when the last one goes.
#[derive(Clone)]
pub struct Bound {
    pub(super) listener: Arc<TcpListener>,
    addr: SocketAddr,
}

impl Bound {
    /// Binds `listen` (an address, or a name and a port).
    pub async fn bind(listen: &str) -> Result<Self, ListenError> {
        let error = |error| ListenError::Bind {
            listen: listen.to_owned(),
            error,
        };
        let listener = TcpListener::bind(listen).await.map_err(error)?;
        let addr = listener.local_addr().map_err(error)?;
        Ok(Self {
            listener: Arc::new(listener),
            addr,
        })
    }

    /// The address actually bound (port 0 reads back as the one picked).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn is(&self, other: &Bound) -> bool {
        Arc::ptr_eq(&self.listener, &other.listener)
    }
}

/// The addresses `listen` stands for: itself, or what its name resolves to.
pub async fn resolve(listen: &str) -> Result<Vec<SocketAddr>, ListenError> {
    let error = |error| ListenError::Bind {
        listen: listen.to_owned(),
        error,
    };
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(error)?
        .collect();
    if addrs.is_empty() {
        return Err(error(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the name resolves to no address",
        )));
    }
    Ok(addrs)
}
