//! The cryptography of SGP.22 on both curves of §2.6.7.1, NIST P-256 (with `ring`) and
//! brainpoolP256r1 (with RustCrypto's `bp256`, as `ring` has no brainpool arithmetic): ECDSA
//! signatures in the plain `r ‖ s` form RSP messages carry (§2.6.7.2, tag `5F37`), one-time
//! ECDH key agreement (§2.6.7.1, Annex G: the shared secret is the x-coordinate), the X9.63 key
//! derivation of Annex G, and the hashed Confirmation Code of §3.1.3.2. SCP03t (AES) lives in
//! [`super::scp03t`].
//!
//! The functions without a curve in their name ([`SigningKey::generate`], [`verify`],
//! [`OneTimeKey::generate`]) are NIST P-256's; the `_on` forms take a [`Curve`].

mod brainpool;

use ring::agreement;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair};

use super::tlv;

/// An elliptic curve of SGP.22 §2.6.7.1 (every key of one CI's hierarchy is on one of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Curve {
    /// NIST P-256 (secp256r1, FIPS 186-4).
    NistP256,
    /// brainpoolP256r1 (RFC 5639).
    BrainpoolP256r1,
}

impl Curve {
    /// Both curves, NIST first.
    pub const ALL: [Curve; 2] = [Curve::NistP256, Curve::BrainpoolP256r1];

    /// The namedCurve OID, dotted.
    pub fn oid(self) -> &'static str {
        match self {
            Curve::NistP256 => "1.2.840.10045.3.1.7",
            Curve::BrainpoolP256r1 => "1.3.36.3.3.2.8.1.1.7",
        }
    }

    /// The namedCurve OID as a DER data object (tag `06`), as in an SPKI's parameters.
    pub fn oid_der(self) -> &'static [u8] {
        match self {
            Curve::NistP256 => P256_OID_TLV,
            Curve::BrainpoolP256r1 => BRAINPOOL_OID_TLV,
        }
    }

    /// The curve a namedCurve OID data object (tag `06` included) names, if one of ours.
    pub fn from_oid_der(der: &[u8]) -> Option<Curve> {
        Curve::ALL.into_iter().find(|c| c.oid_der() == der)
    }

    /// The curve's usual name.
    pub fn name(self) -> &'static str {
        match self {
            Curve::NistP256 => "NIST P-256",
            Curve::BrainpoolP256r1 => "brainpoolP256r1",
        }
    }
}

impl std::fmt::Display for Curve {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `SHA-256(data)`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `SHA-256` of the concatenation of `parts`.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `n` random bytes from the operating system.
pub fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The system source does not fail on the platforms we build for; were it to, a zeroed
    // challenge is refused by nothing, so fail loudly instead.
    SystemRandom::new()
        .fill(&mut out)
        .unwrap_or_else(|_| panic!("the operating system has no randomness"));
    out
}

/// Whether two byte strings are equal, in time that does not depend on where they differ
/// (secrets: hashed Confirmation Codes, MACs).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not a PEM or DER private key of a form we read.
    #[error("not a private key: {0}")]
    Unreadable(String),
    /// A key, but not an EC key on NIST P-256 or brainpoolP256r1, or not a consistent one.
    #[error("not an ECDSA NIST P-256 or brainpoolP256r1 key: {0}")]
    WrongCurve(String),
}

/// An ECDSA private key on either [`Curve`] that signs RSP messages (`r ‖ s`, SHA-256) and
/// certificates.
pub struct SigningKey {
    pair: Pair,
    /// PKCS#8 DER, kept to hand to rcgen (certificate signing) and to write the key out.
    pkcs8: Vec<u8>,
}

/// The key itself, by curve.
enum Pair {
    Nist(EcdsaKeyPair),
    Brainpool(brainpool::Key),
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("curve", &self.curve())
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random NIST P-256 key.
    pub fn generate() -> Self {
        Self::generate_on(Curve::NistP256)
    }

