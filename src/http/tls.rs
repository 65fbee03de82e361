//! TLS for the ES2+ listener: mandatory client certificates from the test CA (SGP.22 §6.1.1)
//! and the identity read from the client's certificate; and for the ES9+ listener, whose
//! clients (LPAs) present none (SGP.22 §2.6.6).

use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::UnixTime;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ServerConnection, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::caller::CertificateIdentity;
use crate::pki::PkiDir;

/// Why a TLS configuration could not be built from the PKI (a certificate, key or CRL
/// unreadable): the whole chain of causes, one message.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TlsError(String);

/// Runs a step written with `anyhow` as a [`TlsError`].
fn tls_error<T>(step: impl FnOnce() -> anyhow::Result<T>) -> Result<T, TlsError> {
    step().map_err(|e| TlsError(format!("{e:#}")))
}

/// A server config presenting `server.pem` and requiring a client certificate issued by
/// `ca.pem` and not revoked by the CRL in `crl_file` (when given), with TLS 1.2 and 1.3 only
/// and ALPN for h2 and HTTP/1.1.
pub fn server_config(pki: &PkiDir, crl_file: Option<&Path>) -> Result<Arc<ServerConfig>, TlsError> {
    tls_error(|| {
        let provider = crate::pki::provider();
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
        let verifier = Arc::new(RequireClientAuth(
            verifier
                .build()
                .context("building the client certificate verifier")?,
        ));
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
    })
}

/// A server config for ES9+: the DPtls chain and key of the GSMA-style PKI, no client
/// authentication, TLS 1.2 and 1.3, ALPN for h2 and HTTP/1.1.
pub(crate) fn es9_server_config(
    credentials: &smdpp_rsp::pki::ServerCredentials,
) -> Result<Arc<ServerConfig>> {
    gsma_server_config(
        &credentials.tls_chain,
        &credentials.tls_key,
        None,
        "the DPtls certificate and key",
    )
}

/// A server config for the SM-DS: the DStls chain and key; a client certificate is asked for
/// but not required (ES11's LPAs have none, §6.1), and one that is presented must chain to a
/// CI of the folder and allow client authentication (ES12's SM-DP+s present their DPtls,
/// §5.9); TLS 1.2 and 1.3, ALPN for h2 and HTTP/1.1.
pub(crate) fn smds_server_config(
    credentials: &smdpp_rsp::pki::SmdsCredentials,
) -> Result<Arc<ServerConfig>> {
    let mut roots = RootCertStore::empty();
    // webpki verifies NIST P-256 chains; a brainpool CI is no ES12 caller's anchor.
    let (_, _) = roots.add_parsable_certificates(
        credentials
            .cis
            .iter()
            .filter(|ci| ci.curve == smdpp_rsp::crypto::Curve::NistP256)
            .map(|ci| CertificateDer::from(ci.der.clone())),
    );
    let verifier =
        WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crate::pki::provider())
            .allow_unauthenticated()
            .build()
            .context("building the ES12 client certificate verifier")?;
    gsma_server_config(
        &credentials.tls_chain,
        &credentials.tls_key,
        Some(Arc::new(RequireClientAuth(verifier))),
        "the DStls certificate and key",
    )
}

