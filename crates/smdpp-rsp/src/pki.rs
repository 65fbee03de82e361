//! The GSMA-style test PKI of ES9+ (SGP.22 §4.5), beside the ES2+ one: a CI at the root, an
//! EUM with its EID range as name constraints and the eUICCs it issues, and the SM-DP+'s DPauth,
//! DPpb and DPtls, each with the certificate policy and subjectAltName registeredID of its
//! profile (§4.5.2.1). The files keep SGP.26's names in the `gsma/` folder of the certificates
//! directory, so a user with SGP.26 test material can put its certificates and keys in their
//! place (a real test eUICC trusts the GSMA test CI, not ours).
//!
//! Files are created when missing and never overwritten, like the rest of the PKI.

mod x509;

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use crate::cert::{Certificate, Role};
use crate::crypto::{Curve, SigningKey};
use crate::tlv;

/// What went wrong making or reading the PKI's files.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// A file or folder could not be read or written.
    #[error("{action} {}: {error}", path.display())]
    Io {
        /// What was being done: "reading", "creating", "writing".
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The operating system's error (in the message, so not a `source` as well).
        error: std::io::Error,
    },
    /// A file was read but is not what its name says (not a key, a certificate of another
    /// profile, a key that does not match its certificate, a certificate of another CI…).
    #[error("{}: {detail}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// The folder's files do not fit together, or an argument does not fit the PKI (an EID
    /// outside the EUM's range).
    #[error("{0}")]
    Inconsistent(String),
    /// DPtls, the ES9+ TLS certificate, is outside its validity period: LPAs that check TLS
    /// refuse it (SGP.26's TLS certificates in circulation often have expired).
    #[error("{}: {detail}", path.display())]
    TlsExpired {
        /// The DPtls certificate file.
        path: PathBuf,
        /// When it expired and how to issue a fresh one.
        detail: String,
    },
    /// DPtls does not name the host of the SM-DP+ address Activation Codes use: LPAs that
    /// check TLS refuse it.
    #[error("{}: {detail}", path.display())]
    TlsName {
        /// The DPtls certificate file.
        path: PathBuf,
        /// The names it has, the host it lacks, and what to change.
        detail: String,
    },
    /// A certificate could not be issued.
    #[error("issuing {what}: {detail}")]
    Issue {
        /// Which certificate.
        what: String,
        /// The signer's error.
        detail: String,
    },
    /// The operating system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

type Result<T> = std::result::Result<T, PkiError>;

impl PkiError {
    fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> PkiError {
        let path = path.to_path_buf();
        move |error| PkiError::Io {
            action,
            path,
            error,
        }
    }

    fn file(path: &Path, detail: impl std::fmt::Display) -> PkiError {
        PkiError::File {
            path: path.to_path_buf(),
            detail: detail.to_string(),
        }
    }

    fn issue(what: impl Into<String>) -> impl FnOnce(rcgen::Error) -> PkiError {
        let what = what.into();
        move |e| PkiError::Issue {
            what,
            detail: e.to_string(),
        }
    }
}

/// What making a PKI's files did.
#[derive(Debug, Default, Clone)]
pub struct EnsureReport {
    /// Files written.
    pub created: Vec<PathBuf>,
    /// Files that existed and were kept.
    pub reused: Vec<PathBuf>,
    /// Things the user should know (e.g. a reused server certificate lacking a requested SAN).
    pub warnings: Vec<String>,
}

/// Creates `path` with `contents`, failing if it exists (a PKI's files are never overwritten);
/// `secret` files are readable by their owner only.
pub fn write_new(path: &Path, contents: &[u8], secret: bool) -> Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(PkiError::io("creating", path))?;
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(PkiError::io("writing", path))
}

/// A random positive 16-byte certificate serial number from the OS CSPRNG.
pub fn random_serial() -> Result<rcgen::SerialNumber> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| PkiError::Random)?;
    bytes[0] &= 0x7f; // a positive INTEGER
    bytes[0] |= 0x01; // and no leading zero byte to strip
    Ok(rcgen::SerialNumber::from_slice(&bytes))
}

/// The crypto provider of every TLS connection the crate makes (the LPA's): ring, a build of
/// seconds where aws-lc-rs takes minutes and a cmake.
///
/// rustls deprecates ring's provider because it has no post-quantum key exchange; SGP.22's
/// TLS profile (§2.6.6) names classic ECDHE groups only, which ring has, so the deprecation is
/// acknowledged here, once.
#[allow(deprecated)]
pub fn provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// The folder of the GSMA-style PKI inside the certificates directory.
pub const GSMA_DIR: &str = "gsma";
/// The CI certificate (SGP.26 name). Every `CERT_CI_*.der` of the folder is trusted.
pub const CI_CERT: &str = "CERT_CI_ECDSA_NIST.der";
/// The CI key (the mock's own CI only: SGP.26 does not publish the GSMA test CI's key).
pub const CI_KEY: &str = "SK_CI_ECDSA_NIST.pem";
/// The EUM certificate.
pub const EUM_CERT: &str = "CERT_EUM_ECDSA_NIST.der";
/// The EUM key.
pub const EUM_KEY: &str = "SK_EUM_ECDSA_NIST.pem";
/// The sample eUICC's certificate.
pub const EUICC_CERT: &str = "CERT_EUICC_ECDSA_NIST.der";
/// The sample eUICC's key.
pub const EUICC_KEY: &str = "SK_EUICC_ECDSA_NIST.pem";
/// The SM-DP+'s authentication certificate (CERT.DPauth.ECDSA).
pub const DPAUTH_CERT: &str = "CERT_S_SM_DPauth_ECDSA_NIST.der";
/// Its key.
pub const DPAUTH_KEY: &str = "SK_S_SM_DPauth_ECDSA_NIST.pem";
/// The SM-DP+'s profile binding certificate (CERT.DPpb.ECDSA).
pub const DPPB_CERT: &str = "CERT_S_SM_DPpb_ECDSA_NIST.der";
/// Its key.
pub const DPPB_KEY: &str = "SK_S_SM_DPpb_ECDSA_NIST.pem";
/// The ES9+ TLS certificate (CERT.DP.TLS). Another SGP.26-style name, `CERT_S_SM_DP_TLS_<x>.der`
/// with its key `SK_S_SM_DP_TLS_<x>.pem`, is served when it is the only one of the folder
/// (see [`GsmaPki::dp_tls_files`]).
pub const DPTLS_CERT: &str = "CERT_S_SM_DP_TLS_NIST.der";
/// Its key.
pub const DPTLS_KEY: &str = "SK_S_SM_DP_TLS_NIST.pem";
/// The SM-DS's authentication certificate (CERT.DSauth.ECDSA, §4.5.2.1.0.6).
pub const DSAUTH_CERT: &str = "CERT_S_SM_DSauth_ECDSA_NIST.der";
/// Its key.
pub const DSAUTH_KEY: &str = "SK_S_SM_DSauth_ECDSA_NIST.pem";
/// The SM-DS's TLS certificate (CERT.DS.TLS, §4.5.2.1.0.7): ES11 and ES12 are served with it,
/// and it is the client certificate of the SM-DS's own ES12/ES15 calls (to a root SM-DS).
pub const DSTLS_CERT: &str = "CERT_S_SM_DS_TLS_NIST.der";
/// Its key.
pub const DSTLS_KEY: &str = "SK_S_SM_DS_TLS_NIST.pem";
/// CERT.DSauth.ECDSA of the brainpoolP256r1 hierarchy.
pub const DSAUTH_BRP_CERT: &str = "CERT_S_SM_DSauth_ECDSA_BRP.der";
/// Its key.
pub const DSAUTH_BRP_KEY: &str = "SK_S_SM_DSauth_ECDSA_BRP.pem";
/// How SGP.26's DPtls certificate files begin (`CERT_S_SM_DP_TLS_NIST.der`, `…_BRP.der`).
const DPTLS_CERT_PREFIX: &str = "CERT_S_SM_DP_TLS_";
/// How their keys begin.
const DPTLS_KEY_PREFIX: &str = "SK_S_SM_DP_TLS_";
/// Where the walk-through of SGP.26 material is, for messages.
const WALK_THROUGH: &str = "docs/es9plus.md#a-real-test-euicc";

/// The brainpoolP256r1 hierarchy beside the NIST one, under SGP.26's `_BRP` names: the CI.
pub const CI_BRP_CERT: &str = "CERT_CI_ECDSA_BRP.der";
/// Its key (the mock's own CI only).
pub const CI_BRP_KEY: &str = "SK_CI_ECDSA_BRP.pem";
/// The brainpool EUM certificate.
pub const EUM_BRP_CERT: &str = "CERT_EUM_ECDSA_BRP.der";
/// Its key.
pub const EUM_BRP_KEY: &str = "SK_EUM_ECDSA_BRP.pem";
/// The brainpool DPauth.
pub const DPAUTH_BRP_CERT: &str = "CERT_S_SM_DPauth_ECDSA_BRP.der";
/// Its key.
pub const DPAUTH_BRP_KEY: &str = "SK_S_SM_DPauth_ECDSA_BRP.pem";
/// The brainpool DPpb.
pub const DPPB_BRP_CERT: &str = "CERT_S_SM_DPpb_ECDSA_BRP.der";
/// Its key.
pub const DPPB_BRP_KEY: &str = "SK_S_SM_DPpb_ECDSA_BRP.pem";

