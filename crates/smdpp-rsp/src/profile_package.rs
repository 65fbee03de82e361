//! Profile packages: an unprotected profile package (UPP) is a sequence of SIMalliance/TCA
//! "eUICC Profile Package: Interoperable Format" profile elements (SGP.22 §2.5.1).
//!
//! The mock generates one per order ([`synthetic`]): a header element carrying the order's
//! ICCID, non-standard filler elements so the Bound Profile Package needs many `86` segments,
//! and the end element. A scenario may name a package of the user's own instead
//! ([`ProfilePackage`]), which is personalised per order.
//!
//! `ProfileElement ::= CHOICE` under AUTOMATIC TAGS puts the header at `[0]` (`A0`), the
//! non-standard element at `[9]` (`A9`), the end at `[10]` (`AA`) and the MF at `[16]` (`B0`).
//! In `PE-MF ::= SEQUENCE`, `ef-iccid` is `[4]` (`A4`), a `File ::= SEQUENCE OF CHOICE` whose
//! `fillFileContent` is `[3]` (`83`).
//!
//! One download writes its ICCID in three places, coded two ways ([`IccidPlace`]): the
//! StoreMetadataRequest and EF.ICCID swap the digits of each byte, the package header does not.

use std::ops::Range;

use super::crypto::sha256_parts;
use super::tlv::{self, TlvError};
use crate::es10b::{iccid_bytes, iccid_from_bytes};
use crate::ids::Iccid;

/// The three places one download names its ICCID, each with its own coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IccidPlace {
    /// StoreMetadataRequest `iccid`, SGP.22 Annex H `Iccid ::= [APPLICATION 26] OCTET STRING
    /// (SIZE(10))`: coded as EF.ICCID, the two digits of each byte swapped, `F`-padded
    /// (`98 94 44 …` for `894944…`).
    Metadata,
    /// `ProfileHeader.iccid` of the profile package: the digits in order, two to a byte, the
    /// first in the high nibble, `F`-padded (`89 49 44 …`), as the published GSMA TS.48 test
    /// packages and independent SM-DP+ and eUICC implementations code it.
    Header,
    /// The content of EF.ICCID inside the package's MF element: swapped, like the metadata.
    EfIccid,
}

impl IccidPlace {
    /// The 10 bytes that stand for `iccid` in this place.
    pub fn encode(self, iccid: &Iccid) -> [u8; 10] {
        match self {
            IccidPlace::Metadata | IccidPlace::EfIccid => iccid_bytes(iccid),
            IccidPlace::Header => {
                let swapped = iccid_bytes(iccid);
                swapped.map(|b| b.rotate_left(4))
            }
        }
    }

    /// The ICCID these 10 bytes stand for in this place.
    pub fn decode(self, bytes: &[u8]) -> Result<Iccid, TlvError> {
        match self {
            IccidPlace::Metadata | IccidPlace::EfIccid => iccid_from_bytes(bytes),
            IccidPlace::Header => {
                let swapped: Vec<u8> = bytes.iter().map(|b| b.rotate_left(4)).collect();
                iccid_from_bytes(&swapped)
            }
        }
    }
}

/// Why a package cannot be personalised per order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PackageError(String);

/// A profile package of the user's own (`profileTypes[].profilePackage`), checked once, and
/// personalised for each order: [`ProfilePackage::for_order`] sets the header's ICCID and, when
/// the package has an MF element, the content of EF.ICCID to the ordered ICCID, and changes
/// no other byte (both are 10 bytes, so no length changes either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfilePackage {
    bytes: Vec<u8>,
    iccids: IccidRanges,
}

/// Where a package keeps its ICCIDs: byte ranges of the 10-byte values.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IccidRanges {
    header: Range<usize>,
    ef_iccid: Option<Range<usize>>,
}

impl ProfilePackage {
    /// `bytes` as a package: profile elements, the first a header with a 10-byte `iccid`, and
    /// an MF element, if any, with one 10-byte `fillFileContent` in its `ef-iccid`.
    pub fn parse(bytes: Vec<u8>) -> Result<Self, PackageError> {
        let iccids = locate(&bytes)?;
        Ok(ProfilePackage { bytes, iccids })
    }

    /// The package as given.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The package for an order of `iccid`.
    pub fn for_order(&self, iccid: &Iccid) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out[self.iccids.header.clone()].copy_from_slice(&IccidPlace::Header.encode(iccid));
        if let Some(ef) = &self.iccids.ef_iccid {
            out[ef.clone()].copy_from_slice(&IccidPlace::EfIccid.encode(iccid));
        }
        out
    }

    /// The ICCIDs a package names: its header's, and its EF.ICCID's when it has an MF element
    /// (`None` for a value that is not an ICCID in its place's coding).
    pub fn iccids(&self) -> (Option<Iccid>, Option<Option<Iccid>>) {
        self.iccids.decode(&self.bytes)
    }
}

