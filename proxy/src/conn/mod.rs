//! One client connection as every part that serves it sees it: who it is
//! (its id, proxy, client and upstream), the proxy's fault chain it follows,
//! the counters it adds to, and how it is ending.
//!
//! A [`Connection`] is made once, where the connection is accepted, and
//! shared (behind an `Arc`) by the two pumps of the relay and, in `http`
//! mode, the HTTP layer. Any of them may end it; the first reason wins and
//! the others see it through [`Connection::cancel`].

mod live;
mod stats;
mod trim;

pub use live::{Listed, Live, LiveTable};
pub use stats::{Counter, Stats};

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::faults::Chain;
use crate::net::Ending;
use crate::plugin_host::{ConnContext, ConnRequests, Direction};

/// Returned by everything that stops because the connection is ending.
#[derive(Debug)]
pub struct Ended;

/// One accepted client connection.
pub struct Connection {
    /// Unique within the process; with `seed`, seeds the random decisions
    /// made for this connection.
    pub id: u64,
    pub proxy: Arc<str>,
    pub client: SocketAddr,
    /// The upstream as the user gave it.
    pub upstream: Arc<str>,
    /// `faultgate serve --seed`.
    pub seed: u64,
    /// The proxy's fault chain; each part that runs faults keeps a clone.
    pub chain: watch::Receiver<Arc<Chain>>,
    pub stats: Arc<Stats>,
    /// Cancelled when the connection ends, by a fault, a peer or the proxy.
    pub cancel: CancellationToken,
    /// How it ended: set once, by whatever ended it first.
    pub ending: HowEnded,
    /// What it is doing now, for the control API.
    pub live: Live,
    /// What its faults' plugins asked of it outside their steps: a delayed
    /// dial, a direction half-closed.
    pub requests: Arc<ConnRequests>,
}

/// How a connection ended; empty while it is open.
#[derive(Debug, Default)]
pub struct HowEnded(OnceLock<Ending>);

impl Drop for Connection {
    fn drop(&mut self) {
        trim::connection_closed();
    }
}

impl Connection {
    /// Counts bytes written on toward `direction`'s peer: in the
    /// connection's own count and in its proxy's.
    pub fn count_written(&self, direction: Direction, bytes: usize) {
        self.live.wrote(direction, bytes);
        self.stats.count_written(direction, bytes);
    }

    /// How the connection is ending, once something ended it.
    pub fn ending(&self) -> Option<Ending> {
        self.ending.0.get().copied()
    }

    /// Ends the connection; the first reason given wins.
    pub fn end(&self, how: Ending) -> Ended {
        let _ = self.ending.0.set(how);
        self.cancel.cancel();
        Ended
    }

    /// Ends the connection after an I/O error on one of its sockets: a peer
    /// that reset is passed on as a reset, anything else as a close.
    pub fn io_failed(&self, error: std::io::Error) -> Ended {
        tracing::debug!(proxy = %self.proxy, conn = self.id, %error, "connection error");
        let how = if error.kind() == std::io::ErrorKind::ConnectionReset {
            Ending::Reset
        } else {
            Ending::Close
        };
        self.end(how)
    }

    /// What a plugin instance serving this connection is told about it.
    pub fn plugin_context(&self, stream: Direction, random_seed: u64) -> ConnContext {
        ConnContext {
            id: self.id,
            proxy: self.proxy.to_string(),
            client: self.client.to_string(),
            upstream: self.upstream.to_string(),
            stream,
            random_seed,
            requests: Some(self.requests.clone()),
        }
    }
}
