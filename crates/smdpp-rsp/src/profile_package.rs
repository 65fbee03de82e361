//! Profile packages: an unprotected profile package (UPP) is a sequence of SIMalliance/TCA
//! "eUICC Profile Package: Interoperable Format" profile elements (SGP.22 §2.5.1).
//!
//! The mock generates one per order ([`synthetic`]): a minimal interoperable package as the GSMA
//! TS.48 test profiles use the format (header, MF with EF.ICCID and EF.DIR, PIN and PUK codes, a
//! USIM with EF.IMSI, Milenage's K and OPc from a [`SubscriptionRule`]), non-standard filler
//! elements so the Bound Profile Package needs many `86` segments, and the end element. A scenario may name a package of the user's own instead
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

/// `2.23.143.1.2.1`, the TCA template of the MF and the files under it.
const TEMPLATE_MF: [u8; 6] = [0x67, 0x81, 0x0F, 0x01, 0x02, 0x01];
/// `2.23.143.1.2.4`, the TCA template of ADF.USIM.
const TEMPLATE_USIM: [u8; 6] = [0x67, 0x81, 0x0F, 0x01, 0x02, 0x04];
/// The USIM application's AID (ETSI TS 101 220: RID `A000000087`, application `1002`), with
/// the mock's country and provider fields.
pub const USIM_AID: [u8; 16] = [
    0xA0, 0x00, 0x00, 0x00, 0x87, 0x10, 0x02, 0xFF, 0x33, 0xFF, 0xFF, 0x89, 0x01, 0x01, 0x01, 0x00,
];
/// The length of an EF.DIR record in the MF template.
const EF_DIR_RECORD: usize = 38;
/// PIN1 of a generated profile, `0000` (ASCII, `FF`-padded to 8 bytes, TS 102 221 §9.5.1).
pub const PIN1: &str = "0000";
/// PUK1 of a generated profile.
pub const PUK1: &str = "12345678";
/// ADM1 of a generated profile.
pub const ADM1: &str = "12345678";

/// What a generated profile authenticates to a network with: the IMSI and Milenage's K and OPc
/// (3GPP TS 35.206), so that a test network (open5gs, osmo-hlr, …) can be provisioned with the
/// same values.
#[derive(Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The IMSI, 15 digits: MCC, MNC, MSIN.
    pub imsi: String,
    /// The length of its MNC (2 or 3), for EF.AD.
    pub mnc_len: u8,
    /// The subscriber key K.
    pub k: [u8; 16],
    /// OPc, derived from K and the operator's OP.
    pub opc: [u8; 16],
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("imsi", &self.imsi)
            .finish_non_exhaustive()
    }
}

/// How a profile type's subscriptions are derived from their ICCIDs (documented in
/// docs/scenarios.md, `profileTypes[].subscription`):
///
/// - IMSI = MCC ‖ MNC ‖ the last `15 − len(MCC ‖ MNC)` digits of the ICCID without its
///   check digit (so consecutive ICCIDs get consecutive IMSIs);
/// - K = the first 16 bytes of SHA-256(`"smdpp-mock K"` ‖ key seed ‖ the ICCID's digits);
/// - OPc = AES-128(K, OP) ⊕ OP (TS 35.206 §4.1).
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionRule {
    /// The mobile country code, 3 digits.
    pub mcc: String,
    /// The mobile network code, 2 or 3 digits.
    pub mnc: String,
    /// The operator variant algorithm configuration field OP.
    pub op: [u8; 16],
    /// What K is derived from, besides the ICCID.
    pub key_seed: String,
}

impl std::fmt::Debug for SubscriptionRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionRule")
            .field("mcc", &self.mcc)
            .field("mnc", &self.mnc)
            .finish_non_exhaustive()
    }
}

impl Default for SubscriptionRule {
    /// MCC `001`, MNC `01` (the test network of 3GPP TS 23.003), the OP of test set 1 of
    /// 3GPP TS 35.208, key seed `smdpp-mock`.
    fn default() -> Self {
        SubscriptionRule {
            mcc: "001".into(),
            mnc: "01".into(),
            op: [
                0xCD, 0xC2, 0x02, 0xD5, 0x12, 0x3E, 0x20, 0xF6, 0x2B, 0x6D, 0x67, 0x6A, 0xC7, 0x2C,
                0xB3, 0x18,
            ],
            key_seed: "smdpp-mock".into(),
        }
    }
}