/// The files of one curve's hierarchy: CI, EUM, DPauth and DPpb, certificate and key each.
/// DPtls is NIST P-256 whatever the hierarchy: rustls (with ring) has no brainpool TLS.
struct Hierarchy {
    curve: Curve,
    ci: (&'static str, &'static str),
    eum: (&'static str, &'static str),
    dp_auth: (&'static str, &'static str),
    dp_pb: (&'static str, &'static str),
}

const NIST: Hierarchy = Hierarchy {
    curve: Curve::NistP256,
    ci: (CI_CERT, CI_KEY),
    eum: (EUM_CERT, EUM_KEY),
    dp_auth: (DPAUTH_CERT, DPAUTH_KEY),
    dp_pb: (DPPB_CERT, DPPB_KEY),
};

const BRAINPOOL: Hierarchy = Hierarchy {
    curve: Curve::BrainpoolP256r1,
    ci: (CI_BRP_CERT, CI_BRP_KEY),
    eum: (EUM_BRP_CERT, EUM_BRP_KEY),
    dp_auth: (DPAUTH_BRP_CERT, DPAUTH_BRP_KEY),
    dp_pb: (DPPB_BRP_CERT, DPPB_BRP_KEY),
};

impl Hierarchy {
    fn of(curve: Curve) -> &'static Hierarchy {
        match curve {
            Curve::NistP256 => &NIST,
            Curve::BrainpoolP256r1 => &BRAINPOOL,
        }
    }
}

/// The mock SM-DP+'s OID (subjectAltName registeredID of DPauth, DPpb, DPtls): under `2.999`,
/// the arc ITU-T X.660 sets aside for examples.
pub const SMDP_OID: [u64; 3] = [2, 999, 10];
/// The mock SM-DS's OID (subjectAltName registeredID of DSauth and DStls).
pub const SMDS_OID: [u64; 3] = [2, 999, 13];
/// The mock CI's OID.
const CI_OID: [u64; 3] = [2, 999, 11];
/// The mock EUM's OID.
const EUM_OID: [u64; 3] = [2, 999, 12];
/// `O` of the EUM and of the eUICCs it issues.
const EUM_ORGANIZATION: &str = "smdpp-mock EUM";
/// The EID prefix (IIN) the mock EUM may issue eUICCs for.
pub const EUM_IIN: &str = "89049032";
/// The EID of the sample eUICC `certs init` makes (in the EUM's range, check digits valid).
pub const SAMPLE_EID: &str = "89049032000000000000000000000163";

/// The OIDs of the extensions made by hand.
const CERTIFICATE_POLICIES: [u64; 4] = [2, 5, 29, 32];
const SUBJECT_ALT_NAME: [u64; 4] = [2, 5, 29, 17];
const SUBJECT_KEY_IDENTIFIER: [u64; 4] = [2, 5, 29, 14];
const EXTENDED_KEY_USAGE: [u64; 4] = [2, 5, 29, 37];

/// extKeyUsage serverAuth and clientAuth, critical (DPtls, §4.5.2.1 Table 14).
fn tls_usages() -> CustomExtension {
    let server = tlv::encode(0x06, &oid_content(&[1, 3, 6, 1, 5, 5, 7, 3, 1]));
    let client = tlv::encode(0x06, &oid_content(&[1, 3, 6, 1, 5, 5, 7, 3, 2]));
    let mut ext = CustomExtension::from_oid_content(
        &EXTENDED_KEY_USAGE,
        tlv::constructed(0x30, &[&server, &client]),
    );
    ext.set_criticality(true);
    ext
}

/// A certificate's DER as PEM.
pub fn certificate_pem(der: &[u8]) -> String {
    let text = crate::crypto::base64_encode(der);
    let mut pem = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in text.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END CERTIFICATE-----\n");
    pem
}

/// The arcs of a dotted OID (`2.999.71`): at least two, the first 0, 1 or 2 (and the second
/// under 40 below 2), as X.660 has them; each arc written without leading zeros (its one
/// spelling), the whole at most 128 characters (what the SM-DS keeps of a caller).
pub fn parse_oid(text: &str) -> Option<Vec<u64>> {
    if text.len() > 128 {
        return None;
    }
    let arc = |a: &str| {
        let canonical = !a.is_empty()
            && a.len() <= 19
            && a.bytes().all(|b| b.is_ascii_digit())
            && (a == "0" || !a.starts_with('0'));
        canonical.then(|| a.parse().ok()).flatten()
    };
    let arcs: Vec<u64> = text.split('.').map(arc).collect::<Option<_>>()?;
    match arcs.as_slice() {
        [first, second, ..] if *first < 2 && *second < 40 => Some(arcs),
        [2, second, ..] if *second <= u64::MAX - 80 => Some(arcs),
        _ => None,
    }
}

/// The dotted text of an OBJECT IDENTIFIER's content bytes (`2.999.10`); `None` when they are
/// not a well-formed OID.
pub fn oid_text(content: &[u8]) -> Option<String> {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for (i, &byte) in content.iter().enumerate() {
        if value > u64::MAX >> 7 {
            return None;
        }
        value = (value << 7) | u64::from(byte & 0x7F);
        if byte & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        } else if i + 1 == content.len() {
            return None;
        }
    }
    if arcs.is_empty() {
        return None;
    }
    Some(
        arcs.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// The content bytes of an OBJECT IDENTIFIER.
pub fn oid_content(arcs: &[u64]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |mut n: u64| {
        let mut bytes = vec![(n & 0x7F) as u8];
        n >>= 7;
        while n > 0 {
            bytes.push(0x80 | (n & 0x7F) as u8);
            n >>= 7;
        }
        bytes.reverse();
        out.extend_from_slice(&bytes);
    };
    if arcs.len() >= 2 {
        push(arcs[0] * 40 + arcs[1]);
    }
    for arc in arcs.iter().skip(2) {
        push(*arc);
    }
    out
}

fn policies(role: Role) -> CustomExtension {
    let oid = tlv::encode(0x06, &oid_content(&role.policy()));
    let info = tlv::encode(0x30, &oid);
    let mut ext =
        CustomExtension::from_oid_content(&CERTIFICATE_POLICIES, tlv::encode(0x30, &info));
    // Critical in every profile but the TLS ones (§4.5.2.1, Tables 14 and 16).
    ext.set_criticality(!matches!(role, Role::DpTls | Role::DsTls));
    ext
}

/// subjectAltName with `dns` names and one registeredID (the OID's content bytes).
fn alt_names(dns: &[String], registered: &[u8]) -> CustomExtension {
    let mut names = Vec::new();
    for name in dns {
        match name.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => tlv::push(&mut names, 0x87, &ip.octets()),
            Ok(std::net::IpAddr::V6(ip)) => tlv::push(&mut names, 0x87, &ip.octets()),
            Err(_) => tlv::push(&mut names, 0x82, name.as_bytes()),
        }
    }
    tlv::push(&mut names, 0x88, registered);
    CustomExtension::from_oid_content(&SUBJECT_ALT_NAME, tlv::encode(0x30, &names))
}

/// The SubjectKeyIdentifier of `key`: rcgen's for NIST P-256 keys, as before brainpool
/// keys; for brainpool keys, the SHA-256 method of the tlv writer.
fn subject_key_identifier(params: &CertificateParams, key: &SigningKey) -> Result<CustomExtension> {
    let id = match key.curve() {
        Curve::NistP256 => params.key_identifier(&rcgen_key(key)?),
        Curve::BrainpoolP256r1 => x509::key_identifier(key.public_key()),
    };
    Ok(CustomExtension::from_oid_content(
        &SUBJECT_KEY_IDENTIFIER,
        tlv::encode(0x04, &id),
    ))
}

fn name(entries: &[(DnType, DnValue)]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for (t, v) in entries {
        dn.push(t.clone(), v.clone());
    }
    dn
}

fn printable(text: &str) -> Result<DnValue> {
    Ok(DnValue::PrintableString(text.try_into().map_err(|e| {
        PkiError::Inconsistent(format!("{text:?} is not a PrintableString: {e}"))
    })?))
}

fn rcgen_key(key: &SigningKey) -> Result<KeyPair> {
    KeyPair::try_from(key.pkcs8_der()).map_err(PkiError::issue("a certificate with this key"))
}

/// Parameters common to every certificate: validity from a day ago for `years`, a random
/// serial, ECDSA with SHA-256 (the key's).
fn base(subject: DistinguishedName, years: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365 * years);
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

/// A certificate and its key, as DER and a signer.
pub struct Issued {
    /// DER.
    pub der: Vec<u8>,
    /// The key.
    pub key: SigningKey,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("der", &self.der.len())
            .finish_non_exhaustive()
    }
}

