//! The certificates of the RSP ecosystem (SGP.22 §4.5.2) and how both ends verify them
//! (§4.5.2.2): the GSMA CI at the root, the EUM and the eUICC below it, the SM-DP+'s DPauth,
//! DPpb and DPtls. A [`Certificate`] is parsed once into what the checks need; the checks say
//! precisely what failed, so the SM-DP+ can answer with the status code SGP.22 assigns.

use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::oid_registry::{OID_X509_ORGANIZATION_NAME, OID_X509_SERIALNUMBER};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::crypto::{self, Curve};

/// The arc of the RSP role policies, `id-rspRole` (Annex H): `2.23.146.1.2.1`.
pub const RSP_ROLE_ARC: [u64; 6] = [2, 23, 146, 1, 2, 1];

/// A role of the RSP PKI, named by its certificate policy (`id-rspRole.x`, §4.5.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `id-rspRole-ci` (0): the GSMA Certificate Issuer.
    Ci,
    /// `id-rspRole-euicc` (1).
    Euicc,
    /// `id-rspRole-eum` (2): the eUICC Manufacturer.
    Eum,
    /// `id-rspRole-dp-tls` (3).
    DpTls,
    /// `id-rspRole-dp-auth` (4).
    DpAuth,
    /// `id-rspRole-dp-pb` (5).
    DpPb,
    /// `id-rspRole-ds-tls` (6): the SM-DS's TLS certificate.
    DsTls,
    /// `id-rspRole-ds-auth` (7): the SM-DS's authentication certificate (§4.5.2.1.0.6).
    DsAuth,
}

impl Role {
    /// The last arc of the policy OID.
    pub fn arc(self) -> u64 {
        match self {
            Role::Ci => 0,
            Role::Euicc => 1,
            Role::Eum => 2,
            Role::DpTls => 3,
            Role::DpAuth => 4,
            Role::DpPb => 5,
            Role::DsTls => 6,
            Role::DsAuth => 7,
        }
    }

    /// The policy OID's arcs.
    pub fn policy(self) -> Vec<u64> {
        let mut arcs = RSP_ROLE_ARC.to_vec();
        arcs.push(self.arc());
        arcs
    }

    fn from_oid(text: &str) -> Option<Role> {
        let last = text.strip_prefix("2.23.146.1.2.1.")?;
        Some(match last {
            "0" => Role::Ci,
            "1" => Role::Euicc,
            "2" => Role::Eum,
            "3" => Role::DpTls,
            "4" => Role::DpAuth,
            "5" => Role::DpPb,
            "6" => Role::DsTls,
            "7" => Role::DsAuth,
            _ => return None,
        })
    }

    /// Its name in SGP.22.
    pub fn name(self) -> &'static str {
        match self {
            Role::Ci => "CI",
            Role::Euicc => "eUICC",
            Role::Eum => "EUM",
            Role::DpTls => "DPtls",
            Role::DpAuth => "DPauth",
            Role::DpPb => "DPpb",
            Role::DsTls => "DStls",
            Role::DsAuth => "DSauth",
        }
    }
}

/// Why a certificate was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// Not a DER X.509 certificate.
    #[error("not a certificate: {0}")]
    Unreadable(String),
    /// Its key is not an EC key on NIST P-256 or brainpoolP256r1 (§2.6.7.1).
    #[error("its key is not an ECDSA NIST P-256 or brainpoolP256r1 key")]
    UnsupportedCurve,
    /// Its issuer's key is on another curve: a CI's hierarchy is on one curve (§4.5).
    #[error("its issuer's key is on another curve")]
    CurveMismatch,
    /// It does not have the profile of its role (§4.5.2.1).
    #[error("{0}")]
    Profile(String),
    /// Its issuer is not the one expected (AKI).
    #[error("it was not issued by the {0}")]
    WrongIssuer(&'static str),
    /// Its issuer's signature does not verify.
    #[error("its signature does not verify")]
    Signature,
    /// Outside its validity period.
    #[error("it is outside its validity period")]
    Expired,
}