impl SubscriptionRule {
    /// Whether the MCC and MNC are digits of the right lengths; the reason if not.
    pub fn check(&self) -> Result<(), String> {
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if self.mcc.len() != 3 || !digits(&self.mcc) {
            return Err(format!("mcc {:?} is not 3 digits", self.mcc));
        }
        if !(2..=3).contains(&self.mnc.len()) || !digits(&self.mnc) {
            return Err(format!("mnc {:?} is not 2 or 3 digits", self.mnc));
        }
        Ok(())
    }

    /// The subscription of the profile with `iccid`.
    pub fn for_iccid(&self, iccid: &Iccid) -> Subscription {
        let digits = iccid.digits();
        // The ICCID without its Luhn check digit (the last one).
        let account = &digits[..digits.len().saturating_sub(1)];
        let prefix = format!("{}{}", self.mcc, self.mnc);
        let msin_len = 15usize.saturating_sub(prefix.len());
        let msin: String = if account.len() >= msin_len {
            account[account.len() - msin_len..].to_owned()
        } else {
            format!("{account:0>msin_len$}")
        };
        let digest = sha256_parts(&[b"smdpp-mock K", self.key_seed.as_bytes(), digits.as_bytes()]);
        let k: [u8; 16] = std::array::from_fn(|i| digest[i]);
        Subscription {
            imsi: format!("{prefix}{msin}"),
            mnc_len: self.mnc.len() as u8,
            opc: milenage_opc(&k, &self.op),
            k,
        }
    }
}

/// OPc = AES-128(K, OP) ⊕ OP (3GPP TS 35.206 §4.1).
pub fn milenage_opc(k: &[u8; 16], op: &[u8; 16]) -> [u8; 16] {
    use aes::cipher::{BlockCipherEncrypt, KeyInit};
    let cipher = aes::Aes128::new(&(*k).into());
    let mut block = (*op).into();
    cipher.encrypt_block(&mut block);
    let encrypted: [u8; 16] = block.into();
    std::array::from_fn(|i| encrypted[i] ^ op[i])
}

/// EF.IMSI's content (3GPP TS 31.102 §4.2.2): the number of bytes that follow, then the digits
/// two to a byte, low nibble first, the first byte's low nibble the parity (`9` for an odd
/// number of digits, `1` for even), `F`-padded.
pub fn imsi_file(imsi: &str) -> [u8; 9] {
    let digits: Vec<u8> = imsi.bytes().map(|b| b.wrapping_sub(b'0') & 0x0F).collect();
    let parity = if digits.len() % 2 == 1 { 0x9 } else { 0x1 };
    let mut nibbles = vec![parity];
    nibbles.extend(&digits);
    nibbles.resize(16, 0xF);
    let mut out = [0xFF; 9];
    out[0] = 8;
    for i in 0..8 {
        out[1 + i] = (nibbles[2 * i + 1] << 4) | nibbles[2 * i];
    }
    out
}

/// `PEHeader ::= SEQUENCE { mandated NULL OPTIONAL, identification UInt15 }`, mandated: a card
/// that cannot process the element must refuse the whole profile.
fn pe_header(identification: u16) -> Vec<u8> {
    tlv::constructed(
        0xA0,
        &[
            &tlv::encode(0x80, &[]),
            &tlv::encode(0x81, &tlv::uint_value(u64::from(identification))),
        ],
    )
}

/// A PEHeader without `mandated`: a card that does not know the element skips it (the filler).
fn optional_pe_header(identification: u16) -> Vec<u8> {
    tlv::encode(
        0xA0,
        &tlv::encode(0x81, &tlv::uint_value(u64::from(identification))),
    )
}

/// `pinStatusTemplateDO` of the MF and of ADF.USIM: the key references that protect them,
/// PIN1 (`01`) and ADM1 (`0A`), as the profile format codes it (a list of key references, not
/// TS 102 221's PS_DO).
const PIN_STATUS: [u8; 2] = [0x01, 0x0A];

/// A `File` (`SEQUENCE OF CHOICE`) of one `fillFileContent [3]`.
fn content(tag: u32, bytes: &[u8]) -> Vec<u8> {
    tlv::encode(tag, &tlv::encode(0x83, bytes))
}

