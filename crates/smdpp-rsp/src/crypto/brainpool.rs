//! brainpoolP256r1 (RFC 5639, SGP.22 §2.6.7.1) with RustCrypto's `bp256`: ECDSA with SHA-256
//! (RFC 6979 nonces), ECKA-DH, and the RFC 5915 private key inside PKCS#8, which `ring` cannot
//! read for this curve.

use bp256::elliptic_curve::point::AffineCoordinates;
use bp256::BrainpoolP256r1;
use ecdsa::signature::{Signer, Verifier};

type Secret = ecdsa::SigningKey<BrainpoolP256r1>;
type Public = ecdsa::VerifyingKey<BrainpoolP256r1>;
type Signature = ecdsa::Signature<BrainpoolP256r1>;

/// A brainpoolP256r1 private key and its public point.
pub(super) struct Key {
    secret: Secret,
    public: [u8; 65],
}

impl Key {
    /// A new random key: 32 random bytes until they are a scalar in `[1, n)`.
    pub(super) fn generate() -> Self {
        loop {
            if let Some(key) = Self::from_scalar(&super::random::<32>()) {
                return key;
            }
        }
    }

    /// The key whose private scalar is the big-endian `scalar`; `None` unless `0 < scalar < n`.
    pub(super) fn from_scalar(scalar: &[u8]) -> Option<Self> {
        if scalar.len() != 32 {
            return None;
        }
        let secret = Secret::from_slice(scalar).ok()?;
        let point = secret.verifying_key().to_sec1_point(false);
        let public = point.as_bytes().try_into().ok()?;
        Some(Key { secret, public })
    }

    /// The private scalar, big-endian, 32 bytes.
    pub(super) fn scalar(&self) -> [u8; 32] {
        self.secret.to_bytes().into()
    }

    /// The public key as an uncompressed point.
    pub(super) fn public_key(&self) -> &[u8; 65] {
        &self.public
    }

    /// ECDSA with SHA-256 over `message`, as `r ‖ s`.
    pub(super) fn sign(&self, message: &[u8]) -> [u8; 64] {
        let signature: Signature = self.secret.sign(message);
        signature.to_bytes().into()
    }

    /// ECKA-DH (BSI TR-03111 §4.3.1): the x-coordinate of `scalar · peer`; `None` unless `peer`
    /// is an uncompressed point on the curve other than the identity.
    pub(super) fn agree(&self, peer: &[u8]) -> Option<[u8; 32]> {
        let peer = public_point(peer)?;
        let scalar: &bp256::Scalar = self.secret.as_nonzero_scalar().as_ref();
        let shared = (bp256::r1::ProjectivePoint::from(*peer.as_affine()) * scalar).to_affine();
        Some(shared.x().into())
    }
}

/// An uncompressed point (`04 ‖ X ‖ Y`, 65 bytes) on brainpoolP256r1.
fn public_point(bytes: &[u8]) -> Option<Public> {
    if bytes.len() != 65 || bytes[0] != 0x04 {
        return None;
    }
    Public::from_sec1_bytes(bytes).ok()
}

/// Whether `signature` (`r ‖ s`) is `public_key`'s ECDSA-SHA-256 signature over `message`.
pub(super) fn verify(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 64 {
        return false;
    }
    let Some(key) = public_point(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}