/// A certificate, parsed once.
#[derive(Clone)]
pub struct Certificate {
    /// The DER as received.
    pub der: Vec<u8>,
    tbs: Vec<u8>,
    signature: Vec<u8>,
    /// SubjectKeyIdentifier.
    pub subject_key_id: Option<Vec<u8>>,
    /// AuthorityKeyIdentifier's keyIdentifier.
    pub authority_key_id: Option<Vec<u8>>,
    /// The public key, uncompressed (`04 ‖ X ‖ Y`).
    pub public_key: Vec<u8>,
    /// The curve of the public key, from the SPKI's namedCurve.
    pub curve: Curve,
    /// The RSP roles among its certificate policies.
    pub roles: Vec<Role>,
    /// The content bytes of its subjectAltName registeredID (the SM-DP+, EUM or CI OID).
    pub registered_id: Option<Vec<u8>>,
    /// Subject `O`.
    pub organization: Option<String>,
    /// Subject `serialNumber` (the EID in an eUICC certificate).
    pub serial_number: Option<String>,
    /// The `{O, serialNumber}` pairs of its name constraints (an EUM's EID ranges, §4.5.2.1.0.2).
    pub permitted: Vec<(Option<String>, Option<String>)>,
    /// The dNSNames of its subjectAltName (DPtls: the host names it serves).
    pub dns_names: Vec<String>,
    /// The iPAddresses of its subjectAltName.
    pub ip_addresses: Vec<std::net::IpAddr>,
    /// Whether its extKeyUsage has serverAuth (or anyExtendedKeyUsage); `None` without an
    /// extKeyUsage, which allows every use (RFC 5280 §4.2.1.12).
    pub server_auth: Option<bool>,
    ca: Option<(bool, Option<u32>)>,
    key_usage: Option<(bool, bool)>,
    not_before: i64,
    not_after: i64,
    unknown_critical: Vec<String>,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("roles", &self.roles)
            .field("organization", &self.organization)
            .field("serial_number", &self.serial_number)
            .finish_non_exhaustive()
    }
}

/// `AlgorithmIdentifier { ecdsa-with-SHA256 }` (RFC 5758 §3.2: no parameters), as DER: the
/// only signature algorithm of SGP.22's certificates (§4.5.2).
const ECDSA_WITH_SHA256: [u8; 12] = [
    0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02,
];

/// Checks what the signature does not cover: the outer `signatureAlgorithm` is
/// ecdsa-with-SHA256 exactly and the same as the signed `tbsCertificate.signature` (RFC 5280
/// §4.1.1.2), and the signature BIT STRING has no unused bits. A verifier that skips this
/// accepts a certificate changed in those bytes.
fn check_envelope(der: &[u8]) -> Result<(), CertError> {
    let bad = |what: &str| CertError::Unreadable(what.to_owned());
    let outer = super::tlv::read_exact(der).map_err(|e| bad(&e.to_string()))?;
    let parts = outer.children().map_err(|e| bad(&e.to_string()))?;
    let [tbs, algorithm, signature] = parts[..] else {
        return Err(bad("not tbsCertificate, signatureAlgorithm, signature"));
    };
    if algorithm.raw != ECDSA_WITH_SHA256 {
        return Err(bad("the signatureAlgorithm is not ecdsa-with-SHA256"));
    }
    let fields = tbs.children().map_err(|e| bad(&e.to_string()))?;
    // version [0] EXPLICIT is there in every v3 certificate; the signature field follows the
    // serial number.
    let inner = if fields.first().is_some_and(|f| f.tag == 0xA0) {
        fields.get(2)
    } else {
        fields.get(1)
    };
    if inner.map(|f| f.raw) != Some(&ECDSA_WITH_SHA256[..]) {
        return Err(bad(
            "the signed signature algorithm is not the signatureAlgorithm (ecdsa-with-SHA256)",
        ));
    }
    if signature.tag != 0x03 || signature.value.first() != Some(&0) {
        return Err(bad("the signature is not a BIT STRING without unused bits"));
    }
    Ok(())
}

