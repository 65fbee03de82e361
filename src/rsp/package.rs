//! The profile package the mock generates per order: an unprotected profile package (UPP) of
//! SIMalliance/TCA eUICC Profile Package profile elements (SGP.22 §2.5.1), made of a header
//! element carrying the order's ICCID, non-standard filler elements so the Bound Profile
//! Package needs many `86` segments, and the end element. No operator's test profile is
//! shipped: a scenario may name a package of the user's own instead.
//!
//! `ProfileElement ::= CHOICE` under AUTOMATIC TAGS puts the header at `[0]` (`A0`), the
//! non-standard element at `[9]` (`A9`) and the end at `[10]` (`AA`).

use super::crypto::sha256_parts;
use super::message::{iccid_bytes, iccid_from_bytes};
use super::tlv;
use crate::ids::Iccid;

/// The filler the generated packages carry: enough for 12 segments.
pub const DEFAULT_FILLER: usize = 11 * 1024;
/// Filler bytes per non-standard element.
const FILLER_ELEMENT: usize = 2048;
/// The OID the filler elements name as their issuer (the mock's arc under `2.999`).
const ISSUER: [u8; 3] = [0x88, 0x37, 0x0A]; // 2.999.10

/// `PEHeader ::= SEQUENCE { mandated NULL OPTIONAL, identification UInt15 }`.
fn pe_header(identification: u16) -> Vec<u8> {
    tlv::encode(
        0xA0,
        &tlv::encode(0x81, &tlv::uint_value(u64::from(identification))),
    )
}

/// The package for `iccid`: header, `filler` bytes of non-standard elements (derived from the
/// ICCID, so the same order always gets the same package), end.
pub fn synthetic(iccid: &Iccid, filler: usize) -> Vec<u8> {
    let header = tlv::constructed(
        0xA0,
        &[
            &tlv::encode(0x80, &[2]),
            &tlv::encode(0x81, &[3]),
            &tlv::encode(0x82, b"smdpp-mock synthetic profile"),
            &tlv::encode(0x83, &iccid_bytes(iccid)),
            &tlv::encode(0xA5, &[]),
            &tlv::encode(0xA6, &[]),
        ],
    );
    let mut out = header;
    // The filler's bytes: a SplitMix64 stream seeded with a digest of the ICCID, cheap enough
    // to make per download and the same for the same order every time.
    let digest = sha256_parts(&[iccid.digits().as_bytes()]);
    let mut state = u64::from_be_bytes([
        digest[0], digest[1], digest[2], digest[3], digest[4], digest[5], digest[6], digest[7],
    ]);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    let mut id: u16 = 1;
    let mut left = filler;
    while left > 0 {
        let n = left.min(FILLER_ELEMENT);
        let mut content = Vec::with_capacity(n + 8);
        while content.len() < n {
            content.extend_from_slice(&next().to_be_bytes());
        }
        content.truncate(n);
        out.extend(tlv::constructed(
            0xA9,
            &[
                &pe_header(id),
                &tlv::encode(0x81, &ISSUER),
                &tlv::encode(0x82, &content),
            ],
        ));
        left -= n;
        id += 1;
    }
    out.extend(tlv::encode(0xAA, &pe_header(id)));
    out
}

/// The length of [`synthetic`]'s package, without making it.
pub fn synthetic_len(iccid: &Iccid, filler: usize) -> usize {
    let header = synthetic(iccid, 0).len() - tlv::encode(0xAA, &pe_header(1)).len();
    let mut len = header;
    let mut id: u16 = 1;
    let mut left = filler;
    while left > 0 {
        let n = left.min(FILLER_ELEMENT);
        let inner =
            pe_header(id).len() + tlv::encode(0x81, &ISSUER).len() + tlv::header(0x82, n).len() + n;
        len += tlv::header(0xA9, inner).len() + inner;
        left -= n;
        id += 1;
    }
    len + tlv::encode(0xAA, &pe_header(id)).len()
}

/// The ICCID of a package's header element, when the package starts with one that has it.
pub fn header_iccid(package: &[u8]) -> Option<Iccid> {
    let (first, _) = tlv::read(package).ok()?;
    if first.tag != 0xA0 {
        return None;
    }
    iccid_from_bytes(first.child(0x83).ok()??.value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_with_the_iccid_in_the_header() {
        let iccid: Iccid = "8944500100000000004".parse().unwrap();
        let package = synthetic(&iccid, DEFAULT_FILLER);
        assert_eq!(header_iccid(&package).unwrap().digits(), iccid.digits());
        for filler in [0, 1, 2047, 2048, 2049, DEFAULT_FILLER, 100_000] {
            assert_eq!(
                synthetic_len(&iccid, filler),
                synthetic(&iccid, filler).len(),
                "{filler}"
            );
        }
        assert_eq!(
            synthetic(&iccid, DEFAULT_FILLER),
            package,
            "the same order, the same package"
        );
        let elements = tlv::read_all(&package).unwrap();
        assert_eq!(elements.first().unwrap().tag, 0xA0);
        assert_eq!(elements.last().unwrap().tag, 0xAA);
        assert!(package.len() > DEFAULT_FILLER);
        assert_eq!(
            package,
            synthetic(&iccid, DEFAULT_FILLER),
            "the same order, the same package"
        );
    }
}