/// [`ProfilePackage::iccids`] of `package` as it is, without keeping it: what an eUICC checks
/// against the metadata (§5.7.6 `installFailedDueToDataMismatch`).
pub fn iccids_in(package: &[u8]) -> Result<(Option<Iccid>, Option<Option<Iccid>>), PackageError> {
    Ok(locate(package)?.decode(package))
}

impl IccidRanges {
    /// The ICCIDs at these ranges of `package`, each in its place's coding.
    fn decode(&self, package: &[u8]) -> (Option<Iccid>, Option<Option<Iccid>>) {
        let header = IccidPlace::Header
            .decode(&package[self.header.clone()])
            .ok();
        let ef = self
            .ef_iccid
            .clone()
            .map(|r| IccidPlace::EfIccid.decode(&package[r]).ok());
        (header, ef)
    }
}

/// Where `value` (a slice of `package`) starts and ends in `package`.
fn range_in(package: &[u8], value: &[u8]) -> Range<usize> {
    let start = value.as_ptr() as usize - package.as_ptr() as usize;
    start..start + value.len()
}

fn locate(package: &[u8]) -> Result<IccidRanges, PackageError> {
    let err = |text: String| PackageError(text);
    let elements = tlv::read_all(package)
        .map_err(|e| err(format!("not DER profile elements (a .der UPP): {e}")))?;
    let Some(first) = elements.first().filter(|e| e.tag == 0xA0) else {
        return Err(err(
            "the first profile element is not the ProfileHeader (A0)".into(),
        ));
    };
    let iccid = first
        .child(0x83)
        .map_err(|e| err(format!("ProfileHeader: {e}")))?
        .ok_or_else(|| err("the ProfileHeader has no iccid (83)".into()))?;
    if iccid.value.len() != 10 {
        return Err(err(format!(
            "the ProfileHeader's iccid is {} bytes, not 10",
            iccid.value.len()
        )));
    }
    let header = range_in(package, iccid.value);
    let mut mf = elements.iter().filter(|e| e.tag == 0xB0);
    let ef_iccid = match (mf.next(), mf.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => return Err(err("more than one MF element (B0)".into())),
        (Some(mf), None) => {
            let file = mf
                .child(0xA4)
                .map_err(|e| err(format!("MF element: {e}")))?
                .ok_or_else(|| err("the MF element has no ef-iccid (A4)".into()))?;
            let contents: Vec<_> = file
                .children()
                .map_err(|e| err(format!("MF ef-iccid: {e}")))?
                .into_iter()
                .filter(|c| c.tag == 0x83)
                .collect();
            match contents.as_slice() {
                [content] if content.value.len() == 10 => Some(range_in(package, content.value)),
                [content] => {
                    return Err(err(format!(
                        "the MF's EF.ICCID content is {} bytes, not 10",
                        content.value.len()
                    )))
                }
                _ => {
                    return Err(err(format!(
                        "the MF's ef-iccid has {} fillFileContent (83) values, not one",
                        contents.len()
                    )))
                }
            }
        }
    };
    Ok(IccidRanges { header, ef_iccid })
}

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
            &tlv::encode(0x83, &IccidPlace::Header.encode(iccid)),
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
    IccidPlace::Header
        .decode(first.child(0x83).ok()??.value)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The codings, by hand: the issue's example ICCID `8949440000001155123` (19 digits).
    #[test]
    fn each_place_codes_the_iccid_its_own_way() {
        let iccid: Iccid = "8949440000001155123".parse().unwrap();
        let plain = [0x89, 0x49, 0x44, 0x00, 0x00, 0x00, 0x11, 0x55, 0x12, 0x3F];
        let swapped = [0x98, 0x94, 0x44, 0x00, 0x00, 0x00, 0x11, 0x55, 0x21, 0xF3];
        assert_eq!(IccidPlace::Header.encode(&iccid), plain);
        assert_eq!(IccidPlace::Metadata.encode(&iccid), swapped);
        assert_eq!(IccidPlace::EfIccid.encode(&iccid), swapped);
        for (place, bytes) in [
            (IccidPlace::Header, plain),
            (IccidPlace::Metadata, swapped),
            (IccidPlace::EfIccid, swapped),
        ] {
            assert_eq!(place.decode(&bytes).unwrap(), iccid, "{place:?}");
        }
        // Read in the other coding, each is another number (or none).
        assert_ne!(IccidPlace::Metadata.decode(&plain).ok(), Some(iccid));
        assert_ne!(IccidPlace::Header.decode(&swapped).ok(), Some(iccid));
    }

    fn der(tag: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match value.len() {
            n @ 0..=127 => out.push(n as u8),
            n @ 128..=255 => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(value);
        out
    }

    /// A package shaped as GSMA TS.48 test profiles are (header, MF with EF.ICCID, end), with
    /// `iccid` in its header (plain) and EF.ICCID (swapped).
    fn ts48_shaped(header_iccid: [u8; 10], ef_iccid: [u8; 10]) -> Vec<u8> {
        let header = der(
            0xA0,
            &[
                der(0x80, &[2]),
                der(0x81, &[3]),
                der(0x82, b"TS48-shaped"),
                der(0x83, &header_iccid),
                der(0xA5, &der(0x81, &[])),
                der(0xA6, &[]),
            ]
            .concat(),
        );
        let mf = der(
            0xB0,
            &[
                der(0xA0, &der(0x81, &[1])),
                der(0x81, &[0x67, 0x81, 0x0F, 0x01, 0x02, 0x01]),
                der(0xA2, &der(0xA1, &der(0x83, &[0x3F, 0x00]))),
                der(
                    0xA4,
                    &[der(0xA1, &der(0x83, &[0x2F, 0xE2])), der(0x83, &ef_iccid)].concat(),
                ),
                der(0xA5, &der(0xA1, &der(0x83, &[0x2F, 0x00]))),
                der(0xA6, &der(0xA1, &der(0x83, &[0x2F, 0x06]))),
            ]
            .concat(),
        );
        let end = der(0xAA, &der(0xA0, &der(0x81, &[2])));
        [header, mf, end].concat()
    }

    #[test]
    fn a_package_is_personalised_in_its_header_and_ef_iccid_and_nowhere_else() {
        let file_iccid: Iccid = "8949440000001155123".parse().unwrap();
        let file = ts48_shaped(
            IccidPlace::Header.encode(&file_iccid),
            IccidPlace::EfIccid.encode(&file_iccid),
        );
        let package = ProfilePackage::parse(file.clone()).unwrap();
        assert_eq!(package.iccids(), (Some(file_iccid), Some(Some(file_iccid))));
        let ordered: Iccid = "8944500100000000004".parse().unwrap();
        let out = package.for_order(&ordered);
        assert_eq!(out.len(), file.len());
        let changed: Vec<usize> = (0..file.len()).filter(|&i| out[i] != file[i]).collect();
        let header_at = file
            .windows(10)
            .position(|w| w == IccidPlace::Header.encode(&file_iccid))
            .unwrap();
        let ef_at = file
            .windows(10)
            .position(|w| w == IccidPlace::EfIccid.encode(&file_iccid))
            .unwrap();
        assert!(changed
            .iter()
            .all(|i| (header_at..header_at + 10).contains(i) || (ef_at..ef_at + 10).contains(i)));
        assert_eq!(
            out[header_at..header_at + 10],
            IccidPlace::Header.encode(&ordered)
        );
        assert_eq!(out[ef_at..ef_at + 10], IccidPlace::EfIccid.encode(&ordered));
        let again = ProfilePackage::parse(out).unwrap();
        assert_eq!(again.iccids(), (Some(ordered), Some(Some(ordered))));
        assert_eq!(header_iccid(again.bytes()), Some(ordered));
    }

    #[test]
    fn a_package_that_cannot_be_personalised_says_why() {
        let iccid = [0x89, 0x49, 0x44, 0x00, 0x00, 0x00, 0x11, 0x55, 0x12, 0x3F];
        let good = ts48_shaped(iccid, iccid);
        let end = der(0xAA, &der(0xA0, &der(0x81, &[2])));
        let mf_start = tlv::read(&good).unwrap().1;
        let (mf, _) = tlv::read(mf_start).unwrap();
        let header_len = good.len() - mf_start.len();
        for (bytes, why) in [
            (b"not DER".to_vec(), "not DER profile elements"),
            (end.clone(), "not the ProfileHeader"),
            (
                [der(0xA0, &der(0x80, &[2])), end.clone()].concat(),
                "no iccid",
            ),
            (
                [der(0xA0, &der(0x83, &[0x89; 9])), end.clone()].concat(),
                "9 bytes, not 10",
            ),
            (
                [&good[..header_len], mf.raw, mf.raw, &end].concat(),
                "more than one MF",
            ),
            (
                [
                    &good[..header_len],
                    &der(0xB0, &der(0xA0, &der(0x81, &[1]))),
                    &end,
                ]
                .concat(),
                "no ef-iccid",
            ),
            (
                [
                    &good[..header_len],
                    &der(0xB0, &der(0xA4, &der(0x83, &[0x98; 11]))),
                    &end,
                ]
                .concat(),
                "11 bytes, not 10",
            ),
            (
                [&good[..header_len], &der(0xB0, &der(0xA4, &[])), &end].concat(),
                "0 fillFileContent",
            ),
        ] {
            let err = ProfilePackage::parse(bytes).unwrap_err().to_string();
            assert!(err.contains(why), "{why}: {err}");
        }
        // A package without an MF is personalised in its header only.
        let header_only = [der(0xA0, &der(0x83, &iccid)), end].concat();
        assert_eq!(ProfilePackage::parse(header_only).unwrap().iccids().1, None);
    }

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
