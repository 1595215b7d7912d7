//! The runner's HTTP client: for `http` steps, and for faultgate's control
//! API (the only way the runner touches proxies).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio_rustls::TlsConnector;

use crate::net::{DialedIo, Stream, causes};
use crate::tls::{self, ClientTls, TlsError};

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed: Duration,
}

/// Sends requests over plain HTTP, and HTTPS checked as a scenario's `tls`
/// says (by default against the system's CA certificates).
#[derive(Clone)]
pub struct HttpClient {
    client: Client<Connector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self::with_trust(Trust {
            spec: ClientTls::default(),
            // Read on the first https request: a run that makes none never
            // needs the system's certificates.
            config: OnceLock::new(),
        })
    }
}

impl HttpClient {
    /// A client that checks HTTPS servers as `spec` says (a scenario's
    /// `tls`). Its files are read here, so a bad one is an error before
    /// any request.
    pub fn with_tls(spec: ClientTls) -> Result<Self, TlsError> {
        let config = tls::client_config(&spec, "tls")?;
        Ok(Self::with_trust(Trust {
            spec,
            config: OnceLock::from(Ok(config)),
        }))
    }

    fn with_trust(trust: Trust) -> Self {
        let mut tcp = HttpConnector::new();
        // https URLs pass through it too, for the TCP connection under TLS.
        tcp.enforce_http(false);
        let connector = Connector {
            tcp,
            trust: Arc::new(trust),
        };
        Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        let request = build_request(method, url, headers, body)?;
        let started = Instant::now();
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{url}: {}", causes(&e)))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{url}: reading the body: {e}"))?
                .to_bytes();
            Ok(Answer {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
                elapsed: started.elapsed(),
            })
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| Err(format!("{url}: no answer within {timeout:?}")))
    }

    /// Sends a request that must not be answered: waits for the response
    /// head for `within` and no longer. `Ok(None)`: nothing came;
    /// `Ok(Some((status, after)))`: an answer came; `Err`: the exchange
    /// failed before `within` (refused, reset), with how long it took.
    pub async fn head_within(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        within: Duration,
    ) -> Result<Option<(u16, Duration)>, (String, Duration)> {
        let request = build_request(method, url, headers, body).map_err(|e| (e, Duration::ZERO))?;
        let started = Instant::now();
        match tokio::time::timeout(within, self.client.request(request)).await {
            Err(_) => Ok(None),
            Ok(Ok(response)) => Ok(Some((response.status().as_u16(), started.elapsed()))),
            Ok(Err(e)) => Err((format!("{url}: {}", causes(&e)), started.elapsed())),
        }
    }

    /// A control API call: JSON in, JSON (or nothing) out; a status outside
    /// 2xx is an error carrying Toxiproxy's error message.
    pub async fn control(
        &self,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Value, ControlFailure> {
        let body = body.map(|b| b.to_string().into_bytes());
        let headers = [("content-type".to_owned(), "application/json".to_owned())];
        let answer = self
            .send(method, url, &headers, body, Duration::from_secs(10))
            .await
            .map_err(ControlFailure::Unreachable)?;
        if !(200..300).contains(&answer.status) {
            let message = serde_json::from_str::<Value>(&answer.body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(answer.body);
            return Err(ControlFailure::Refused {
                status: answer.status,
                message: format!("{method} {url}: {} {message}", answer.status),
            });
        }
        Ok(serde_json::from_str(&answer.body).unwrap_or(Value::Null))
    }
}

fn build_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> Result<Request<Full<Bytes>>, String> {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
        .map_err(|_| format!("{method:?} is not an HTTP method"))?;
    let mut request = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(|e| format!("{url}: {e}"))
}

/// Why a control API call failed.
#[derive(Debug)]
pub enum ControlFailure {
    /// No answer: the stack is not up (exit code 2).
    Unreachable(String),
    /// An answer, refusing: `status` and the API's message.
    Refused { status: u16, message: String },
}

impl std::fmt::Display for ControlFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(m) => write!(f, "control API unreachable: {m}"),
            Self::Refused { message, .. } => write!(f, "{message}"),
        }
    }
}

/// How HTTPS servers are checked: the settings, and the TLS configuration
/// made from them once.
struct Trust {
    spec: ClientTls,
    config: OnceLock<Result<Arc<rustls::ClientConfig>, String>>,
}

impl Trust {
    fn connector(
        &self,
        host: &str,
    ) -> Result<(TlsConnector, rustls::pki_types::ServerName<'static>), String> {
        let config = self
            .config
            .get_or_init(|| tls::client_config(&self.spec, "tls").map_err(|e| e.to_string()))
            .clone()?;
        let name = tls::server_name(&self.spec, host, "tls").map_err(|e| e.to_string())?;
        Ok((TlsConnector::from(config), name))
    }
}

/// Dials a request's host: TCP by hyper's own connector, with a TLS
/// handshake on top for `https://`.
#[derive(Clone)]
struct Connector {
    tcp: HttpConnector,
    trust: Arc<Trust>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl tower_service::Service<Uri> for Connector {
    type Response = DialedIo;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<DialedIo, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.tcp, cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.tcp.call(uri.clone());
        let trust = self.trust.clone();
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            if uri.scheme() != Some(&hyper::http::uri::Scheme::HTTPS) {
                return Ok(DialedIo::new(Stream::Plain(tcp)));
            }
            let (connector, name) = trust.connector(uri.host().unwrap_or_default())?;
            let tls = connector.connect(name, tcp).await?;
            Ok(DialedIo::new(Stream::Tls(Box::new(tls.into()))))
        })
    }
}
