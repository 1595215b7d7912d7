//! The HTTP layer of proxies in `http` mode: a reverse proxy built on hyper,
//! with HTTP faults applied per request.
//!
//! A client connection is handed to this layer as the far end of an
//! in-memory pipe whose near end the relay pumps (so TCP faults still see
//! its bytes), as HTTP/1.1 or HTTP/2. For every request:
//!
//! 1. the proxy's current chain is read, so a fault switched through the API
//!    applies to the next request, on keep-alive connections too;
//! 2. each HTTP fault whose toxicity picks this request gets a fresh plugin
//!    instance and sees the request head; its actions may delay, answer,
//!    reset or hold the request;
//! 3. the request goes upstream over a pooled connection, its body streamed,
//!    as HTTP/2 if it came as HTTP/2 (gRPC), else as HTTP/1.1; a fault may
//!    have asked for it to be sent more than once (`repeat`);
//! 4. the same instances see the response head, and may act again or edit
//!    it (`edits`);
//! 5. the response streams back, trailers included. Bodies are never
//!    buffered whole (but a repeated request's, of at most 1 MiB), so a
//!    multi-gigabyte git pack passes through in constant memory.
//!
//! Upgrades (`101 Switching Protocols`) are passed through: once both sides
//! agree, the two connections are joined byte for byte.

mod edits;
mod faults;
mod forward;
mod repeat;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::DuplexStream;

pub use forward::{ForwardError, Forwarder};

use crate::conn::Connection;
use crate::net::Ending;
use crate::plugin_host::{PluginError, PluginKind};
use faults::{Outcome, RequestFaults};

/// A body: the peer's, streamed, or one faultgate made (or read whole).
pub type Body = BoxBody<Bytes, hyper::Error>;

/// The largest request body shown to plugins that want bodies.
const MAX_SHOWN_BODY: usize = 1 << 20;

/// One client connection's HTTP layer.
pub struct HttpConn {
    conn: Arc<Connection>,
    forwarder: Forwarder,
    /// Requests seen on this connection, numbering them for toxicity rolls.
    requests: AtomicU64,
}

/// Ends the client's connection (a fault asked for a reset): hyper drops
/// the connection when its service fails.
#[derive(Debug, thiserror::Error)]
#[error("connection reset by a fault")]
struct ResetByFault;

impl HttpConn {
    pub fn new(conn: Arc<Connection>, forwarder: Forwarder) -> Arc<Self> {
        Arc::new(Self {
            conn,
            forwarder,
            requests: AtomicU64::new(0),
        })
    }

    async fn handle(
        self: Arc<Self>,
        request: Request<Incoming>,
    ) -> Result<Response<Body>, ResetByFault> {
        let arrived = Instant::now();
        self.conn.stats.http_requests.inc();
        let number = self.requests.fetch_add(1, Ordering::Relaxed);
        let chain = self.conn.chain.borrow().clone();
        let mut faults = RequestFaults::new(&self.conn, &chain, number, arrived);

        let head = faults::request_head(&request);
        // A fault that wants bodies sees those of a known, small length; the
        // body then goes upstream from memory. Every other body streams.
        let small = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            .is_some_and(|len| len <= MAX_SHOWN_BODY);
        let (parts, body) = request.into_parts();
        let (body, shown) = if faults.want_body() && small {
            match body.collect().await {
                Ok(collected) => {
                    let bytes = collected.to_bytes();
                    (full(bytes.clone()), Some(bytes))
                }
                Err(error) => {
                    tracing::debug!(proxy = %self.conn.proxy, conn = self.conn.id, %error, "client body cut short");
                    return Ok(error_response(
                        StatusCode::BAD_REQUEST,
                        "client",
                        &format!("reading the request body: {error}"),
                    ));
                }
            }
        } else {
            (body.boxed(), None)
        };
        let mut request = Request::from_parts(parts, body);
        match faults.on_request(&head, shown.as_ref()).await {
            Ok(Outcome::Pass) => {}
            Ok(Outcome::Respond(response)) => return Ok(response),
            Ok(Outcome::Reset) => return Err(self.reset()),
            Err(error) => return Ok(self.plugin_failed(error)),
        }

        let upgrade = forward::is_upgrade(request.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut request));
        let (method, path) = (request.method().clone(), request.uri().path().to_owned());
        let sent = match faults.repeat() {
            Some(times) if !upgrade && repeat::holdable(&request) => {
                repeat::send(&self.forwarder, &self.conn, request, times).await
            }
            Some(_) => {
                tracing::warn!(proxy = %self.conn.proxy, conn = self.conn.id, %method, %path,
                    "a fault asked to repeat this request, but it is sent once: its body is not held \
                     (not of a known length of at most 1 MiB) or it is an upgrade");
                self.forwarder
                    .send(request)
                    .await
                    .map_err(repeat::RepeatError::Upstream)
            }
            None => self
                .forwarder
                .send(request)
                .await
                .map_err(repeat::RepeatError::Upstream),
        };
        let mut response = match sent {
            Ok(response) => response.map(|body| body.boxed()),
            Err(repeat::RepeatError::Upstream(error)) => {
                tracing::warn!(proxy = %self.conn.proxy, conn = self.conn.id, %method, %path, "{error}");
                return Ok(error_response(
                    StatusCode::BAD_GATEWAY,
                    "upstream",
                    &error.to_string(),
                ));
            }
            Err(repeat::RepeatError::Client(error)) => {
                return Ok(error_response(
                    StatusCode::BAD_REQUEST,
                    "client",
                    &format!("reading the request body: {error}"),
                ));
            }
        };

