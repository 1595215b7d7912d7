//! The API's bodies (and config files' entries) as the registry reads them:
//! a proxy and a toxic, every field optional so that one shape serves every
//! operation, each of which checks what it needs.

use serde::de::{Error as _, IntoDeserializer};
use serde::{Deserialize, Deserializer};

use super::error::ControlError;
use crate::listener::Mode;
use crate::plugin_host::Direction;
use crate::postgres::PostgresTls;
use crate::tls::{ClientTls, ListenerTls};

/// Where a listen address is not given, proxies listen on loopback on a port
/// the system picks (read it back from the proxy).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:0";

/// A proxy as the API (and config files) describe it. Every field is
/// optional here so that one shape serves create, update and populate; each
/// operation checks what it needs. Unknown fields are ignored, as Toxiproxy
/// does, so every client's extra fields are harmless.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ProxySpec {
    pub name: Option<String>,
    pub listen: Option<String>,
    pub upstream: Option<String>,
    pub enabled: Option<bool>,
    /// `tcp` (the default), `http` or `postgres` (an extension).
    #[serde(default, deserialize_with = "deserialize_mode")]
    pub mode: Option<Mode>,
    /// Terminate TLS on the listener (an extension).
    pub tls: Option<ListenerTls>,
    /// How to check an `https://` or `tls://` upstream (an extension).
    pub upstream_tls: Option<ClientTls>,
    /// In `postgres` mode: `refuse` (answer 'N') or `passthrough` a client's
    /// request for TLS (an extension).
    pub postgres_tls: Option<PostgresTls>,
    /// Faults to attach when the proxy is created (an extension; Toxiproxy
    /// ignores this field on create, and so do updates here).
    pub toxics: Option<Vec<ToxicSpec>>,
}

/// A toxic as the API (and config files) describe it.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ToxicSpec {
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// `downstream` (the default) or `upstream`, in any case.
    pub stream: Option<Direction>,
    pub toxicity: Option<f64>,
    /// Apply to every Nth connection (or request) instead of by toxicity
    /// (an extension).
    pub every: Option<u64>,
    /// Apply only to connections from these clients: addresses or CIDR
    /// ranges (an extension). An empty list, like none, means every client.
    #[serde(default, deserialize_with = "deserialize_clients")]
    pub clients: Option<Vec<String>>,
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A proxy's `mode`, read by [`Mode`]'s own serde parser, in any case; an
/// empty one is not given (clients that send every field send ""). The
/// message names the field, which serde's alone does not.
pub fn deserialize_mode<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Mode>, D::Error> {
    let Some(text) = Option::<String>::deserialize(d)?.filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    Mode::deserialize(text.to_ascii_lowercase().into_deserializer())
        .map(Some)
        .map_err(|e: serde::de::value::Error| D::Error::custom(format!("mode {text:?}: {e}")))
}

/// A toxic's `clients`, a list of strings; the message names the field,
/// which serde's alone does not. Each entry is checked by the registry.
pub fn deserialize_clients<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<String>>, D::Error> {
    Option::<Vec<String>>::deserialize(d).map_err(|e| {
        D::Error::custom(format!(
            "clients: {e}; expected a list of client addresses or CIDR ranges, e.g. [\"127.0.0.2\", \"10.0.0.0/8\"]"
        ))
    })
}

/// The name and upstream a create needs; `at` says where, for populate.
pub(super) fn required(spec: &ProxySpec, at: &str) -> Result<(String, String), ControlError> {
    let name = spec.name.clone().filter(|n| !n.is_empty());
    let upstream = spec.upstream.clone().filter(|u| !u.is_empty());
    match (name, upstream) {
        (None, _) => Err(ControlError::MissingField(format!("name{at}"))),
        (_, None) => Err(ControlError::MissingField(format!("upstream{at}"))),
        (Some(name), Some(upstream)) => Ok((name, upstream)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(body: &str) -> Result<ProxySpec, String> {
        serde_json::from_str(body).map_err(|e| e.to_string())
    }

    #[test]
    fn a_mode_is_read_by_serde_in_any_case_and_named_when_wrong() {
        assert_eq!(spec(r#"{"mode": "HTTP"}"#).unwrap().mode, Some(Mode::Http));
        assert_eq!(
            spec(r#"{"mode": "postgres"}"#).unwrap().mode,
            Some(Mode::Postgres)
        );
        assert_eq!(spec(r#"{"mode": ""}"#).unwrap().mode, None);
        assert_eq!(spec(r#"{"mode": null}"#).unwrap().mode, None);
        assert_eq!(
            spec(r#"{"mode": "udp"}"#).unwrap_err(),
            "mode \"udp\": unknown variant `udp`, expected one of `tcp`, `http`, `postgres` at line 1 column 15"
        );
        assert_eq!(Mode::Postgres.to_string(), "postgres");
    }

    #[test]
    fn unknown_fields_in_api_bodies_are_ignored_as_toxiproxy_does() {
        let proxy = spec(r#"{"name": "a", "mode": "tcp", "rand": 1}"#).unwrap();
        assert_eq!(proxy.mode, Some(Mode::Tcp));
        let toxic: ToxicSpec =
            serde_json::from_str(r#"{"type": "latency", "stream": "UPSTREAM", "x": []}"#).unwrap();
        assert_eq!(toxic.stream, Some(Direction::Upstream));
    }
}
