//! A proxy's settings that take work to check (files to read, an upstream
//! to parse), checked completely before anything changes.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_rustls::TlsAcceptor;

use crate::net::{Upstream, UpstreamError};
use crate::postgres::PostgresTls;
use crate::tls::{self, Alpn, ClientTls, ListenerTls, TlsError};

/// What a proxy understands of the traffic it relays.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Bytes: TCP faults only.
    #[default]
    Tcp,
    /// HTTP/1.1 (and HTTP/2 from clients): HTTP faults per request, and
    /// TCP faults on the client's bytes.
    Http,
    /// The Postgres wire protocol: Postgres faults per message, and TCP
    /// faults on the bytes.
    Postgres,
}

/// A mode as the API writes it: "tcp", "http", "postgres" (serde's names,
/// so they are written in one place).
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.serialize(f)
    }
}

/// The settings of a proxy that take work to check: files to read, an
/// upstream to parse. Made by [`Endpoints::prepare`] before anything changes,
/// so a bad one changes nothing.
pub struct Endpoints {
    pub(super) postgres_tls: PostgresTls,
    pub(super) upstream: Arc<Upstream>,
    pub(super) upstream_tls: Option<ClientTls>,
    pub(super) tls: Option<(ListenerTls, TlsAcceptor)>,
}

/// Why a proxy's settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("postgres_tls is a setting of proxies in postgres mode (\"mode\": \"postgres\")")]
    PostgresTlsOutsidePostgresMode,
}

impl Endpoints {
    pub fn prepare(
        mode: Mode,
        upstream: &str,
        upstream_tls: Option<ClientTls>,
        tls: Option<ListenerTls>,
        postgres_tls: Option<PostgresTls>,
    ) -> Result<Self, SettingsError> {
        if postgres_tls.is_some() && mode != Mode::Postgres {
            return Err(SettingsError::PostgresTlsOutsidePostgresMode);
        }
        let upstream = Arc::new(Upstream::parse(upstream, upstream_tls.as_ref())?);
        let alpn = match mode {
            Mode::Tcp | Mode::Postgres => Alpn::None,
            Mode::Http => Alpn::Http,
        };
        let tls = match tls {
            Some(spec) => {
                let acceptor = tls::acceptor(&spec, alpn)?;
                Some((spec, acceptor))
            }
            None => None,
        };
        Ok(Self {
            postgres_tls: postgres_tls.unwrap_or_default(),
            upstream,
            upstream_tls,
            tls,
        })
    }
}