/// A secret (PIN, PUK, ADM) as a `pinValue`: ASCII, `FF`-padded to 8 bytes.
fn secret(text: &str) -> [u8; 8] {
    let mut out = [0xFF; 8];
    for (o, b) in out.iter_mut().zip(text.bytes()) {
        *o = b;
    }
    out
}

/// The ProfileHeader `[0]`: version 2.3, the profile type, the ICCID (plain digits), the
/// services a card must have (USIM, Milenage) and the templates it must know (MF, USIM).
fn header(iccid: &Iccid, profile_type: &str) -> Vec<u8> {
    let services = tlv::constructed(0xA5, &[&tlv::encode(0x81, &[]), &tlv::encode(0x84, &[])]);
    let templates = tlv::constructed(
        0xA6,
        &[
            &tlv::encode(0x06, &TEMPLATE_MF),
            &tlv::encode(0x06, &TEMPLATE_USIM),
        ],
    );
    tlv::constructed(
        0xA0,
        &[
            &tlv::encode(0x80, &[2]),
            &tlv::encode(0x81, &[3]),
            &tlv::encode(0x82, profile_type.as_bytes()),
            &tlv::encode(0x83, &IccidPlace::Header.encode(iccid)),
            &services,
            &templates,
        ],
    )
}

/// PE-MF `[16]`: the MF template with EF.ICCID (swapped digits) and EF.DIR naming the USIM.
fn mf(identification: u16, iccid: &Iccid) -> Vec<u8> {
    let mf_fcp = tlv::encode(0xA1, &tlv::encode(0xC6, &PIN_STATUS));
    let mut record = tlv::encode(
        0x61,
        &[tlv::encode(0x4F, &USIM_AID), tlv::encode(0x50, b"USIM")].concat(),
    );
    record.resize(EF_DIR_RECORD, 0xFF);
    tlv::constructed(
        0xB0,
        &[
            &pe_header(identification),
            &tlv::encode(0x81, &TEMPLATE_MF),
            &tlv::encode(0xA2, &mf_fcp),
            &content(0xA4, &IccidPlace::EfIccid.encode(iccid)),
            &content(0xA5, &record),
            &tlv::encode(0xA6, &[]),
        ],
    )
}

/// PE-PUKCodes `[3]`: PUK1.
fn puk_codes(identification: u16) -> Vec<u8> {
    let puk = tlv::constructed(
        0x30,
        &[&tlv::encode(0x80, &[1]), &tlv::encode(0x81, &secret(PUK1))],
    );
    tlv::constructed(
        0xA3,
        &[&pe_header(identification), &tlv::encode(0xA1, &puk)],
    )
}

/// PE-PINCodes `[2]` of the MF: PIN1 (unblocked by PUK1, disabled) and ADM1.
fn pin_codes(identification: u16) -> Vec<u8> {
    let pin1 = tlv::constructed(
        0x30,
        &[
            &tlv::encode(0x80, &[1]),
            &tlv::encode(0x81, &secret(PIN1)),
            &tlv::encode(0x82, &[1]),
        ],
    );
    let adm1 = tlv::constructed(
        0x30,
        &[&tlv::encode(0x80, &[10]), &tlv::encode(0x81, &secret(ADM1))],
    );
    let config = tlv::encode(0xA0, &[pin1, adm1].concat());
    tlv::constructed(
        0xA2,
        &[&pe_header(identification), &tlv::encode(0xA1, &config)],
    )
}

/// PE-USIM `[19]`: ADF.USIM from its template, with EF.IMSI, EF.AD (the MNC length), EF.ACC
/// (the access class of the IMSI's last digit) and EF.SPN; the other mandatory files keep the
/// template's content.
fn usim(identification: u16, subscription: &Subscription) -> Vec<u8> {
    let adf_fcp = tlv::encode(
        0xA1,
        &[
            tlv::encode(0x83, &[0x7F, 0xF1]),
            tlv::encode(0x84, &USIM_AID),
            tlv::encode(0xC6, &PIN_STATUS),
        ]
        .concat(),
    );
    let last = subscription
        .imsi
        .bytes()
        .last()
        .map_or(0, |b| b.wrapping_sub(b'0') % 10);
    let access_class = (1u16 << last).to_be_bytes();
    let mut spn = vec![0x01];
    spn.extend_from_slice(b"smdpp-mock");
    spn.resize(17, 0xFF);
    tlv::constructed(
        0xB3,
        &[
            &pe_header(identification),
            &tlv::encode(0x81, &TEMPLATE_USIM),
            &tlv::encode(0xA2, &adf_fcp),
            &content(0xA3, &imsi_file(&subscription.imsi)),
            &tlv::encode(0xA4, &[]),       // ef-arr
            &tlv::encode(0xA8, &[]),       // ef-ust
            &content(0xAD, &spn),          // ef-spn
            &tlv::encode(0xAE, &[]),       // ef-est
            &content(0xB2, &access_class), // ef-acc
            &content(0xB5, &[0x00, 0x00, 0x00, subscription.mnc_len]), // ef-ad
            &tlv::encode(0xB6, &[]),       // ef-ecc
        ],
    )
}

