//! A small X.509 v3 writer on the crate's [`tlv`] module, for keys rcgen cannot sign with
//! (brainpoolP256r1: rcgen's signers are ring's and aws-lc's, neither has the curve). It writes
//! what an rcgen [`CertificateParams`] of this PKI describes (subject, validity, serial,
//! basicConstraints, keyUsage, nameConstraints of directory names, the AuthorityKeyIdentifier,
//! the custom extensions) and signs it with ECDSA-SHA-256 on the key's curve.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, DnValue, GeneralSubtree, IsCa,
    KeyUsagePurpose,
};
use time::OffsetDateTime;

use super::oid_content;
use crate::crypto::{self, SigningKey};
use crate::tlv;

/// `AlgorithmIdentifier { ecdsa-with-SHA256 }`, no parameters (RFC 5758 §3.2).
const ECDSA_WITH_SHA256: [u8; 12] = [
    0x30, 0x0A, 0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02,
];
/// id-ecPublicKey (`1.2.840.10045.2.1`).
const EC_PUBLIC_KEY: [u8; 9] = [0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

/// The issuer of a certificate being written: its certificate (DER) and key.
pub(super) struct Signer<'a> {
    /// Its certificate, whose subject and SubjectKeyIdentifier the new one names.
    pub(super) der: &'a [u8],
    /// Its key.
    pub(super) key: &'a SigningKey,
}

/// The key identifier of a public key: the first 20 bytes of its SHA-256 (RFC 7093 §2).
pub(super) fn key_identifier(public_key: &[u8]) -> Vec<u8> {
    crypto::sha256(public_key)[..20].to_vec()
}

/// The certificate `params` describe, of `key`, signed by `issuer` (`None`: self-signed).
pub(super) fn issue(
    params: &CertificateParams,
    key: &SigningKey,
    issuer: Option<Signer<'_>>,
) -> Result<Vec<u8>, String> {
    let subject = name(&params.distinguished_name)?;
    let (issuer_name, issuer_id, signer) = match &issuer {
        Some(ca) => {
            let (name, id) = subject_and_key_id(ca.der)?;
            (name, Some(id), ca.key)
        }
        None => (subject.clone(), None, key),
    };
    if signer.curve() != key.curve() {
        return Err("the issuer's key is on another curve".into());
    }
    let serial = match &params.serial_number {
        Some(serial) => integer(serial.as_ref()),
        None => integer(&crypto::random::<16>()),
    };
    let validity = tlv::constructed(0x30, &[&time(params.not_before)?, &time(params.not_after)?]);
    let algorithm = tlv::constructed(0x30, &[&EC_PUBLIC_KEY, key.curve().oid_der()]);
    let point = [&[0u8][..], key.public_key()].concat();
    let spki = tlv::constructed(0x30, &[&algorithm, &tlv::encode(0x03, &point)]);
    let extensions = extensions(params, key, issuer_id.as_deref())?;
    let tbs = tlv::constructed(
        0x30,
        &[
            &[0xA0, 0x03, 0x02, 0x01, 0x02],
            &serial,
            &ECDSA_WITH_SHA256,
            &issuer_name,
            &validity,
            &subject,
            &spki,
            &tlv::encode(0xA3, &extensions),
        ],
    );
    let raw = signer.sign(&tbs);
    let signature = crypto::ecdsa_raw_to_der(&raw);
    let bits = [&[0u8][..], &signature].concat();
    Ok(tlv::constructed(
        0x30,
        &[&tbs, &ECDSA_WITH_SHA256, &tlv::encode(0x03, &bits)],
    ))
}

/// The extensions (`SEQUENCE OF Extension`): basicConstraints, keyUsage, nameConstraints,
/// SubjectKeyIdentifier (unless a custom one is there), AuthorityKeyIdentifier when asked and
/// issued, then the custom extensions in order.
fn extensions(
    params: &CertificateParams,
    key: &SigningKey,
    issuer_id: Option<&[u8]>,
) -> Result<Vec<u8>, String> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    match params.is_ca {
        IsCa::Ca(constraints) => {
            let mut value = vec![0x01, 0x01, 0xFF];
            if let BasicConstraints::Constrained(path) = constraints {
                tlv::push(&mut value, 0x02, &tlv::uint_value(u64::from(path)));
            }
            out.push(extension(&[2, 5, 29, 19], true, &tlv::encode(0x30, &value)));
        }
        IsCa::ExplicitNoCa => out.push(extension(&[2, 5, 29, 19], true, &[0x30, 0x00])),
        IsCa::NoCa => {}
    }
    if !params.key_usages.is_empty() {
        out.push(extension(
            &[2, 5, 29, 15],
            true,
            &key_usage(&params.key_usages),
        ));
    }
    if let Some(constraints) = &params.name_constraints {
        let mut permitted = Vec::new();
        for subtree in &constraints.permitted_subtrees {
            let GeneralSubtree::DirectoryName(dn) = subtree else {
                return Err("name constraints other than directory names".into());
            };
            let base = tlv::encode(0xA4, &name(dn)?);
            permitted.extend(tlv::encode(0x30, &base));
        }
        if !constraints.excluded_subtrees.is_empty() {
            return Err("excluded subtrees".into());
        }
        let value = tlv::encode(0x30, &tlv::encode(0xA0, &permitted));
        out.push(extension(&[2, 5, 29, 30], true, &value));
    }
    let has_ski = params
        .custom_extensions
        .iter()
        .any(|e| e.oid_components().eq([2, 5, 29, 14]));
    if !has_ski {
        let id = tlv::encode(0x04, &key_identifier(key.public_key()));
        out.push(extension(&[2, 5, 29, 14], false, &id));
    }
    if let (true, Some(id)) = (params.use_authority_key_identifier_extension, issuer_id) {
        let value = tlv::encode(0x30, &tlv::encode(0x80, id));
        out.push(extension(&[2, 5, 29, 35], false, &value));
    }
    for custom in &params.custom_extensions {
        let oid: Vec<u64> = custom.oid_components().collect();
        out.push(extension(&oid, custom.criticality(), custom.content()));
    }
    let refs: Vec<&[u8]> = out.iter().map(Vec::as_slice).collect();
    Ok(tlv::constructed(0x30, &refs))
}

