//! One client connection: dial the upstream, run a pump each way, and end
//! the connection the way a fault (or the proxy) asked.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Stats;
use super::pump::Pump;
use crate::faults::Chain;
use crate::plugin_host::{ConnContext, Direction};

/// How long dialing the upstream may take before the client is let go.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How a connection ends when something ends it early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    /// FIN to both peers.
    Close,
    /// RST to both peers.
    Reset,
}

/// Returned by everything that stops because the connection is ending.
#[derive(Debug)]
pub(super) struct Ended;

/// What both directions of a connection share.
pub(super) struct ConnShared {
    pub cancel: CancellationToken,
    ending: OnceLock<Ending>,
}

impl ConnShared {
    /// Ends the connection; the first reason given wins.
    pub fn end(&self, how: Ending) -> Ended {
        let _ = self.ending.set(how);
        self.cancel.cancel();
        Ended
    }
}

/// Everything a connection needs from its proxy.
pub(super) struct ConnSetup {
    pub id: u64,
    pub proxy: String,
    pub upstream: String,
    pub seed: u64,
    pub chain: watch::Receiver<Arc<Chain>>,
    pub cancel: CancellationToken,
    pub stats: Arc<Stats>,
}

pub(super) async fn serve(client: TcpStream, peer: SocketAddr, setup: ConnSetup) {
    let stats = setup.stats.clone();
    stats.connections_total.inc();
    stats.connections_open.inc();
    relay(client, peer, setup).await;
    stats.connections_open.dec();
}

async fn relay(client: TcpStream, peer: SocketAddr, setup: ConnSetup) {
    let dial = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&setup.upstream));
    let upstream = tokio::select! {
        _ = setup.cancel.cancelled() => return,
        dialed = dial => match dialed {
            Ok(Ok(upstream)) => upstream,
            Ok(Err(error)) => {
                tracing::warn!(proxy = %setup.proxy, upstream = %setup.upstream, %error, "upstream unreachable; closing the client connection");
                return;
            }
            Err(_) => {
                tracing::warn!(proxy = %setup.proxy, upstream = %setup.upstream, "upstream did not answer within {CONNECT_TIMEOUT:?}; closing the client connection");
                return;
            }
        },
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    tracing::debug!(proxy = %setup.proxy, conn = setup.id, %peer, "connection open");

    let shared = Arc::new(ConnShared {
        cancel: setup.cancel.clone(),
        ending: OnceLock::new(),
    });
    let context = |stream| ConnContext {
        id: setup.id,
        proxy: setup.proxy.clone(),
        client: peer.to_string(),
        upstream: setup.upstream.clone(),
        stream,
        random_seed: 0,
    };
    let pump = |direction| {
        Pump::new(
            direction,
            shared.clone(),
            context(direction),
            setup.seed,
            setup.stats.clone(),
            setup.chain.clone(),
        )
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let mut up = pump(Direction::Upstream);
    let mut down = pump(Direction::Downstream);

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
        let client = client_read
            .reunite(client_write)
            .expect("halves of one socket");
        let upstream = upstream_read
            .reunite(upstream_write)
            .expect("halves of one socket");
        finish(client, how).await;
        finish(upstream, how).await;
        tracing::debug!(proxy = %setup.proxy, conn = setup.id, ?how, "connection ended by the proxy");
    } else {
        tracing::debug!(proxy = %setup.proxy, conn = setup.id, "connection closed by its peers");
    }
}

async fn finish(mut stream: TcpStream, how: Ending) {
    match how {
        // A zero linger makes close() send RST and discard unsent data.
        Ending::Reset => {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
        }
        Ending::Close => {
            let _ = stream.shutdown().await;
        }
    }
}
