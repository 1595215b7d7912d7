//! `/proxies/{proxy}/toxics`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::{ApiError, AppState, json, parse_body};
use crate::faults::ToxicView;
use crate::registry::{ControlError, ToxicSpec};

pub async fn index(
    State(registry): State<AppState>,
    Path(proxy): Path<String>,
) -> Result<Response, ApiError> {
    let proxy = registry.get(&proxy).await?;
    let toxics: Vec<ToxicView> = proxy.chain().faults.iter().map(|f| f.view()).collect();
    Ok(json(StatusCode::OK, toxics))
}

pub async fn create(
    State(registry): State<AppState>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: ToxicSpec = parse_body(&body)?;
    let fault = registry.add_toxic(&proxy, spec).await?;
    Ok(json(StatusCode::OK, fault.view()))
}

/// Extension: replace the whole chain in one step.
pub async fn replace(
    State(registry): State<AppState>,
    Path(proxy): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let specs: Vec<ToxicSpec> = parse_body(&body)?;
    let chain = registry.replace_toxics(&proxy, specs).await?;
    let toxics: Vec<ToxicView> = chain.faults.iter().map(|f| f.view()).collect();
    Ok(json(StatusCode::OK, toxics))
}

pub async fn show(
    State(registry): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let found = registry.get(&proxy).await?;
    let chain = found.chain();
    let fault = chain
        .find(&toxic)
        .ok_or_else(|| ControlError::toxic_not_found(&proxy, &toxic, &chain))?;
    Ok(json(StatusCode::OK, fault.view()))
}

pub async fn update(
    State(registry): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: ToxicSpec = parse_body(&body)?;
    let fault = registry.update_toxic(&proxy, &toxic, spec).await?;
    Ok(json(StatusCode::OK, fault.view()))
}

pub async fn delete(
    State(registry): State<AppState>,
    Path((proxy, toxic)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    registry.remove_toxic(&proxy, &toxic).await?;
    Ok(StatusCode::NO_CONTENT)
}
