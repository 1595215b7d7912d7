//! `/proxies`, `/populate` and `/reset`.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{ApiError, AppState, json, parse_body};
use crate::faults::ToxicView;
use crate::listener::{Mode, Proxy};
use crate::postgres::PostgresTls;
use crate::registry::ProxySpec;
use crate::tls::{ClientTls, ListenerTls};

/// A proxy in Toxiproxy's JSON shape, with its toxics.
#[derive(Serialize)]
pub struct ProxyView {
    name: String,
    listen: String,
    upstream: String,
    enabled: bool,
    toxics: Vec<ToxicView>,
    mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<ListenerTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    upstream_tls: Option<ClientTls>,
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres_tls: Option<PostgresTls>,
}

impl ProxyView {
    pub fn of(proxy: &Proxy) -> Self {
        Self {
            name: proxy.name().to_owned(),
            listen: proxy.listen(),
            upstream: proxy.upstream(),
            enabled: proxy.enabled(),
            toxics: proxy.chain().faults.iter().map(|f| f.view()).collect(),
            mode: proxy.mode(),
            tls: proxy.tls(),
            upstream_tls: proxy.upstream_tls(),
            postgres_tls: proxy.postgres_tls(),
        }
    }
}

pub async fn index(State(registry): State<AppState>) -> Response {
    let proxies: BTreeMap<String, ProxyView> = registry
        .list()
        .await
        .iter()
        .map(|p| (p.name().to_owned(), ProxyView::of(p)))
        .collect();
    json(StatusCode::OK, proxies)
}

pub async fn create(State(registry): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let spec: ProxySpec = parse_body(&body)?;
    let proxy = registry.create(spec).await?;
    Ok(json(StatusCode::CREATED, ProxyView::of(&proxy)))
}

pub async fn show(
    State(registry): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let proxy = registry.get(&name).await?;
    Ok(json(StatusCode::OK, ProxyView::of(&proxy)))
}

pub async fn update(
    State(registry): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: ProxySpec = parse_body(&body)?;
    let proxy = registry.update(&name, spec).await?;
    Ok(json(StatusCode::OK, ProxyView::of(&proxy)))
}

pub async fn delete(
    State(registry): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    registry.delete(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn populate(State(registry): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let specs: Vec<ProxySpec> = parse_body(&body)?;
    let (proxies, error) = registry.populate(specs).await;
    let views: Vec<ProxyView> = proxies.iter().map(|p| ProxyView::of(p)).collect();
    Ok(match error {
        None => json(StatusCode::CREATED, serde_json::json!({ "proxies": views })),
        Some(error) => {
            let error = ApiError::from(error);
            let mut body = error.body();
            body["proxies"] = serde_json::to_value(views).unwrap_or_default();
            json(error.status, body)
        }
    })
}

pub async fn reset(State(registry): State<AppState>) -> Result<StatusCode, ApiError> {
    registry.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}
