//! The live page, `GET /ui`, and the two reading endpoints it polls besides
//! `GET /proxies`: `GET /stats` (every proxy's counters now, for rates) and
//! `GET /events?after=ID` (the recent events, [`EventLog`]).
//!
//! The page and its script and styles are embedded in the binary; the page
//! fetches nothing but this API. It only reads: see [`super::browsers`] for
//! what a browser may ask. Its Content-Security-Policy lets it load only
//! its own script and styles and talk only to its own origin, and no other
//! site may frame it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::events::EventLog;
use super::{AppState, json};

const PAGE: &str = include_str!("../../ui/live.html");
const SCRIPT: &str = include_str!("../../ui/live.js");
const STYLE: &str = include_str!("../../ui/live.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// One proxy's counters, as `GET /stats` shows them.
#[derive(Serialize)]
struct ProxyCounters {
    connections_open: u64,
    connections_total: u64,
    bytes_upstream: u64,
    bytes_downstream: u64,
    faults_injected: u64,
    plugin_failures: u64,
    http_requests: u64,
}

/// `GET /stats`: every proxy's counters, with the time they were read, so
/// that a reader makes rates from two readings.
pub async fn stats(State(registry): State<AppState>) -> Response {
    let proxies: BTreeMap<String, ProxyCounters> = registry
        .list()
        .await
        .iter()
        .map(|p| {
            let s = p.stats();
            (
                p.name().to_owned(),
                ProxyCounters {
                    connections_open: s.connections_open.get(),
                    connections_total: s.connections_total.get(),
                    bytes_upstream: s.bytes_upstream.get(),
                    bytes_downstream: s.bytes_downstream.get(),
                    faults_injected: s.faults_injected.get(),
                    plugin_failures: s.plugin_failures.get(),
                    http_requests: s.http_requests.get(),
                },
            )
        })
        .collect();
    let at_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    json(
        StatusCode::OK,
        serde_json::json!({ "at_ms": at_ms, "proxies": proxies }),
    )
}

#[derive(Deserialize)]
pub struct EventsQuery {
    /// Only events after this id (0 or absent: every one kept).
    #[serde(default)]
    after: u64,
}

/// `GET /events?after=ID`.
pub async fn events(
    State(registry): State<AppState>,
    State(log): State<Arc<EventLog>>,
    Query(query): Query<EventsQuery>,
) -> Response {
    log.observe(&registry.list().await);
    let (events, last_id) = log.after(query.after);
    json(
        StatusCode::OK,
        serde_json::json!({ "events": events, "last_id": last_id }),
    )
}
