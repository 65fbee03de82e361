//! The test PKI: a CA, the server certificate, one client certificate per operator, and the
//! signing of operators' CSRs, as a vendor does at onboarding. [`CertificateAuthority`] is the
//! authority in memory, [`PkiDir`] the directory that keeps its files (`./certs` by default).

mod ca;
mod dir;

use std::sync::Arc;

pub use ca::{CertificateAuthority, IssuedCert, LeafSpec, Usage, MAX_CSR_DAYS};
pub use dir::PkiDir;
pub use smdpp_rsp::pki::EnsureReport;

/// File name of the CA certificate.
pub const CA_CERT: &str = "ca.pem";
/// File name of the CA key.
pub const CA_KEY: &str = "ca.key";
/// File name of the server certificate.
pub const SERVER_CERT: &str = "server.pem";
/// File name of the server key.
pub const SERVER_KEY: &str = "server.key";
/// Base name of the SM-DP+'s own client certificate, for mTLS on outbound notifications.
pub const NOTIFICATION_CLIENT: &str = "smdpp-client";
/// The admin token the server makes when its admin API listens beyond loopback without one.
pub const ADMIN_TOKEN: &str = "admin-token";
/// The certificate revocation list `certs revoke` writes (PEM).
pub const CRL: &str = "crl.pem";
/// How long a CRL written by the mock says it is current.
pub(crate) const CRL_DAYS: i64 = 30;

/// Validity of issued leaf certificates: 825 days, the longest browsers accepted for servers.
pub(crate) const LEAF_DAYS: i64 = 825;
/// Validity of the CA.
pub(crate) const CA_DAYS: i64 = 3650;

/// The crypto provider, chosen in one place: ring (see [`smdpp_rsp::pki::provider`];
/// `deny.toml` keeps aws-lc-rs out). Everything in the crate, its tests and examples that
/// speaks TLS gets its provider here.
#[doc(hidden)]
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    smdpp_rsp::pki::provider()
}
