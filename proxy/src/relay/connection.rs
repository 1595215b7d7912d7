//! One client connection: finish the TLS handshake if the listener
//! terminates TLS, connect the far side (the upstream in `tcp` mode, the
//! HTTP layer in `http` mode), run a pump each way, and end the connection
//! the way a fault (or the proxy) asked.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::Stats;
use super::postgres::{PostgresTls, StartupGate};
use super::pump::{PgPump, Pump};
use super::stream::{Endpoint, Stream};
use super::upstream::Upstream;
use crate::faults::Chain;
use crate::http::{self, Forwarder};
use crate::plugin_host::{ConnContext, Direction};

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much the pipe between the pumps and the HTTP layer buffers.
const HTTP_PIPE_SIZE: usize = 64 * 1024;

/// How a connection ends when something ends it early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// FIN to both peers.
    Close,
    /// RST to both peers.
    Reset,
}

/// Returned by everything that stops because the connection is ending.
#[derive(Debug)]
pub(crate) struct Ended;

/// What both directions of a connection (and its HTTP layer) share.
pub(crate) struct ConnShared {
    pub cancel: CancellationToken,
    ending: OnceLock<Ending>,
}

impl ConnShared {
    /// How the connection is ending, once something ended it.
    pub fn ending(&self) -> Option<Ending> {
        self.ending.get().copied()
    }

    /// Ends the connection; the first reason given wins.
    pub fn end(&self, how: Ending) -> Ended {
        let _ = self.ending.set(how);
        self.cancel.cancel();
        Ended
    }
}

/// Everything a connection needs from its proxy, as it was at accept.
pub(super) struct ConnSetup {
    pub id: u64,
    pub proxy: String,
    pub tls: Option<TlsAcceptor>,
    pub upstream: Arc<Upstream>,
    /// In `http` mode, the HTTP layer's way to the upstream.
    pub forwarder: Option<Forwarder>,
    /// In `postgres` mode, what to do when a client asks for TLS.
    pub postgres: Option<PostgresTls>,
    pub seed: u64,
    pub chain: watch::Receiver<Arc<Chain>>,
    pub cancel: CancellationToken,
    pub stats: Arc<Stats>,
}

pub(super) async fn serve(client: TcpStream, peer: SocketAddr, setup: ConnSetup) {
    let stats = setup.stats.clone();
    stats.connections_total.inc();
    stats.connections_open.inc();
    connect(client, peer, setup).await;
    stats.connections_open.dec();
}

async fn connect(client: TcpStream, peer: SocketAddr, setup: ConnSetup) {
    let _ = client.set_nodelay(true);
    // Until the pumps run, closing the proxy just drops the sockets.
    let cancel = setup.cancel.clone();
    let accepted = tokio::select! {
        _ = cancel.cancelled() => return,
        accepted = accept_tls(client, peer, &setup) => accepted,
    };
    let Some(client) = accepted else { return };
    let shared = Arc::new(ConnShared {
        cancel: setup.cancel.clone(),
        ending: OnceLock::new(),
    });
    match setup.forwarder.clone() {
        Some(forwarder) => {
            let (outer, inner) = tokio::io::duplex(HTTP_PIPE_SIZE);
            let layer = http::HttpConn::new(
                setup.id,
                setup.proxy.clone(),
                peer,
                setup.seed,
                setup.chain.clone(),
                setup.stats.clone(),
                forwarder,
                shared.clone(),
            );
            tokio::spawn(http::serve(inner, layer));
            relay(client, outer, peer, &setup, shared).await;
        }
        None => {
            let dialed = tokio::select! {
                _ = cancel.cancelled() => return,
                dialed = setup.upstream.dial() => dialed,
            };
            match dialed {
                Ok(upstream) => relay(client, upstream, peer, &setup, shared).await,
                Err(error) => {
                    tracing::warn!(proxy = %setup.proxy, "{error}; closing the client connection");
                }
            }
        }
    }
}

/// The client's stream: TLS once its handshake is done, when the listener
/// terminates TLS.
async fn accept_tls(client: TcpStream, peer: SocketAddr, setup: &ConnSetup) -> Option<Stream> {
    Some(match &setup.tls {
        None => Stream::Plain(client),
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await {
                Ok(Ok(tls)) => Stream::Tls(Box::new(tls.into())),
                Ok(Err(error)) => {
                    tracing::info!(proxy = %setup.proxy, %peer, %error, "TLS handshake with the client failed");
                    return None;
                }
                Err(_) => {
                    tracing::info!(proxy = %setup.proxy, %peer, "client did not finish its TLS handshake within {HANDSHAKE_TIMEOUT:?}");
                    return None;
                }
            }
        }
    })
}

/// Runs the two pumps until both ends are done, or a fault or the proxy
/// ends the connection.
async fn relay<U: Endpoint>(
    client: Stream,
    upstream: U,
    peer: SocketAddr,
    setup: &ConnSetup,
    shared: Arc<ConnShared>,
) {
    tracing::debug!(proxy = %setup.proxy, conn = setup.id, %peer, "connection open");
    let context = |stream| ConnContext {
        id: setup.id,
        proxy: setup.proxy.clone(),
        client: peer.to_string(),
        upstream: setup.upstream.text().to_owned(),
        stream,
        random_seed: 0,
    };
    let pump = |direction, pg| {
        Pump::new(
            direction,
            shared.clone(),
            context(direction),
            setup.seed,
            setup.stats.clone(),
            setup.chain.clone(),
            pg,
        )
    };
    let (pg_up, pg_down) = match setup.postgres {
        Some(tls) => {
            let (up, down) = PgPump::pair(StartupGate::new(tls));
            (Some(up), Some(down))
        }
        None => (None, None),
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut upstream_read, mut upstream_write) = upstream.split();
    let mut up = pump(Direction::Upstream, pg_up);
    let mut down = pump(Direction::Downstream, pg_down);

    // Each direction in its own task, so the two can use both cores.
    let upstream_task = tokio::spawn(async move {
        let result = up.run(&mut client_read, &mut upstream_write).await;
        (result, client_read, upstream_write)
    });
    let down_result = down.run(&mut upstream_read, &mut client_write).await;
    let Ok((up_result, client_read, upstream_write)) = upstream_task.await else {
        return;
    };

    if up_result.is_err() || down_result.is_err() {
        let how = shared.ending.get().copied().unwrap_or(Ending::Close);
        tokio::join!(
            Stream::finish(client_read, client_write, how),
            U::finish(upstream_read, upstream_write, how),
        );
        tracing::debug!(proxy = %setup.proxy, conn = setup.id, ?how, "connection ended by the proxy");
    } else {
        tracing::debug!(proxy = %setup.proxy, conn = setup.id, "connection closed by its peers");
    }
}
