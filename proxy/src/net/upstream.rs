//! Where a proxy sends its connections, and how it dials there.

use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Stream;
use crate::tls::{self, ClientTls, TlsError};

/// How long dialing the upstream (TLS handshake included) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed `upstream`: `host:port`, or `https://host:port` / `tls://host:port`
/// for TLS to the upstream (checked as `upstream_tls` says).
pub struct Upstream {
    /// As the user gave it.
    text: String,
    /// `host:port`, what is dialed.
    address: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("upstream {0:?}: expected host:port, https://host:port or tls://host:port")]
    Address(String),
    #[error(
        "upstream_tls is set, but upstream {0:?} is not TLS; write it as https://host:port or tls://host:port"
    )]
    TlsSettingsWithoutTls(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Why dialing the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("upstream {address} unreachable: {error}")]
    Connect {
        address: String,
        error: std::io::Error,
    },
    #[error("upstream {address} did not answer within {CONNECT_TIMEOUT:?}")]
    Timeout { address: String },
    #[error("TLS handshake with upstream {address} failed: {error}")]
    Handshake {
        address: String,
        error: std::io::Error,
    },
}

impl Upstream {
    pub fn parse(text: &str, tls_settings: Option<&ClientTls>) -> Result<Self, UpstreamError> {
        let (secure, address) = match text.split_once("://") {
            Some(("https" | "tls", rest)) => (true, rest.trim_end_matches('/')),
            Some(("http" | "tcp", rest)) => (false, rest.trim_end_matches('/')),
            Some(_) => return Err(UpstreamError::Address(text.to_owned())),
            None => (false, text),
        };
        let host = split_host(address).ok_or_else(|| UpstreamError::Address(text.to_owned()))?;
        let tls = match (secure, tls_settings) {
            (true, settings) => Some(tls::connector(
                &settings.cloned().unwrap_or_default(),
                host,
            )?),
            (false, Some(_)) => return Err(UpstreamError::TlsSettingsWithoutTls(text.to_owned())),
            (false, None) => None,
        };
        Ok(Self {
            text: text.to_owned(),
            address: address.to_owned(),
            tls,
        })
    }

    /// The upstream as the user gave it.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects, with the TLS handshake when the upstream is TLS.
    pub async fn dial(&self) -> Result<Stream, DialError> {
        let address = || self.address.clone();
        let dial = async {
            let tcp =
                TcpStream::connect(&self.address)
                    .await
                    .map_err(|error| DialError::Connect {
                        address: address(),
                        error,
                    })?;
            let _ = tcp.set_nodelay(true);
            match &self.tls {
                None => Ok(Stream::Plain(tcp)),
                Some((connector, name)) => {
                    let tls = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|error| DialError::Handshake {
                            address: address(),
                            error,
                        })?;
                    Ok(Stream::Tls(Box::new(tls.into())))
                }
            }
        };
        tokio::time::timeout(CONNECT_TIMEOUT, dial)
            .await
            .unwrap_or_else(|_| Err(DialError::Timeout { address: address() }))
    }
}

/// The host of `host:port` or `[v6]:port`, if the port is there.
fn split_host(address: &str) -> Option<&str> {
    let (host, port) = address.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    let host = tls::unbracketed(host);
    (!host.is_empty()).then_some(host)
}