    /// A new random key on `curve`.
    pub fn generate_on(curve: Curve) -> Self {
        match curve {
            Curve::NistP256 => {
                let rng = SystemRandom::new();
                let doc =
                    EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                        .unwrap_or_else(|_| panic!("the operating system has no randomness"));
                Self::from_pkcs8(doc.as_ref()).unwrap_or_else(|e| panic!("a key just made: {e}"))
            }
            Curve::BrainpoolP256r1 => {
                let key = brainpool::Key::generate();
                let pkcs8 = pkcs8_from_sec1(&brainpool_sec1(&key), Curve::BrainpoolP256r1);
                SigningKey {
                    pair: Pair::Brainpool(key),
                    pkcs8,
                }
            }
        }
    }

    /// A key from PKCS#8 DER (RFC 5208, the EC key inside as RFC 5915 has it), on either curve.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        if pkcs8_curve(der) == Some(Curve::BrainpoolP256r1) {
            return Self::brainpool_from_pkcs8(der);
        }
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| KeyError::WrongCurve(e.to_string()))?;
        Ok(SigningKey {
            pair: Pair::Nist(pair),
            pkcs8: der.to_vec(),
        })
    }

    /// A brainpoolP256r1 key from PKCS#8: version, algorithm (checked by the caller), and the
    /// RFC 5915 `ECPrivateKey` in an OCTET STRING.
    fn brainpool_from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let bad = |what: &str| KeyError::Unreadable(format!("PKCS#8 key: {what}"));
        let seq = tlv::read_tagged(der, 0x30).map_err(|e| bad(&e.to_string()))?;
        let parts = seq.children().map_err(|e| bad(&e.to_string()))?;
        match parts.as_slice() {
            [version, algorithm, private, ..]
                if version.tag == 0x02
                    && matches!(version.value, [0] | [1])
                    && algorithm.tag == 0x30
                    && private.tag == 0x04 =>
            {
                let inner = EcPrivateKey::parse(private.value)?;
                if inner.curve.is_some_and(|c| c != Curve::BrainpoolP256r1) {
                    return Err(KeyError::WrongCurve("two curves named".into()));
                }
                Ok(SigningKey {
                    pair: Pair::Brainpool(inner.brainpool()?),
                    pkcs8: der.to_vec(),
                })
            }
            _ => Err(bad("not version, algorithm and key")),
        }
    }

    /// A key from PEM: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`, as SGP.26 ships them).
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::PrivateKeyDer;
        let key = PrivateKeyDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| KeyError::Unreadable(e.to_string()))?;
        match key {
            PrivateKeyDer::Pkcs8(der) => Self::from_pkcs8(der.secret_pkcs8_der()),
            PrivateKeyDer::Sec1(der) => Self::from_sec1(der.secret_sec1_der()),
            _ => Err(KeyError::WrongCurve("an RSA key".into())),
        }
    }

    /// A key from SEC1 `ECPrivateKey` DER (RFC 5915). Without curve parameters it is taken as
    /// NIST P-256; a NIST key must carry its public key (`ring` wants it).
    fn from_sec1(der: &[u8]) -> Result<Self, KeyError> {
        let inner = EcPrivateKey::parse(der)?;
        let curve = inner.curve.unwrap_or(Curve::NistP256);
        let pkcs8 = pkcs8_from_sec1(der, curve);
        if curve == Curve::BrainpoolP256r1 {
            return Ok(SigningKey {
                pair: Pair::Brainpool(inner.brainpool()?),
                pkcs8,
            });
        }
        let public = inner
            .public
            .ok_or_else(|| KeyError::Unreadable("SEC1 key: no public key in it".into()))?;
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            inner.private,
            public,
            &SystemRandom::new(),
        )
        .map_err(|e| KeyError::WrongCurve(e.to_string()))?;
        Ok(SigningKey {
            pair: Pair::Nist(pair),
            pkcs8,
        })
    }

    /// The curve the key is on.
    pub fn curve(&self) -> Curve {
        match self.pair {
            Pair::Nist(_) => Curve::NistP256,
            Pair::Brainpool(_) => Curve::BrainpoolP256r1,
        }
    }

    /// The key as PKCS#8 DER.
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> String {
        pem("PRIVATE KEY", &self.pkcs8)
    }

    /// The public key as an uncompressed point (`04 ‖ X ‖ Y`).
    pub fn public_key(&self) -> &[u8] {
        match &self.pair {
            Pair::Nist(pair) => pair.public_key().as_ref(),
            Pair::Brainpool(key) => key.public_key(),
        }
    }

    /// The ECDSA-SHA-256 signature of `message` as `r ‖ s` (64 bytes).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        match &self.pair {
            Pair::Nist(pair) => {
                let sig = pair
                    .sign(&SystemRandom::new(), message)
                    .unwrap_or_else(|_| panic!("the operating system has no randomness"));
                let mut out = [0u8; 64];
                out.copy_from_slice(sig.as_ref());
                out
            }
            Pair::Brainpool(key) => key.sign(message),
        }
    }

    /// The signature of the concatenation of `parts`.
    pub fn sign_parts(&self, parts: &[&[u8]]) -> [u8; 64] {
        self.sign(&parts.concat())
    }
}

