//! The runner's HTTP client: for `http` steps, and for faultgate's control
//! API (the only way the runner touches proxies).

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

use crate::http::causes;

/// A response, read whole.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub elapsed: Duration,
}

#[derive(Clone)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Default for HttpClient {
    fn default() -> Self {
        Self {
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }
}

impl HttpClient {
    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<Answer, String> {
        if url.starts_with("https://") {
            return Err(format!("{url}: the runner speaks plain http only"));
        }
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("{method:?} is not an HTTP method"))?;
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("{url}: {e}"))?;
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
