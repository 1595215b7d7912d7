//! `/plugins`: what faults can be attached, and their attributes.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{ApiError, AppState, json};
use crate::plugin_host::{Description, Plugin, PluginSource};

#[derive(Serialize)]
struct PluginView<'a> {
    #[serde(flatten)]
    description: &'a Description,
    source: &'a PluginSource,
}

fn view(plugin: &Arc<Plugin>) -> PluginView<'_> {
    PluginView {
        description: plugin.description(),
        source: plugin.source(),
    }
}

pub async fn index(State(registry): State<AppState>) -> Response {
    let plugins = registry.plugins().list();
    json(StatusCode::OK, plugins.iter().map(view).collect::<Vec<_>>())
}

pub async fn show(
    State(registry): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let plugin = registry
        .plugins()
        .get(&name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "plugin not found"))?;
    Ok(json(StatusCode::OK, view(&plugin)))
}

/// Extension: load a plugin from the component bytes in the body.
pub async fn upload(State(registry): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let plugin = registry.upload_plugin(&body).await?;
    Ok(json(StatusCode::CREATED, view(&plugin)))
}

/// Extension: unload a plugin no fault uses.
pub async fn delete(
    State(registry): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    registry.delete_plugin(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}
