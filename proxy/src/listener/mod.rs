//! Accepting connections: a [`Proxy`] owns a listener (while enabled), its
//! settings and its fault chain, and decides for each accepted connection
//! how it is served ([`accept`]): relayed to the upstream, or relayed to
//! the HTTP layer, which forwards requests upstream.
//!
//! A proxy's chain is a watch channel. Every accepted connection subscribes
//! to it, so a fault attached, replaced or removed through the control API
//! reaches connections already open at their next chunk, and the API never
//! waits on the data path: it swaps the chain and returns.

mod accept;
mod bound;
mod settings;

pub use bound::{Bound, resolve};
pub use settings::{Endpoints, Mode, SettingsError};

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::conn::{Connection, LiveTable, Stats};
use crate::faults::Chain;
use crate::http::Forwarder;
use crate::net::open_files;
use crate::postgres::PostgresTls;
use crate::tls::{ClientTls, ListenerTls};
use accept::Accepted;

#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    #[error("cannot listen on {listen}: {error}")]
    Bind {
        listen: String,
        error: std::io::Error,
    },
}

struct Settings {
    listen: String,
    endpoints: Endpoints,
    /// `http` mode: the pool of upstream connections requests go through.
    forwarder: Option<Forwarder>,
}

struct Listening {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// The socket accepted on, for a replacement to take over.
    bound: Bound,
}

/// One proxy: a listen address, an upstream, and a fault chain.
pub struct Proxy {
    name: Arc<str>,
    mode: Mode,
    seed: u64,
    settings: Mutex<Settings>,
    chain: watch::Sender<Arc<Chain>>,
    listening: Mutex<Option<Listening>>,
    /// Cancelled to close every open connection; replaced after.
    connections: Mutex<CancellationToken>,
    /// The open connections, for the control API to list and cut.
    live: Arc<LiveTable>,
    stats: Arc<Stats>,
}

