//! Validated identifiers: strings from the wire become these types once, at the edge.
//!
//! Formats follow SGP.22 §5.2.1 (Table 21) and §4.1.1:
//! - ICCID: 19 or 20 digits, where a 19-digit ICCID may carry a trailing `F` pad
//!   (`^[0-9]{19}[0-9F]?$`). The pad does not change which profile is meant.
//! - EID: exactly 32 decimal digits.
//! - MatchingID: characters `0-9`, `A-Z` and `-` only.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier; the text is shown to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct FormatError(pub String);

/// The lookup key of a profile: an ICCID without its `F` pad.
///
/// Packs the digits into one integer so a million-profile inventory stays small and hashes fast.
/// Bit 0 records whether the ICCID has 20 digits, so `…0` (19 digits) and `…00` (20) differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IccidKey(u128);

impl IccidKey {
    fn new(value: u128, twenty_digits: bool) -> Self {
        IccidKey((value << 1) | u128::from(twenty_digits))
    }

    fn digit_count(self) -> usize {
        if self.0 & 1 == 1 {
            20
        } else {
            19
        }
    }

    fn value(self) -> u128 {
        self.0 >> 1
    }

    /// The packed form, for hashing and fingerprints.
    pub fn packed(self) -> u128 {
        self.0
    }
}

impl fmt::Display for IccidKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:0width$}", self.value(), width = self.digit_count())
    }
}

/// An ICCID as written by whoever supplied it: the key plus whether it carried the `F` pad.
///
/// `Display` reproduces the exact input form, which is how ES2+ answers echo the caller's ICCID
/// (SGP.22 Table 23: "the returned value SHALL be the same"). Packed into one integer (bit 0:
/// the pad, the rest: the key) so a profile stays small.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Iccid(u128);

impl Iccid {
    fn new(key: IccidKey, padded: bool) -> Self {
        Iccid((key.0 << 1) | u128::from(padded))
    }

    /// The pad-insensitive key used for lookups.
    pub fn key(&self) -> IccidKey {
        IccidKey(self.0 >> 1)
    }

    /// Whether the ICCID was written with a trailing `F`.
    pub fn is_padded(&self) -> bool {
        self.0 & 1 == 1
    }

    /// The ICCID whose digits are `body` (written with `width` digits, leading zeros kept)
    /// followed by its Luhn check digit: the fast path for generated inventories.
    ///
    /// `width` must be 18 or 19 and `body` must fit in it; `padded` only applies to 19-digit
    /// ICCIDs.
    pub fn from_body(body: u128, width: usize, padded: bool) -> Option<Iccid> {
        if !(width == 18 || width == 19) || body >= 10u128.pow(width as u32) {
            return None;
        }
        let mut sum = 0u32;
        let mut rest = body;
        let mut double = true;
        while rest > 0 {
            let mut d = (rest % 10) as u32;
            if double {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
            double = !double;
            rest /= 10;
        }
        let check = u128::from((10 - sum % 10) % 10);
        let twenty = width == 19;
        Some(Iccid::new(
            IccidKey::new(body * 10 + check, twenty),
            padded && !twenty,
        ))
    }

    /// The ICCID digits without pad.
    pub fn digits(&self) -> String {
        self.key().to_string()
    }

    /// Whether the last digit is the Luhn check digit of the ones before it (ITU-T E.118).
    pub fn luhn_valid(&self) -> bool {
        luhn_valid(&self.digits())
    }

    /// Builds the ICCID from a digit prefix by appending its Luhn check digit.
    ///
    /// The prefix must be 18 or 19 digits long.
    pub fn with_check_digit(prefix: &str, padded: bool) -> Result<Iccid, FormatError> {
        let digit = luhn_check_digit(prefix)
            .ok_or_else(|| FormatError(format!("ICCID prefix {prefix:?} is not all digits")))?;
        let mut text = format!("{prefix}{digit}");
        if padded {
            text.push('F');
        }
        text.parse()
    }
}

impl FromStr for Iccid {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            FormatError(format!(
                "ICCID {s:?} is not 19 or 20 digits (a 19-digit ICCID may end in the pad F)"
            ))
        };
        let (digits, padded) = match s.strip_suffix('F') {
            Some(rest) => (rest, true),
            None => (s, false),
        };
        let valid_len = if padded {
            digits.len() == 19
        } else {
            digits.len() == 19 || digits.len() == 20
        };
        if !valid_len || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let value = digits.parse::<u128>().map_err(|_| bad())?;
        Ok(Iccid::new(IccidKey::new(value, digits.len() == 20), padded))
    }
}

