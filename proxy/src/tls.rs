//! TLS with rustls: terminating it on a proxy's listener, and originating it
//! to an upstream.
//!
//! Both are configured per proxy. Certificates and keys are read when the
//! proxy is created or changed, so a bad file is a 400 (or a config error)
//! naming the setting, never a failure on the first connection.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde::{Deserialize, Serialize};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// `tls`: terminate TLS on the listener with this certificate and key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListenerTls {
    /// PEM file: the certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM file: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// How a TLS client checks the server's certificate: a proxy's
/// `upstream_tls` (for an `https://` or `tls://` upstream), and a scenario's
/// `tls` (for its `http` steps to `https://` URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(rename = "tls")]
pub struct ClientTls {
    /// PEM file of the CA certificates to trust; by default the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// Accept any certificate. For test stacks with throwaway certificates
    /// only: the server is not authenticated at all.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure: bool,
    /// The name to ask for (SNI) and to check the certificate against; by
    /// default the host dialed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// What is wrong with a TLS setting. `setting` is where it was given, e.g.
/// `tls.cert`.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{setting}: cannot read {path}: {error}")]
    Read {
        setting: String,
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("{setting}: {path}: {problem}")]
    Content {
        setting: String,
        path: PathBuf,
        problem: String,
    },
    #[error("{setting}: {problem}")]
    Invalid { setting: String, problem: String },
}

/// The protocols offered by ALPN: HTTP/2 only where an HTTP proxy serves it.
#[derive(Debug, Clone, Copy)]
pub enum Alpn {
    None,
    Http,
}

/// A TLS server for a listener.
pub fn acceptor(spec: &ListenerTls, alpn: Alpn) -> Result<TlsAcceptor, TlsError> {
    let certs = read_certs("tls.cert", &spec.cert)?;
    let key = read_key("tls.key", &spec.key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Invalid {
            setting: "tls.key".into(),
            problem: format!(
                "{}: does not go with the certificate in {}: {e}",
                spec.key.display(),
                spec.cert.display()
            ),
        })?;
    if let Alpn::Http = alpn {
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    }
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A TLS client for an upstream, and the name it checks `host` as.
pub fn connector(
    spec: &ClientTls,
    host: &str,
) -> Result<(TlsConnector, ServerName<'static>), TlsError> {
    let name = server_name(spec, host, "upstream_tls")?;
    Ok((
        TlsConnector::from(client_config(spec, "upstream_tls")?),
        name,
    ))
}

/// The name a TLS client asks for and checks the certificate of `host`
/// (an IPv6 address may come in brackets, as in a URL) against:
/// `server_name` when given. `section` names the settings in
/// errors (`upstream_tls` for a proxy, `tls` for a scenario).
pub fn server_name(
    spec: &ClientTls,
    host: &str,
    section: &str,
) -> Result<ServerName<'static>, TlsError> {
    let name = spec.server_name.as_deref().unwrap_or(unbracketed(host));
    ServerName::try_from(name.to_owned()).map_err(|_| TlsError::Invalid {
        setting: format!("{section}.server_name"),
        problem: format!("{name:?} is not a DNS name or IP address"),
    })
}

/// A TLS client's configuration: which certificates it trusts. `section`
/// names the settings in errors.
pub fn client_config(
    spec: &ClientTls,
    section: &str,
) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let ca_setting = format!("{section}.ca");
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions");
    let config = if spec.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &spec.ca {
            Some(path) => {
                for cert in read_certs(&ca_setting, path)? {
                    roots.add(cert).map_err(|e| TlsError::Content {
                        setting: ca_setting.clone(),
                        path: path.clone(),
                        problem: format!("not a usable CA certificate: {e}"),
                    })?;
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(TlsError::Invalid {
                        problem: format!(
                            "no CA file given and no system CA certificates found; \
                             set {ca_setting} (or {section}.insecure for a test stack)"
                        ),
                        setting: ca_setting,
                    });
                }
            }
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(Arc::new(config))
}

/// A host without the brackets a URL or `[v6]:port` puts around an IPv6
/// address.
pub(crate) fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(setting: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|error| TlsError::Read {
        setting: setting.to_owned(),
        path: path.to_owned(),
        error,
    })
}

fn read_certs(setting: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(setting, path)?;
    let content = |problem: String| TlsError::Content {
        setting: setting.to_owned(),
        path: path.to_owned(),
        problem,
    };
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| content(format!("not a PEM certificate file: {e}")))?;
    if certs.is_empty() {
        return Err(content(
            "no certificate in it (expected \"-----BEGIN CERTIFICATE-----\")".into(),
        ));
    }
    Ok(certs)
}

fn read_key(setting: &str, path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_pem(setting, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsError::Content {
        setting: setting.to_owned(),
        path: path.to_owned(),
        problem: format!("no private key in it ({e}); expected a PEM PKCS#8, PKCS#1 or SEC1 key"),
    })
}

/// The verifier behind `insecure` (a proxy's `upstream_tls`, a scenario's
/// `tls`): checks signatures (so the handshake is real) but trusts any
/// certificate.
#[derive(Debug)]
struct AcceptAnything(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
