//! Remote SIM Provisioning on the wire (SGP.22): what the SM-DP+ (`es9`) and the eUICC
//! ([`crate::euicc`]) both need, so each end checks the other with the same code the tests
//! check against independent vectors.
//!
//! - [`tlv`]: BER-TLV reading that keeps the raw bytes signatures cover, and minimal-DER writing;
//! - [`crypto`]: ECDSA `r ‖ s` signatures, one-time ECDH, the Annex G key derivation, base64;
//! - [`scp03t`]: the protection of the Bound Profile Package's TLVs;
//! - [`cert`]: the GSMA certificate profiles of §4.5 and their verification;
//! - [`message`]: the RSPDefinitions types the SM-DP+ and the eUICC exchange (Annex H);
//! - [`bpp`]: the Bound Profile Package, built and taken apart;
//! - [`package`]: the synthetic profile package the mock generates per order.

pub mod bpp;
pub mod cert;
pub mod crypto;
pub mod message;
pub mod package;
pub mod scp03t;
pub mod tlv;
