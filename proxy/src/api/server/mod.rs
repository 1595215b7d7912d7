//! The control API's HTTP server: the accept loop and one task per
//! connection, with the limits that keep a flood of clients from taking
//! the API (or the process) down.
//!
//! - At most `max_connections` are open. A new one takes the place of the
//!   open one quiet longest that is not answering a request; when every
//!   one is answering, the newcomer is answered 503 and closed.
//! - A request head must be complete within `header_timeout` of its first
//!   byte (slowloris clients), and a connection on which nothing moves for
//!   `idle_timeout` is closed, unless a handler is at work on a request
//!   whose body has arrived.
//! - At the process's open-file limit the API answers from a reserve of
//!   spare descriptors; with the reserve used up, a newcomer is answered
//!   503 and closed at once rather than left waiting in the queue.
//!
//! On shutdown it stops accepting, closes the connections not answering a
//! request and lets the others finish their answer; dropping
//! [`Server::run`]'s future closes every connection at once.

mod activity;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use hyper::body::{Body as _, Incoming};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::conn::Counter;
use crate::net::LimitWarning;
use crate::net::open_files::{self, Reserve};
use activity::{Activity, Overdue, WatchedBody, WatchedStream};

/// Spare descriptors the API keeps for answering at the open-file limit.
const OPEN_FILE_RESERVE: usize = 8;

/// Newcomers being answered 503 at once; past this they are just closed.
const REFUSALS_AT_ONCE: usize = 64;

/// How long a refused newcomer is given to read its 503.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// The API's limits (`faultgate serve` settings).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
}

impl Limits {
    /// How often a connection's watchdog looks.
    fn tick(&self) -> Duration {
        (self.header_timeout.min(self.idle_timeout) / 4)
            .clamp(Duration::from_millis(10), Duration::from_secs(1))
    }
}

/// What the server has done, for `GET /metrics`.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub open: Counter,
    /// Answered 503: every connection busy at the limit.
    pub refused_at_limit: Counter,
    /// Answered 503: the open-file limit, with the reserve used up.
    pub refused_open_files: Counter,
    pub closed_header_timeout: Counter,
    pub closed_idle: Counter,
    /// Closed to make way for a newcomer at the limit.
    pub evicted: Counter,
}

pub struct Server {
    listener: TcpListener,
    router: Router,
    limits: Limits,
    stats: Arc<ServerStats>,
    reserve: Reserve,
    connections: Arc<Mutex<HashMap<u64, Arc<Activity>>>>,
    refusals: Arc<Semaphore>,
    busy_answer: Arc<[u8]>,
    /// Written in one go, at the open-file limit.
    out_of_files_answer: Vec<u8>,
}

/// The limits' warnings, each at most every few seconds.
static AT_LIMIT: LimitWarning = LimitWarning::new();
static SLOW_HEAD: LimitWarning = LimitWarning::new();
static AT_FILE_LIMIT: LimitWarning = LimitWarning::new();