/// PE-AKAParameter `[4]`: Milenage with K and OPc, the other parameters their defaults.
fn aka(identification: u16, subscription: &Subscription) -> Vec<u8> {
    let algorithm = tlv::constructed(
        0xA1,
        &[
            &tlv::encode(0x80, &[1]),
            &tlv::encode(0x81, &[0x00]),
            &tlv::encode(0x82, &subscription.k),
            &tlv::encode(0x83, &subscription.opc),
        ],
    );
    tlv::constructed(
        0xA4,
        &[&pe_header(identification), &tlv::encode(0xA1, &algorithm)],
    )
}

/// The package generated for an order of `iccid` (SIMalliance/TCA Interoperable Format, as the
/// GSMA TS.48 test profiles use it): the ProfileHeader, the MF with EF.ICCID and EF.DIR, PUK
/// and PIN codes, a USIM with EF.IMSI, EF.AD, EF.ACC and EF.SPN, Milenage's K and OPc, then
/// `filler` bytes of non-standard elements (derived from the ICCID, so the same order always
/// gets the same package; not `mandated`, so a card that does not know their issuer skips
/// them), and the End element.
pub fn synthetic(iccid: &Iccid, subscription: &Subscription, filler: usize) -> Vec<u8> {
    let mut out = header(iccid, "smdpp-mock generated profile");
    out.extend(mf(1, iccid));
    out.extend(puk_codes(2));
    out.extend(pin_codes(3));
    out.extend(usim(4, subscription));
    out.extend(aka(5, subscription));
    let mut id: u16 = 6;
    for content in filler_contents(iccid, filler) {
        out.extend(tlv::constructed(
            0xA9,
            &[
                &optional_pe_header(id),
                &tlv::encode(0x81, &ISSUER),
                &tlv::encode(0x82, &content),
            ],
        ));
        id += 1;
    }
    out.extend(tlv::encode(0xAA, &pe_header(id)));
    out
}

/// The contents of the filler elements: `filler` bytes in pieces of [`FILLER_ELEMENT`], a
/// SplitMix64 stream seeded with a digest of the ICCID, cheap enough to make per download.
fn filler_contents(iccid: &Iccid, filler: usize) -> Vec<Vec<u8>> {
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
    let mut out = Vec::new();
    let mut left = filler;
    while left > 0 {
        let n = left.min(FILLER_ELEMENT);
        let mut content = Vec::with_capacity(n + 8);
        while content.len() < n {
            content.extend_from_slice(&next().to_be_bytes());
        }
        content.truncate(n);
        out.push(content);
        left -= n;
    }
    out
}

/// The length of [`synthetic`]'s package, without making its filler.
pub fn synthetic_len(iccid: &Iccid, subscription: &Subscription, filler: usize) -> usize {
    let base = synthetic(iccid, subscription, 0).len();
    let mut len = base - tlv::encode(0xAA, &pe_header(6)).len();
    let mut id: u16 = 6;
    let mut left = filler;
    while left > 0 {
        let n = left.min(FILLER_ELEMENT);
        let inner = optional_pe_header(id).len()
            + tlv::encode(0x81, &ISSUER).len()
            + tlv::header(0x82, n).len()
            + n;
        len += tlv::header(0xA9, inner).len() + inner;
        left -= n;
        id += 1;
    }
    len + tlv::encode(0xAA, &pe_header(id)).len()
}