impl fmt::Display for Iccid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.key())?;
        if self.is_padded() {
            f.write_str("F")?;
        }
        Ok(())
    }
}

impl Serialize for Iccid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Iccid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The 32-digit eUICC identifier (SGP.22 §5.2.1, SGP.02 §2.2.2).
///
/// Never all zeros, which lets `Option<Eid>` take no more room than an `Eid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Eid(std::num::NonZeroU128);

impl Eid {
    /// An EID from its numeric value; `None` for zero. For constants.
    pub const fn from_value(value: u128) -> Option<Eid> {
        match std::num::NonZeroU128::new(value) {
            Some(v) if value < 10u128.pow(32) => Some(Eid(v)),
            _ => None,
        }
    }
}

impl FromStr for Eid {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 32 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(FormatError(format!("EID {s:?} is not exactly 32 digits")));
        }
        let value = s
            .parse::<u128>()
            .map_err(|_| FormatError(format!("EID {s:?} is not exactly 32 digits")))?;
        std::num::NonZeroU128::new(value)
            .map(Eid)
            .ok_or_else(|| FormatError("EID 000…0 is not a valid EID".into()))
    }
}

impl fmt::Display for Eid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032}", self.0.get())
    }
}

impl Serialize for Eid {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Eid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Longest MatchingID accepted. SGP.22 §4.1 caps the whole Activation Code at 255 characters;
/// this leaves room for `1$`, the SM-DP+ address and the separators.
pub const MATCHING_ID_MAX_LEN: usize = 128;

/// A non-empty MatchingID (SGP.22 §4.1.1): the Activation Code token or SM-DS EventID.
///
/// The zero-length MatchingID of the Default SM-DP+ use case is not a `MatchingId`; code that
/// allows it says so with its own type.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MatchingId(Box<str>);

impl MatchingId {
    /// The MatchingID text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for MatchingId {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(FormatError("MatchingID is empty".into()));
        }
        if s.len() > MATCHING_ID_MAX_LEN {
            return Err(FormatError(format!(
                "MatchingID is {} characters long; at most {MATCHING_ID_MAX_LEN} are accepted",
                s.len()
            )));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_digit() || c.is_ascii_uppercase() || *c == '-'))
        {
            return Err(FormatError(format!(
                "MatchingID {s:?} contains {c:?}; only 0-9, A-Z and '-' are allowed (SGP.22 §4.1.1)"
            )));
        }
        Ok(MatchingId(s.into()))
    }
}

impl fmt::Display for MatchingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for MatchingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

/// Checks an FQDN as SGP.22 §5.2.1 defines it: dot-separated labels from the QR-code
/// alphanumeric character set (ISO/IEC 18004), here as letters, digits and `-`, at most 255
/// characters, no empty label.
pub fn check_fqdn(s: &str) -> Result<(), FormatError> {
    let bad = |why: &str| Err(FormatError(format!("{s:?} is not a valid FQDN: {why}")));
    if s.is_empty() || s.len() > 255 {
        return bad("length must be 1 to 255");
    }
    for label in s.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("every label must be 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return bad("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("a label must not start or end with '-'");
        }
    }
    Ok(())
}

/// Checks an RSP server address as the mock takes it: an FQDN ([`check_fqdn`]), optionally
/// followed by `:` and a port (1 to 65535). SGP.22 addresses are FQDNs on port 443; a port lets
/// the address name a test server on another (the mock's SM-DS on 6445).
pub fn check_server_address(s: &str) -> Result<(), FormatError> {
    match s.rsplit_once(':') {
        Some((host, port)) => {
            let valid_port = !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
            if !valid_port {
                return Err(FormatError(format!(
                    "{s:?} is not a valid address: the port must be 1 to 65535"
                )));
            }
            check_fqdn(host)
        }
        None => check_fqdn(s),
    }
}

/// The Luhn check digit for `digits`, or `None` if it holds anything but ASCII digits.
pub fn luhn_check_digit(digits: &str) -> Option<u8> {
    let mut sum = 0u32;
    // Walking from the right, every first digit (the one next to the check digit) is doubled.
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 0 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    Some(((10 - sum % 10) % 10) as u8)
}

/// Whether the last digit of `digits` is the Luhn check digit of the others.
pub fn luhn_valid(digits: &str) -> bool {
    let Some((body, last)) = digits
        .len()
        .checked_sub(1)
        .filter(|_| digits.is_ascii())
        .map(|n| digits.split_at(n))
    else {
        return false;
    };
    match (luhn_check_digit(body), last.bytes().next()) {
        (Some(d), Some(l)) if l.is_ascii_digit() => d == l - b'0',
        _ => false,
    }
}