/// The parts of an RFC 5915 `ECPrivateKey` we use.
struct EcPrivateKey<'a> {
    private: &'a [u8],
    curve: Option<Curve>,
    public: Option<&'a [u8]>,
}

impl<'a> EcPrivateKey<'a> {
    /// `SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters OPTIONAL,
    /// [1] publicKey BIT STRING OPTIONAL }`; parameters naming another curve are refused.
    fn parse(der: &'a [u8]) -> Result<Self, KeyError> {
        let bad = |what: &str| KeyError::Unreadable(format!("SEC1 key: {what}"));
        let seq = tlv::read_tagged(der, 0x30).map_err(|e| bad(&e.to_string()))?;
        let parts = seq.children().map_err(|e| bad(&e.to_string()))?;
        let private = parts
            .iter()
            .find(|p| p.tag == 0x04)
            .ok_or_else(|| bad("no private key"))?
            .value;
        let curve = match parts.iter().find(|p| p.tag == 0xA0) {
            Some(params) => Some(
                Curve::from_oid_der(params.value)
                    .ok_or_else(|| KeyError::WrongCurve("the key names another curve".into()))?,
            ),
            None => None,
        };
        let public = parts
            .iter()
            .find(|p| p.tag == 0xA1)
            .and_then(|p| tlv::read_tagged(p.value, 0x03).ok())
            .and_then(|bits| match bits.value {
                [0, key @ ..] => Some(key),
                _ => None,
            });
        Ok(EcPrivateKey {
            private,
            curve,
            public,
        })
    }

    /// The brainpoolP256r1 key of this private scalar (at most 32 bytes, big-endian), which
    /// must match the public key when one is given.
    fn brainpool(&self) -> Result<brainpool::Key, KeyError> {
        let wrong = |what: &str| KeyError::WrongCurve(format!("brainpoolP256r1 key: {what}"));
        if self.private.len() > 32 {
            return Err(wrong("a private key longer than 32 bytes"));
        }
        let mut scalar = [0u8; 32];
        scalar[32 - self.private.len()..].copy_from_slice(self.private);
        let key = brainpool::Key::from_scalar(&scalar)
            .ok_or_else(|| wrong("the private key is not in [1, n)"))?;
        match self.public {
            Some(public) if public != key.public_key() => {
                Err(wrong("the public key is not the private key's"))
            }
            _ => Ok(key),
        }
    }
}

/// The RFC 5915 `ECPrivateKey` of a brainpool key, with its public key and without parameters
/// (PKCS#8 names the curve).
fn brainpool_sec1(key: &brainpool::Key) -> Vec<u8> {
    let mut bits = vec![0u8];
    bits.extend_from_slice(key.public_key());
    let public = tlv::encode(0xA1, &tlv::encode(0x03, &bits));
    let private = tlv::encode(0x04, &key.scalar());
    tlv::constructed(0x30, &[&[0x02, 0x01, 0x01], &private, &public])
}

/// The curve a PKCS#8 key's algorithm identifier names, if it parses and is one of ours.
fn pkcs8_curve(der: &[u8]) -> Option<Curve> {
    let seq = tlv::read_tagged(der, 0x30).ok()?;
    let algorithm = seq.children().ok()?.into_iter().nth(1)?.expect(0x30).ok()?;
    let parts = algorithm.children().ok()?;
    match parts.as_slice() {
        [oid, params] if oid.raw == EC_PUBLIC_KEY => Curve::from_oid_der(params.raw),
        _ => None,
    }
}