impl Server {
    pub fn new(
        listener: TcpListener,
        router: Router,
        limits: Limits,
        stats: Arc<ServerStats>,
    ) -> Self {
        open_files::hold_spares();
        let busy = format!(
            "the control API has {} connections open, each answering a request (--max-api-connections); try again",
            limits.max_connections
        );
        Self {
            listener,
            router,
            limits,
            stats,
            reserve: Reserve::new(OPEN_FILE_RESERVE),
            connections: Default::default(),
            refusals: Arc::new(Semaphore::new(REFUSALS_AT_ONCE)),
            busy_answer: error_answer(&busy).into(),
            out_of_files_answer: error_answer(
                "faultgate is at its open-file limit; close connections or raise the limit",
            ),
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `stop` is cancelled; then stops accepting, closes the
    /// connections not answering a request and returns when the others
    /// have finished their answer.
    pub async fn run(self, stop: CancellationToken) {
        let mut tasks = JoinSet::new();
        let mut next_id = 0u64;
        // A descriptor was just given up from the reserve for the next accept.
        let mut lent = false;
        loop {
            let accepted = tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {
                    // A connection closed: its descriptor is free.
                    self.reserve.refill();
                    continue;
                }
                accepted = self.listener.accept() => accepted,
            };
            match accepted {
                Ok((stream, peer)) => {
                    if !std::mem::take(&mut lent) {
                        self.reserve.refill();
                    }
                    next_id += 1;
                    self.admit(next_id, stream, peer, &mut tasks, &stop);
                }
                Err(error) if open_files::out_of_files(&error) => {
                    if self.reserve.give_up_one() {
                        lent = true;
                        warn_at_file_limit("answering from its reserve of spare descriptors");
                    } else if open_files::refuse_one(&self.listener, &self.out_of_files_answer) {
                        self.stats.refused_open_files.inc();
                        warn_at_file_limit("its reserve is used up: answering new clients 503");
                    } else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                Err(error) => {
                    tracing::debug!(%error, "control API: accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
        drop(self.listener);
        while tasks.join_next().await.is_some() {}
    }

    /// Takes a new connection in, making way for it or refusing it at the
    /// limit.
    fn admit(
        &self,
        id: u64,
        stream: TcpStream,
        peer: SocketAddr,
        tasks: &mut JoinSet<()>,
        stop: &CancellationToken,
    ) {
        let activity = Activity::new();
        {
            let mut connections = self.connections.lock().unwrap();
            if connections.len() >= self.limits.max_connections {
                let quietest = connections
                    .iter()
                    .filter(|(_, a)| !a.busy())
                    .max_by_key(|(_, a)| a.quiet_for())
                    .map(|(id, _)| *id);
                match quietest {
                    Some(victim) => {
                        if let Some(evicted) = connections.remove(&victim) {
                            evicted.evict.cancel();
                            self.stats.open.dec();
                            self.stats.evicted.inc();
                        }
                        if let Some(times) = AT_LIMIT.hit() {
                            tracing::warn!(
                                limit = self.limits.max_connections,
                                times,
                                "control API at its connection limit (--max-api-connections): closing the connection quiet longest to make way"
                            );
                        }
                    }
                    None => {
                        drop(connections);
                        return self.refuse_busy(stream, tasks);
                    }
                }
            }
            connections.insert(id, activity.clone());
            self.stats.open.inc();
        }
        let _ = stream.set_nodelay(true);
        let connection = Connection {
            stream,
            peer,
            router: self.router.clone(),
            activity,
            limits: self.limits,
            stats: self.stats.clone(),
            stop: stop.clone(),
        };
        let connections = self.connections.clone();
        let stats = self.stats.clone();
        tasks.spawn(async move {
            connection.serve().await;
            if connections.lock().unwrap().remove(&id).is_some() {
                stats.open.dec();
            }
        });
    }

    /// Answers a newcomer 503 when every connection is busy, and closes it.
    fn refuse_busy(&self, mut stream: TcpStream, tasks: &mut JoinSet<()>) {
        self.stats.refused_at_limit.inc();
        if let Some(times) = AT_LIMIT.hit() {
            tracing::warn!(
                limit = self.limits.max_connections,
                times,
                "control API at its connection limit (--max-api-connections), every connection answering a request: answering new clients 503"
            );
        }
        let Ok(permit) = self.refusals.clone().try_acquire_owned() else {
            return;
        };
        let answer = self.busy_answer.clone();
        tasks.spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(REFUSAL_LINGER, async {
                stream.write_all(&answer).await?;
                stream.shutdown().await?;
                // Read what the client sent until it closes, so that closing
                // does not reset the connection before the answer is read.
                let mut sink = [0u8; 4096];
                while stream.read(&mut sink).await? > 0 {}
                Ok::<_, std::io::Error>(())
            })
            .await;
        });
    }
}

fn warn_at_file_limit(what: &str) {
    if let Some(times) = AT_FILE_LIMIT.hit() {
        tracing::warn!(
            times,
            "control API at the open-file limit: {what} (raise the limit with ulimit -n, or open fewer connections)"
        );
    }
}

/// A whole 503 answer with Toxiproxy's error body.
fn error_answer(message: &str) -> Vec<u8> {
    let body = format!(
        "{}\n",
        serde_json::json!({ "error": message, "status": 503 })
    );
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One accepted connection.
struct Connection {
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    activity: Arc<Activity>,
    limits: Limits,
    stats: Arc<ServerStats>,
    stop: CancellationToken,
}

impl Connection {
    async fn serve(self) {
        let activity = self.activity.clone();
        let router = self.router;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let answering = activity.answering(!request.body().is_end_stream());
            let activity = activity.clone();
            let request = request.map(|body| axum::body::Body::new(WatchedBody { body, activity }));
            let mut router = router.clone();
            async move {
                let _answering = answering;
                tower_service::Service::call(&mut router, request).await
            }
        });
        let io = TokioIo::new(WatchedStream {
            stream: self.stream,
            activity: self.activity.clone(),
        });
        // The watchdog below keeps time: hyper's own header timer would
        // count from the previous answer, not from the head's first byte.
        let connection = http1::Builder::new()
            .keep_alive(true)
            .header_read_timeout(None)
            .serve_connection(io, service);
        tokio::pin!(connection);
        let mut watchdog = tokio::time::interval(self.limits.tick());
        watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut stopping = false;
        let peer = self.peer;
        loop {
            tokio::select! {
                ended = connection.as_mut() => {
                    if let Err(error) = ended {
                        tracing::debug!(%peer, %error, "control API connection ended");
                    }
                    return;
                }
                _ = self.activity.evict.cancelled() => {
                    tracing::debug!(%peer, "control API connection closed to make way for a new one");
                    return;
                }
                _ = self.stop.cancelled(), if !stopping => {
                    // Shutting down: what is not being answered is closed
                    // now, what is finishes its answer.
                    if !self.activity.busy() {
                        return;
                    }
                    stopping = true;
                    connection.as_mut().graceful_shutdown();
                }
                _ = watchdog.tick() => {
                    match self.activity.overdue(self.limits.header_timeout, self.limits.idle_timeout) {
                        None => {}
                        Some(Overdue::Head) => {
                            self.stats.closed_header_timeout.inc();
                            tracing::debug!(%peer, "control API connection closed: its request head took too long");
                            if let Some(times) = SLOW_HEAD.hit() {
                                tracing::warn!(
                                    times,
                                    timeout = ?self.limits.header_timeout,
                                    "control API: closed connections whose request head was not complete in time (--api-header-timeout)"
                                );
                            }
                            return;
                        }
                        Some(Overdue::Idle) => {
                            self.stats.closed_idle.inc();
                            tracing::debug!(%peer, timeout = ?self.limits.idle_timeout, "control API connection closed: idle (--api-idle-timeout)");
                            return;
                        }
                    }
                }
            }
        }
    }
}
