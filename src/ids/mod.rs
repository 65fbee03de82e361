//! Validated identifiers (ICCID, EID, MatchingID; SGP.22 §5.2.1, §4.1.1), from the device-side
//! crate [`smdpp_rsp::ids`], and the SM-DP+'s MatchingID generator.

mod generator;

pub(crate) use generator::MatchingIdGenerator;
pub use smdpp_rsp::ids::{
    check_fqdn, check_server_address, hex, luhn_check_digit, luhn_valid, sha256, Eid, FormatError,
    Iccid, IccidKey, MatchingId, MATCHING_ID_MAX_LEN,
};
