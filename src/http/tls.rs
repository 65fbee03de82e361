//! TLS for the ES2+ listener: mandatory client certificates from the test CA (SGP.22 §6.1.1)
//! and the identity read from the client's certificate.

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::pki::PkiDir;

/// The crypto provider, chosen in one place (ring; see rust-stack.md §3).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server config presenting `server.pem` and requiring a client certificate issued by
/// `ca.pem` and not revoked by the CRL in `crl_file` (when given), with TLS 1.2 and 1.3 only
/// and ALPN for h2 and HTTP/1.1.
pub fn server_config(pki: &PkiDir, crl_file: Option<&Path>) -> Result<Arc<ServerConfig>> {
    let provider = provider();
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.ca_cert_path())
        .with_context(|| format!("reading {}", pki.ca_cert_path().display()))?
    {
        roots
            .add(cert.map_err(|e| anyhow!("{}: {e}", pki.ca_cert_path().display()))?)
            .context("adding the CA to the trust store")?;
    }
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    if let Some(path) = crl_file {
        let crls = CertificateRevocationListDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow!("{}: {e}", path.display()))?;
        // A certificate the CRL does not list is good; a CRL past its next update still counts
        // (a test PKI should not start refusing everyone a month later).
        verifier = verifier
            .with_crls(crls)
            .allow_unknown_revocation_status()
            .only_check_end_entity_revocation();
    }
    let verifier = verifier
        .build()
        .context("building the client certificate verifier")?;
    let chain = CertificateDer::pem_file_iter(pki.server_cert_path())
        .with_context(|| format!("reading {}", pki.server_cert_path().display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: {e}", pki.server_cert_path().display()))?;
    let key = PrivateKeyDer::from_pem_file(pki.server_key_path())
        .map_err(|e| anyhow!("{}: {e}", pki.server_key_path().display()))?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("choosing TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("loading the server certificate and key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Who is on the other end of a connection, from its verified client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's common name.
    pub common_name: Option<String>,
    /// DNS and URI subject alternative names.
    pub alt_names: Vec<String>,
    /// The whole subject DN, for logs and the journal (shared by every call on the connection).
    pub subject: std::sync::Arc<str>,
    /// The certificate serial, hex.
    pub serial: String,
}

impl PeerIdentity {
    /// Reads the identity of the leaf certificate of a completed handshake.
    pub fn from_connection(conn: &ServerConnection) -> Option<Self> {
        let leaf = conn.peer_certificates()?.first()?;
        let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
            .map(str::to_owned);
        let mut alt_names = Vec::new();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(s) | GeneralName::URI(s) => alt_names.push(s.to_string()),
                    _ => {}
                }
            }
        }
        Some(PeerIdentity {
            common_name,
            alt_names,
            subject: cert.subject().to_string().into(),
            serial: cert.raw_serial_as_string(),
        })
    }

    /// The CN and SANs: the names an operator's `certificateNames` are matched against.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.common_name
            .iter()
            .chain(self.alt_names.iter())
            .map(String::as_str)
    }
}

/// A short label for why a TLS handshake failed, for logs and metrics.
pub fn failure_reason(error: &std::io::Error) -> &'static str {
    use rustls::{CertificateError, Error};
    let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
        return "io";
    };
    match tls {
        Error::NoCertificatesPresented => "no_certificate",
        Error::InvalidCertificate(c) => match c {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "expired",
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "not_yet_valid"
            }
            CertificateError::UnknownIssuer => "unknown_ca",
            CertificateError::Revoked => "revoked",
            CertificateError::InvalidPurpose | CertificateError::InvalidPurposeContext { .. } => {
                "wrong_usage"
            }
            CertificateError::BadSignature => "bad_signature",
            _ => "invalid_certificate",
        },
        Error::PeerIncompatible(_) => "incompatible",
        Error::AlertReceived(_) => "alert_received",
        _ => "protocol",
    }
}