/// A CA in memory: its certificate (DER) and key.
struct Authority {
    der: Vec<u8>,
    key: SigningKey,
}

impl Authority {
    fn issuer(&self) -> Result<Issuer<'static, KeyPair>> {
        Issuer::from_ca_cert_der(
            &CertificateDer::from(self.der.clone()),
            rcgen_key(&self.key)?,
        )
        .map_err(PkiError::issue("with the issuer's certificate"))
    }
}

/// The certificate `params` describe, of `key`, signed by `issuer` (`None`: self-signed):
/// by rcgen for NIST P-256 keys, as always; by the tlv writer of [`x509`] for brainpool keys,
/// which rcgen cannot sign with. `what` names it in errors.
fn sign(
    params: CertificateParams,
    key: &SigningKey,
    issuer: Option<&Authority>,
    what: &str,
) -> Result<Vec<u8>> {
    if key.curve() == Curve::BrainpoolP256r1 {
        let signer = issuer.map(|ca| x509::Signer {
            der: &ca.der,
            key: &ca.key,
        });
        return x509::issue(&params, key, signer).map_err(|detail| PkiError::Issue {
            what: what.to_owned(),
            detail,
        });
    }
    let pair = rcgen_key(key)?;
    let cert = match issuer {
        None => params.self_signed(&pair),
        Some(ca) => params.signed_by(&pair, &ca.issuer()?),
    };
    Ok(cert.map_err(PkiError::issue(what))?.der().to_vec())
}

/// A CI certificate and key on `curve`.
fn make_ci(curve: Curve) -> Result<Issued> {
    let key = SigningKey::generate_on(curve);
    let mut params = base(
        name(&[
            (DnType::CommonName, "smdpp-mock Test CI".into()),
            (DnType::OrganizationName, "smdpp-mock".into()),
        ]),
        30,
    )?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.custom_extensions = vec![policies(Role::Ci), alt_names(&[], &oid_content(&CI_OID))];
    let der = sign(params, &key, None, "the CI certificate")?;
    Ok(Issued { der, key })
}

/// An EUM certificate and key on the CI's curve.
fn make_eum(ci: &Authority) -> Result<Issued> {
    let key = SigningKey::generate_on(ci.key.curve());
    let mut params = base(
        name(&[
            (DnType::CommonName, "smdpp-mock Test EUM".into()),
            (DnType::OrganizationName, EUM_ORGANIZATION.into()),
        ]),
        25,
    )?;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.use_authority_key_identifier_extension = true;
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![GeneralSubtree::DirectoryName(name(&[
            (DnType::OrganizationName, EUM_ORGANIZATION.into()),
            (DnType::CustomDnType(vec![2, 5, 4, 5]), printable(EUM_IIN)?),
        ]))],
        excluded_subtrees: Vec::new(),
    });
    params.custom_extensions = vec![policies(Role::Eum), alt_names(&[], &oid_content(&EUM_OID))];
    let der = sign(params, &key, Some(ci), "the EUM certificate")?;
    Ok(Issued { der, key })
}

/// An eUICC certificate for `eid` (32 digits), issued by `eum`, on its curve.
fn make_euicc(eum: &Authority, eid: &str) -> Result<Issued> {
    make_euicc_for(eum, eid, 30)
}

/// [`make_euicc`] valid for `years` from now (0: it expires now).
fn make_euicc_for(eum: &Authority, eid: &str, years: i64) -> Result<Issued> {
    if eid.len() != 32 || !eid.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PkiError::Inconsistent(format!(
            "an EID is 32 decimal digits, not {eid:?}"
        )));
    }
    let key = SigningKey::generate_on(eum.key.curve());
    let mut params = base(
        name(&[
            (DnType::OrganizationName, EUM_ORGANIZATION.into()),
            (DnType::CustomDnType(vec![2, 5, 4, 5]), printable(eid)?),
            (DnType::CommonName, "smdpp-mock eUICC".into()),
        ]),
        years,
    )?;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions = vec![
        subject_key_identifier(&params, &key)?,
        policies(Role::Euicc),
    ];
    let der = sign(params, &key, Some(eum), "the eUICC certificate")?;
    Ok(Issued { der, key })
}

/// DPauth, DPpb, DPtls, DSauth or DStls, issued by `ci`; `dns` names only for the TLS ones;
/// `oid` the content bytes of the SM-DP+'s (or SM-DS's) OID. On the CI's curve.
fn make_dp(ci: &Authority, role: Role, dns: &[String], oid: &[u8]) -> Result<Issued> {
    let key = SigningKey::generate_on(ci.key.curve());
    let tls = matches!(role, Role::DpTls | Role::DsTls);
    let common = match role {
        _ if tls => dns.first().cloned().unwrap_or_else(|| "localhost".into()),
        Role::DsAuth => "smdpp-mock SM-DS".into(),
        _ => "smdpp-mock SM-DP+".into(),
    };
    let mut params = base(
        name(&[
            (DnType::CommonName, common.into()),
            (DnType::OrganizationName, "smdpp-mock".into()),
        ]),
        10,
    )?;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions = vec![
        subject_key_identifier(&params, &key)?,
        policies(role),
        alt_names(if tls { dns } else { &[] }, oid),
    ];
    if tls {
        params.custom_extensions.push(tls_usages());
    }
    let what = format!("the {} certificate", role.name());
    let der = sign(params, &key, Some(ci), &what)?;
    Ok(Issued { der, key })
}

/// The GSMA-style PKI folder.
#[derive(Debug, Clone)]
pub struct GsmaPki {
    dir: PathBuf,
}

/// What the SM-DP+ signs and serves with.
pub struct ServerCredentials {
    /// The CI certificates it trusts for eUICC chains (every `CERT_CI_*.der`), parsed.
    pub cis: Vec<Certificate>,
    /// CERT.DPauth.ECDSA.
    pub dp_auth: Certificate,
    /// SK.DPauth.ECDSA.
    pub dp_auth_key: SigningKey,
    /// CERT.DPpb.ECDSA.
    pub dp_pb: Certificate,
    /// SK.DPpb.ECDSA.
    pub dp_pb_key: SigningKey,
    /// The ES9+ TLS chain (DPtls, then its CI) and key.
    pub tls_chain: Vec<Vec<u8>>,
    /// SK.DP.TLS, PKCS#8 DER.
    pub tls_key: Vec<u8>,
    /// CERT.DP.TLS, parsed.
    pub dp_tls: Certificate,
    /// DPauth and DPpb of the brainpoolP256r1 hierarchy, when the folder has them (`_BRP`
    /// files): the SM-DP+ uses the pair chained to a CI the eUICC names.
    pub brainpool: Option<DpPair>,
    /// Its file.
    pub dp_tls_file: PathBuf,
}

/// What the SM-DS signs and serves with ([`GsmaPki::smds_credentials_for`]).
pub struct SmdsCredentials {
    /// The CI certificates it trusts for eUICC chains and ES12 callers, parsed.
    pub cis: Vec<Certificate>,
    /// CERT.DSauth.ECDSA.
    pub ds_auth: Certificate,
    /// SK.DSauth.ECDSA.
    pub ds_auth_key: SigningKey,
    /// DSauth of the brainpoolP256r1 hierarchy and its key, when the folder has them.
    pub brainpool: Option<(Certificate, SigningKey)>,
    /// The TLS chain (DStls, then its CI).
    pub tls_chain: Vec<Vec<u8>>,
    /// SK.DS.TLS, PKCS#8 DER.
    pub tls_key: Vec<u8>,
    /// CERT.DS.TLS, parsed.
    pub ds_tls: Certificate,
}

impl std::fmt::Debug for SmdsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmdsCredentials").finish_non_exhaustive()
    }
}

/// DPauth and DPpb chained to one CI, with their keys.
pub struct DpPair {
    /// CERT.DPauth.ECDSA.
    pub dp_auth: Certificate,
    /// SK.DPauth.ECDSA.
    pub dp_auth_key: SigningKey,
    /// CERT.DPpb.ECDSA.
    pub dp_pb: Certificate,
    /// SK.DPpb.ECDSA.
    pub dp_pb_key: SigningKey,
}

impl std::fmt::Debug for DpPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpPair").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServerCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCredentials").finish_non_exhaustive()
    }
}

/// An eUICC's credentials: its certificate and key, its EUM's certificate, the CIs it trusts.
pub struct EuiccCredentials {
    /// CERT.EUICC.ECDSA.
    pub certificate: Vec<u8>,
    /// SK.EUICC.ECDSA.
    pub key: SigningKey,
    /// CERT.EUM.ECDSA.
    pub eum: Vec<u8>,
    /// The CI certificate its chain ends at; also the one it verifies SM-DP+ certificates with.
    pub ci: Vec<u8>,
}

