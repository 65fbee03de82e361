//! The GSMA-style test PKI of ES9+ (SGP.22 §4.5), beside the ES2+ one: a CI at the root, an
//! EUM with its EID range as name constraints and the eUICCs it issues, and the SM-DP+'s DPauth,
//! DPpb and DPtls, each with the certificate policy and subjectAltName registeredID of its
//! profile (§4.5.2.1). The files keep SGP.26's names in the `gsma/` folder of the certificates
//! directory, so a user with SGP.26 test material can put its certificates and keys in their
//! place (a real test eUICC trusts the GSMA test CI, not ours).
//!
//! Files are created when missing and never overwritten, like the rest of the PKI.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, DnValue,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use super::dir::EnsureReport;
use crate::rsp::cert::{Certificate, Role};
use crate::rsp::crypto::SigningKey;
use crate::rsp::tlv;

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
/// The ES9+ TLS certificate (CERT.DP.TLS).
pub const DPTLS_CERT: &str = "CERT_S_SM_DP_TLS_NIST.der";
/// Its key.
pub const DPTLS_KEY: &str = "SK_S_SM_DP_TLS_NIST.pem";

/// The mock SM-DP+'s OID (subjectAltName registeredID of DPauth, DPpb, DPtls): under `2.999`,
/// the arc ITU-T X.660 sets aside for examples.
pub const SMDP_OID: [u64; 3] = [2, 999, 10];
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
    // Critical in every profile but DPtls's (§4.5.2.1, Table 14).
    ext.set_criticality(role != Role::DpTls);
    ext
}

/// subjectAltName with `dns` names and one registeredID.
fn alt_names(dns: &[String], registered: &[u64]) -> CustomExtension {
    let mut names = Vec::new();
    for name in dns {
        match name.parse::<std::net::IpAddr>() {
            Ok(std::net::IpAddr::V4(ip)) => tlv::push(&mut names, 0x87, &ip.octets()),
            Ok(std::net::IpAddr::V6(ip)) => tlv::push(&mut names, 0x87, &ip.octets()),
            Err(_) => tlv::push(&mut names, 0x82, name.as_bytes()),
        }
    }
    tlv::push(&mut names, 0x88, &oid_content(registered));
    CustomExtension::from_oid_content(&SUBJECT_ALT_NAME, tlv::encode(0x30, &names))
}

fn subject_key_identifier(params: &CertificateParams, key: &KeyPair) -> CustomExtension {
    CustomExtension::from_oid_content(
        &SUBJECT_KEY_IDENTIFIER,
        tlv::encode(0x04, &params.key_identifier(key)),
    )
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
        anyhow!("{text:?} is not a PrintableString: {e}")
    })?))
}

fn rcgen_key(key: &SigningKey) -> Result<KeyPair> {
    KeyPair::try_from(key.pkcs8_der()).map_err(|e| anyhow!("the key cannot sign certificates: {e}"))
}

/// Parameters common to every certificate: validity from a day ago for `years`, a random
/// serial, ECDSA with SHA-256 (the key's).
fn base(subject: DistinguishedName, years: i64) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = subject;
    let now = OffsetDateTime::now_utc();
    params.not_before = now - Duration::days(1);
    params.not_after = now + Duration::days(365 * years);
    params.serial_number = Some(super::ca::random_serial()?);
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
        .map_err(|e| anyhow!("the issuer's certificate cannot be read: {e}"))
    }
}

fn make_ci() -> Result<Issued> {
    let key = SigningKey::generate();
    let pair = rcgen_key(&key)?;
    let mut params = base(
        name(&[
            (DnType::CommonName, "smdpp-mock Test CI".into()),
            (DnType::OrganizationName, "smdpp-mock".into()),
        ]),
        30,
    )?;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.custom_extensions = vec![policies(Role::Ci), alt_names(&[], &CI_OID)];
    let cert = params
        .self_signed(&pair)
        .map_err(|e| anyhow!("signing the CI certificate: {e}"))?;
    Ok(Issued {
        der: cert.der().to_vec(),
        key,
    })
}

fn make_eum(ci: &Authority) -> Result<Issued> {
    let key = SigningKey::generate();
    let pair = rcgen_key(&key)?;
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
    params.custom_extensions = vec![policies(Role::Eum), alt_names(&[], &EUM_OID)];
    let cert = params
        .signed_by(&pair, &ci.issuer()?)
        .map_err(|e| anyhow!("signing the EUM certificate: {e}"))?;
    Ok(Issued {
        der: cert.der().to_vec(),
        key,
    })
}

