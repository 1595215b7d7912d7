//! The three kinds of plugin, by the interface each exports: a name every
//! part of the host uses, so it lives apart from any one of them.

use serde::Serialize;

/// What a plugin filters: bytes on a connection, or HTTP exchanges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PluginKind {
    /// Exports `faultgate:plugin/tcp`: works on every proxy.
    Tcp,
    /// Exports `faultgate:plugin/http`: works on proxies in `http` mode.
    Http,
    /// Exports `faultgate:plugin/postgres`: works on proxies in `postgres` mode.
    Postgres,
}