impl EuiccCredentials {
    /// An eUICC's files in `dir`, as `issue_euicc_files` writes them (SGP.26 names): its
    /// certificate and key, the EUM's certificate, the CI's.
    pub fn from_dir(dir: &Path) -> Result<Self> {
        let read = |file: &str| {
            let path = dir.join(file);
            std::fs::read(&path).map_err(PkiError::io("reading", &path))
        };
        Ok(EuiccCredentials {
            certificate: read(EUICC_CERT)?,
            key: read_key(&dir.join(EUICC_KEY))?,
            eum: read(EUM_CERT)?,
            ci: read(CI_CERT)?,
        })
    }
}

/// A PEM private key from `path`.
fn read_key(path: &Path) -> Result<SigningKey> {
    let pem = std::fs::read_to_string(path).map_err(PkiError::io("reading", path))?;
    SigningKey::from_pem(&pem).map_err(|e| PkiError::file(path, e))
}

impl std::fmt::Debug for EuiccCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EuiccCredentials").finish_non_exhaustive()
    }
}

impl GsmaPki {
    /// The GSMA-style PKI in `<certs_dir>/gsma`.
    pub fn new(certs_dir: &Path) -> Self {
        GsmaPki {
            dir: certs_dir.join(GSMA_DIR),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn read_cert(&self, file: &str) -> Result<Vec<u8>> {
        let path = self.path(file);
        std::fs::read(&path).map_err(PkiError::io("reading", &path))
    }

    fn read_key(&self, file: &str) -> Result<SigningKey> {
        read_key(&self.path(file))
    }

    fn authority(&self, cert: &str, key: &str, what: &str) -> Result<Authority> {
        if !self.path(key).exists() {
            return Err(PkiError::Inconsistent(format!(
                "{} has no key ({}): it cannot issue {what}; remove {} to have a new one made",
                self.path(cert).display(),
                self.path(key).display(),
                self.path(cert).display()
            )));
        }
        Ok(Authority {
            der: self.read_cert(cert)?,
            key: self.read_key(key)?,
        })
    }

    fn write(
        &self,
        report: &mut EnsureReport,
        cert: &str,
        key: &str,
        issued: &Issued,
    ) -> Result<()> {
        write_new(&self.path(cert), &issued.der, false)?;
        write_new(&self.path(key), issued.key.to_pem().as_bytes(), true)?;
        report.created.push(self.path(cert));
        report.created.push(self.path(key));
        Ok(())
    }

    /// Makes what is missing: CI, EUM, a sample eUICC for `sample_eid`, DPauth, DPpb, and a
    /// DPtls naming `tls_names` (with DPauth's SM-DP+ OID). Existing files are kept (SGP.26
    /// material included); a DPtls under another SGP.26 name counts ([`GsmaPki::dp_tls_files`]).
    pub fn ensure(&self, tls_names: &[String], sample_eid: &str) -> Result<EnsureReport> {
        let mut report = EnsureReport::default();
        std::fs::create_dir_all(&self.dir).map_err(PkiError::io("creating", &self.dir))?;
        let exists = |file: &str| self.path(file).exists();
        if !exists(CI_CERT) {
            if exists(CI_KEY) {
                return Err(PkiError::Inconsistent(format!(
                    "{} exists without {}",
                    self.path(CI_KEY).display(),
                    CI_CERT
                )));
            }
            self.write(&mut report, CI_CERT, CI_KEY, &make_ci(Curve::NistP256)?)?;
        } else {
            report.reused.push(self.path(CI_CERT));
        }
        let (tls_cert, tls_key) = self.dp_tls_files()?;
        let pairs = [
            (EUM_CERT, EUM_KEY),
            (DPAUTH_CERT, DPAUTH_KEY),
            (DPPB_CERT, DPPB_KEY),
            (tls_cert.as_str(), tls_key.as_str()),
        ];
        for (cert, key) in pairs {
            if exists(cert) != exists(key) {
                return Err(PkiError::Inconsistent(format!(
                    "{} and {} go together: one is missing",
                    self.path(cert).display(),
                    self.path(key).display()
                )));
            }
        }
        let need = |cert: &str, key: &str| !(exists(cert) && exists(key));
        if pairs.iter().any(|(cert, key)| need(cert, key)) {
            let ci = self.authority(CI_CERT, CI_KEY, "certificates")?;
            if need(EUM_CERT, EUM_KEY) {
                self.write(&mut report, EUM_CERT, EUM_KEY, &make_eum(&ci)?)?;
            }
            for (cert, key, role) in [
                (DPAUTH_CERT, DPAUTH_KEY, Role::DpAuth),
                (DPPB_CERT, DPPB_KEY, Role::DpPb),
                (tls_cert.as_str(), tls_key.as_str(), Role::DpTls),
            ] {
                if need(cert, key) {
                    let oid = self.smdp_oid();
                    let issued = make_dp(&ci, role, tls_names, &oid)?;
                    self.write(&mut report, cert, key, &issued)?;
                }
            }
        }
        if need(EUICC_CERT, EUICC_KEY) {
            let issued = self.issue_euicc_in_memory(Curve::NistP256, sample_eid)?;
            self.write(&mut report, EUICC_CERT, EUICC_KEY, &issued)?;
        }
        self.ensure_brainpool(&mut report)?;
        self.ensure_smds(&mut report, tls_names)?;
        Ok(report)
    }

    /// The SM-DS's certificates (DSauth, and DStls naming `tls_names`; DSauth of the brainpool
    /// hierarchy too when its CI is the mock's), made when the folder is the mock's own (it has
    /// the NIST CI's key) and they are missing. A folder of the user's SGP.26 material is left
    /// as it is: its SM-DS files are the user's to put there.
    fn ensure_smds(&self, report: &mut EnsureReport, tls_names: &[String]) -> Result<()> {
        let exists = |file: &str| self.path(file).exists();
        let need = |(cert, key): (&str, &str)| !(exists(cert) && exists(key));
        let oid = oid_content(&SMDS_OID);
        for (ci_files, files, role, names) in [
            (
                (CI_CERT, CI_KEY),
                (DSAUTH_CERT, DSAUTH_KEY),
                Role::DsAuth,
                &[][..],
            ),
            (
                (CI_CERT, CI_KEY),
                (DSTLS_CERT, DSTLS_KEY),
                Role::DsTls,
                tls_names,
            ),
            (
                (CI_BRP_CERT, CI_BRP_KEY),
                (DSAUTH_BRP_CERT, DSAUTH_BRP_KEY),
                Role::DsAuth,
                &[][..],
            ),
        ] {
            if !need(files) || !exists(ci_files.0) || !exists(ci_files.1) {
                continue;
            }
            if exists(files.0) != exists(files.1) {
                return Err(PkiError::Inconsistent(format!(
                    "{} and {} go together: one is missing",
                    self.path(files.0).display(),
                    self.path(files.1).display()
                )));
            }
            let ci = self.authority(ci_files.0, ci_files.1, "SM-DS certificates")?;
            let issued = make_dp(&ci, role, names, &oid)?;
            self.write(report, files.0, files.1, &issued)?;
        }
        Ok(())
    }

    /// Whether the folder has the SM-DS's certificates (DSauth and DStls, with their keys).
    pub fn has_smds(&self) -> bool {
        [DSAUTH_CERT, DSAUTH_KEY, DSTLS_CERT, DSTLS_KEY]
            .iter()
            .all(|f| self.path(f).exists())
    }

    /// What the SM-DS signs and serves with, read and checked like the SM-DP+'s
    /// ([`GsmaPki::server_credentials`]): DSauth (and its brainpool twin when the folder has
    /// it) and DStls, each with the profile of its role, issued by one of the CIs, with its
    /// key; DStls within its validity period and naming the host of `address` (the SM-DS
    /// address ConfirmOrder and LPAs use).
    pub fn smds_credentials_for(&self, address: &str) -> Result<SmdsCredentials> {
        let cis = self.cis()?;
        let (ds_auth, ds_auth_key) = self.load_dp(&cis, DSAUTH_CERT, DSAUTH_KEY, Role::DsAuth)?;
        let brainpool = match self.path(DSAUTH_BRP_CERT).exists() {
            true => Some(self.load_dp(&cis, DSAUTH_BRP_CERT, DSAUTH_BRP_KEY, Role::DsAuth)?),
            false => None,
        };
        let (ds_tls, tls_key) = self.load_dp(&cis, DSTLS_CERT, DSTLS_KEY, Role::DsTls)?;
        self.check_dp_tls(&ds_tls, DSTLS_CERT, OffsetDateTime::now_utc())?;
        let host = address_host(address);
        if !ds_tls.names_host(host) {
            return Err(PkiError::TlsName {
                path: self.path(DSTLS_CERT),
                detail: format!(
                    "DStls does not name {host}, the host of the SM-DS address ({address}): \
                     LPAs that check TLS refuse the connection. Issue one naming it, or remove \
                     {DSTLS_CERT} and {DSTLS_KEY} so the mock issues a new one at the next start"
                ),
            });
        }
        let mut tls_chain = vec![ds_tls.der.clone()];
        if let Some(ci) = issuer_of(&cis, &ds_tls) {
            tls_chain.push(ci.der.clone());
        }
        Ok(SmdsCredentials {
            cis,
            ds_auth,
            ds_auth_key,
            brainpool,
            tls_chain,
            tls_key: tls_key.pkcs8_der().to_vec(),
            ds_tls,
        })
    }

    /// Issues a TLS certificate for an ES12 caller (an SM-DP+ that is not the mock) naming
    /// `name` with `oid` as its registeredID, from the folder's CI, with the profile of a
    /// DPtls (serverAuth and clientAuth): the identity the SM-DS keeps with the events it
    /// registers (§5.9.1). The certificate (DER) and its key.
    pub fn issue_es12_caller(&self, name: &str, oid: &[u64]) -> Result<Issued> {
        let ci = self.authority(CI_CERT, CI_KEY, "certificates")?;
        make_dp(&ci, Role::DpTls, &[name.to_owned()], &oid_content(oid))
    }

    /// [`GsmaPki::issue_es12_caller`] into `out`, as TLS clients take them: `<name>.pem` (the
    /// certificate, then the CI's), `<name>.key` (PKCS#8, readable by the owner only) and
    /// `ci.pem` (the CI, the anchor of the SM-DS's TLS certificate). `oid` is dotted
    /// (`2.999.71`). Never overwrites a file.
    pub fn issue_es12_caller_files(
        &self,
        name: &str,
        oid: &str,
        out: &Path,
    ) -> Result<Vec<PathBuf>> {
        let arcs = parse_oid(oid).ok_or_else(|| {
            PkiError::Inconsistent(format!(
                "{oid:?} is not an OID: dotted decimal arcs, at least two, the first 0, 1 or 2 (e.g. 2.999.71)"
            ))
        })?;
        let ci = certificate_pem(&self.read_cert(CI_CERT)?);
        // Nothing is written unless everything can be.
        let clash = |file: &str| out.join(file).exists();
        let ci_differs = std::fs::read(out.join("ci.pem")).is_ok_and(|old| old != ci.as_bytes());
        if name == "ci"
            || clash(&format!("{name}.pem"))
            || clash(&format!("{name}.key"))
            || ci_differs
        {
            return Err(PkiError::Inconsistent(format!(
                "{} already has {name}.pem, {name}.key or another ci.pem (or NAME is ci): choose another NAME or --out",
                out.display()
            )));
        }
        let issued = self.issue_es12_caller(name, &arcs)?;
        std::fs::create_dir_all(out).map_err(PkiError::io("creating", out))?;
        let mut written = Vec::new();
        for (file, contents, secret) in [
            (
                format!("{name}.pem"),
                certificate_pem(&issued.der) + &ci,
                false,
            ),
            (format!("{name}.key"), issued.key.to_pem(), true),
            ("ci.pem".to_owned(), ci.clone(), false),
        ] {
            let path = out.join(&file);
            // The CI's copy of an earlier caller's is the same file: kept.
            if file == "ci.pem" && std::fs::read(&path).is_ok_and(|old| old == contents.as_bytes())
            {
                continue;
            }
            write_new(&path, contents.as_bytes(), secret)?;
            written.push(path);
        }
        Ok(written)
    }

    /// The brainpoolP256r1 hierarchy (`_BRP` files: CI, EUM, DPauth, DPpb), made when the
    /// folder is the mock's own (it has the NIST CI's key) and any of it is missing; a folder
    /// of the user's SGP.26 material is left as it is.
    fn ensure_brainpool(&self, report: &mut EnsureReport) -> Result<()> {
        let exists = |file: &str| self.path(file).exists();
        if !exists(CI_KEY) {
            return Ok(());
        }
        let h = &BRAINPOOL;
        if exists(h.ci.0) && !exists(h.ci.1) {
            // A brainpool CI of the user's (SGP.26's) without its key: nothing can be issued
            // from it, and the folder's material is used as it is.
            return Ok(());
        }
        if !exists(h.ci.0) {
            if exists(h.ci.1) {
                return Err(PkiError::Inconsistent(format!(
                    "{} exists without {}",
                    self.path(h.ci.1).display(),
                    h.ci.0
                )));
            }
            self.write(report, h.ci.0, h.ci.1, &make_ci(h.curve)?)?;
        }
        let need = |(cert, key): (&str, &str)| !(exists(cert) && exists(key));
        if [h.eum, h.dp_auth, h.dp_pb].into_iter().any(need) {
            let ci = self.authority(h.ci.0, h.ci.1, "brainpool certificates")?;
            if need(h.eum) {
                self.write(report, h.eum.0, h.eum.1, &make_eum(&ci)?)?;
            }
            let oid = self.smdp_oid();
            for (files, role) in [(h.dp_auth, Role::DpAuth), (h.dp_pb, Role::DpPb)] {
                if need(files) {
                    let issued = make_dp(&ci, role, &[], &oid)?;
                    self.write(report, files.0, files.1, &issued)?;
                }
            }
        }
        Ok(())
    }

    /// The SM-DP+ OID (content bytes) of the folder's DPauth, the mock's own without one.
    fn smdp_oid(&self) -> Vec<u8> {
        std::fs::read(self.path(DPAUTH_CERT))
            .ok()
            .and_then(|der| Certificate::parse(&der).ok()?.registered_id)
            .unwrap_or_else(|| oid_content(&SMDP_OID))
    }

    /// The DPtls certificate and key files in use: [`DPTLS_CERT`] and [`DPTLS_KEY`] when the
    /// certificate is there or no `CERT_S_SM_DP_TLS_*.der` is (the mock then makes them);
    /// otherwise the only `CERT_S_SM_DP_TLS_<x>.der`, with `SK_S_SM_DP_TLS_<x>.pem`. Several
    /// without [`DPTLS_CERT`] among them are an error: which one to serve is the user's choice.
    pub fn dp_tls_files(&self) -> Result<(String, String)> {
        let mine = || Ok((DPTLS_CERT.to_owned(), DPTLS_KEY.to_owned()));
        if self.path(DPTLS_CERT).exists() {
            return mine();
        }
        let found = self.files_like(DPTLS_CERT_PREFIX, ".der")?;
        match found.as_slice() {
            [] => mine(),
            [one] => {
                let suffix = &one[DPTLS_CERT_PREFIX.len()..one.len() - ".der".len()];
                Ok((one.clone(), format!("{DPTLS_KEY_PREFIX}{suffix}.pem")))
            }
            several => Err(PkiError::Inconsistent(format!(
                "{} holds several DPtls certificates ({}) and none is {DPTLS_CERT}: keep only the \
                 one to serve, or rename it to {DPTLS_CERT} (and its key to {DPTLS_KEY})",
                self.dir.display(),
                several.join(", ")
            ))),
        }
    }

    /// The names of the folder's files that begin with `prefix` and end with `suffix`, sorted.
    fn files_like(&self, prefix: &str, suffix: &str) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.dir).map_err(PkiError::io("reading", &self.dir))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| {
                n.starts_with(prefix)
                    && n.ends_with(suffix)
                    && n.len() > prefix.len() + suffix.len()
            })
            .collect();
        names.sort();
        Ok(names)
    }

    /// An eUICC certificate and key for `eid` from the EUM of `curve`'s hierarchy, which
    /// issues only EIDs in its range (its name constraint).
    fn issue_euicc_in_memory(&self, curve: Curve, eid: &str) -> Result<Issued> {
        let h = Hierarchy::of(curve);
        let eum = self.authority(h.eum.0, h.eum.1, "eUICC certificates")?;
        if !eid.starts_with(EUM_IIN) {
            return Err(PkiError::Inconsistent(format!("the mock EUM issues eUICCs whose EID starts with {EUM_IIN} (its name constraint), not {eid}")));
        }
        make_euicc(&eum, eid)
    }

    /// Issues an eUICC for any EID, even outside the EUM's name constraints: a certificate the
    /// SM-DP+ must refuse (tests of §4.5.2.2's checks).
    #[doc(hidden)]
    pub fn issue_euicc_outside_constraints(&self, eid: &str) -> Result<EuiccCredentials> {
        let eum = self.authority(EUM_CERT, EUM_KEY, "eUICC certificates")?;
        self.nist_euicc(make_euicc(&eum, eid)?)
    }

    /// Issues an eUICC whose certificate expires now (its EUM's does not): a certificate the
    /// SM-DP+ and the SM-DS must refuse as expired once their clock has moved on (tests of
    /// §4.5.2.2's checks).
    #[doc(hidden)]
    pub fn issue_euicc_expiring_now(&self, eid: &str) -> Result<EuiccCredentials> {
        let eum = self.authority(EUM_CERT, EUM_KEY, "eUICC certificates")?;
        self.nist_euicc(make_euicc_for(&eum, eid, 0)?)
    }

    /// Issues a CERT.DPpb (and its key) for another SM-DP+ OID than the mock's, signed by the
    /// CI: valid in itself, but not of the SM-DP+ that authenticated (tests of the eUICC's
    /// check in §5.7.5).
    #[doc(hidden)]
    pub fn issue_dp_pb_of_another_smdp(&self, smdp_oid: &[u64]) -> Result<Issued> {
        let ci = self.authority(CI_CERT, CI_KEY, "certificates")?;
        make_dp(&ci, Role::DpPb, &[], &oid_content(smdp_oid))
    }

    /// Issues a certificate and key for an eUICC with this EID by the EUM of `curve`'s
    /// hierarchy (the brainpool one: `_BRP` files), in memory.
    pub fn issue_euicc_on(&self, curve: Curve, eid: &str) -> Result<EuiccCredentials> {
        let issued = self.issue_euicc_in_memory(curve, eid)?;
        self.euicc_of(Hierarchy::of(curve), issued)
    }

    /// An eUICC's credentials: `issued` (its certificate and key) with the EUM and CI
    /// certificates of hierarchy `h`.
    fn euicc_of(&self, h: &Hierarchy, issued: Issued) -> Result<EuiccCredentials> {
        Ok(EuiccCredentials {
            certificate: issued.der,
            key: issued.key,
            eum: self.read_cert(h.eum.0)?,
            ci: self.read_cert(h.ci.0)?,
        })
    }

    /// [`GsmaPki::euicc_of`] the NIST hierarchy.
    fn nist_euicc(&self, issued: Issued) -> Result<EuiccCredentials> {
        self.euicc_of(&NIST, issued)
    }

    /// Issues a certificate and key for an eUICC with this EID (signed by the EUM), in memory.
    pub fn issue_euicc(&self, eid: &str) -> Result<EuiccCredentials> {
        self.issue_euicc_on(Curve::NistP256, eid)
    }

    /// Issues an eUICC for `eid` into `out` (`CERT_EUICC_ECDSA_NIST.der`,
    /// `SK_EUICC_ECDSA_NIST.pem`, with the EUM and CI certificates beside them).
    pub fn issue_euicc_files(&self, eid: &str, out: &Path) -> Result<Vec<PathBuf>> {
        let issued = self.issue_euicc_in_memory(Curve::NistP256, eid)?;
        std::fs::create_dir_all(out).map_err(PkiError::io("creating", out))?;
        let mut written = Vec::new();
        for (file, bytes, secret) in [
            (EUICC_CERT, issued.der.clone(), false),
            (EUICC_KEY, issued.key.to_pem().into_bytes(), true),
            (EUM_CERT, self.read_cert(EUM_CERT)?, false),
            (CI_CERT, self.read_cert(CI_CERT)?, false),
        ] {
            let path = out.join(file);
            write_new(&path, &bytes, secret)?;
            written.push(path);
        }
        Ok(written)
    }

    /// The sample eUICC made by [`GsmaPki::ensure`].
    pub fn sample_euicc(&self) -> Result<EuiccCredentials> {
        Ok(EuiccCredentials {
            certificate: self.read_cert(EUICC_CERT)?,
            key: self.read_key(EUICC_KEY)?,
            eum: self.read_cert(EUM_CERT)?,
            ci: self.read_cert(CI_CERT)?,
        })
    }

    /// What the SM-DP+ needs, read and checked: the CIs, DPauth and DPpb (with the profiles of
    /// their roles, issued by one of the CIs, naming the same SM-DP+ OID), DPtls (its profile,
    /// extKeyUsage serverAuth, issued by one of the CIs, its key, within its validity period
    /// now). Whether DPtls names the address of the Activation Codes is
    /// [`GsmaPki::server_credentials_for`]'s check.
    pub fn server_credentials(&self) -> Result<ServerCredentials> {
        let cis = self.cis()?;
        let DpPair {
            dp_auth,
            dp_auth_key,
            dp_pb,
            dp_pb_key,
        } = self.load_pair(&cis, &NIST)?;
        let brainpool = match self.path(DPAUTH_BRP_CERT).exists() {
            true => {
                let pair = self.load_pair(&cis, &BRAINPOOL)?;
                let problem = if pair.dp_auth.registered_id != dp_auth.registered_id {
                    Some("names another SM-DP+ OID than the NIST one")
                } else if pair.dp_auth.curve != Curve::BrainpoolP256r1
                    || pair.dp_pb.curve != Curve::BrainpoolP256r1
                {
                    Some("is not on brainpoolP256r1")
                } else if pair.dp_auth.authority_key_id == dp_auth.authority_key_id {
                    Some("chains to the NIST pair's CI, so no eUICC would get it")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(PkiError::Inconsistent(format!(
                        "the brainpool pair ({DPAUTH_BRP_CERT}, {DPPB_BRP_CERT}) {problem}"
                    )));
                }
                Some(pair)
            }
            false => None,
        };
        let (tls_file, tls_key_file) = self.dp_tls_files()?;
        let (dp_tls, tls_key) = self.load_dp(&cis, &tls_file, &tls_key_file, Role::DpTls)?;
        self.check_dp_tls(&dp_tls, &tls_file, OffsetDateTime::now_utc())?;
        let mut tls_chain = vec![dp_tls.der.clone()];
        if let Some(ci) = issuer_of(&cis, &dp_tls) {
            tls_chain.push(ci.der.clone());
        }
        Ok(ServerCredentials {
            cis,
            dp_auth,
            dp_auth_key,
            dp_pb,
            dp_pb_key,
            brainpool,
            tls_chain,
            tls_key: tls_key.pkcs8_der().to_vec(),
            dp_tls,
            dp_tls_file: self.path(&tls_file),
        })
    }

    /// [`GsmaPki::server_credentials`], and DPtls names the host of `address`, the SM-DP+
    /// address Activation Codes use (`host[:port]`, as `--es9-address` or the scenario's
    /// `smdp.address` give it): an LPA that checks TLS connects to that name
    /// ([`Certificate::names_host`] says how names and wildcards match).
    pub fn server_credentials_for(&self, address: &str) -> Result<ServerCredentials> {
        let credentials = self.server_credentials()?;
        let host = address_host(address);
        if credentials.dp_tls.names_host(host) {
            return Ok(credentials);
        }
        let tls = &credentials.dp_tls;
        let names: Vec<String> = tls
            .dns_names
            .iter()
            .cloned()
            .chain(tls.ip_addresses.iter().map(ToString::to_string))
            .collect();
        let has = if names.is_empty() {
            "names no host (its subjectAltName has no dNSName or iPAddress)".to_owned()
        } else {
            format!("names {}", names.join(", "))
        };
        Err(PkiError::TlsName {
            path: credentials.dp_tls_file.clone(),
            detail: format!(
                "DPtls {has}, not {host}, the host of the SM-DP+ address the Activation Codes \
                 name ({address}): LPAs that check TLS refuse the connection. Make the \
                 Activation Codes name one of its names (the scenario's smdp.address, or \
                 --es9-address HOST[:PORT] / SMDPP_ES9_ADDRESS), or issue a DPtls naming {host}: {}",
                self.reissue_hint(tls, &credentials.dp_tls_file)
            ),
        })
    }

    /// The folder's CI certificates (every `CERT_CI_*.der`), the mock's own first: the one its
    /// eUICCs and its DP certificates chain to.
    fn cis(&self) -> Result<Vec<Certificate>> {
        let mut names = self.files_like("CERT_CI_", ".der")?;
        names.sort_by_key(|n| n != CI_CERT);
        let mut cis = Vec::new();
        for file in names {
            let ci = Certificate::parse(&self.read_cert(&file)?)
                .map_err(|e| PkiError::file(&self.path(&file), e))?;
            ci.check_profile(Role::Ci)
                .map_err(|e| PkiError::file(&self.path(&file), e))?;
            cis.push(ci);
        }
        Ok(cis)
    }

    /// DPauth and DPpb of hierarchy `h`, checked: their profiles, one SM-DP+ OID, one CI.
    fn load_pair(&self, cis: &[Certificate], h: &Hierarchy) -> Result<DpPair> {
        let (dp_auth, dp_auth_key) = self.load_dp(cis, h.dp_auth.0, h.dp_auth.1, Role::DpAuth)?;
        let (dp_pb, dp_pb_key) = self.load_dp(cis, h.dp_pb.0, h.dp_pb.1, Role::DpPb)?;
        if dp_auth.registered_id != dp_pb.registered_id {
            return Err(PkiError::Inconsistent(
                "DPauth and DPpb name different SM-DP+ OIDs; §4.5.2.1 makes them the same".into(),
            ));
        }
        if dp_auth.authority_key_id != dp_pb.authority_key_id {
            return Err(PkiError::Inconsistent(
                "DPauth and DPpb chain to different CIs (SGP.22 §5.7.5 requires one)".into(),
            ));
        }
        Ok(DpPair {
            dp_auth,
            dp_auth_key,
            dp_pb,
            dp_pb_key,
        })
    }

    /// A certificate of the SM-DP+ and its key: the profile of `role`, issued by one of `cis`
    /// (signature verified), the key its certificate's.
    fn load_dp(
        &self,
        cis: &[Certificate],
        cert: &str,
        key_file: &str,
        role: Role,
    ) -> Result<(Certificate, SigningKey)> {
        let path = self.path(cert);
        let parsed =
            Certificate::parse(&self.read_cert(cert)?).map_err(|e| PkiError::file(&path, e))?;
        parsed
            .check_profile(role)
            .map_err(|e| PkiError::file(&path, e))?;
        let issuer = issuer_of(cis, &parsed).ok_or_else(|| {
            PkiError::file(
                &path,
                format!(
                    "issued by none of the CI certificates in {} (CERT_CI_*.der): put the CI that \
                     issued it there",
                    self.dir.display()
                ),
            )
        })?;
        parsed
            .check_issued_by(issuer, Role::Ci)
            .map_err(|e| PkiError::file(&path, e))?;
        let key = self.read_key(key_file)?;
        if key.public_key() != parsed.public_key.as_slice() {
            return Err(PkiError::file(
                &self.path(key_file),
                format!("not the key of {}", path.display()),
            ));
        }
        Ok((parsed, key))
    }

    /// What a TLS client checks of DPtls beyond its chain: extKeyUsage allows serverAuth, and
    /// `now` is within its validity period.
    fn check_dp_tls(&self, tls: &Certificate, file: &str, now: OffsetDateTime) -> Result<()> {
        let path = self.path(file);
        if tls.server_auth == Some(false) {
            return Err(PkiError::file(
                &path,
                "DPtls certificate: its extKeyUsage lacks serverAuth, so TLS clients refuse it \
                 as a server's (§4.5.2.1 gives DPtls serverAuth and clientAuth)",
            ));
        }
        let (not_before, not_after) = tls.validity();
        let now_secs = now.unix_timestamp();
        let detail = if now_secs > not_after {
            format!(
                "DPtls expired on {} (notAfter {}): LPAs that check TLS refuse it. SGP.26 TLS \
                 certificates in circulation have often expired; issue a fresh one from your \
                 own test CI: {}",
                day(not_after),
                moment(not_after),
                self.reissue_hint(tls, &path)
            )
        } else if now_secs < not_before {
            format!(
                "DPtls is valid only from {} (notBefore; now is {}): LPAs that check TLS refuse \
                 it. Check this machine's clock, or issue one valid now: {}",
                moment(not_before),
                moment(now_secs),
                self.reissue_hint(tls, &path)
            )
        } else {
            return Ok(());
        };
        Err(PkiError::TlsExpired { path, detail })
    }

    /// How to replace DPtls (at `path`) with one from the same CI: have the mock issue it when
    /// the folder has that CI's key, otherwise sign one with the user's CI key.
    fn reissue_hint(&self, tls: &Certificate, path: &Path) -> String {
        let key = self.dp_tls_key_path(path);
        let issuer = self.files_like("CERT_CI_", ".der").ok().and_then(|files| {
            files.into_iter().find(|file| {
                std::fs::read(self.path(file))
                    .ok()
                    .and_then(|der| Certificate::parse(&der).ok())
                    .is_some_and(|ci| issuer_of(std::slice::from_ref(&ci), tls).is_some())
            })
        });
        let ours = issuer.as_deref() == Some(CI_CERT);
        if ours && self.path(CI_KEY).exists() {
            return format!(
                "remove {} and {}, and the mock issues a new DPtls at the next start, signed with \
                 {CI_KEY} and naming localhost, 127.0.0.1, ::1, the scenario's smdp.address, the \
                 --es9-address host and every --san",
                path.display(),
                key.display()
            );
        }
        let ci = issuer.unwrap_or_else(|| "your test CI's certificate".into());
        let sign = format!(
            "sign a new one with the key of {ci} (openssl x509 -req -CA {ci} -CAform DER -CAkey \
             <that CI's key> with the extensions of SGP.22's DPtls profile; the commands are in \
             {WALK_THROUGH}) and put it and its key in place of {} and {}",
            path.display(),
            key.display()
        );
        if ours {
            format!(
                "{sign}; or put the CI's key beside {CI_CERT} as {CI_KEY} and remove the two \
                 files: the mock then issues one at the next start"
            )
        } else if self.path(CI_CERT).exists() && self.path(CI_KEY).exists() {
            // The mock's own CI is in the folder: a DPtls from it serves LPAs that do not
            // check TLS (lpac), or trust that CI.
            format!(
                "{sign}; or, for LPAs that do not check TLS (lpac) or that trust {CI_CERT}, \
                 remove the two files: the mock then issues one from its own CI at the next start"
            )
        } else {
            sign
        }
    }

    /// The key file of the DPtls certificate at `path` (`SK_S_SM_DP_TLS_<x>.pem`).
    fn dp_tls_key_path(&self, path: &Path) -> PathBuf {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or(DPTLS_CERT);
        let suffix = name
            .strip_prefix(DPTLS_CERT_PREFIX)
            .and_then(|n| n.strip_suffix(".der"))
            .unwrap_or("NIST");
        self.path(&format!("{DPTLS_KEY_PREFIX}{suffix}.pem"))
    }
}