impl Certificate {
    /// Parses `der`: a certificate with an EC key on NIST P-256 or brainpoolP256r1, whatever
    /// its role.
    pub fn parse(der: &[u8]) -> Result<Self, CertError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|e| CertError::Unreadable(e.to_string()))?;
        if !rest.is_empty() {
            return Err(CertError::Unreadable(format!(
                "{} bytes after the certificate",
                rest.len()
            )));
        }
        check_envelope(der)?;
        let spki = cert.public_key();
        let named = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.to_id_string());
        let curve = Curve::ALL
            .into_iter()
            .find(|c| named.as_deref() == Some(c.oid()))
            .filter(|_| spki.algorithm.algorithm.to_id_string() == "1.2.840.10045.2.1")
            .ok_or(CertError::UnsupportedCurve)?;
        let mut parsed = Certificate {
            der: der.to_vec(),
            tbs: cert.tbs_certificate.as_ref().to_vec(),
            signature: cert.signature_value.data.to_vec(),
            subject_key_id: None,
            authority_key_id: None,
            public_key: spki.subject_public_key.data.to_vec(),
            curve,
            roles: Vec::new(),
            registered_id: None,
            organization: attribute(cert.subject(), &OID_X509_ORGANIZATION_NAME),
            serial_number: attribute(cert.subject(), &OID_X509_SERIALNUMBER),
            permitted: Vec::new(),
            dns_names: Vec::new(),
            ip_addresses: Vec::new(),
            server_auth: None,
            ca: None,
            key_usage: None,
            not_before: cert.validity().not_before.timestamp(),
            not_after: cert.validity().not_after.timestamp(),
            unknown_critical: Vec::new(),
        };
        for ext in cert.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(id) => {
                    parsed.subject_key_id = Some(id.0.to_vec());
                }
                ParsedExtension::AuthorityKeyIdentifier(aki) => {
                    parsed.authority_key_id = aki.key_identifier.as_ref().map(|k| k.0.to_vec());
                }
                ParsedExtension::CertificatePolicies(policies) => {
                    parsed.roles.extend(
                        policies
                            .iter()
                            .filter_map(|p| Role::from_oid(&p.policy_id.to_id_string())),
                    );
                }
                ParsedExtension::SubjectAlternativeName(san) => {
                    for name in &san.general_names {
                        match name {
                            GeneralName::RegisteredID(oid) if parsed.registered_id.is_none() => {
                                parsed.registered_id = Some(oid.as_bytes().to_vec());
                            }
                            GeneralName::DNSName(dns) => parsed.dns_names.push((*dns).to_owned()),
                            GeneralName::IPAddress(ip) => {
                                if let Some(ip) = ip_address(ip) {
                                    parsed.ip_addresses.push(ip);
                                }
                            }
                            _ => {}
                        }
                    }
                }
                ParsedExtension::NameConstraints(nc) => {
                    for subtree in nc.permitted_subtrees.iter().flatten() {
                        if let GeneralName::DirectoryName(name) = &subtree.base {
                            parsed.permitted.push((
                                attribute(name, &OID_X509_ORGANIZATION_NAME),
                                attribute(name, &OID_X509_SERIALNUMBER),
                            ));
                        }
                    }
                }
                ParsedExtension::BasicConstraints(bc) => {
                    parsed.ca = Some((bc.ca, bc.path_len_constraint));
                }
                ParsedExtension::KeyUsage(ku) => {
                    parsed.key_usage = Some((ku.digital_signature(), ku.key_cert_sign()));
                }
                ParsedExtension::ExtendedKeyUsage(eku) => {
                    parsed.server_auth = Some(eku.server_auth || eku.any);
                }
                ParsedExtension::CRLDistributionPoints(_) => {}
                _ if ext.critical => parsed.unknown_critical.push(ext.oid.to_id_string()),
                _ => {}
            }
        }
        Ok(parsed)
    }

    /// Checks what §4.5.2.1 requires of a certificate of `role` (policy, key usage, CA flags,
    /// identifiers, subject names), and that it has no critical extension this crate does not
    /// know (RFC 5280 §4.2).
    pub fn check_profile(&self, role: Role) -> Result<(), CertError> {
        let fail = |what: &str| {
            Err(CertError::Profile(format!(
                "{} certificate: {what}",
                role.name()
            )))
        };
        if !self.roles.contains(&role) {
            return fail("its certificate policies lack the role's");
        }
        if let Some(oid) = self.unknown_critical.first() {
            return fail(&format!("unknown critical extension {oid}"));
        }
        if self.subject_key_id.is_none() {
            return fail("no subjectKeyIdentifier");
        }
        if role != Role::Ci && self.authority_key_id.is_none() {
            return fail("no authorityKeyIdentifier");
        }
        let (digital_signature, key_cert_sign) = self.key_usage.unwrap_or((false, false));
        match role {
            Role::Ci | Role::Eum => {
                if !key_cert_sign {
                    return fail("keyUsage lacks keyCertSign");
                }
                match self.ca {
                    Some((true, path)) if role == Role::Ci || path == Some(0) => {}
                    _ => return fail("basicConstraints is not that of its role"),
                }
            }
            _ => {
                if !digital_signature {
                    return fail("keyUsage lacks digitalSignature");
                }
                if matches!(self.ca, Some((true, _))) {
                    return fail("an end-entity certificate that says it is a CA");
                }
            }
        }
        match role {
            Role::Euicc if self.organization.is_none() || self.eid().is_none() => {
                return fail("the subject needs O and a 32-digit serialNumber (the EID)");
            }
            Role::DpAuth | Role::DpPb | Role::DpTls if self.registered_id.is_none() => {
                return fail("no SM-DP+ OID (subjectAltName registeredID)");
            }
            Role::DsAuth | Role::DsTls if self.registered_id.is_none() => {
                return fail("no SM-DS OID (subjectAltName registeredID)");
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks that `issuer` issued this certificate: the AuthorityKeyIdentifier names its key,
    /// both keys are on one curve (§4.5: a CI's hierarchy is on one curve), and the issuer's
    /// signature verifies on that curve.
    pub fn check_issued_by(
        &self,
        issuer: &Certificate,
        issuer_role: Role,
    ) -> Result<(), CertError> {
        let named = match (&self.authority_key_id, &issuer.subject_key_id) {
            (Some(aki), Some(ski)) => aki == ski,
            _ => false,
        };
        if !named {
            return Err(CertError::WrongIssuer(issuer_role.name()));
        }
        if issuer.curve != self.curve {
            return Err(CertError::CurveMismatch);
        }
        let verified = match issuer.curve {
            Curve::NistP256 => ring::signature::UnparsedPublicKey::new(
                &ring::signature::ECDSA_P256_SHA256_ASN1,
                &issuer.public_key,
            )
            .verify(&self.tbs, &self.signature)
            .is_ok(),
            Curve::BrainpoolP256r1 => {
                crypto::ecdsa_der_to_raw(&self.signature).is_some_and(|raw| {
                    crypto::verify_on(issuer.curve, &issuer.public_key, &self.tbs, &raw)
                })
            }
        };
        verified.then_some(()).ok_or(CertError::Signature)
    }

    /// Whether `signature` (`r ‖ s`, as RSP messages carry it) is this certificate's key's
    /// ECDSA-SHA-256 signature over `message`, on the key's curve.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        crypto::verify_on(self.curve, &self.public_key, message, signature)
    }

    /// [`Certificate::verifies`] over the concatenation of `parts`.
    pub fn verifies_parts(&self, parts: &[&[u8]], signature: &[u8]) -> bool {
        crypto::verify_parts_on(self.curve, &self.public_key, parts, signature)
    }

    /// Checks the validity period at `now` (seconds since 1970).
    pub fn check_time(&self, now: i64) -> Result<(), CertError> {
        if now < self.not_before || now > self.not_after {
            return Err(CertError::Expired);
        }
        Ok(())
    }

    /// Whether its subjectAltName names `host`, as a TLS client checks a server certificate
    /// (RFC 6125 §6.4, RFC 9525): an IP address matches an iPAddress only; a host name
    /// matches a dNSName case-insensitively, a trailing dot ignored, or a wildcard dNSName whose
    /// left-most label is `*` alone and is followed by at least two labels (`*.example.com`
    /// covers `a.example.com`, not `example.com`, `a.b.example.com` nor, as `*.com` would,
    /// every name of a top-level domain), the rules of rustls-webpki and browsers. The subject
    /// CN is not looked at: TLS clients ignore it when a subjectAltName is there.
    pub fn names_host(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = host.parse::<std::net::IpAddr>() {
            return self.ip_addresses.contains(&ip);
        }
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        self.dns_names.iter().any(|name| {
            let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
            match name.strip_prefix("*.") {
                Some(parent) => {
                    parent.contains('.')
                        && host
                            .split_once('.')
                            .is_some_and(|(label, rest)| !label.is_empty() && rest == parent)
                }
                None => name == host,
            }
        })
    }

    /// Its validity period, `(notBefore, notAfter)` in seconds since 1970.
    pub fn validity(&self) -> (i64, i64) {
        (self.not_before, self.not_after)
    }

    /// The EID of an eUICC certificate: its subject serialNumber, 32 decimal digits, as the
    /// 16 bytes of the `5A` data object.
    pub fn eid(&self) -> Option<[u8; 16]> {
        let digits = self.serial_number.as_deref()?;
        if digits.len() != 32 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let bytes = crypto::hex_decode(digits)?;
        bytes.try_into().ok()
    }

    /// Whether this eUICC certificate is within one of `eum`'s permitted `{O, serialNumber}`
    /// pairs, SGP.22's way (§4.5.2.2): the same `O`, and the EID starting with the pair's
    /// serialNumber (the IIN). An RFC 5280 directoryName check would require the whole
    /// serialNumber to match and refuse every genuine chain.
    pub fn within_name_constraints(&self, eum: &Certificate) -> bool {
        if eum.permitted.is_empty() {
            return true;
        }
        let (Some(org), Some(serial)) = (&self.organization, &self.serial_number) else {
            return false;
        };
        eum.permitted.iter().any(|(o, prefix)| {
            o.as_deref()
                .is_none_or(|o| o.trim().eq_ignore_ascii_case(org.trim()))
                && prefix
                    .as_deref()
                    .is_none_or(|p| serial.starts_with(p.trim()))
        })
    }
}

/// The address of a subjectAltName iPAddress (4 or 16 bytes).
fn ip_address(bytes: &[u8]) -> Option<std::net::IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(std::net::IpAddr::from),
        _ => None,
    }
}

