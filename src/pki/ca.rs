//! The certificate authority in memory: issuing leaf certificates, signing operators' CSRs (as
//! a vendor does at onboarding) and writing CRLs. No files: [`super::PkiDir`] keeps them.

use std::net::IpAddr;

use anyhow::{anyhow, bail, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateSigningRequestDer;
use time::{Duration, OffsetDateTime};
use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::{CA_DAYS, CRL_DAYS, LEAF_DAYS};

/// Longest validity `sign_csr` gives: 100 years.
pub const MAX_CSR_DAYS: u32 = 36_525;

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// TLS server authentication.
    Server,
    /// TLS client authentication.
    Client,
}

/// What to put into a leaf certificate.
#[derive(Debug, Clone)]
pub struct LeafSpec {
    /// Subject common name.
    pub common_name: String,
    /// Subject alternative names; IP addresses become IP SANs.
    pub sans: Vec<String>,
    /// Server or client.
    pub usage: Usage,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl LeafSpec {
    /// A leaf valid from five minutes ago for 825 days.
    pub fn new(common_name: impl Into<String>, usage: Usage) -> Self {
        let now = OffsetDateTime::now_utc();
        LeafSpec {
            common_name: common_name.into(),
            sans: Vec::new(),
            usage,
            not_before: now - Duration::minutes(5),
            not_after: now + Duration::days(LEAF_DAYS),
        }
    }
}

/// A certificate with its private key, both PEM.
#[derive(Debug, Clone)]
pub struct IssuedCert {
    /// The certificate.
    pub cert_pem: String,
    /// The private key (PKCS#8).
    pub key_pem: String,
}

/// A certificate authority that can issue leaves and sign CSRs.
pub struct CertificateAuthority {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// A new CA with an ECDSA P-256 key. `name` becomes its common name.
    pub fn generate(name: &str) -> crate::Result<Self> {
        crate::error::pki(|| {
            let key = KeyPair::generate().context("generating the CA key")?;
            // Two generated CAs never share a name: a certificate of one refused by the other says
            // so in the logs (`bad_signature` between two "smdpp-mock test CA"s misleads).
            let fingerprint =
                crate::ids::hex(&crate::ids::sha256(rcgen::PublicKeyData::der_bytes(&key)));
            let name = format!("{name} {}", &fingerprint[..8]);
            let mut params = CertificateParams::default();
            params.distinguished_name = DistinguishedName::new();
            params.distinguished_name.push(DnType::CommonName, name);
            params
                .distinguished_name
                .push(DnType::OrganizationName, "smdpp-mock test PKI");
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::CrlSign,
                KeyUsagePurpose::DigitalSignature,
            ];
            params.serial_number = Some(random_serial()?);
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::minutes(5);
            params.not_after = now + Duration::days(CA_DAYS);
            let cert = params.self_signed(&key).context("self-signing the CA")?;
            let (cert_pem, key_pem) = (cert.pem(), key.serialize_pem());
            Ok(CertificateAuthority {
                issuer: Issuer::new(params, key),
                cert_pem,
                key_pem,
            })
        })
    }

