//! The TCP relay: listeners, connections, and the pumps that carry bytes
//! through a proxy's fault chain.
//!
//! A [`Proxy`] owns a listener (while enabled) and a watch channel holding
//! its fault chain. Every accepted connection subscribes to that channel, so a
//! fault attached, replaced or removed through the control API reaches
//! connections already open at their next chunk, and the API never waits on
//! the data path: it swaps the chain and returns.

mod connection;
mod pump;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::faults::Chain;
use connection::ConnSetup;

/// A monotonically increasing number, as Prometheus counts.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// What one proxy has done, for `GET /metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections_total: Counter,
    pub connections_open: Counter,
    /// Connections failed because a plugin trapped, timed out, ran out of
    /// memory or answered nonsense.
    pub plugin_failures: Counter,
    /// Plugin instances made (one per connection, direction and fault that
    /// applies). Stays 0 while a proxy has no fault: such a proxy never calls
    /// a plugin.
    pub plugin_instances: Counter,
}

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("cannot listen on {listen}: {error}")]
    Bind {
        listen: String,
        error: std::io::Error,
    },
}

struct Settings {
    listen: String,
    upstream: String,
}

struct Listening {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// One proxy: a listen address, an upstream, and a fault chain.
pub struct Proxy {
    name: String,
    seed: u64,
    settings: Mutex<Settings>,
    chain: watch::Sender<Arc<Chain>>,
    listening: Mutex<Option<Listening>>,
    /// Cancelled to close every open connection; replaced after.
    connections: Mutex<CancellationToken>,
    stats: Arc<Stats>,
}

impl Proxy {
    /// A proxy that is not listening yet.
    pub fn new(name: String, listen: String, upstream: String, seed: u64) -> Arc<Self> {
        Arc::new(Self {
            name,
            seed,
            settings: Mutex::new(Settings { listen, upstream }),
            chain: watch::Sender::new(Arc::new(Chain::default())),
            listening: Mutex::new(None),
            connections: Mutex::new(CancellationToken::new()),
            stats: Arc::new(Stats::default()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The listen address; once listening, the address actually bound (so
    /// port 0 reads back as the port the system picked).
    pub fn listen(&self) -> String {
        self.settings.lock().unwrap().listen.clone()
    }

    pub fn upstream(&self) -> String {
        self.settings.lock().unwrap().upstream.clone()
    }

    pub fn enabled(&self) -> bool {
        self.listening.lock().unwrap().is_some()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn chain(&self) -> Arc<Chain> {
        self.chain.borrow().clone()
    }

    /// Swaps the chain; open connections pick it up at their next chunk.
    pub fn set_chain(&self, chain: Chain) {
        self.chain.send_replace(Arc::new(chain));
    }

    /// New connections dial `upstream`; open ones keep theirs.
    pub fn set_upstream(&self, upstream: String) {
        self.settings.lock().unwrap().upstream = upstream;
    }

    /// Binds the listener and starts accepting. Does nothing if listening.
    pub async fn start(self: &Arc<Self>) -> Result<(), RelayError> {
        if self.enabled() {
            return Ok(());
        }
        let listen = self.listen();
        let listener = TcpListener::bind(&listen)
            .await
            .map_err(|error| RelayError::Bind {
                listen: listen.clone(),
                error,
            })?;
        if let Ok(bound) = listener.local_addr() {
            self.settings.lock().unwrap().listen = bound.to_string();
        }
        let stop = CancellationToken::new();
        let task = tokio::spawn(self.clone().accept_loop(listener, stop.clone()));
        *self.listening.lock().unwrap() = Some(Listening { stop, task });
        tracing::info!(proxy = %self.name, listen = %self.listen(), upstream = %self.upstream(), "proxy listening");
        Ok(())
    }

    /// Closes the listener (new connections are refused) and every open
    /// connection. Returns once the listening socket is closed.
    pub async fn stop(&self) {
        let listening = self.listening.lock().unwrap().take();
        if let Some(Listening { stop, task }) = listening {
            stop.cancel();
            let _ = task.await;
            tracing::info!(proxy = %self.name, "proxy stopped");
        }
        self.close_connections();
    }

    /// Closes every open connection (FIN both ways); the listener stays.
    pub fn close_connections(&self) {
        let mut connections = self.connections.lock().unwrap();
        connections.cancel();
        *connections = CancellationToken::new();
    }

    /// Moves the listener to `listen` (restarting it if it was running).
    pub async fn set_listen(self: &Arc<Self>, listen: String) -> Result<(), RelayError> {
        if listen == self.listen() {
            return Ok(());
        }
        let was_enabled = self.enabled();
        let previous = std::mem::replace(&mut self.settings.lock().unwrap().listen, listen);
        if was_enabled {
            self.stop().await;
            if let Err(e) = self.start().await {
                // Put the old listener back, so a bad address changes nothing.
                self.settings.lock().unwrap().listen = previous;
                let _ = self.start().await;
                return Err(e);
            }
        }
        Ok(())
    }

    async fn accept_loop(self: Arc<Self>, listener: TcpListener, stop: CancellationToken) {
        static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (client, peer): (_, SocketAddr) = match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off, go on.
                    tracing::warn!(proxy = %self.name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let setup = ConnSetup {
                id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                proxy: self.name.clone(),
                upstream: self.upstream(),
                seed: self.seed,
                chain: self.chain.subscribe(),
                cancel: self.connections.lock().unwrap().child_token(),
                stats: self.stats.clone(),
            };
            tokio::spawn(connection::serve(client, peer, setup));
        }
    }
}