/// The DER of the P-256 named-curve OID (`1.2.840.10045.3.1.7`).
const P256_OID_TLV: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
/// The DER of the brainpoolP256r1 named-curve OID (`1.3.36.3.3.2.8.1.1.7`).
const BRAINPOOL_OID_TLV: &[u8] = &[
    0x06, 0x09, 0x2B, 0x24, 0x03, 0x03, 0x02, 0x08, 0x01, 0x01, 0x07,
];
/// The DER of id-ecPublicKey (`1.2.840.10045.2.1`).
const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];

/// Wraps a SEC1 key into PKCS#8 (RFC 5208): version 0, the id-ecPublicKey algorithm with
/// `curve`, the SEC1 structure as the private key.
fn pkcs8_from_sec1(sec1: &[u8], curve: Curve) -> Vec<u8> {
    let algorithm = tlv::constructed(0x30, &[EC_PUBLIC_KEY, curve.oid_der()]);
    let key = tlv::encode(0x04, sec1);
    tlv::constructed(0x30, &[&[0x02, 0x01, 0x00], &algorithm, &key])
}

/// PEM text of `der` under `label`.
pub fn pem(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Whether `signature` (`r ‖ s`, 64 bytes) is the NIST P-256 `public_key`'s (uncompressed
/// point) over `message`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    verify_on(Curve::NistP256, public_key, message, signature)
}

/// Whether `signature` (`r ‖ s`, 64 bytes) is the ECDSA-SHA-256 signature of `public_key` (an
/// uncompressed point on `curve`) over `message`. Malformed keys or signatures are `false`.
pub fn verify_on(curve: Curve, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    match curve {
        Curve::NistP256 => {
            signature.len() == 64
                && signature::UnparsedPublicKey::new(
                    &signature::ECDSA_P256_SHA256_FIXED,
                    public_key,
                )
                .verify(message, signature)
                .is_ok()
        }
        Curve::BrainpoolP256r1 => brainpool::verify(public_key, message, signature),
    }
}

/// [`verify`] over the concatenation of `parts`.
pub fn verify_parts(public_key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    verify(public_key, &parts.concat(), signature)
}

/// [`verify_on`] over the concatenation of `parts`.
pub fn verify_parts_on(curve: Curve, public_key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    verify_on(curve, public_key, &parts.concat(), signature)
}

/// `r ‖ s` as an X.509 ECDSA signature, `SEQUENCE { r INTEGER, s INTEGER }` (RFC 3279),
/// each INTEGER minimally encoded: the inverse of [`ecdsa_der_to_raw`].
pub fn ecdsa_raw_to_der(raw: &[u8; 64]) -> Vec<u8> {
    let int = |half: &[u8]| {
        let skip = half.iter().take_while(|b| **b == 0).count().min(31);
        let digits = &half[skip..];
        if digits[0] & 0x80 != 0 {
            tlv::encode(0x02, &[&[0u8][..], digits].concat())
        } else {
            tlv::encode(0x02, digits)
        }
    };
    tlv::constructed(0x30, &[&int(&raw[..32]), &int(&raw[32..])])
}

/// An X.509 ECDSA signature (`SEQUENCE { r INTEGER, s INTEGER }`, RFC 3279) as the `r ‖ s`
/// of a 256-bit curve; `None` unless both are positive, minimally encoded and fit 32 bytes.
pub fn ecdsa_der_to_raw(der: &[u8]) -> Option<[u8; 64]> {
    let seq = tlv::read_tagged(der, 0x30).ok()?;
    let parts = seq.children().ok()?;
    let [r, s] = parts.as_slice() else {
        return None;
    };
    let mut out = [0u8; 64];
    for (int, half) in [r, s].into_iter().zip(out.chunks_mut(32)) {
        let digits = match int.value {
            _ if int.tag != 0x02 => return None,
            [] => return None,
            [0, rest @ ..] if rest.first().is_some_and(|b| b & 0x80 != 0) => rest,
            [first, ..] if *first == 0 || first & 0x80 != 0 => return None,
            all => all,
        };
        if digits.len() > 32 {
            return None;
        }
        half[32 - digits.len()..].copy_from_slice(digits);
    }
    Some(out)
}