/// The first value of attribute `oid` in `name`, as text.
fn attribute(
    name: &x509_parser::x509::X509Name<'_>,
    oid: &x509_parser::der_parser::Oid<'_>,
) -> Option<String> {
    name.iter_by_oid(oid)
        .next()
        .and_then(|a| a.as_str().ok())
        .map(str::to_owned)
}

/// Why an eUICC's certificates were refused, in the terms of SGP.22's status codes (Table 43).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The EUM certificate was issued by a CI the verifier does not trust (`8.11.1 / 3.9`).
    #[error("the EUM certificate was issued by a CI that is not trusted")]
    UnknownCi,
    /// The EUM certificate is invalid (`8.1.2 / 6.1`).
    #[error("EUM certificate: {0}")]
    Eum(CertError),
    /// The EUM certificate has expired (`8.1.2 / 6.3`).
    #[error("the EUM certificate has expired")]
    EumExpired,
    /// The eUICC certificate is invalid (`8.1.3 / 6.1`).
    #[error("eUICC certificate: {0}")]
    Euicc(CertError),
    /// The eUICC certificate has expired (`8.1.3 / 6.3`).
    #[error("the eUICC certificate has expired")]
    EuiccExpired,
}

/// An eUICC whose certificate chain was verified.
#[derive(Debug, Clone)]
pub struct VerifiedEuicc {
    /// Its certificate.
    pub certificate: Certificate,
    /// The EID, from the certificate.
    pub eid: [u8; 16],
    /// The SubjectKeyIdentifier of the CI at the root.
    pub ci: Vec<u8>,
}