/// The CI among `cis` whose key `cert`'s AuthorityKeyIdentifier names.
fn issuer_of<'a>(cis: &'a [Certificate], cert: &Certificate) -> Option<&'a Certificate> {
    cis.iter()
        .find(|ci| ci.subject_key_id.is_some() && ci.subject_key_id == cert.authority_key_id)
}

/// The host of an SM-DP+ address `host[:port]` (`[v6]:port`, a bare IPv6 address, a name).
pub fn address_host(address: &str) -> &str {
    let address = address.trim();
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match address.rsplit_once(':') {
        Some((host, port))
            if !host.contains(':')
                && !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            host
        }
        _ => address,
    }
}

/// The date of `secs` (seconds since 1970, UTC), `2024-03-01`.
fn day(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| t.date().to_string())
        .unwrap_or_else(|_| secs.to_string())
}

/// The moment of `secs`, `2024-03-01 12:00:00 UTC`.
fn moment(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .map(|t| {
            format!(
                "{} {:02}:{:02}:{:02} UTC",
                t.date(),
                t.hour(),
                t.minute(),
                t.second()
            )
        })
        .unwrap_or_else(|_| secs.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::{verify_euicc_chain, verify_server, ChainError};

    #[test]
    fn the_chain_has_the_profiles_of_section_4_5_and_verifies() {
        let dir = std::env::temp_dir().join(format!("smdpp-gsma-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = GsmaPki::new(&dir);
        let made = pki
            .ensure(&["localhost".into()], "89049032000000000000000000000001")
            .unwrap();
        // The NIST hierarchy (CI, EUM, sample eUICC, DPauth, DPpb, DPtls), the brainpool one
        // (CI, EUM, DPauth, DPpb) and the SM-DS's (DSauth, DStls, DSauth of brainpool),
        // certificate and key each.
        assert_eq!(made.created.len(), 12 + 8 + 6);
        // The SM-DS's: the profiles of §4.5.2.1.0.6-7, its own OID, DStls naming localhost.
        let smds = pki.smds_credentials_for("localhost:6445").unwrap();
        smds.ds_auth.check_profile(Role::DsAuth).unwrap();
        smds.ds_tls.check_profile(Role::DsTls).unwrap();
        assert_eq!(
            smds.ds_auth.registered_id.as_deref(),
            Some(&oid_content(&SMDS_OID)[..])
        );
        assert!(smds.ds_tls.names_host("localhost"));
        assert_eq!(smds.ds_tls.server_auth, Some(true));
        let (brainpool_ds, _) = smds.brainpool.as_ref().expect("the brainpool DSauth");
        assert_eq!(brainpool_ds.curve, Curve::BrainpoolP256r1);
        assert!(matches!(
            pki.smds_credentials_for("elsewhere.example:6445"),
            Err(PkiError::TlsName { .. })
        ));
        let server = pki.server_credentials().unwrap();
        let brainpool = server.brainpool.as_ref().expect("the brainpool pair");
        assert_eq!(brainpool.dp_auth.curve, Curve::BrainpoolP256r1);
        assert_eq!(brainpool.dp_pb.curve, Curve::BrainpoolP256r1);
        assert_eq!(
            brainpool.dp_auth.registered_id,
            server.dp_auth.registered_id
        );
        assert_eq!(server.dp_tls.curve, Curve::NistP256);
        assert!(pki
            .ensure(&[], "89049032000000000000000000000001")
            .unwrap()
            .created
            .is_empty());
        let server = pki.server_credentials().unwrap();
        assert_eq!(
            server.dp_auth.registered_id.as_deref(),
            Some(&oid_content(&SMDP_OID)[..])
        );
        let euicc = pki.sample_euicc().unwrap();
        let verified = verify_euicc_chain(
            &euicc.certificate,
            &euicc.eum,
            &server.cis,
            None,
            Some(OffsetDateTime::now_utc().unix_timestamp()),
        )
        .unwrap();
        assert_eq!(
            crate::crypto::hex_upper(&verified.eid),
            "89049032000000000000000000000001"
        );
        let ci = Certificate::parse(&euicc.ci).unwrap();
        verify_server(
            &server.dp_auth.der,
            Role::DpAuth,
            std::slice::from_ref(&ci),
            None,
        )
        .unwrap();
        verify_server(
            &server.dp_pb.der,
            Role::DpPb,
            std::slice::from_ref(&ci),
            None,
        )
        .unwrap();
        assert!(verify_server(
            &server.dp_pb.der,
            Role::DpAuth,
            std::slice::from_ref(&ci),
            None
        )
        .is_err());
        // Outside the EUM's range: refused by its name constraints.
        assert!(pki.issue_euicc("89049033000000000000000000000001").is_err());
        let other = make_euicc(
            &pki.authority(EUM_CERT, EUM_KEY, "").unwrap(),
            "89049033000000000000000000000001",
        )
        .unwrap();
        assert!(matches!(
            verify_euicc_chain(&other.der, &euicc.eum, &server.cis, None, None),
            Err(ChainError::Euicc(_))
        ));
        // An EUM of another CI.
        let foreign_ci = make_ci(Curve::NistP256).unwrap();
        let foreign_eum = make_eum(&Authority {
            der: foreign_ci.der,
            key: foreign_ci.key,
        })
        .unwrap();
        assert_eq!(
            verify_euicc_chain(
                &euicc.certificate,
                &foreign_eum.der,
                &server.cis,
                None,
                None
            )
            .unwrap_err(),
            ChainError::UnknownCi
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_brainpool_hierarchy_has_the_profiles_of_section_4_5_and_verifies() {
        let now = Some(OffsetDateTime::now_utc().unix_timestamp());
        let bp = Curve::BrainpoolP256r1;
        let ci = make_ci(bp).unwrap();
        let ci = Authority {
            der: ci.der,
            key: ci.key,
        };
        let eum = make_eum(&ci).unwrap();
        let eum = Authority {
            der: eum.der,
            key: eum.key,
        };
        let euicc = make_euicc(&eum, SAMPLE_EID).unwrap();
        let cis = [Certificate::parse(&ci.der).unwrap()];
        assert_eq!(cis[0].curve, bp);
        cis[0].check_profile(Role::Ci).unwrap();
        assert_eq!(euicc.key.curve(), bp);
        let verified = verify_euicc_chain(&euicc.der, &eum.der, &cis, None, now).unwrap();
        assert_eq!(crate::crypto::hex_upper(&verified.eid), SAMPLE_EID);
        assert_eq!(verified.certificate.curve, bp);
        assert_eq!(verified.certificate.public_key, euicc.key.public_key());
        // The EUM's name constraints are written and enforced.
        let outside = make_euicc(&eum, "89049033000000000000000000000001").unwrap();
        assert!(verify_euicc_chain(&outside.der, &eum.der, &cis, None, now).is_err());
        let oid = oid_content(&SMDP_OID);
        for role in [Role::DpAuth, Role::DpPb] {
            let dp = make_dp(&ci, role, &[], &oid).unwrap();
            let (cert, _) = verify_server(&dp.der, role, &cis, now).unwrap();
            assert_eq!(
                (cert.curve, cert.registered_id.as_deref()),
                (bp, Some(&oid[..]))
            );
            let other = if role == Role::DpAuth {
                Role::DpPb
            } else {
                Role::DpAuth
            };
            assert!(verify_server(&dp.der, other, &cis, now).is_err());
        }
        let tls = make_dp(&ci, Role::DpTls, &["localhost".into()], &oid).unwrap();
        let tls = Certificate::parse(&tls.der).unwrap();
        tls.check_profile(Role::DpTls).unwrap();
        tls.check_issued_by(&cis[0], Role::Ci).unwrap();
        assert!(tls.names_host("localhost"));
        assert_eq!(tls.server_auth, Some(true));
        // A NIST CI does not vouch for the brainpool chain.
        let nist = make_ci(Curve::NistP256).unwrap();
        let nist = [Certificate::parse(&nist.der).unwrap()];
        assert!(verify_euicc_chain(&euicc.der, &eum.der, &nist, None, now).is_err());
    }

    #[test]
    fn oids_read_back_as_text() {
        for arcs in [
            &[2u64, 999, 10][..],
            &[1, 3, 6, 1, 5, 5, 7, 3, 1],
            &[2, 23, 146, 1, 2, 1, 7],
        ] {
            let text: Vec<String> = arcs.iter().map(u64::to_string).collect();
            assert_eq!(oid_text(&oid_content(arcs)).unwrap(), text.join("."));
        }
        assert_eq!(parse_oid("2.999.71"), Some(vec![2, 999, 71]));
        let long = format!("2.999{}", ".1".repeat(62));
        for bad in [
            "",
            "2",
            "3.1",
            "1.40",
            "2..1",
            "2.x",
            "2.999.",
            "-1.2",
            "2.0999.71",
            &long,
        ] {
            assert_eq!(parse_oid(bad), None, "{bad}");
        }
        assert_eq!(oid_text(&[]), None);
        assert_eq!(oid_text(&[0x81]), None);
        assert_eq!(oid_text(&[0xFF; 12]), None);
    }

    #[test]
    fn the_host_of_an_address() {
        for (address, host) in [
            ("localhost", "localhost"),
            ("smdp.example:6444", "smdp.example"),
            ("[::1]:6444", "::1"),
            ("[::1]", "::1"),
            ("::1", "::1"),
            ("10.0.0.1:443", "10.0.0.1"),
        ] {
            assert_eq!(address_host(address), host, "{address}");
        }
    }

    /// The DPtls served: the mock's name when present, else the only SGP.26-style one; several
    /// others are the user's choice to make.
    #[test]
    fn which_dp_tls_files_are_served() {
        let dir = std::env::temp_dir().join(format!("smdpp-dptls-files-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = GsmaPki::new(&dir);
        std::fs::create_dir_all(pki.dir()).unwrap();
        let mine = (DPTLS_CERT.to_owned(), DPTLS_KEY.to_owned());
        assert_eq!(pki.dp_tls_files().unwrap(), mine);
        std::fs::write(pki.path("CERT_S_SM_DP_TLS_BRP.der"), b"").unwrap();
        assert_eq!(
            pki.dp_tls_files().unwrap(),
            (
                "CERT_S_SM_DP_TLS_BRP.der".to_owned(),
                "SK_S_SM_DP_TLS_BRP.pem".to_owned()
            )
        );
        std::fs::write(pki.path("CERT_S_SM_DP_TLS_TEST.der"), b"").unwrap();
        let e = pki.dp_tls_files().unwrap_err().to_string();
        assert!(
            e.contains("CERT_S_SM_DP_TLS_BRP.der, CERT_S_SM_DP_TLS_TEST.der")
                && e.contains("rename it to CERT_S_SM_DP_TLS_NIST.der"),
            "{e}"
        );
        std::fs::write(pki.path(DPTLS_CERT), b"").unwrap();
        assert_eq!(pki.dp_tls_files().unwrap(), mine);
        // A certificate under another name without its key: ensure says which file is missing.
        std::fs::remove_file(pki.path(DPTLS_CERT)).unwrap();
        std::fs::remove_file(pki.path("CERT_S_SM_DP_TLS_BRP.der")).unwrap();
        let e = pki.ensure(&[], SAMPLE_EID).unwrap_err().to_string();
        assert!(e.contains("SK_S_SM_DP_TLS_TEST.pem go together"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// The mock's own DPtls passes its checks; one expired, or naming another host, does not.
    #[test]
    fn dp_tls_is_checked_for_its_validity_and_names() {
        let dir = std::env::temp_dir().join(format!("smdpp-dptls-checks-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = GsmaPki::new(&dir);
        pki.ensure(&["localhost".into(), "*.example.com".into()], SAMPLE_EID)
            .unwrap();
        pki.server_credentials_for("localhost:6444").unwrap();
        pki.server_credentials_for("a.example.com").unwrap();
        let e = pki.server_credentials_for("[::1]:6444").unwrap_err();
        assert!(
            matches!(&e, PkiError::TlsName { .. })
                && e.to_string()
                    .contains("DPtls names localhost, *.example.com, not ::1")
                && e.to_string().contains("the mock issues a new DPtls"),
            "{e}"
        );
        let credentials = pki.server_credentials().unwrap();
        let later = OffsetDateTime::now_utc() + Duration::days(365 * 11);
        let e = pki
            .check_dp_tls(&credentials.dp_tls, DPTLS_CERT, later)
            .unwrap_err();
        assert!(
            matches!(&e, PkiError::TlsExpired { .. }) && e.to_string().contains("DPtls expired on"),
            "{e}"
        );
        let earlier = OffsetDateTime::now_utc() - Duration::days(2);
        let e = pki
            .check_dp_tls(&credentials.dp_tls, DPTLS_CERT, earlier)
            .unwrap_err();
        assert!(e.to_string().contains("DPtls is valid only from"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