/// `Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }`.
fn extension(oid: &[u64], critical: bool, value: &[u8]) -> Vec<u8> {
    let oid = tlv::encode(0x06, &oid_content(oid));
    let value = tlv::encode(0x04, value);
    if critical {
        tlv::constructed(0x30, &[&oid, &[0x01, 0x01, 0xFF], &value])
    } else {
        tlv::constructed(0x30, &[&oid, &value])
    }
}

/// The keyUsage BIT STRING (RFC 5280 §4.2.1.3), trailing zero bits dropped as DER wants.
fn key_usage(usages: &[KeyUsagePurpose]) -> Vec<u8> {
    let bits: u16 = usages
        .iter()
        .map(|u| match u {
            KeyUsagePurpose::DigitalSignature => 0,
            KeyUsagePurpose::ContentCommitment => 1,
            KeyUsagePurpose::KeyEncipherment => 2,
            KeyUsagePurpose::DataEncipherment => 3,
            KeyUsagePurpose::KeyAgreement => 4,
            KeyUsagePurpose::KeyCertSign => 5,
            KeyUsagePurpose::CrlSign => 6,
            KeyUsagePurpose::EncipherOnly => 7,
            KeyUsagePurpose::DecipherOnly => 8,
        })
        .fold(0u16, |acc, bit| acc | (0x8000 >> bit));
    let bytes = bits.to_be_bytes();
    let len = if bytes[1] == 0 { 1 } else { 2 };
    let unused = bits.trailing_zeros().min(16) as u8 % 8;
    let mut value = vec![if bits == 0 { 0 } else { unused }];
    value.extend_from_slice(&bytes[..len]);
    tlv::encode(0x03, &value)
}

/// A `Name`: one RDN per attribute, in the order given.
fn name(dn: &DistinguishedName) -> Result<Vec<u8>, String> {
    let mut rdns = Vec::new();
    for (kind, value) in dn.iter() {
        let oid: Vec<u64> = match kind {
            DnType::CountryName => vec![2, 5, 4, 6],
            DnType::LocalityName => vec![2, 5, 4, 7],
            DnType::StateOrProvinceName => vec![2, 5, 4, 8],
            DnType::OrganizationName => vec![2, 5, 4, 10],
            DnType::OrganizationalUnitName => vec![2, 5, 4, 11],
            DnType::CommonName => vec![2, 5, 4, 3],
            DnType::CustomDnType(oid) => oid.clone(),
            other => return Err(format!("the name attribute {other:?}")),
        };
        let value = match value {
            DnValue::Utf8String(text) => tlv::encode(0x0C, text.as_bytes()),
            DnValue::PrintableString(text) => tlv::encode(0x13, text.as_str().as_bytes()),
            DnValue::Ia5String(text) => tlv::encode(0x16, text.as_str().as_bytes()),
            other => return Err(format!("the name value {other:?}")),
        };
        let attribute = tlv::constructed(0x30, &[&tlv::encode(0x06, &oid_content(&oid)), &value]);
        rdns.extend(tlv::encode(0x31, &attribute));
    }
    Ok(tlv::encode(0x30, &rdns))
}

/// UTCTime up to 2049, GeneralizedTime from 2050 (RFC 5280 §4.1.2.5).
fn time(at: OffsetDateTime) -> Result<Vec<u8>, String> {
    let at = at.to_offset(time::UtcOffset::UTC);
    let (year, rest) = (
        at.year(),
        format!(
            "{:02}{:02}{:02}{:02}{:02}Z",
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        ),
    );
    match year {
        1950..=2049 => Ok(tlv::encode(
            0x17,
            format!("{:02}{rest}", year % 100).as_bytes(),
        )),
        2050..=9999 => Ok(tlv::encode(0x18, format!("{year:04}{rest}").as_bytes())),
        _ => Err(format!("the year {year}")),
    }
}

/// A non-negative INTEGER of the big-endian `bytes`, minimally encoded.
fn integer(bytes: &[u8]) -> Vec<u8> {
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    let digits = &bytes[skip.min(bytes.len().saturating_sub(1))..];
    match digits.first() {
        None => tlv::encode(0x02, &[0]),
        Some(first) if first & 0x80 != 0 => tlv::encode(0x02, &[&[0u8][..], digits].concat()),
        Some(_) => tlv::encode(0x02, digits),
    }
}

/// The subject `Name` (DER) and SubjectKeyIdentifier of an issuer's certificate.
fn subject_and_key_id(der: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let cert = crate::cert::Certificate::parse(der).map_err(|e| e.to_string())?;
    let id = cert
        .subject_key_id
        .clone()
        .ok_or("the issuer has no SubjectKeyIdentifier")?;
    let outer = tlv::read_tagged(der, 0x30).map_err(|e| e.to_string())?;
    let tbs = outer.children().map_err(|e| e.to_string())?;
    let fields = tbs
        .first()
        .ok_or("no tbsCertificate")?
        .children()
        .map_err(|e| e.to_string())?;
    // version [0], serialNumber, signature, issuer, validity, subject.
    let subject = fields.get(5).ok_or("no subject")?;
    Ok((subject.raw.to_vec(), id))
}