/// Verifies an eUICC's chain as the SM-DP+ does (§5.6.3, §4.5.2.2): the EUM certificate under
/// one of `cis` (and, when given, the one the session chose), then the eUICC certificate under
/// the EUM, inside its EID ranges. `now` in seconds since 1970; `None` skips validity periods.
pub fn verify_euicc_chain(
    euicc_der: &[u8],
    eum_der: &[u8],
    cis: &[Certificate],
    expected_ci: Option<&[u8]>,
    now: Option<i64>,
) -> Result<VerifiedEuicc, ChainError> {
    let eum = Certificate::parse(eum_der).map_err(ChainError::Eum)?;
    verify_euicc_chain_parsed(euicc_der, &eum, cis, expected_ci, now)
}

/// [`verify_euicc_chain`] with the EUM certificate already parsed (a verifier that sees the
/// same few EUMs again and again keeps them parsed; every check is still made).
pub fn verify_euicc_chain_parsed(
    euicc_der: &[u8],
    eum: &Certificate,
    cis: &[Certificate],
    expected_ci: Option<&[u8]>,
    now: Option<i64>,
) -> Result<VerifiedEuicc, ChainError> {
    let ci = cis
        .iter()
        .find(|ci| ci.subject_key_id.is_some() && ci.subject_key_id == eum.authority_key_id)
        .filter(|ci| expected_ci.is_none_or(|e| ci.subject_key_id.as_deref() == Some(e)))
        .ok_or(ChainError::UnknownCi)?;
    eum.check_profile(Role::Eum).map_err(ChainError::Eum)?;
    eum.check_issued_by(ci, Role::Ci).map_err(ChainError::Eum)?;
    if let Some(now) = now {
        eum.check_time(now).map_err(|_| ChainError::EumExpired)?;
    }
    let euicc = Certificate::parse(euicc_der).map_err(ChainError::Euicc)?;
    euicc
        .check_profile(Role::Euicc)
        .map_err(ChainError::Euicc)?;
    euicc
        .check_issued_by(eum, Role::Eum)
        .map_err(ChainError::Euicc)?;
    if !euicc.within_name_constraints(eum) {
        return Err(ChainError::Euicc(CertError::Profile(
            "the EID is outside the EUM's permitted ranges".into(),
        )));
    }
    if let Some(now) = now {
        euicc
            .check_time(now)
            .map_err(|_| ChainError::EuiccExpired)?;
    }
    let eid = euicc
        .eid()
        .ok_or_else(|| ChainError::Euicc(CertError::Profile("no EID".into())))?;
    Ok(VerifiedEuicc {
        certificate: euicc,
        eid,
        ci: ci.subject_key_id.clone().unwrap_or_default(),
    })
}