/// A server config of the GSMA-style PKI: `chain` (DER, the server's certificate first) and
/// `key` (PKCS#8 DER), client certificates as `clients` verifies them (none asked without),
/// TLS 1.2 and 1.3, ALPN for h2 and HTTP/1.1.
fn gsma_server_config(
    chain: &[Vec<u8>],
    key: &[u8],
    clients: Option<Arc<dyn ClientCertVerifier>>,
    what: &str,
) -> Result<Arc<ServerConfig>> {
    let chain = chain
        .iter()
        .map(|der| CertificateDer::from(der.clone()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(key.to_vec().into());
    let builder = ServerConfig::builder_with_provider(crate::pki::provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .context("choosing TLS versions")?;
    let builder = match clients {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .with_context(|| format!("loading {what}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The chain verification of webpki, plus one rule it does not make: the certificate must say
/// it is for client authentication. webpki accepts a certificate with no extended key usage at
/// all; an SM-DP+ wants operators to present client certificates, not any certificate of the
/// CA (a server certificate has serverAuth only and is refused by webpki already).
#[derive(Debug)]
struct RequireClientAuth(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequireClientAuth {
    fn offer_client_auth(&self) -> bool {
        self.0.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.0.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self.0.verify_client_cert(end_entity, intermediates, now)?;
        let client_auth = X509Certificate::from_der(end_entity.as_ref())
            .ok()
            .and_then(|(_, cert)| {
                cert.extended_key_usage()
                    .ok()
                    .flatten()
                    .map(|e| e.value.client_auth)
            });
        if client_auth == Some(true) {
            Ok(verified)
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::InvalidPurpose,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The names in the verified client certificate of a completed handshake.
pub fn certificate_identity(conn: &ServerConnection) -> Option<CertificateIdentity> {
    let leaf = conn.peer_certificates()?.first()?;
    let (_, cert) = X509Certificate::from_der(leaf.as_ref()).ok()?;
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);
    let mut alt_names = Vec::new();
    let mut registered_id = None;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(s) | GeneralName::URI(s) => alt_names.push(s.to_string()),
                // Dotted by the crate's reader: x509-parser splits the first two arcs of an OID
                // under 2 with an arc over 39 (2.999.10) as if it were under 0 or 1.
                GeneralName::RegisteredID(oid) if registered_id.is_none() => {
                    registered_id = smdpp_rsp::pki::oid_text(oid.as_bytes());
                }
                _ => {}
            }
        }
    }
    Some(CertificateIdentity {
        common_name,
        alt_names,
        subject: cert.subject().to_string().into(),
        serial: cert.raw_serial_as_string(),
        registered_id,
    })
}

/// Why a TLS handshake failed. Mapped once, here, to the metric label and to the conformance
/// check it fails (as rustls maps its `Error` to an alert in one exhaustive `match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// The client presented no certificate.
    NoCertificate,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The certificate was issued by another CA.
    UnknownCa,
    /// The CRL lists the certificate.
    Revoked,
    /// The certificate is not for client authentication.
    WrongUsage,
    /// The certificate's signature does not verify.
    BadSignature,
    /// Another certificate problem.
    InvalidCertificate,
    /// No protocol version or cipher suite in common.
    Incompatible,
    /// The client sent an alert.
    AlertReceived,
    /// Another TLS protocol error.
    Protocol,
    /// The connection failed below TLS.
    Io,
    /// The client did not finish the handshake in time.
    Timeout,
    /// The client spoke plain HTTP to the TLS port.
    PlainHttp,
}

impl HandshakeFailure {
    /// Classifies the error of a failed handshake.
    pub fn of(error: &std::io::Error) -> Self {
        use rustls::{CertificateError, Error};
        let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<Error>()) else {
            return HandshakeFailure::Io;
        };
        match tls {
            Error::NoCertificatesPresented => HandshakeFailure::NoCertificate,
            Error::InvalidCertificate(c) => match c {
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    HandshakeFailure::Expired
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    HandshakeFailure::NotYetValid
                }
                CertificateError::UnknownIssuer => HandshakeFailure::UnknownCa,
                CertificateError::Revoked => HandshakeFailure::Revoked,
                CertificateError::InvalidPurpose
                | CertificateError::InvalidPurposeContext { .. } => HandshakeFailure::WrongUsage,
                CertificateError::BadSignature => HandshakeFailure::BadSignature,
                _ => HandshakeFailure::InvalidCertificate,
            },
            Error::PeerIncompatible(_) => HandshakeFailure::Incompatible,
            Error::AlertReceived(_) => HandshakeFailure::AlertReceived,
            _ => HandshakeFailure::Protocol,
        }
    }

    /// The `reason` label of `smdpp_tls_handshake_failures_total` and of the log line.
    pub fn label(self) -> &'static str {
        match self {
            HandshakeFailure::NoCertificate => "no_certificate",
            HandshakeFailure::Expired => "expired",
            HandshakeFailure::NotYetValid => "not_yet_valid",
            HandshakeFailure::UnknownCa => "unknown_ca",
            HandshakeFailure::Revoked => "revoked",
            HandshakeFailure::WrongUsage => "wrong_usage",
            HandshakeFailure::BadSignature => "bad_signature",
            HandshakeFailure::InvalidCertificate => "invalid_certificate",
            HandshakeFailure::Incompatible => "incompatible",
            HandshakeFailure::AlertReceived => "alert_received",
            HandshakeFailure::Protocol => "protocol",
            HandshakeFailure::Io => "io",
            HandshakeFailure::Timeout => "timeout",
            HandshakeFailure::PlainHttp => "plain_http",
        }
    }
}