/// What a card checks of a package's structure before it installs it: profile elements, the
/// first the ProfileHeader, the last the End element, one MF element and a USIM (the NAA the
/// header's mandatory services name); the reason if not.
pub fn check_structure(package: &[u8]) -> Result<(), String> {
    let elements = tlv::read_all(package).map_err(|e| format!("not profile elements: {e}"))?;
    let tags: Vec<u32> = elements.iter().map(|e| e.tag).collect();
    if tags.first() != Some(&0xA0) {
        return Err("the first element is not the ProfileHeader".into());
    }
    if tags.last() != Some(&0xAA) {
        return Err("the last element is not the End element".into());
    }
    match tags.iter().filter(|t| **t == 0xB0).count() {
        1 => {}
        n => return Err(format!("{n} MF elements, not one")),
    }
    if !tags.contains(&0xB3) {
        return Err("no USIM element".into());
    }
    Ok(())
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
        let subscription = SubscriptionRule::default().for_iccid(&iccid);
        let package = synthetic(&iccid, &subscription, DEFAULT_FILLER);
        assert_eq!(header_iccid(&package).unwrap().digits(), iccid.digits());
        for filler in [0, 1, 2047, 2048, 2049, DEFAULT_FILLER, 100_000] {
            assert_eq!(
                synthetic_len(&iccid, &subscription, filler),
                synthetic(&iccid, &subscription, filler).len(),
                "{filler}"
            );
        }
        let elements = tlv::read_all(&package).unwrap();
        let tags: Vec<u32> = elements.iter().map(|e| e.tag).collect();
        assert_eq!(tags[..6], [0xA0, 0xB0, 0xA3, 0xA2, 0xB3, 0xA4]);
        assert_eq!(elements.last().unwrap().tag, 0xAA);
        assert!(package.len() > DEFAULT_FILLER);
        assert_eq!(check_structure(&package), Ok(()));
        assert_eq!(
            iccids_in(&package).unwrap(),
            (Some(iccid), Some(Some(iccid)))
        );
        assert_eq!(
            package,
            synthetic(&iccid, &subscription, DEFAULT_FILLER),
            "the same order, the same package"
        );
    }

    /// The derivation, by hand: test set 1 of 3GPP TS 35.208 gives OPc from K and OP; the IMSI
    /// takes the ICCID's last digits but its check digit.
    #[test]
    fn subscriptions_follow_the_documented_rule() {
        let k = [
            0x46, 0x5B, 0x5C, 0xE8, 0xB1, 0x99, 0xB4, 0x9F, 0xAA, 0x5F, 0x0A, 0x2E, 0xE2, 0x38,
            0xA6, 0xBC,
        ];
        let op = SubscriptionRule::default().op;
        let opc = [
            0xCD, 0x63, 0xCB, 0x71, 0x95, 0x4A, 0x9F, 0x4E, 0x48, 0xA5, 0x99, 0x4E, 0x37, 0xA0,
            0x2B, 0xAF,
        ];
        assert_eq!(milenage_opc(&k, &op), opc);
        let iccid: Iccid = "8949440000001155123".parse().unwrap();
        let s = SubscriptionRule::default().for_iccid(&iccid);
        assert_eq!(s.imsi, "001010000115512");
        assert_eq!(s.mnc_len, 2);
        assert_eq!(
            imsi_file("001010123456789"),
            [0x08, 0x09, 0x10, 0x10, 0x10, 0x32, 0x54, 0x76, 0x98]
        );
        let three = SubscriptionRule {
            mnc: "001".into(),
            ..SubscriptionRule::default()
        };
        assert_eq!(three.for_iccid(&iccid).imsi, "001001000115512");
        assert!(SubscriptionRule {
            mcc: "01".into(),
            ..SubscriptionRule::default()
        }
        .check()
        .is_err());
    }

    #[test]
    fn a_card_refuses_a_package_without_mf_or_usim() {
        let iccid: Iccid = "8944500100000000004".parse().unwrap();
        let s = SubscriptionRule::default().for_iccid(&iccid);
        let full = synthetic(&iccid, &s, 0);
        let elements = tlv::read_all(&full).unwrap();
        let without = |tag: u32| -> Vec<u8> {
            elements
                .iter()
                .filter(|e| e.tag != tag)
                .flat_map(|e| e.raw.to_vec())
                .collect()
        };
        assert_eq!(
            check_structure(&without(0xB3)),
            Err("no USIM element".into())
        );
        assert_eq!(
            check_structure(&without(0xB0)),
            Err("0 MF elements, not one".into())
        );
        assert!(check_structure(&without(0xAA)).is_err());
    }
}