/// Verifies a certificate of the SM-DP+ (`DPauth`, `DPpb`) as the eUICC does (§5.7.13,
/// §5.7.5): issued by one of `cis`, with the profile of `role`. The CI's identifier, or why not.
pub fn verify_server(
    der: &[u8],
    role: Role,
    cis: &[Certificate],
    now: Option<i64>,
) -> Result<(Certificate, Vec<u8>), ServerCertError> {
    verify_server_any(der, &[role], cis, now).map(|(cert, ski, _)| (cert, ski))
}

/// [`verify_server`] for a certificate that may have any of `roles`: the one its policies
/// name. The eUICC's AuthenticateServer takes CERT.DPauth.ECDSA or CERT.DSauth.ECDSA alike
/// (§5.7.13: it does not know whether the LPA reached an SM-DP+ or an SM-DS).
pub fn verify_server_any(
    der: &[u8],
    roles: &[Role],
    cis: &[Certificate],
    now: Option<i64>,
) -> Result<(Certificate, Vec<u8>, Role), ServerCertError> {
    let cert = Certificate::parse(der).map_err(|e| match e {
        CertError::UnsupportedCurve => ServerCertError::Curve,
        other => ServerCertError::Invalid(other),
    })?;
    let ci = cis
        .iter()
        .find(|ci| ci.subject_key_id.is_some() && ci.subject_key_id == cert.authority_key_id)
        .ok_or(ServerCertError::UnknownCi)?;
    let role = *roles
        .iter()
        .find(|r| cert.roles.contains(r))
        .ok_or(ServerCertError::Policy)?;
    let (cert, ski) = verify_server_as(cert, ci, role, now)?;
    Ok((cert, ski, role))
}

/// The checks of [`verify_server`] once the CI is found: the role's policy and profile, the
/// CI's signature, the validity period.
fn verify_server_as(
    cert: Certificate,
    ci: &Certificate,
    role: Role,
    now: Option<i64>,
) -> Result<(Certificate, Vec<u8>), ServerCertError> {
    if !cert.roles.contains(&role) {
        return Err(ServerCertError::Policy);
    }
    cert.check_profile(role).map_err(ServerCertError::Invalid)?;
    cert.check_issued_by(ci, Role::Ci)
        .map_err(ServerCertError::Invalid)?;
    if let Some(now) = now {
        cert.check_time(now).map_err(ServerCertError::Invalid)?;
    }
    let ski = ci.subject_key_id.clone().unwrap_or_default();
    Ok((cert, ski))
}