/// A one-time ECKA key pair (otSK/otPK, §2.6.7.1), used once and then dropped.
pub struct OneTimeKey {
    private: Ephemeral,
    public: [u8; 65],
}

/// The private half of a [`OneTimeKey`], by curve.
enum Ephemeral {
    Nist(agreement::EphemeralPrivateKey),
    Brainpool(brainpool::Key),
}

impl std::fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeKey")
            .field("curve", &self.curve())
            .finish_non_exhaustive()
    }
}

impl OneTimeKey {
    /// A fresh pair on NIST P-256.
    pub fn generate() -> Self {
        Self::generate_on(Curve::NistP256)
    }

    /// A fresh pair on `curve`.
    pub fn generate_on(curve: Curve) -> Self {
        if curve == Curve::BrainpoolP256r1 {
            let key = brainpool::Key::generate();
            let public = *key.public_key();
            return OneTimeKey {
                private: Ephemeral::Brainpool(key),
                public,
            };
        }
        let rng = SystemRandom::new();
        let private = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)
            .unwrap_or_else(|_| panic!("the operating system has no randomness"));
        let mut public = [0u8; 65];
        public.copy_from_slice(
            private
                .compute_public_key()
                .unwrap_or_else(|_| panic!("a key just made"))
                .as_ref(),
        );
        OneTimeKey {
            private: Ephemeral::Nist(private),
            public,
        }
    }

    /// The curve of the pair.
    pub fn curve(&self) -> Curve {
        match self.private {
            Ephemeral::Nist(_) => Curve::NistP256,
            Ephemeral::Brainpool(_) => Curve::BrainpoolP256r1,
        }
    }

    /// The public key, uncompressed (`04 ‖ X ‖ Y`): the value of a `5F49` data object.
    pub fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    /// The shared secret ShS with the other party's public key (an uncompressed point on the
    /// same curve): the x-coordinate of the ECDH point (Annex G); `None` when the point is not
    /// on the curve.
    pub fn agree(self, peer: &[u8]) -> Option<[u8; 32]> {
        match self.private {
            Ephemeral::Nist(private) => {
                let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
                agreement::agree_ephemeral(private, &peer, |shs| {
                    let mut out = [0u8; 32];
                    out.copy_from_slice(shs);
                    out
                })
                .ok()
            }
            Ephemeral::Brainpool(key) => key.agree(peer),
        }
    }
}

/// The three keys of an SCP03t session (Annex G, Table 65).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    /// The initial MAC chaining value.
    pub mac_chaining: [u8; 16],
    /// S-ENC.
    pub enc: [u8; 16],
    /// S-MAC.
    pub mac: [u8; 16],
}

impl SessionKeys {
    /// Three random keys from the operating system: Profile Protection Keys (PPK-ENC, PPK-MAC
    /// and the initial MAC chaining value, §2.5.3's "random key mode").
    pub fn random() -> Self {
        SessionKeys {
            mac_chaining: random(),
            enc: random(),
            mac: random(),
        }
    }
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys").finish_non_exhaustive()
    }
}

/// The key type (`88`: AES) and length (16) of the control reference template (§2.5.3).
pub const KEY_TYPE_AES: u8 = 0x88;
/// The key length of the control reference template.
pub const KEY_LENGTH: u8 = 16;

/// The ANSI X9.63 KDF with SHA-256 over `shs` and SharedInfo = key type ‖ key length ‖
/// LV(hostId) ‖ LV(EID), cut into the three session keys (Annex G).
pub fn derive_session_keys(shs: &[u8; 32], host_id: &[u8], eid: &[u8; 16]) -> SessionKeys {
    let mut shared_info = Vec::with_capacity(4 + host_id.len() + eid.len());
    shared_info.extend_from_slice(&[KEY_TYPE_AES, KEY_LENGTH, host_id.len() as u8]);
    shared_info.extend_from_slice(host_id);
    shared_info.push(eid.len() as u8);
    shared_info.extend_from_slice(eid);
    let block = |counter: u32| sha256_parts(&[shs, &counter.to_be_bytes(), &shared_info]);
    let (first, second) = (block(1), block(2));
    let mut keys = SessionKeys {
        mac_chaining: [0; 16],
        enc: [0; 16],
        mac: [0; 16],
    };
    keys.mac_chaining.copy_from_slice(&first[..16]);
    keys.enc.copy_from_slice(&first[16..]);
    keys.mac.copy_from_slice(&second[..16]);
    keys
}

