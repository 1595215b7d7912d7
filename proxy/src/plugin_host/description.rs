//! What a plugin says of itself, in the control API's JSON shape: its kind,
//! its attributes with their types and defaults, and where it came from.

use std::path::PathBuf;

use serde::Serialize;

use super::bindings::{self, Value, ValueType};
use super::kind::PluginKind;

/// Where a plugin came from, as `GET /plugins` shows it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginSource {
    Builtin,
    File(PathBuf),
    /// Sent to `POST /plugins`; identified by the SHA-256 of its bytes.
    Upload {
        sha256: String,
    },
}

/// A plugin's self-description, in the control API's JSON shape.
#[derive(Debug, Clone, Serialize)]
pub struct Description {
    pub name: String,
    pub kind: PluginKind,
    pub version: String,
    pub summary: String,
    pub attributes: Vec<AttributeDescription>,
    pub wants_bytes: bool,
    /// The streams it acts on, as it declares them (`@streams`, see
    /// `declarations.rs`); both when it declares none. An extension
    /// field of `GET /plugins`.
    pub streams: Vec<&'static str>,
    /// The proxy modes it acts in (`@modes`); every mode of its kind when
    /// it declares none. An extension field of `GET /plugins`.
    pub modes: Vec<&'static str>,
    /// The memory one instance needs (MiB), as it declares it
    /// (`@memory-mib`), when more than the host gives by default. An
    /// extension field of `GET /plugins`, absent when not declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// The time one call needs (ms), as it declares it (`@deadline-ms`).
    /// An extension field of `GET /plugins`, absent when not declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
}

impl Description {
    /// Whether the plugin acts on this stream.
    pub fn acts_on_stream(&self, stream: bindings::Direction) -> bool {
        self.streams
            .contains(&super::declarations::stream_name(stream))
    }

    /// Whether the plugin acts in this proxy mode ("tcp", "http", "postgres").
    pub fn acts_in_mode(&self, mode: &str) -> bool {
        self.modes.contains(&mode)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AttributeDescription {
    pub name: String,
    #[serde(rename = "type")]
    pub value_type: &'static str,
    pub default: Option<serde_json::Value>,
    pub summary: String,
}

/// Checks what `describe` returned and puts it in the API's shape.
pub(super) fn convert_description(
    raw: bindings::Description,
    kind: PluginKind,
) -> Result<Description, String> {
    if raw.name.is_empty()
        || !raw
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return Err(format!(
            "describe() names the plugin {:?}; a name is letters, digits, '_' and '-'",
            raw.name
        ));
    }
    let declared = super::declarations::read(&raw.attributes, kind)?;
    let attributes = raw
        .attributes
        .into_iter()
        .filter(|spec| !super::declarations::is_declaration(&spec.name))
        .map(|spec| AttributeDescription {
            name: spec.name,
            value_type: match spec.type_ {
                ValueType::Integer => "integer",
                ValueType::Float => "float",
                ValueType::Boolean => "boolean",
                ValueType::Text => "text",
            },
            default: spec.default.as_ref().map(value_to_json),
            summary: spec.summary,
        })
        .collect();
    Ok(Description {
        name: raw.name,
        kind,
        version: raw.version,
        summary: raw.summary,
        attributes,
        wants_bytes: raw.wants_bytes,
        streams: declared.streams,
        modes: declared.modes,
        memory_mib: declared.memory_mib,
        deadline_ms: declared.deadline_ms,
    })
}

/// An attribute value as JSON, for the API.
fn value_to_json(value: &Value) -> serde_json::Value {
    match value {
        Value::Integer(i) => (*i).into(),
        Value::Float(f) => (*f).into(),
        Value::Boolean(b) => (*b).into(),
        Value::Text(s) => s.clone().into(),
    }
}
