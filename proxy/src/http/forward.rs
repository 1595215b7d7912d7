//! Sending requests upstream: a pooled hyper client whose connections are
//! dialed by the proxy's [`Upstream`] (so TLS to the upstream works the same
//! as in `tcp` mode), and the header rules of a reverse proxy.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::Body;
use crate::net::{DialError, DialedIo, Upstream, causes};

/// How long an idle upstream connection is kept for the next request.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends requests to one upstream over a pool of keep-alive connections:
/// HTTP/1.1 for requests that came as HTTP/1.x, HTTP/2 (with prior
/// knowledge, as gRPC servers expect) for requests that came as HTTP/2, so
/// trailers and a stream's interleaving survive the hop.
#[derive(Clone)]
pub struct Forwarder {
    client: Client<Dialer, Body>,
    h2_client: Client<Dialer, Body>,
    upstream: Arc<Upstream>,
}

/// Why a request could not be forwarded: the upstream could not be reached
/// or did not answer properly.
#[derive(Debug, thiserror::Error)]
#[error("upstream {upstream}: {reason}")]
pub struct ForwardError {
    upstream: String,
    reason: String,
}

impl Forwarder {
    pub fn new(upstream: Arc<Upstream>) -> Self {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .set_host(false)
            .build(Dialer(upstream.clone()));
        let h2_client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .http2_only(true)
            .build(Dialer(upstream.clone()));
        Self {
            client,
            h2_client,
            upstream,
        }
    }

    /// The upstream as the user gave it.
    pub fn upstream_text(&self) -> &str {
        self.upstream.text()
    }

    /// Sends a request as a reverse proxy does: origin-form URI, the
    /// client's `Host` kept, hop-by-hop headers dropped (except an
    /// upgrade's), in the HTTP version the client spoke (1.1 for 1.0).
    pub async fn send(&self, request: Request<Body>) -> Result<Response<Incoming>, ForwardError> {
        if request.version() == Version::HTTP_2 {
            return self.send_h2(request).await;
        }
        let (mut parts, body) = request.into_parts();
        if !parts.headers.contains_key(header::HOST) {
            // An HTTP/2 client names the host in the URI instead.
            let host = parts
                .uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_else(|| self.upstream.address().to_owned());
            if let Ok(value) = HeaderValue::from_str(&host) {
                parts.headers.insert(header::HOST, value);
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // The pool is keyed by this URI; the dialer ignores it and dials
        // the proxy's upstream.
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(self.upstream.address())
            .path_and_query(path)
            .build()
            .expect("a valid path and an address checked at set-up");
        parts.version = Version::HTTP_11;
        let upgrade = is_upgrade(&parts.headers);
        remove_hop_by_hop(&mut parts.headers, upgrade);
        self.client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|error| self.failed(&error))
    }

    /// An HTTP/2 request goes on as HTTP/2: its authority as the client
    /// gave it (or the upstream's address), connection-specific headers
    /// dropped, but `te: trailers`, which gRPC servers require, kept.
    async fn send_h2(&self, request: Request<Body>) -> Result<Response<Incoming>, ForwardError> {
        let (mut parts, body) = request.into_parts();
        let authority = parts
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                let host = parts.headers.get(header::HOST)?.to_str().ok()?;
                Some(host.to_owned())
            })
            .unwrap_or_else(|| self.upstream.address().to_owned());
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        // The pool is keyed by this URI; the dialer ignores it and dials
        // the proxy's upstream.
        parts.uri = Uri::builder()
            .scheme("http")
            .authority(authority)
            .path_and_query(path)
            .build()
            .map_err(|error| ForwardError {
                upstream: self.upstream.text().to_owned(),
                reason: format!("the request's authority or path: {error}"),
            })?;
        let trailers = parts
            .headers
            .get_all(header::TE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("trailers"));
        remove_hop_by_hop(&mut parts.headers, false);
        parts.headers.remove(header::HOST);
        if trailers {
            parts
                .headers
                .insert(header::TE, HeaderValue::from_static("trailers"));
        }
        self.h2_client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|error| self.failed(&error))
    }

    fn failed(&self, error: &hyper_util::client::legacy::Error) -> ForwardError {
        ForwardError {
            upstream: self.upstream.text().to_owned(),
            reason: causes(error),
        }
    }
}

/// Whether a request or response asks to switch protocols.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
}

/// Drops the headers that belong to one hop (RFC 9110 section 7.6.1), and
/// those the `Connection` header names. An upgrade keeps `Connection:
/// upgrade` and `Upgrade`, which the next hop needs.
pub fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|token| HeaderName::from_bytes(token.trim().as_bytes()).ok())
        .filter(|name| !(keep_upgrade && name == header::UPGRADE))
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    for name in ["keep-alive", "proxy-connection"] {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

/// Dials the proxy's upstream for the client pool.
#[derive(Clone)]
struct Dialer(Arc<Upstream>);

impl tower_service::Service<Uri> for Dialer {
    type Response = DialedIo;
    type Error = DialError;
    type Future = Pin<Box<dyn Future<Output = Result<DialedIo, DialError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _uri: Uri) -> Self::Future {
        let upstream = self.0.clone();
        Box::pin(async move { Ok(DialedIo::new(upstream.dial().await?)) })
    }
}
