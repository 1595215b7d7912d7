//! Why a control operation was refused, and the status Toxiproxy answers
//! each reason with.

use std::net::SocketAddr;

use crate::listener::{ListenError, Mode, SettingsError};
use crate::plugin_host::PluginError;

/// Why a control operation was refused. Each maps to Toxiproxy's status code.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("proxy not found")]
    ProxyNotFound,
    /// Toxiproxy's message, then which toxics the proxy has, so that a
    /// remove by a wrong name says the right one.
    #[error("toxic not found: proxy {proxy:?} has no toxic {toxic:?}; {}", existing_toxics(.existing))]
    ToxicNotFound {
        proxy: String,
        toxic: String,
        existing: Vec<String>,
    },
    #[error("proxy already exists")]
    ProxyExists,
    #[error("toxic already exists")]
    ToxicExists,
    #[error("missing required field: {0}")]
    MissingField(String),
    #[error("invalid toxic type: {kind:?} is not a loaded plugin (loaded: {loaded})")]
    UnknownToxicType { kind: String, loaded: String },
    #[error("bad request body: {0}")]
    BadRequest(String),
    #[error("invalid toxic attributes: {0}")]
    Attributes(String),
    #[error("{0}")]
    Listen(#[from] ListenError),
    #[error(
        "listen address {listen:?}{} is not on loopback: through the control API a proxy listens on loopback only (127.0.0.0/8, ::1), unless faultgate serve runs with --allow-non-loopback-listen (FAULTGATE_ALLOW_NON_LOOPBACK_LISTEN=true), since it could expose an upstream that trusts loopback to the network",
        resolved(.listen, .addr)
    )]
    NotLoopback { listen: String, addr: SocketAddr },
    #[error("{0}")]
    Settings(#[from] SettingsError),
    #[error(
        "proxy {proxy:?} is in \"{mode}\" mode; the mode of a proxy cannot change (delete it and create it again)"
    )]
    ModeChange { proxy: String, mode: Mode },
    #[error(
        "toxic type {kind:?} is a fault for proxies in {mode} mode (\"mode\": \"{mode}\"); this proxy is not"
    )]
    WrongMode { kind: String, mode: Mode },
    #[error(
        "toxic type {kind:?} acts on the {} stream only, not {stream} (set \"stream\": \"{}\")",
        .supported.join(" and "), .supported[0]
    )]
    UnsupportedStream {
        kind: String,
        stream: String,
        supported: Vec<&'static str>,
    },
    #[error(
        "toxic type {kind:?} acts on proxies in {} mode only; this proxy is in {mode} mode",
        .supported.join(" or ")
    )]
    UnsupportedMode {
        kind: String,
        mode: Mode,
        supported: Vec<&'static str>,
    },
    #[error("plugin not found")]
    PluginNotFound,
    #[error("{0}")]
    BadPlugin(String),
    #[error(
        "plugin {plugin:?} is in use by proxy {proxy:?} (toxic {toxic:?}); remove the toxic first"
    )]
    PluginInUse {
        plugin: String,
        proxy: String,
        toxic: String,
    },
    #[error(
        "the new version of plugin {plugin:?} rejects the attributes of toxic {toxic:?} on proxy {proxy:?}: {reason}"
    )]
    ReplacementRejects {
        plugin: String,
        proxy: String,
        toxic: String,
        reason: String,
    },
    /// A plugin could not check or make the fault: it trapped, ran out of
    /// time or memory, or no instance was free.
    #[error("{0}")]
    Plugin(PluginError),
}

impl ControlError {
    /// The HTTP status Toxiproxy answers this with.
    pub fn status(&self) -> u16 {
        match self {
            Self::ProxyNotFound | Self::ToxicNotFound { .. } | Self::PluginNotFound => 404,
            Self::ProxyExists | Self::ToxicExists | Self::PluginInUse { .. } => 409,
            // Toxiproxy answers a listen address it cannot bind with a 500;
            // its clients read a 409 as "that name exists" (toxiproxy-python
            // raises ProxyExists), so a port clash must not be one.
            Self::Listen(ListenError::Bind { error, .. })
                if error.kind() == std::io::ErrorKind::AddrInUse =>
            {
                500
            }
            Self::NotLoopback { .. } => 403,
            Self::Plugin(PluginError::InstanceLimit { .. }) => 503,
            _ => 400,
        }
    }
}

/// The toxics a proxy has, for a "toxic not found".
fn existing_toxics(names: &[String]) -> String {
    if names.is_empty() {
        "it has no toxics".to_owned()
    } else {
        format!("its toxics: {}", names.join(", "))
    }
}

impl ControlError {
    /// `toxic` is not in `chain`, the chain of proxy `proxy`.
    pub fn toxic_not_found(proxy: &str, toxic: &str, chain: &crate::faults::Chain) -> Self {
        Self::ToxicNotFound {
            proxy: proxy.to_owned(),
            toxic: toxic.to_owned(),
            existing: chain.faults.iter().map(|f| f.name.clone()).collect(),
        }
    }
}

/// What a name given as a listen address resolved to, if it was a name.
fn resolved(listen: &str, addr: &SocketAddr) -> String {
    if addr.to_string() == listen {
        String::new()
    } else {
        format!(" (resolved to {addr})")
    }
}