/// An eUICC certificate for `eid` (32 digits), issued by `eum`.
fn make_euicc(eum: &Authority, eid: &str) -> Result<Issued> {
    if eid.len() != 32 || !eid.bytes().all(|b| b.is_ascii_digit()) {
        bail!("an EID is 32 decimal digits, not {eid:?}");
    }
    let key = SigningKey::generate();
    let pair = rcgen_key(&key)?;
    let mut params = base(
        name(&[
            (DnType::OrganizationName, EUM_ORGANIZATION.into()),
            (DnType::CustomDnType(vec![2, 5, 4, 5]), printable(eid)?),
            (DnType::CommonName, "smdpp-mock eUICC".into()),
        ]),
        30,
    )?;
    params.is_ca = IsCa::NoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    params.custom_extensions = vec![
        subject_key_identifier(&params, &pair),
        policies(Role::Euicc),
    ];
    let cert = params
        .signed_by(&pair, &eum.issuer()?)
        .map_err(|e| anyhow!("signing the eUICC certificate: {e}"))?;
    Ok(Issued {
        der: cert.der().to_vec(),
        key,
    })
}

/// DPauth, DPpb or DPtls, issued by `ci`; `dns` names only for DPtls.
fn make_dp(ci: &Authority, role: Role, dns: &[String], smdp_oid: &[u64]) -> Result<Issued> {
    let key = SigningKey::generate();
    let pair = rcgen_key(&key)?;
    let common = match role {
        Role::DpTls => dns.first().cloned().unwrap_or_else(|| "localhost".into()),
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
        subject_key_identifier(&params, &pair),
        policies(role),
        alt_names(if role == Role::DpTls { dns } else { &[] }, smdp_oid),
    ];
    if role == Role::DpTls {
        params.custom_extensions.push(tls_usages());
    }
    let cert = params
        .signed_by(&pair, &ci.issuer()?)
        .map_err(|e| anyhow!("signing the {} certificate: {e}", role.name()))?;
    Ok(Issued {
        der: cert.der().to_vec(),
        key,
    })
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
            std::fs::read(dir.join(file))
                .with_context(|| format!("reading {}", dir.join(file).display()))
        };
        let key_path = dir.join(EUICC_KEY);
        let pem = std::fs::read_to_string(&key_path)
            .with_context(|| format!("reading {}", key_path.display()))?;
        Ok(EuiccCredentials {
            certificate: read(EUICC_CERT)?,
            key: SigningKey::from_pem(&pem).map_err(|e| anyhow!("{}: {e}", key_path.display()))?,
            eum: read(EUM_CERT)?,
            ci: read(CI_CERT)?,
        })
    }
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
        std::fs::read(self.path(file))
            .with_context(|| format!("reading {}", self.path(file).display()))
    }

    fn read_key(&self, file: &str) -> Result<SigningKey> {
        let path = self.path(file);
        let pem = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        SigningKey::from_pem(&pem).map_err(|e| anyhow!("{}: {e}", path.display()))
    }

    fn authority(&self, cert: &str, key: &str, what: &str) -> Result<Authority> {
        if !self.path(key).exists() {
            bail!(
                "{} has no key ({}): it cannot issue {what}; remove {} to have a new one made",
                self.path(cert).display(),
                self.path(key).display(),
                self.path(cert).display()
            );
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
        super::dir::write_new(&self.path(cert), &issued.der, false)?;
        super::dir::write_new(&self.path(key), issued.key.to_pem().as_bytes(), true)?;
        report.created.push(self.path(cert));
        report.created.push(self.path(key));
        Ok(())
    }

    /// Makes what is missing: CI, EUM, a sample eUICC for `sample_eid`, DPauth, DPpb, and a
    /// DPtls naming `tls_names`. Existing files are kept (SGP.26 material included).
    pub fn ensure(&self, tls_names: &[String], sample_eid: &str) -> Result<EnsureReport> {
        let mut report = EnsureReport::default();
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let exists = |file: &str| self.path(file).exists();
        if !exists(CI_CERT) {
            if exists(CI_KEY) {
                bail!("{} exists without {}", self.path(CI_KEY).display(), CI_CERT);
            }
            self.write(&mut report, CI_CERT, CI_KEY, &make_ci()?)?;
        } else {
            report.reused.push(self.path(CI_CERT));
        }
        let need = |cert: &str, key: &str| !(exists(cert) && exists(key));
        for (cert, key) in [
            (EUM_CERT, EUM_KEY),
            (DPAUTH_CERT, DPAUTH_KEY),
            (DPPB_CERT, DPPB_KEY),
            (DPTLS_CERT, DPTLS_KEY),
        ] {
            if exists(cert) != exists(key) {
                bail!(
                    "{} and {} go together: one is missing",
                    self.path(cert).display(),
                    self.path(key).display()
                );
            }
        }
        if need(EUM_CERT, EUM_KEY)
            || need(DPAUTH_CERT, DPAUTH_KEY)
            || need(DPPB_CERT, DPPB_KEY)
            || need(DPTLS_CERT, DPTLS_KEY)
        {
            let ci = self.authority(CI_CERT, CI_KEY, "certificates")?;
            if need(EUM_CERT, EUM_KEY) {
                self.write(&mut report, EUM_CERT, EUM_KEY, &make_eum(&ci)?)?;
            }
            for (cert, key, role) in [
                (DPAUTH_CERT, DPAUTH_KEY, Role::DpAuth),
                (DPPB_CERT, DPPB_KEY, Role::DpPb),
                (DPTLS_CERT, DPTLS_KEY, Role::DpTls),
            ] {
                if need(cert, key) {
                    self.write(
                        &mut report,
                        cert,
                        key,
                        &make_dp(&ci, role, tls_names, &SMDP_OID)?,
                    )?;
                }
            }
        }
        if need(EUICC_CERT, EUICC_KEY) {
            let issued = self.issue_euicc_in_memory(sample_eid)?;
            self.write(&mut report, EUICC_CERT, EUICC_KEY, &issued)?;
        }
        Ok(report)
    }

    fn issue_euicc_in_memory(&self, eid: &str) -> Result<Issued> {
        let eum = self.authority(EUM_CERT, EUM_KEY, "eUICC certificates")?;
        if !eid.starts_with(EUM_IIN) {
            bail!("the mock EUM issues eUICCs whose EID starts with {EUM_IIN} (its name constraint), not {eid}");
        }
        make_euicc(&eum, eid)
    }

    /// Issues an eUICC for any EID, even outside the EUM's name constraints: a certificate the
    /// SM-DP+ must refuse (tests of §4.5.2.2's checks).
    #[doc(hidden)]
    pub fn issue_euicc_outside_constraints(&self, eid: &str) -> Result<EuiccCredentials> {
        let eum = self.authority(EUM_CERT, EUM_KEY, "eUICC certificates")?;
        let issued = make_euicc(&eum, eid)?;
        Ok(EuiccCredentials {
            certificate: issued.der,
            key: issued.key,
            eum: self.read_cert(EUM_CERT)?,
            ci: self.read_cert(CI_CERT)?,
        })
    }

    /// Issues a CERT.DPpb (and its key) for another SM-DP+ OID than the mock's, signed by the
    /// CI: valid in itself, but not of the SM-DP+ that authenticated (tests of the eUICC's
    /// check in §5.7.5).
    #[doc(hidden)]
    pub fn issue_dp_pb_of_another_smdp(&self, smdp_oid: &[u64]) -> Result<Issued> {
        let ci = self.authority(CI_CERT, CI_KEY, "certificates")?;
        make_dp(&ci, Role::DpPb, &[], smdp_oid)
    }

    /// Issues a certificate and key for an eUICC with this EID (signed by the EUM), in memory.
    pub fn issue_euicc(&self, eid: &str) -> Result<EuiccCredentials> {
        let issued = self.issue_euicc_in_memory(eid)?;
        Ok(EuiccCredentials {
            certificate: issued.der,
            key: issued.key,
            eum: self.read_cert(EUM_CERT)?,
            ci: self.read_cert(CI_CERT)?,
        })
    }

    /// Issues an eUICC for `eid` into `out` (`CERT_EUICC_ECDSA_NIST.der`,
    /// `SK_EUICC_ECDSA_NIST.pem`, with the EUM and CI certificates beside them).
    pub fn issue_euicc_files(&self, eid: &str, out: &Path) -> Result<Vec<PathBuf>> {
        let issued = self.issue_euicc_in_memory(eid)?;
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
        let mut written = Vec::new();
        for (file, bytes, secret) in [
            (EUICC_CERT, issued.der.clone(), false),
            (EUICC_KEY, issued.key.to_pem().into_bytes(), true),
            (EUM_CERT, self.read_cert(EUM_CERT)?, false),
            (CI_CERT, self.read_cert(CI_CERT)?, false),
        ] {
            let path = out.join(file);
            super::dir::write_new(&path, &bytes, secret)?;
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
    /// their roles, issued by one of the CIs, naming the same SM-DP+ OID), DPtls.
    pub fn server_credentials(&self) -> Result<ServerCredentials> {
        let mut cis = Vec::new();
        let entries = std::fs::read_dir(&self.dir)
            .with_context(|| format!("reading {}", self.dir.display()))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with("CERT_CI_") && n.ends_with(".der"))
            .collect();
        names.sort();
        // The mock's own CI first: the one its eUICCs and its DP certificates chain to.
        names.sort_by_key(|n| n != CI_CERT);
        for file in names {
            let ci = Certificate::parse(&self.read_cert(&file)?)
                .map_err(|e| anyhow!("{}: {e}", self.path(&file).display()))?;
            ci.check_profile(Role::Ci)
                .map_err(|e| anyhow!("{}: {e}", self.path(&file).display()))?;
            cis.push(ci);
        }
        let load = |cert: &str, key_file: &str, role: Role| -> Result<(Certificate, SigningKey)> {
            let parsed = Certificate::parse(&self.read_cert(cert)?)
                .map_err(|e| anyhow!("{}: {e}", self.path(cert).display()))?;
            parsed
                .check_profile(role)
                .map_err(|e| anyhow!("{}: {e}", self.path(cert).display()))?;
            let issuer = cis
                .iter()
                .find(|ci| {
                    ci.subject_key_id.is_some() && ci.subject_key_id == parsed.authority_key_id
                })
                .ok_or_else(|| {
                    anyhow!(
                        "{} was issued by none of the CI certificates in {}",
                        self.path(cert).display(),
                        self.dir.display()
                    )
                })?;
            parsed
                .check_issued_by(issuer, Role::Ci)
                .map_err(|e| anyhow!("{}: {e}", self.path(cert).display()))?;
            let key = self.read_key(key_file)?;
            if key.public_key() != parsed.public_key.as_slice() {
                bail!(
                    "{} is not the key of {}",
                    self.path(key_file).display(),
                    self.path(cert).display()
                );
            }
            Ok((parsed, key))
        };
        let (dp_auth, dp_auth_key) = load(DPAUTH_CERT, DPAUTH_KEY, Role::DpAuth)?;
        let (dp_pb, dp_pb_key) = load(DPPB_CERT, DPPB_KEY, Role::DpPb)?;
        if dp_auth.registered_id != dp_pb.registered_id {
            bail!("DPauth and DPpb name different SM-DP+ OIDs; §4.5.2.1 makes them the same");
        }
        if dp_auth.authority_key_id != dp_pb.authority_key_id {
            bail!("DPauth and DPpb chain to different CIs (SGP.22 §5.7.5 requires one)");
        }
        let tls = self.read_cert(DPTLS_CERT)?;
        let tls_parsed = Certificate::parse(&tls)
            .map_err(|e| anyhow!("{}: {e}", self.path(DPTLS_CERT).display()))?;
        let mut tls_chain = vec![tls];
        if let Some(ci) = cis.iter().find(|ci| {
            ci.subject_key_id.is_some() && ci.subject_key_id == tls_parsed.authority_key_id
        }) {
            tls_chain.push(ci.der.clone());
        }
        let tls_key = self.read_key(DPTLS_KEY)?.pkcs8_der().to_vec();
        Ok(ServerCredentials {
            cis,
            dp_auth,
            dp_auth_key,
            dp_pb,
            dp_pb_key,
            tls_chain,
            tls_key,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsp::cert::{verify_euicc_chain, verify_server, ChainError};

    #[test]
    fn the_chain_has_the_profiles_of_section_4_5_and_verifies() {
        let dir = std::env::temp_dir().join(format!("smdpp-gsma-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = GsmaPki::new(&dir);
        let made = pki
            .ensure(&["localhost".into()], "89049032000000000000000000000001")
            .unwrap();
        assert_eq!(made.created.len(), 12);
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
            crate::rsp::crypto::hex_upper(&verified.eid),
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
        let foreign_ci = make_ci().unwrap();
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
}