/// Lower-case hex of `bytes` (serial numbers, digests).
#[doc(hidden)]
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// SHA-256 of `data` (Confirmation Code hashes, SGP.22 §5.3.2).
#[doc(hidden)]
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn server_addresses_are_fqdns_with_an_optional_port() {
        for ok in ["smds.example", "localhost:6445", "a-b.example:1", "x:65535"] {
            assert!(check_server_address(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ":6445",
            "localhost:",
            "localhost:0",
            "localhost:65536",
            "host:12a",
            "a..b",
            "[::1]:6445",
            "h:1:2",
        ] {
            assert!(check_server_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iccid_forms() {
        let a: Iccid = "8944500102198304826".parse().unwrap();
        let b: Iccid = "8944500102198304826F".parse().unwrap();
        let c: Iccid = "89445001021983048260".parse().unwrap();
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        assert_eq!(b.to_string(), "8944500102198304826F");
        assert_eq!(c.to_string(), "89445001021983048260");
        for bad in [
            "",
            "894450010219830482",
            "89445001021983048260F",
            "8944500102198304826f",
            "894450010219830482X6",
            "+944500102198304826",
            "894450010219830482٣6",
        ] {
            assert!(bad.parse::<Iccid>().is_err(), "{bad}");
        }
    }

    #[test]
    fn luhn_known_values() {
        // Example ICCID from ITU-T E.118 style numbering with a known check digit.
        assert_eq!(luhn_check_digit("7992739871"), Some(3));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        let iccid = Iccid::with_check_digit("894450010219830482", false).unwrap();
        assert!(iccid.luhn_valid());
    }

    #[test]
    fn eid_and_matching_id() {
        let eid: Eid = "89049032123451234512345678901235".parse().unwrap();
        assert_eq!(eid.to_string(), "89049032123451234512345678901235");
        let zero: Eid = "00000000000000000000000000000001".parse().unwrap();
        assert_eq!(zero.to_string(), "00000000000000000000000000000001");
        assert!("00000000000000000000000000000000".parse::<Eid>().is_err());
        assert!("8904903212345123451234567890123".parse::<Eid>().is_err());
        assert!("8904903212345123451234567890123A".parse::<Eid>().is_err());
        assert!("04386-AGYFT-A74Y8-3F815".parse::<MatchingId>().is_ok());
        assert!("abc".parse::<MatchingId>().is_err());
        assert!("".parse::<MatchingId>().is_err());
        assert!("A_B".parse::<MatchingId>().is_err());
    }

    #[test]
    fn fqdn_rules() {
        assert!(check_fqdn("lpa.ds.gsma.com").is_ok());
        assert!(check_fqdn("smdp-plus.example.com").is_ok());
        for bad in ["", "a..b", "-a.com", "a_b.com", "https://x.com", "a.com/"] {
            assert!(check_fqdn(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn from_body_matches_the_text_path(body in 0u128..10u128.pow(18), wide in any::<bool>(), pad in any::<bool>()) {
            let width = if wide { 19 } else { 18 };
            let body = if wide { body * 10 + 7 } else { body };
            let fast = Iccid::from_body(body, width, pad).unwrap();
            let slow = Iccid::with_check_digit(&format!("{body:0width$}"), pad && !wide).unwrap();
            prop_assert_eq!(fast, slow);
        }

        #[test]
        fn check_digit_always_validates(prefix in "[0-9]{18,19}") {
            let iccid = Iccid::with_check_digit(&prefix, false).unwrap();
            prop_assert!(iccid.luhn_valid());
        }

        #[test]
        fn single_digit_change_is_detected(prefix in "[0-9]{18}", pos in 0usize..19, delta in 1u8..10) {
            let full = Iccid::with_check_digit(&prefix, false).unwrap().digits();
            let mut bytes = full.into_bytes();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(std::str::from_utf8(&bytes).unwrap()));
        }

        #[test]
        fn iccid_round_trips(s in "[0-9]{19}F?|[0-9]{20}") {
            let iccid: Iccid = s.parse().unwrap();
            prop_assert_eq!(iccid.to_string(), s);
        }

        #[test]
        fn parsers_never_panic(s in "\\PC{0,40}") {
            let _ = s.parse::<Iccid>();
            let _ = s.parse::<Eid>();
            let _ = s.parse::<MatchingId>();
            let _ = check_fqdn(&s);
            let _ = luhn_valid(&s);
        }
    }
}
