//! One accepted client connection: finish the TLS handshake if the listener
//! terminates TLS, connect the far side (the upstream in `tcp` and
//! `postgres` mode, the HTTP layer in `http` mode), and relay between them.
//! This is the one place that decides how a connection is served.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::conn::{Connection, LiveTable, Stats};
use crate::http::{self, Forwarder};
use crate::net::{LimitWarning, Stream, Upstream};
use crate::postgres::{PgSide, PostgresTls};
use crate::relay::{self, Raw};

/// How long a client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How much the pipe between the relay and the HTTP layer buffers.
const HTTP_PIPE_SIZE: usize = 64 * 1024;

/// A connection just accepted, with what its proxy's settings were then.
pub(super) struct Accepted {
    pub conn: Arc<Connection>,
    /// The proxy's open connections, which this one joins while it is served.
    pub table: Arc<LiveTable>,
    pub tls: Option<TlsAcceptor>,
    pub upstream: Arc<Upstream>,
    /// In `http` mode, the HTTP layer's way to the upstream.
    pub forwarder: Option<Forwarder>,
    /// In `postgres` mode, what to do when a client asks for TLS.
    pub postgres: Option<PostgresTls>,
}

impl Accepted {
    pub async fn serve(self, client: TcpStream) {
        let stats = self.conn.stats.clone();
        stats.connections_total.inc();
        stats.connections_open.inc();
        let listed = self.table.insert(self.conn.clone());
        self.connect(client).await;
        drop(listed);
        stats.connections_open.dec();
    }

    async fn connect(self, client: TcpStream) {
        let accepted_at = Instant::now();
        let _ = client.set_nodelay(true);
        // Until the pumps run, closing the proxy just drops the sockets.
        let cancel = self.conn.cancel.clone();
        let accepted = tokio::select! {
            _ = cancel.cancelled() => return,
            accepted = self.accept_tls(client) => accepted,
        };
        let Some(client) = accepted else { return };
        let conn = self.conn;
        if let Some(forwarder) = self.forwarder {
            let (outer, inner) = tokio::io::duplex(HTTP_PIPE_SIZE);
            tokio::spawn(http::serve(
                inner,
                http::HttpConn::new(conn.clone(), forwarder),
            ));
            return relay::relay(client, outer, conn, (Raw, Raw)).await;
        }
        // Dialed once the client's faults are open: one may have asked for
        // the dial to wait (`delay-connect`), counted from the accept.
        let dial = dial_after_delay(self.upstream, conn.clone(), accepted_at);
        match self.postgres {
            Some(tls) => relay::relay_dialing(client, dial, conn, PgSide::pair(tls)).await,
            None => relay::relay_dialing(client, dial, conn, (Raw, Raw)).await,
        }
    }

    /// The client's stream: TLS once its handshake is done, when the listener
    /// terminates TLS.
    async fn accept_tls(&self, client: TcpStream) -> Option<Stream> {
        let Some(acceptor) = &self.tls else {
            return Some(Stream::Plain(client));
        };
        let (proxy, peer) = (&self.conn.proxy, self.conn.client);
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(client)).await {
            Ok(Ok(tls)) => Some(Stream::Tls(Box::new(tls.into()))),
            Ok(Err(error)) => {
                tracing::info!(proxy = %proxy, %peer, %error, "TLS handshake with the client failed");
                None
            }
            Err(_) => {
                tracing::info!(proxy = %proxy, %peer, "client did not finish its TLS handshake within {HANDSHAKE_TIMEOUT:?}");
                None
            }
        }
    }
}

/// Dials `upstream` for `conn`, no sooner than the delay its faults asked
/// for after `accepted_at`; `None` when it cannot (logged), or when the
/// connection is closed meanwhile.
async fn dial_after_delay(
    upstream: Arc<Upstream>,
    conn: Arc<Connection>,
    accepted_at: Instant,
) -> Option<Stream> {
    let delay = conn.requests.connect_delay();
    let dialed = tokio::select! {
        _ = conn.cancel.cancelled() => return None,
        dialed = async {
            if !delay.is_zero() {
                tracing::debug!(proxy = %conn.proxy, conn = conn.id, ?delay, "a fault delays the upstream's dial");
                tokio::time::sleep_until((accepted_at + delay).into()).await;
            }
            upstream.dial().await
        } => dialed,
    };
    match dialed {
        Ok(upstream) => Some(upstream),
        Err(error) if error.out_of_files() => {
            refused_at_file_limit(&conn.proxy, &conn.stats);
            None
        }
        Err(error) => {
            tracing::warn!(proxy = %conn.proxy, "{error}; closing the client connection");
            None
        }
    }
}

/// A connection closed at once because the process was at its open-file
/// limit: when it was accepted, or when its upstream was to be dialed.
/// Counted, and logged at most every few seconds (a flood would log a line
/// per connection).
pub(super) fn refused_at_file_limit(proxy: &str, stats: &Stats) {
    static WARNING: LimitWarning = LimitWarning::new();
    stats.refused_open_files.inc();
    if let Some(times) = WARNING.hit() {
        tracing::warn!(
            proxy = %proxy,
            times,
            "open-file limit reached: closing new connections at once (raise the limit with ulimit -n, or open fewer connections)"
        );
    }
}