    /// A CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> crate::Result<Self> {
        crate::error::pki(|| {
            let key = KeyPair::from_pem(key_pem).context("reading the CA key")?;
            let issuer =
                Issuer::from_ca_cert_pem(cert_pem, key).context("reading the CA certificate")?;
            Ok(CertificateAuthority {
                issuer,
                key_pem: key_pem.to_owned(),
                cert_pem: cert_pem.to_owned(),
            })
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key, PEM (for the PKI directory to keep).
    pub(crate) fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// Issues a leaf certificate with a fresh ECDSA P-256 key.
    pub fn issue(&self, spec: &LeafSpec) -> crate::Result<IssuedCert> {
        crate::error::pki(|| {
            let key = KeyPair::generate().context("generating a key")?;
            let mut params = CertificateParams::new(spec.sans.clone())
                .with_context(|| format!("invalid SAN in {:?}", spec.sans))?;
            params.distinguished_name = DistinguishedName::new();
            params
                .distinguished_name
                .push(DnType::CommonName, spec.common_name.as_str());
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![match spec.usage {
                Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
                Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
            }];
            params.use_authority_key_identifier_extension = true;
            params.serial_number = Some(random_serial()?);
            params.not_before = spec.not_before;
            params.not_after = spec.not_after;
            let cert = params
                .signed_by(&key, &self.issuer)
                .context("signing the certificate")?;
            Ok(IssuedCert {
                cert_pem: cert.pem(),
                key_pem: key.serialize_pem(),
            })
        })
    }

    /// A CRL (PEM) signed by this CA that revokes the certificates with these serial numbers
    /// (big-endian bytes), numbered `number` (RFC 5280 §5.2.3).
    pub fn crl(&self, revoked: &[Vec<u8>], number: u64) -> crate::Result<String> {
        crate::error::pki(|| {
            let now = OffsetDateTime::now_utc();
            let params = rcgen::CertificateRevocationListParams {
                this_update: now - Duration::minutes(5),
                next_update: now + Duration::days(CRL_DAYS),
                crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
                issuing_distribution_point: None,
                revoked_certs: revoked
                    .iter()
                    .map(|serial| rcgen::RevokedCertParams {
                        serial_number: SerialNumber::from_slice(serial),
                        revocation_time: now - Duration::minutes(1),
                        reason_code: Some(rcgen::RevocationReason::CessationOfOperation),
                        invalidity_date: None,
                    })
                    .collect(),
                key_identifier_method: rcgen::KeyIdMethod::Sha256,
            };
            let crl = params.signed_by(&self.issuer).context("signing the CRL")?;
            crl.pem().context("encoding the CRL")
        })
    }

    /// Signs an operator's PEM CSR (RSA, EC P-256/P-384, Ed25519) into a client certificate
    /// valid for `days` days (1 to [`MAX_CSR_DAYS`]).
    ///
    /// What the certificate gets, whatever the CSR asks for: the CSR's subject; of its SANs
    /// only the DNS names and URIs (the names an operator's `certificateNames` can match); the
    /// extended key usage clientAuth alone and the key usage digitalSignature alone (so a
    /// signed operator certificate can never serve as a server certificate, for `localhost` or
    /// a callback host); never CA:TRUE; a random serial.
    ///
    /// # Errors
    ///
    /// A CSR that is not PEM, does not parse, whose signature does not verify or whose key is
    /// not supported; `days` out of range.
    pub fn sign_csr(&self, csr_pem: &str, days: u32) -> crate::Result<String> {
        crate::error::pki(|| {
            if !(1..=MAX_CSR_DAYS).contains(&days) {
                bail!("--days must be from 1 to {MAX_CSR_DAYS} (100 years), not {days}");
            }
            let der = CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
                .map_err(|e| anyhow!("not a PEM certificate signing request: {e}"))?;
            let (_, parsed) = X509CertificationRequest::from_der(der.as_ref())
                .map_err(|e| anyhow!("the CSR cannot be parsed: {e}"))?;
            parsed
                .verify_signature()
                .map_err(|e| anyhow!("the CSR's signature does not verify: {e}"))?;
            // rcgen#448: the key algorithm must come from the SPKI, not from the CSR's signature
            // algorithm, or a P-384 key signed with SHA-256 is labelled as P-256.
            let spki = rcgen::SubjectPublicKeyInfo::from_der(
                parsed.certification_request_info.subject_pki.raw,
            )
            .context("the CSR's public key is not supported")?;
            let mut params = match CertificateSigningRequestParams::from_der(&der) {
                Ok(csr) => csr.params,
                // rcgen#150: any extension rcgen does not know (e.g. subjectKeyIdentifier).
                Err(rcgen::Error::UnsupportedExtension) => params_from_parsed_csr(&parsed)?,
                Err(e) => return Err(anyhow!("the CSR is not supported: {e}")),
            };
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            params
                .subject_alt_names
                .retain(|san| matches!(san, SanType::DnsName(_) | SanType::URI(_)));
            params.name_constraints = None;
            params.custom_extensions.clear();
            params.crl_distribution_points.clear();
            params.use_authority_key_identifier_extension = true;
            params.serial_number = Some(random_serial()?);
            let now = OffsetDateTime::now_utc();
            params.not_before = now - Duration::minutes(5);
            params.not_after = now + Duration::days(i64::from(days));
            let cert = params
                .signed_by(&spki, &self.issuer)
                .context("signing the CSR")?;
            Ok(cert.pem())
        })
    }
}

/// The subject, SANs and usages of a CSR that rcgen refuses to parse.
fn params_from_parsed_csr(csr: &X509CertificationRequest<'_>) -> Result<CertificateParams> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    for attr in csr.certification_request_info.subject.iter_attributes() {
        let Some(arcs) = attr.attr_type().iter() else {
            continue;
        };
        let arcs: Vec<u64> = arcs.collect();
        if let Ok(value) = attr.as_str() {
            params
                .distinguished_name
                .push(DnType::from_oid(&arcs), value);
        }
    }
    for ext in csr.requested_extensions().into_iter().flatten() {
        match ext {
            ParsedExtension::SubjectAlternativeName(san) => {
                for name in &san.general_names {
                    let san = match name {
                        GeneralName::DNSName(s) => SanType::DnsName((*s).try_into()?),
                        GeneralName::URI(s) => SanType::URI((*s).try_into()?),
                        GeneralName::RFC822Name(s) => SanType::Rfc822Name((*s).try_into()?),
                        GeneralName::IPAddress(b) => match b.len() {
                            4 => SanType::IpAddress(IpAddr::from(<[u8; 4]>::try_from(*b)?)),
                            16 => SanType::IpAddress(IpAddr::from(<[u8; 16]>::try_from(*b)?)),
                            _ => continue,
                        },
                        _ => continue,
                    };
                    params.subject_alt_names.push(san);
                }
            }
            ParsedExtension::ExtendedKeyUsage(eku) => {
                if eku.client_auth {
                    params
                        .extended_key_usages
                        .push(ExtendedKeyUsagePurpose::ClientAuth);
                }
                if eku.server_auth {
                    params
                        .extended_key_usages
                        .push(ExtendedKeyUsagePurpose::ServerAuth);
                }
            }
            _ => {}
        }
    }
    Ok(params)
}

fn random_serial() -> Result<SerialNumber> {
    Ok(smdpp_rsp::pki::random_serial()?)
}
