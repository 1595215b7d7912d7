//! Extension: a proxy's open connections, listed (`GET
//! /proxies/{p}/connections`) and cut one at a time (`DELETE
//! /proxies/{p}/connections/{id}`, RST by default, FIN with `?how=close`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{ApiError, AppState, json};
use crate::conn::Connection;
use crate::faults::Chain;
use crate::net::Ending;
use crate::plugin_host::Direction;

/// One open connection as the API shows it.
#[derive(Serialize)]
struct ConnectionView {
    id: u64,
    client: String,
    upstream: String,
    age_ms: u64,
    /// Bytes passed on toward the upstream, and toward the client.
    bytes_upstream: u64,
    bytes_downstream: u64,
    /// The toxics acting on it now (whose roll picked it), by name.
    toxics: Vec<String>,
    /// Whether a fault holds it now.
    held: bool,
}

impl ConnectionView {
    fn of(conn: &Connection, chain: &Chain) -> Self {
        let toxics = conn
            .live
            .acting()
            .into_iter()
            .filter_map(|id| chain.faults.iter().find(|f| f.id == id))
            .map(|f| f.name.clone())
            .collect();
        Self {
            id: conn.id,
            client: conn.client.to_string(),
            upstream: conn.upstream.to_string(),
            age_ms: conn.live.age_ms(),
            bytes_upstream: conn.live.bytes(Direction::Upstream),
            bytes_downstream: conn.live.bytes(Direction::Downstream),
            toxics,
            held: conn.live.held(),
        }
    }
}

pub async fn index(
    State(registry): State<AppState>,
    Path(proxy): Path<String>,
) -> Result<Response, ApiError> {
    let proxy = registry.get(&proxy).await?;
    let chain = proxy.chain();
    let views: Vec<ConnectionView> = proxy
        .live_connections()
        .iter()
        .map(|c| ConnectionView::of(c, &chain))
        .collect();
    Ok(json(StatusCode::OK, views))
}

pub async fn cut(
    State(registry): State<AppState>,
    Path((proxy, id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let how = match query.get("how").map(String::as_str) {
        None | Some("reset") => Ending::Reset,
        Some("close") => Ending::Close,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "how={other:?}: a connection is cut with how=reset (RST, the default) or how=close (FIN)"
                ),
            ));
        }
    };
    let proxy = registry.get(&proxy).await?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!("connection not found: {id:?} is not an open connection of this proxy"),
        )
    };
    let id: u64 = id.parse().map_err(|_| not_found())?;
    let conn = proxy.live_connection(id).ok_or_else(not_found)?;
    tracing::info!(proxy = %conn.proxy, conn = conn.id, client = %conn.client, ?how, "connection cut through the control API");
    conn.end(how);
    Ok(StatusCode::NO_CONTENT)
}
