//! The cryptography of SGP.22 on NIST P-256, with `ring`: ECDSA signatures in the plain
//! `r ‖ s` form RSP messages carry (§2.6.7.2, tag `5F37`), one-time ECDH key agreement (§2.6.5,
//! Annex G: the shared secret is the x-coordinate), the X9.63 key derivation of Annex G, and
//! the hashed Confirmation Code of §3.1.3.2. SCP03t (AES) lives in [`super::scp03t`].
//!
//! brainpoolP256r1, the other curve of §2.6.7.1, is not supported: `ring` has no brainpool
//! arithmetic, and the RustCrypto crate that has it would add two dozen crates to the tree for
//! a curve none of the mock's own chains use (SGP.26 publishes a NIST test CI as well).

use ring::agreement;
use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{self, EcdsaKeyPair, KeyPair};

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
    /// A key, but not an ECDSA NIST P-256 one.
    #[error("not an ECDSA NIST P-256 key: {0}")]
    WrongCurve(String),
}

/// An ECDSA NIST P-256 private key that signs RSP messages (`r ‖ s`) and certificates.
pub struct SigningKey {
    pair: EcdsaKeyPair,
    /// PKCS#8 DER, kept to hand to rcgen (certificate signing).
    pkcs8: Vec<u8>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey").finish_non_exhaustive()
    }
}

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Self {
        let rng = SystemRandom::new();
        let doc = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap_or_else(|_| panic!("the operating system has no randomness"));
        Self::from_pkcs8(doc.as_ref()).unwrap_or_else(|e| panic!("a key just made: {e}"))
    }

    /// A key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            der,
            &SystemRandom::new(),
        )
        .map_err(|e| KeyError::WrongCurve(e.to_string()))?;
        Ok(SigningKey {
            pair,
            pkcs8: der.to_vec(),
        })
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

    /// A key from SEC1 `ECPrivateKey` DER (RFC 5915), which must carry its public key.
    fn from_sec1(der: &[u8]) -> Result<Self, KeyError> {
        use super::tlv;
        let bad = |what: &str| KeyError::Unreadable(format!("SEC1 key: {what}"));
        let seq = tlv::read_tagged(der, 0x30).map_err(|e| bad(&e.to_string()))?;
        let parts = seq.children().map_err(|e| bad(&e.to_string()))?;
        let private = parts
            .iter()
            .find(|p| p.tag == 0x04)
            .ok_or_else(|| bad("no private key"))?;
        if let Some(params) = parts.iter().find(|p| p.tag == 0xA0) {
            if params.value != P256_OID_TLV {
                return Err(KeyError::WrongCurve("the key names another curve".into()));
            }
        }
        let public = parts
            .iter()
            .find(|p| p.tag == 0xA1)
            .and_then(|p| tlv::read_tagged(p.value, 0x03).ok())
            .and_then(|bits| bits.value.split_first().map(|(_, key)| key))
            .ok_or_else(|| bad("no public key in it"))?;
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            private.value,
            public,
            &SystemRandom::new(),
        )
        .map_err(|e| KeyError::WrongCurve(e.to_string()))?;
        let pkcs8 = pkcs8_from_sec1(der);
        Ok(SigningKey { pair, pkcs8 })
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
        self.pair.public_key().as_ref()
    }

    /// The signature of `message` as `r ‖ s` (64 bytes).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        let sig = self
            .pair
            .sign(&SystemRandom::new(), message)
            .unwrap_or_else(|_| panic!("the operating system has no randomness"));
        let mut out = [0u8; 64];
        out.copy_from_slice(sig.as_ref());
        out
    }

    /// The signature of the concatenation of `parts`.
    pub fn sign_parts(&self, parts: &[&[u8]]) -> [u8; 64] {
        self.sign(&parts.concat())
    }
}

/// The DER of the P-256 named-curve OID (`1.2.840.10045.3.1.7`).
const P256_OID_TLV: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// Wraps a SEC1 key into PKCS#8 (RFC 5208): version 0, the id-ecPublicKey/P-256 algorithm, the
/// SEC1 structure as the private key.
fn pkcs8_from_sec1(sec1: &[u8]) -> Vec<u8> {
    use super::tlv;
    const EC_PUBLIC_KEY: &[u8] = &[0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01];
    let algorithm = tlv::constructed(0x30, &[EC_PUBLIC_KEY, P256_OID_TLV]);
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

/// Whether `signature` (`r ‖ s`, 64 bytes) is `public_key`'s (uncompressed point) over
/// `message`.
pub fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    signature.len() == 64
        && signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, public_key)
            .verify(message, signature)
            .is_ok()
}

/// [`verify`] over the concatenation of `parts`.
pub fn verify_parts(public_key: &[u8], parts: &[&[u8]], signature: &[u8]) -> bool {
    verify(public_key, &parts.concat(), signature)
}

/// A one-time ECKA key pair (otSK/otPK, §2.6.5), used once and then dropped.
pub struct OneTimeKey {
    private: agreement::EphemeralPrivateKey,
    public: [u8; 65],
}

impl std::fmt::Debug for OneTimeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OneTimeKey").finish_non_exhaustive()
    }
}

impl OneTimeKey {
    /// A fresh pair on NIST P-256.
    pub fn generate() -> Self {
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
        OneTimeKey { private, public }
    }

    /// The public key, uncompressed (`04 ‖ X ‖ Y`): the value of a `5F49` data object.
    pub fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    /// The shared secret ShS with the other party's public key: the x-coordinate of the ECDH
    /// point (Annex G); `None` when the point is not on the curve.
    pub fn agree(self, peer: &[u8]) -> Option<[u8; 32]> {
        let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, peer);
        agreement::agree_ephemeral(self.private, &peer, |shs| {
            let mut out = [0u8; 32];
            out.copy_from_slice(shs);
            out
        })
        .ok()
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
        fn base64_decode_never_panics(text in ".{0,64}") {
            let _ = base64_decode(&text);
        }
    }
}