impl Proxy {
    /// A proxy that is not listening yet.
    pub fn new(
        name: String,
        mode: Mode,
        listen: String,
        endpoints: Endpoints,
        seed: u64,
    ) -> Arc<Self> {
        let forwarder = forwarder_for(mode, &endpoints);
        Arc::new(Self {
            name: name.into(),
            mode,
            seed,
            settings: Mutex::new(Settings {
                listen,
                endpoints,
                forwarder,
            }),
            chain: watch::Sender::new(Arc::new(Chain::default())),
            listening: Mutex::new(None),
            connections: Mutex::new(CancellationToken::new()),
            live: Arc::default(),
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
        self.settings
            .lock()
            .unwrap()
            .endpoints
            .upstream
            .text()
            .to_owned()
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The listener's TLS settings, if it terminates TLS.
    pub fn tls(&self) -> Option<ListenerTls> {
        let settings = self.settings.lock().unwrap();
        settings
            .endpoints
            .tls
            .as_ref()
            .map(|(spec, _)| spec.clone())
    }

    pub fn upstream_tls(&self) -> Option<ClientTls> {
        self.settings.lock().unwrap().endpoints.upstream_tls.clone()
    }

    /// In `postgres` mode, what is done when a client asks for TLS.
    pub fn postgres_tls(&self) -> Option<PostgresTls> {
        let settings = self.settings.lock().unwrap();
        (self.mode == Mode::Postgres).then_some(settings.endpoints.postgres_tls)
    }

    pub fn enabled(&self) -> bool {
        self.listening.lock().unwrap().is_some()
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Its open connections, by id.
    pub fn live_connections(&self) -> Vec<Arc<Connection>> {
        self.live.all()
    }

    /// Its open connection `id`, if it has one.
    pub fn live_connection(&self, id: u64) -> Option<Arc<Connection>> {
        self.live.get(id)
    }

    pub fn chain(&self) -> Arc<Chain> {
        self.chain.borrow().clone()
    }

    /// Swaps the chain; open connections pick it up at their next chunk.
    /// Faults new to the chain brought a plugin instance each.
    pub fn set_chain(&self, chain: Chain) {
        let old = self.chain.send_replace(Arc::new(chain));
        let now = self.chain.borrow();
        for fault in &now.faults {
            if !old.faults.iter().any(|o| Arc::ptr_eq(o, fault)) {
                self.stats.plugin_instances.inc();
            }
        }
    }

    /// New connections use these; open ones keep theirs.
    pub fn set_endpoints(&self, endpoints: Endpoints) {
        let forwarder = forwarder_for(self.mode, &endpoints);
        let mut settings = self.settings.lock().unwrap();
        settings.endpoints = endpoints;
        settings.forwarder = forwarder;
    }

    /// Starts accepting on a socket bound beforehand, which cannot fail: so
    /// an operation binds first and changes things after. The proxy must
    /// not be listening.
    pub fn start_on(self: &Arc<Self>, bound: Bound) {
        self.settings.lock().unwrap().listen = bound.addr().to_string();
        let stop = CancellationToken::new();
        let task = tokio::spawn(
            self.clone()
                .accept_loop(bound.listener.clone(), stop.clone()),
        );
        let previous = self
            .listening
            .lock()
            .unwrap()
            .replace(Listening { stop, task, bound });
        debug_assert!(previous.is_none(), "{} was listening already", self.name);
        tracing::info!(proxy = %self.name, mode = ?self.mode, listen = %self.listen(), upstream = %self.upstream(), tls = self.tls().is_some(), "proxy listening");
    }

    /// The socket the proxy accepts on, while it listens.
    pub fn bound(&self) -> Option<Bound> {
        self.listening
            .lock()
            .unwrap()
            .as_ref()
            .map(|l| l.bound.clone())
    }

    /// Closes the listener (new connections are refused) and every open
    /// connection. Returns once the listening socket is closed (unless a
    /// [`Bound`] taken from [`Proxy::bound`] keeps it open).
    pub async fn stop(&self) {
        self.stop_listening().await;
        self.close_connections();
    }

    /// Closes the listener; open connections go on.
    pub async fn stop_listening(&self) {
        let listening = self.listening.lock().unwrap().take();
        if let Some(Listening { stop, task, .. }) = listening {
            stop.cancel();
            let _ = task.await;
            tracing::info!(proxy = %self.name, "proxy stopped");
        }
    }

    /// Closes every open connection (FIN both ways); the listener stays.
    pub fn close_connections(&self) {
        let mut connections = self.connections.lock().unwrap();
        connections.cancel();
        *connections = CancellationToken::new();
    }

    /// Where the proxy listens once started. Moving a proxy that listens is
    /// stopping it and starting it on a socket bound for the new address.
    pub fn set_listen(&self, listen: String) {
        debug_assert!(!self.enabled(), "{} is listening", self.name);
        self.settings.lock().unwrap().listen = listen;
    }

    async fn accept_loop(self: Arc<Self>, listener: Arc<TcpListener>, stop: CancellationToken) {
        static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);
        open_files::hold_spares();
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.cancelled() => return,
                accepted = listener.accept() => accepted,
            };
            let (client, peer): (_, SocketAddr) = match accepted {
                Ok(accepted) => accepted,
                Err(error) if open_files::out_of_files(&error) => {
                    // Left in the queue, the client would wait for ever:
                    // close it at once, through the spare descriptor.
                    if open_files::refuse_one(&listener, b"") {
                        accept::refused_at_file_limit(&self.name, &self.stats);
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    continue;
                }
                Err(error) => {
                    // A connection reset while queued and the like: back
                    // off, go on.
                    tracing::warn!(proxy = %self.name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
            let accepted = {
                let settings = self.settings.lock().unwrap();
                let upstream = settings.endpoints.upstream.clone();
                let conn = Connection {
                    id: NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed),
                    proxy: self.name.clone(),
                    client: peer,
                    upstream: upstream.text().into(),
                    seed: self.seed,
                    chain: self.chain.subscribe(),
                    stats: self.stats.clone(),
                    cancel: self.connections.lock().unwrap().child_token(),
                    ending: Default::default(),
                    live: Default::default(),
                    requests: Default::default(),
                };
                Accepted {
                    conn: Arc::new(conn),
                    table: self.live.clone(),
                    tls: settings.endpoints.tls.as_ref().map(|(_, a)| a.clone()),
                    upstream,
                    forwarder: settings.forwarder.clone(),
                    postgres: (self.mode == Mode::Postgres)
                        .then_some(settings.endpoints.postgres_tls),
                }
            };
            tokio::spawn(accepted.serve(client));
        }
    }
}

fn forwarder_for(mode: Mode, endpoints: &Endpoints) -> Option<Forwarder> {
    match mode {
        Mode::Tcp | Mode::Postgres => None,
        Mode::Http => Some(Forwarder::new(endpoints.upstream.clone())),
    }
}
