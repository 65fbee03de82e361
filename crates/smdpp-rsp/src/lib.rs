//! # smdpp-rsp
//!
//! Remote SIM Provisioning (GSMA SGP.22 v2.2) for the device side and the wire, without a
//! server: what an LPA or eUICC developer uses, and what the `smdpp-mock` SM-DP+ is built on.
//! The modules follow the specification's table of contents, in the manner of lpac's libeuicc
//! (`es10b.c`, `es10c.c`, one error table) and pySim's `esim` package (`bsp`, `saip`): the
//! ES10 data and the card are `es10b` and `euicc`, the Bound Profile Package `bpp`, the profile
//! package `profile_package`; the ES9+ client side (lpac's `es9p.c`) is the LPA, `lpa`:
//!
//! | module | SGP.22 | what it holds |
//! |---|---|---|
//! | [`ids`] | §4.1, §5.2.1 | ICCID, EID, MatchingID, validated once at the edge |
//! | [`tlv`] | Annex H (DER) | BER-TLV reading that keeps the raw bytes signatures cover, minimal-DER writing |
//! | [`crypto`] | §2.6.7.1, Annex G | ECDSA `r ‖ s` signatures, one-time ECDH, the key derivation, base64 |
//! | [`cert`] | §4.5 | the GSMA certificate profiles and their verification (chains, roles, OIDs) |
//! | [`pki`] | §4.5, SGP.26 | a GSMA-style test PKI: CI, EUM, eUICCs, DPauth, DPpb, DPtls, SGP.26 file names |
//! | [`es10b`] | §5.7, Annex H | the RSPDefinitions data of ES10b (AuthenticateServer, PrepareDownload, the installation result, notifications, CancelSession) and EUICCInfo |
//! | [`scp03t`] | §2.5.3 | the protection of the Bound Profile Package's TLVs |
//! | [`bpp`] | §2.5.4–2.5.5 | the Bound Profile Package, built and taken apart |
//! | [`profile_package`] | §2.5.5, TCA Interoperable Format | the profile package inside a BPP: a generated one, and its ICCIDs |
//! | [`euicc`] | §5.7 (ES10a/b/c), §2.5.5 | a software eUICC, one file per interface (`es10a`, `es10b`, `es10c`, `load`): ES10 as DER or APDUs, the card's checks of the SM-DP+ |
//! | [`es9`] | §5.6, §6.6 | ES9+ on the wire in its ASN.1 binding: `RemoteProfileProvisioningRequest`/`Response` to and from the JSON binding's fields |
//! | [`lpa`] | §3.1, §5.6 (ES9+), §6.5, §6.6 | an LPA: ES9+ over HTTPS (JSON or ASN.1 binding) and ES10b to an [`Euicc`] |
//!
//! Every fallible public function returns its module's error type ([`TlvError`],
//! [`CertError`], [`ChainError`], [`PkiError`], [`EuiccError`], [`LpaError`], …).
//!
//! ```
//! use smdpp_rsp::{tlv, Iccid};
//!
//! // An ICCID on the wire (SGP.22 §5.7.4, digits swapped in pairs).
//! let iccid: Iccid = "8944500400000000024".parse().unwrap();
//! let bytes = smdpp_rsp::es10b::iccid_bytes(&iccid);
//! assert_eq!(bytes[0], 0x98);
//! let tlv = tlv::encode(0x5A, &bytes);
//! assert_eq!(tlv[..2], [0x5A, 10]);
//! ```

#![warn(missing_docs)]
// Input from the other end must never panic: no unwrap/expect outside tests.
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod bpp;
pub mod cert;
pub mod crypto;
pub mod es10b;
pub mod es9;
pub mod euicc;
pub mod ids;
pub mod lpa;
pub mod pki;
pub mod profile_package;
pub mod scp03t;
pub mod tlv;

pub use cert::{CertError, ChainError, ServerCertError};
pub use euicc::{Euicc, EuiccError};
pub use ids::{Eid, FormatError, Iccid, MatchingId};
pub use lpa::{ActivationCode, EventEntry, Lpa, LpaError};
pub use pki::{EuiccCredentials, GsmaPki, PkiError, ServerCredentials, SmdsCredentials};
pub use tlv::{Tlv, TlvError};