        match faults.on_response(&mut response).await {
            Ok(Outcome::Pass) => {}
            Ok(Outcome::Respond(answer)) => return Ok(answer),
            Ok(Outcome::Reset) => return Err(self.reset()),
            Err(error) => return Ok(self.plugin_failed(error)),
        }
        drop(faults);

        let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
        if let (true, Some(client_upgrade)) = (switching, client_upgrade) {
            let upstream_upgrade = hyper::upgrade::on(&mut response);
            let (proxy, id) = (self.conn.proxy.clone(), self.conn.id);
            tokio::spawn(async move {
                match tokio::try_join!(client_upgrade, upstream_upgrade) {
                    Ok((client, upstream)) => {
                        let (mut client, mut upstream) =
                            (TokioIo::new(client), TokioIo::new(upstream));
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                    Err(error) => {
                        tracing::debug!(proxy = %proxy, conn = id, %error, "upgrade abandoned")
                    }
                }
            });
        }
        forward::remove_hop_by_hop(response.headers_mut(), switching);
        Ok(response)
    }

    fn reset(&self) -> ResetByFault {
        self.conn.end(Ending::Reset);
        ResetByFault
    }

    /// A plugin failed: this request gets a 502 naming it; the connection
    /// and every other request go on.
    fn plugin_failed(&self, error: PluginError) -> Response<Body> {
        self.conn.stats.count_failure(&error);
        tracing::warn!(proxy = %self.conn.proxy, conn = self.conn.id, "{error}; answering 502");
        error_response(StatusCode::BAD_GATEWAY, "plugin", &error.to_string())
    }
}

/// Serves one client connection until it closes or the proxy closes it.
pub async fn serve(io: DuplexStream, conn: Arc<HttpConn>) {
    let cancel = conn.conn.cancel.clone();
    let (proxy, id, client) = (conn.conn.proxy.clone(), conn.conn.id, conn.conn.client);
    let service = hyper::service::service_fn(move |request| conn.clone().handle(request));
    let builder = auto::Builder::new(TokioExecutor::new());
    let serving = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::select! {
        served = serving => if let Err(error) = served {
            tracing::debug!(proxy = %proxy, conn = id, %client, %error, "HTTP connection ended");
        },
        _ = cancel.cancelled() => {}
    }
}

/// A response faultgate makes itself. `x-faultgate-error` says whose fault it
/// was (`upstream` or `plugin`), so a test can tell it from the upstream's.
fn error_response(status: StatusCode, side: &'static str, message: &str) -> Response<Body> {
    let mut response = Response::new(full(format!("faultgate: {message}\n").into()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert("x-faultgate-error", HeaderValue::from_static(side));
    response
}

fn full(bytes: Bytes) -> Body {
    Full::new(bytes)
        .map_err(|never: Infallible| match never {})
        .boxed()
}

/// Whether `kind` of plugin runs per HTTP request.
fn per_request(kind: PluginKind) -> bool {
    kind == PluginKind::Http
}
