//! The control API: Toxiproxy's v2 REST API, plus extensions.
//!
//! Every Toxiproxy client works against it unchanged: same paths, JSON
//! shapes, status codes and error body. The extensions are additive:
//! `PUT /proxies/{p}/toxics` (replace a chain atomically),
//! `GET /healthz`, `GET /metrics`, and `GET|POST /plugins`,
//! `GET|DELETE /plugins/{name}` (list, upload, inspect and remove plugins),
//! `GET /proxies/{p}/connections` and `DELETE /proxies/{p}/connections/{id}`
//! (list a proxy's open connections, cut one),
//! and the live page `GET /ui` with what it reads, `GET /stats` and
//! `GET /events` ([`ui`]).
//!
//! No handler ever waits on a connection: changes swap a proxy's chain and
//! return, so the API answers at once even when a peer is stuck. Every
//! error, the framework's own included, has Toxiproxy's shape. The server
//! under the routes ([`server`]) bounds what clients can hold.

mod browsers;
mod changes;
mod connections;
mod error;
mod events;
mod metrics;
mod plugins;
mod proxies;
mod request_id;
mod server;
mod toxics;
mod ui;

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;

pub use error::ApiError;
pub use server::{Limits, Server};

use crate::registry::Registry;
use events::EventLog;
use server::ServerStats;

/// The largest plugin component `POST /plugins` takes.
const MAX_PLUGIN_BYTES: usize = 64 << 20;

/// The largest body any other request takes.
const MAX_BODY_BYTES: usize = 2 << 20;

/// Shared by every handler.
pub type AppState = Arc<Registry>;

/// What the routes share: the registry, and the server's counters for
/// `/metrics`.
#[derive(Clone)]
struct Shared {
    registry: AppState,
    server: Arc<ServerStats>,
    events: Arc<EventLog>,
}

impl FromRef<Shared> for AppState {
    fn from_ref(shared: &Shared) -> Self {
        shared.registry.clone()
    }
}

impl FromRef<Shared> for Arc<EventLog> {
    fn from_ref(shared: &Shared) -> Self {
        shared.events.clone()
    }
}

impl FromRef<Shared> for Arc<ServerStats> {
    fn from_ref(shared: &Shared) -> Self {
        shared.server.clone()
    }
}

/// The control API on `listener`, within `limits`.
pub fn server(listener: TcpListener, registry: Arc<Registry>, limits: Limits) -> Server {
    let stats = Arc::new(ServerStats::default());
    let shared = Shared {
        registry,
        server: stats.clone(),
        events: Arc::default(),
    };
    Server::new(listener, router(shared), limits, stats)
}

/// The API's routes.
fn router(shared: Shared) -> Router {
    let recorder = changes::Recorder {
        registry: shared.registry.clone(),
        events: shared.events.clone(),
    };
    let routes = Router::new()
        .route("/version", get(version))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::render))
        .route("/reset", post(proxies::reset))
        .route("/populate", post(proxies::populate))
        .route("/proxies", get(proxies::index).post(proxies::create))
        .route(
            "/proxies/{proxy}",
            get(proxies::show)
                .post(proxies::update)
                .patch(proxies::update)
                .delete(proxies::delete),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(toxics::index).post(toxics::create).put(toxics::replace),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(toxics::show)
                .post(toxics::update)
                .patch(toxics::update)
                .delete(toxics::delete),
        )
        .route("/proxies/{proxy}/connections", get(connections::index))
        .route(
            "/proxies/{proxy}/connections/{id}",
            axum::routing::delete(connections::cut),
        )
        .route(
            "/plugins",
            get(plugins::index)
                .post(plugins::upload)
                .layer(DefaultBodyLimit::max(MAX_PLUGIN_BYTES)),
        )
        .route(
            "/plugins/{plugin}",
            get(plugins::show).delete(plugins::delete),
        )
        .route("/ui", get(ui::page))
        .route("/ui/live.js", get(ui::script))
        .route("/ui/live.css", get(ui::style))
        .route("/stats", get(ui::stats))
        .route("/events", get(ui::events))
        .layer(middleware::from_fn_with_state(recorder, changes::record))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(refuse_browsers))
        .with_state(shared);
    // Around the routes rather than among their layers, so that it sees
    // their answers whole: axum adds a 405's `Allow` header outside them.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(in_toxiproxy_shape))
        .layer(middleware::from_fn(request_id::stamp))
}

/// Errors the framework makes itself (a method a path does not take, a
/// body past its limit, a path that is not UTF-8) come as plain text or
/// with no body; they get Toxiproxy's shape here, so that every error a
/// client sees has it.
async fn in_toxiproxy_shape(request: axum::extract::Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = allow
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(|v| format!(" (it takes {v})"))
                .unwrap_or_default();
            format!("method {method} not allowed on {path}{allowed}")
        }
        StatusCode::PAYLOAD_TOO_LARGE => format!(
            "request body too large: POST /plugins takes at most {} MiB, other requests {} MiB",
            MAX_PLUGIN_BYTES >> 20,
            MAX_BODY_BYTES >> 20
        ),
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    let mut response = ApiError::new(status, message).into_response();
    if let Some(allow) = allow {
        response.headers_mut().insert(header::ALLOW, allow);
    }
    response
}

/// Like Toxiproxy, refuse requests from browsers: a web page must not be able
/// to reconfigure proxies through the visitor's browser. The live page's
/// reads are the exception ([`browsers`]).
async fn refuse_browsers(request: axum::extract::Request, next: Next) -> Response {
    if let Some(refused) = browsers::refusal(&request) {
        return refused.into_response();
    }
    next.run(request).await
}

/// The version of Toxiproxy whose API this one is, so that clients that
/// compare versions to know what the server can do get a Toxiproxy
/// version; `faultgate` says what it really is.
pub const TOXIPROXY_VERSION: &str = "2.12.0";

async fn version() -> impl IntoResponse {
    axum::Json(serde_json::json!({
        "version": TOXIPROXY_VERSION,
        "faultgate": env!("CARGO_PKG_VERSION"),
    }))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Parses a JSON request body. Bodies are read whatever their content type
/// (Toxiproxy's clients do not all send one); errors are Toxiproxy's
/// "bad request body" 400.
fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, format!("bad request body: {e}")))
}

/// A JSON response with a status.
fn json(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}