/// The hashed Confirmation Code the eUICC sends (§3.1.3.2 step 5): SHA-256 of the stored
/// `SHA-256(Confirmation Code)` and the transactionId.
pub fn hash_confirmation_code(stored: &[u8; 32], transaction_id: &[u8]) -> [u8; 32] {
    sha256_parts(&[stored, transaction_id])
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4), as the ES9+ JSON binding carries binary data.
pub fn base64_encode(data: &[u8]) -> String {
    let mut out = Vec::with_capacity(data.len().div_ceil(3) * 4);
    let mut chunks = data.chunks_exact(3);
    for c in &mut chunks {
        let n = (u32::from(c[0]) << 16) | (u32::from(c[1]) << 8) | u32::from(c[2]);
        out.extend_from_slice(&[
            BASE64[(n >> 18) as usize & 63],
            BASE64[(n >> 12) as usize & 63],
            BASE64[(n >> 6) as usize & 63],
            BASE64[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                BASE64[(n >> 18) as usize & 63],
                BASE64[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[
                BASE64[(n >> 18) as usize & 63],
                BASE64[(n >> 12) as usize & 63],
                BASE64[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
    // Only characters of the alphabet were written.
    String::from_utf8(out).unwrap_or_default()
}

/// The value of each base64 character; [`INVALID`] for others, [`SKIP`] for whitespace,
/// [`PAD`] for `=`.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[BASE64[i] as usize] = i as u8;
        i += 1;
    }
    table[b' ' as usize] = SKIP;
    table[b'\n' as usize] = SKIP;
    table[b'\r' as usize] = SKIP;
    table[b'\t' as usize] = SKIP;
    table[b'=' as usize] = PAD;
    table
};
const INVALID: u8 = 0xFF;
const SKIP: u8 = 0xFE;
const PAD: u8 = 0xFD;

/// Decodes standard base64; whitespace is skipped, padding is optional, anything else is an
/// error.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3 + 3);
    let mut acc = 0u32;
    let mut bits = 0;
    let mut padding = 0;
    for &c in text.as_bytes() {
        let v = DECODE[usize::from(c)];
        if v < 64 {
            if padding > 0 {
                return None; // data after padding
            }
            acc = (acc << 6) | u32::from(v);
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        } else if v == PAD {
            padding += 1;
        } else if v == INVALID {
            return None;
        }
    }
    // Left-over bits must be zero, and no more than two padding characters.
    if padding > 2 || bits >= 6 || acc & ((1 << bits) - 1) != 0 {
        return None;
    }
    Some(out)
}

/// Upper-case hex.
pub fn hex_upper(data: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(data.len() * 2);
    for b in data {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Decodes hex of either case.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.as_bytes()
        .chunks(2)
        .map(|p| Some((digit(p[0])? << 4) | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn signatures_are_plain_r_s_and_verify_over_what_was_signed() {
        let key = SigningKey::generate();
        let sig = key.sign(b"serverSigned1");
        assert_eq!(sig.len(), 64);
        assert!(verify(key.public_key(), b"serverSigned1", &sig));
        assert!(!verify(key.public_key(), b"serverSigned2", &sig));
        assert!(!verify(key.public_key(), b"serverSigned1", &sig[..63]));
        let again = SigningKey::from_pem(&key.to_pem()).unwrap();
        assert_eq!(again.public_key(), key.public_key());
    }

    #[test]
    fn one_time_keys_agree() {
        let (a, b) = (OneTimeKey::generate(), OneTimeKey::generate());
        let (pa, pb) = (*a.public_key(), *b.public_key());
        assert_eq!(a.agree(&pb), b.agree(&pa));
        assert!(OneTimeKey::generate().agree(&[4; 65]).is_none());
    }

    #[test]
    fn brainpool_signatures_verify_on_their_curve_only() {
        let key = SigningKey::generate_on(Curve::BrainpoolP256r1);
        assert_eq!(key.curve(), Curve::BrainpoolP256r1);
        assert_eq!((key.public_key().len(), key.public_key()[0]), (65, 4));
        let sig = key.sign_parts(&[b"server", b"Signed1"]);
        let bp = Curve::BrainpoolP256r1;
        assert!(verify_on(bp, key.public_key(), b"serverSigned1", &sig));
        assert!(verify_parts_on(
            bp,
            key.public_key(),
            &[b"serverSigned1"],
            &sig
        ));
        assert!(!verify_on(bp, key.public_key(), b"serverSigned2", &sig));
        assert!(!verify_on(
            bp,
            key.public_key(),
            b"serverSigned1",
            &sig[..63]
        ));
        assert!(!verify_on(bp, key.public_key(), b"serverSigned1", &[0; 64]));
        assert!(
            !verify(key.public_key(), b"serverSigned1", &sig),
            "not a P-256 signature"
        );
        let nist = SigningKey::generate();
        assert_eq!(nist.curve(), Curve::NistP256);
        let sig = nist.sign(b"m");
        assert!(verify_on(Curve::NistP256, nist.public_key(), b"m", &sig));
        assert!(!verify_on(bp, nist.public_key(), b"m", &sig));
    }

    #[test]
    fn pkcs8_round_trips_on_both_curves() {
        for curve in Curve::ALL {
            let key = SigningKey::generate_on(curve);
            let der = SigningKey::from_pkcs8(key.pkcs8_der()).unwrap();
            let pem = SigningKey::from_pem(&key.to_pem()).unwrap();
            for again in [der, pem] {
                assert_eq!(again.curve(), curve);
                assert_eq!(again.public_key(), key.public_key());
                assert_eq!(again.pkcs8_der(), key.pkcs8_der());
            }
            let sig = key.sign(b"x");
            assert!(verify_on(curve, key.public_key(), b"x", &sig));
        }
    }

    /// A brainpool `ECPrivateKey` of `scalar`, naming the curve, with `public` when given.
    fn brainpool_sec1_of(scalar: &[u8], public: Option<&[u8]>) -> Vec<u8> {
        let params = tlv::encode(0xA0, BRAINPOOL_OID_TLV);
        let mut parts = vec![vec![2, 1, 1], tlv::encode(0x04, scalar), params];
        if let Some(public) = public {
            let bits = [&[0u8][..], public].concat();
            parts.push(tlv::encode(0xA1, &tlv::encode(0x03, &bits)));
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        tlv::constructed(0x30, &refs)
    }

    #[test]
    fn brainpool_sec1_pem_is_read_and_bad_keys_are_refused() {
        let key = SigningKey::generate_on(Curve::BrainpoolP256r1);
        let Pair::Brainpool(inner) = &key.pair else {
            unreachable!()
        };
        let scalar = inner.scalar();
        for public in [None, Some(key.public_key())] {
            let sec1 = brainpool_sec1_of(&scalar, public);
            let again = SigningKey::from_pem(&pem("EC PRIVATE KEY", &sec1)).unwrap();
            assert_eq!(again.curve(), Curve::BrainpoolP256r1);
            assert_eq!(again.public_key(), key.public_key());
        }
        let other = SigningKey::generate_on(Curve::BrainpoolP256r1);
        let mismatched = brainpool_sec1_of(&scalar, Some(other.public_key()));
        assert!(SigningKey::from_sec1(&mismatched).is_err());
        let order =
            hex_decode("A9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7").unwrap();
        for bad in [&[0u8; 32][..], &order, &[0xFF; 32], &[1; 33]] {
            let sec1 = brainpool_sec1_of(bad, None);
            assert!(SigningKey::from_sec1(&sec1).is_err(), "{bad:02X?}");
            let pkcs8 = pkcs8_from_sec1(&sec1, Curve::BrainpoolP256r1);
            assert!(SigningKey::from_pkcs8(&pkcs8).is_err(), "{bad:02X?}");
        }
        // A short scalar is left-padded, as RFC 5915 readers do.
        let short = SigningKey::from_sec1(&brainpool_sec1_of(&[7], None)).unwrap();
        assert_eq!(short.curve(), Curve::BrainpoolP256r1);
        let mut truncated = key.pkcs8_der().to_vec();
        truncated.pop();
        assert!(SigningKey::from_pkcs8(&truncated).is_err());
    }

    #[test]
    fn brainpool_one_time_keys_agree_and_refuse_other_points() {
        let bp = Curve::BrainpoolP256r1;
        let (a, b) = (OneTimeKey::generate_on(bp), OneTimeKey::generate_on(bp));
        assert_eq!((a.curve(), b.curve()), (bp, bp));
        let (pa, pb) = (*a.public_key(), *b.public_key());
        let shs = a.agree(&pb).unwrap();
        assert_eq!(Some(shs), b.agree(&pa));
        assert!(OneTimeKey::generate_on(bp).agree(&[4; 65]).is_none());
        assert!(OneTimeKey::generate_on(bp).agree(&pa[..64]).is_none());
        let nist = OneTimeKey::generate();
        assert!(OneTimeKey::generate_on(bp)
            .agree(nist.public_key())
            .is_none());
        let mut compressed = vec![2 + (pa[64] & 1)];
        compressed.extend_from_slice(&pa[1..33]);
        assert!(OneTimeKey::generate_on(bp).agree(&compressed).is_none());
    }

    #[test]
    fn der_signatures_become_r_s() {
        let int = |v: &[u8]| tlv::encode(0x02, v);
        let seq = |r: &[u8], s: &[u8]| tlv::constructed(0x30, &[&int(r), &int(s)]);
        let mut r = [0u8; 33];
        r[1] = 0x80;
        let raw = ecdsa_der_to_raw(&seq(&r, &[5])).unwrap();
        assert_eq!(raw[0], 0x80);
        assert_eq!(raw[63], 5);
        assert!(
            ecdsa_der_to_raw(&seq(&[0, 5], &[5])).is_none(),
            "non-minimal"
        );
        assert!(ecdsa_der_to_raw(&seq(&[0x80], &[5])).is_none(), "negative");
        assert!(ecdsa_der_to_raw(&seq(&[], &[5])).is_none(), "empty");
        assert!(ecdsa_der_to_raw(&seq(&[1; 33], &[5])).is_none(), "too long");
        assert!(ecdsa_der_to_raw(&tlv::constructed(0x30, &[&int(&[1])])).is_none());
        for raw in [[0u8; 64], [0xFF; 64], {
            let mut r = [0u8; 64];
            r[31] = 1;
            r[32] = 0x7F;
            r
        }] {
            let der = ecdsa_raw_to_der(&raw);
            if raw == [0; 64] {
                assert!(ecdsa_der_to_raw(&der).is_none(), "zero is refused");
            } else {
                assert_eq!(ecdsa_der_to_raw(&der), Some(raw));
            }
        }
    }

    #[test]
    fn base64_and_hex() {
        for (plain, encoded) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            assert_eq!(base64_encode(plain), encoded);
            assert_eq!(base64_decode(encoded).unwrap(), plain);
        }
        assert_eq!(base64_decode("Zm9v\nYg==").unwrap(), b"foob");
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Zh==").is_none(), "non-zero left-over bits");
        assert_eq!(hex_upper(&[0xAB, 0x01]), "AB01");
        assert_eq!(hex_decode("ab01").unwrap(), [0xAB, 0x01]);
        assert!(hex_decode("abc").is_none());
    }

    proptest! {
        #[test]
        fn base64_round_trips(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            prop_assert_eq!(base64_decode(&base64_encode(&data)).unwrap(), data);
        }

        #[test]
        fn keys_and_signatures_from_any_bytes_never_panic(
            data in proptest::collection::vec(any::<u8>(), 0..140),
        ) {
            for curve in Curve::ALL {
                prop_assert!(!verify_on(curve, &data, b"m", &[1; 64]));
                let key = &data[..data.len().min(65)];
                let sig = &data[data.len().min(65)..];
                let _ = verify_on(curve, key, b"m", sig);
            }
            let _ = SigningKey::from_pkcs8(&data);
            let _ = SigningKey::from_sec1(&data);
            let _ = OneTimeKey::generate_on(Curve::BrainpoolP256r1).agree(&data);
            let _ = ecdsa_der_to_raw(&data);
        }

        #[test]
        fn base64_decode_never_panics(text in ".{0,64}") {
            let _ = base64_decode(&text);
        }
    }
}