/// Why the eUICC refuses a certificate of the SM-DP+, in the terms of its error codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerCertError {
    /// Issued by a CI the eUICC does not know (`ciPKUnknown`).
    #[error("issued by an unknown CI")]
    UnknownCi,
    /// Not on a curve this crate supports (`unsupportedCurve`).
    #[error("unsupported curve")]
    Curve,
    /// Without the role's policy (`invalidOid`).
    #[error("without the expected certificate policy")]
    Policy,
    /// Otherwise invalid (`invalidCertificate`).
    #[error("{0}")]
    Invalid(CertError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::SigningKey;
    use crate::tlv;

    /// A DER INTEGER of the unsigned big-endian `n`, minimally encoded.
    fn der_uint(n: &[u8]) -> Vec<u8> {
        let digits = &n[n.iter().take_while(|b| **b == 0).count().min(n.len() - 1)..];
        let value = if digits[0] & 0x80 != 0 {
            [&[0u8][..], digits].concat()
        } else {
            digits.to_vec()
        };
        tlv::encode(0x02, &value)
    }

    /// A minimal v3 certificate of `subject`'s key, `O = name`, with a SubjectKeyIdentifier
    /// `ski` and an AuthorityKeyIdentifier `aki`, signed by `issuer`: enough for
    /// `check_issued_by` (rcgen cannot sign with brainpool keys).
    fn minimal(name: &str, subject: &SigningKey, ski: u8, aki: u8, issuer: &SigningKey) -> Vec<u8> {
        let name = tlv::constructed(
            0x30,
            &[&tlv::encode(
                0x31,
                &tlv::constructed(
                    0x30,
                    &[
                        &[0x06, 0x03, 0x55, 0x04, 0x0A],
                        &tlv::encode(0x0C, name.as_bytes()),
                    ],
                ),
            )],
        );
        let validity = tlv::constructed(
            0x30,
            &[
                &tlv::encode(0x17, b"250101000000Z"),
                &tlv::encode(0x17, b"491231235959Z"),
            ],
        );
        let algorithm = tlv::constructed(
            0x30,
            &[
                &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01],
                subject.curve().oid_der(),
            ],
        );
        let point = [&[0u8][..], subject.public_key()].concat();
        let spki = tlv::constructed(0x30, &[&algorithm, &tlv::encode(0x03, &point)]);
        let ext = |oid: &[u8], value: Vec<u8>| {
            tlv::constructed(0x30, &[&tlv::encode(0x06, oid), &tlv::encode(0x04, &value)])
        };
        let ski = ext(&[0x55, 0x1D, 0x0E], tlv::encode(0x04, &[ski; 20]));
        let aki = ext(
            &[0x55, 0x1D, 0x23],
            tlv::encode(0x30, &tlv::encode(0x80, &[aki; 20])),
        );
        let extensions = tlv::encode(0xA3, &tlv::constructed(0x30, &[&ski, &aki]));
        let tbs = tlv::constructed(
            0x30,
            &[
                &[0xA0, 0x03, 0x02, 0x01, 0x02],
                &[0x02, 0x01, 0x01],
                &ECDSA_WITH_SHA256,
                &name,
                &validity,
                &name,
                &spki,
                &extensions,
            ],
        );
        let raw = issuer.sign(&tbs);
        let der_sig = tlv::constructed(0x30, &[&der_uint(&raw[..32]), &der_uint(&raw[32..])]);
        let bits = [&[0u8][..], &der_sig].concat();
        tlv::constructed(0x30, &[&tbs, &ECDSA_WITH_SHA256, &tlv::encode(0x03, &bits)])
    }

    #[test]
    fn a_brainpool_chain_verifies_on_its_curve_and_not_across_curves() {
        let bp = Curve::BrainpoolP256r1;
        let (ci_key, eum_key) = (SigningKey::generate_on(bp), SigningKey::generate_on(bp));
        let ci = Certificate::parse(&minimal("CI", &ci_key, 1, 1, &ci_key)).unwrap();
        let eum = Certificate::parse(&minimal("EUM", &eum_key, 2, 1, &ci_key)).unwrap();
        assert_eq!((ci.curve, eum.curve), (bp, bp));
        assert_eq!(eum.public_key, eum_key.public_key());
        assert_eq!(ci.check_issued_by(&ci, Role::Ci), Ok(()));
        assert_eq!(eum.check_issued_by(&ci, Role::Ci), Ok(()));
        assert_eq!(
            ci.check_issued_by(&eum, Role::Eum),
            Err(CertError::WrongIssuer("EUM"))
        );
        // Signed by another brainpool key under the CI's identifier: the signature fails.
        let forged = minimal("EUM", &eum_key, 2, 1, &eum_key);
        let forged = Certificate::parse(&forged).unwrap();
        assert_eq!(
            forged.check_issued_by(&ci, Role::Ci),
            Err(CertError::Signature)
        );
        // A NIST P-256 EUM under the brainpool CI, and the other way: one curve per hierarchy.
        let nist_key = SigningKey::generate();
        let nist = Certificate::parse(&minimal("EUM", &nist_key, 2, 1, &ci_key)).unwrap();
        assert_eq!(nist.curve, Curve::NistP256);
        assert_eq!(
            nist.check_issued_by(&ci, Role::Ci),
            Err(CertError::CurveMismatch)
        );
        let nist_ci = Certificate::parse(&minimal("CI", &nist_key, 1, 1, &nist_key)).unwrap();
        assert_eq!(nist_ci.check_issued_by(&nist_ci, Role::Ci), Ok(()));
        assert_eq!(
            eum.check_issued_by(&nist_ci, Role::Ci),
            Err(CertError::CurveMismatch)
        );
        // Message signatures with the certificate's key, on its curve.
        let sig = eum_key.sign(b"euiccSigned1");
        assert!(eum.verifies(b"euiccSigned1", &sig));
        assert!(eum.verifies_parts(&[b"euicc", b"Signed1"], &sig));
        assert!(!eum.verifies(b"euiccSigned2", &sig));
        assert!(!crate::crypto::verify(
            &eum.public_key,
            b"euiccSigned1",
            &sig
        ));
    }

    fn certificate() -> Vec<u8> {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec()
    }

    fn with_names(dns: &[&str], ips: &[&str]) -> Certificate {
        let mut cert = Certificate::parse(&certificate()).unwrap();
        cert.dns_names = dns.iter().map(|n| n.to_string()).collect();
        cert.ip_addresses = ips.iter().map(|n| n.parse().unwrap()).collect();
        cert
    }

    #[test]
    fn subject_alt_names_are_parsed() {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let der = rcgen::CertificateParams::new(vec!["smdp.example".into(), "10.0.0.1".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap()
            .der()
            .to_vec();
        let cert = Certificate::parse(&der).unwrap();
        assert_eq!(cert.dns_names, ["smdp.example"]);
        assert_eq!(
            cert.ip_addresses,
            ["10.0.0.1".parse::<std::net::IpAddr>().unwrap()]
        );
        assert_eq!(cert.server_auth, None);
        let (from, to) = cert.validity();
        assert!(from < to);
    }

    /// Host names as TLS clients match them (RFC 6125 §6.4.3, rustls-webpki's rules).
    #[test]
    fn host_names_match_as_tls_clients_match_them() {
        let cert = with_names(
            &["smdp.example.com", "*.test.example.org", "*.org"],
            &["::1", "10.0.0.1"],
        );
        for host in [
            "smdp.example.com",
            "SMDP.Example.COM",
            "smdp.example.com.",
            "a.test.example.org",
            "::1",
            "[::1]",
            "10.0.0.1",
        ] {
            assert!(cert.names_host(host), "{host}");
        }
        for host in [
            "example.com",
            "other.example.com",
            "test.example.org",
            "a.b.test.example.org",
            ".test.example.org",
            "anything.org",
            "127.0.0.1",
            "10.0.0.2",
        ] {
            assert!(!cert.names_host(host), "{host}");
        }
        // An IP address is not matched by a dNSName spelling it.
        assert!(!with_names(&["10.0.0.1"], &[]).names_host("10.0.0.1"));
    }

    /// What the signature does not cover is checked: the outer signatureAlgorithm (found by
    /// the structure-aware ES9+ fuzz target, which had a changed tag of it accepted) and the
    /// BIT STRING's unused-bits count.
    #[test]
    fn bytes_outside_the_signature_are_checked() {
        let der = certificate();
        Certificate::parse(&der).unwrap();
        let outer = der
            .windows(ECDSA_WITH_SHA256.len())
            .rposition(|w| w == ECDSA_WITH_SHA256)
            .unwrap();
        for (at, value) in [
            (outer + 2, 0x86),  // the OID's tag
            (outer + 11, 0x03), // ecdsa-with-SHA384
            (outer + 14, 0x01), // one unused bit in the signature
        ] {
            let mut changed = der.clone();
            changed[at] = value;
            assert!(
                matches!(Certificate::parse(&changed), Err(CertError::Unreadable(_))),
                "byte {at} = {value:#04X} accepted"
            );
        }
    }
}
