//! The catalog of operator-client checks: stable IDs, what each verifies, why, and how bad a
//! failure is. `docs/conformance.md` is the same list for people.

use serde::Serialize;

/// How bad a failed check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A real SM-DP+ may refuse this, or the spec says SHALL.
    Error,
    /// Works with lenient SM-DP+s, but is a risk.
    Warning,
}

/// One check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `HTTP-003`.
    pub id: &'static str,
    /// One line.
    pub title: &'static str,
    /// Where the rule comes from.
    pub reference: &'static str,
    /// Error or warning.
    pub severity: Severity,
}

const fn check(
    id: &'static str,
    title: &'static str,
    reference: &'static str,
    severity: Severity,
) -> Check {
    Check {
        id,
        title,
        reference,
        severity,
    }
}

use Severity::{Error as E, Warning as W};

/// Every check, grouped: TLS, HTTP, envelope, fields, sequence, callback endpoint.
pub const CHECKS: &[Check] = &[
    check(
        "TLS-001",
        "A client certificate is presented",
        "SGP.22 §6.1.1 (mutual TLS on ES2+)",
        E,
    ),
    check(
        "TLS-002",
        "The client certificate identifies an operator",
        "SGP.22 §6.1.1, §6.4",
        E,
    ),
    check(
        "HTTP-001",
        "ES2+ functions are called with POST",
        "SGP.22 §6.2",
        E,
    ),
    check(
        "HTTP-002",
        "Content-Type is application/json",
        "SGP.22 §6.2",
        E,
    ),
    check("HTTP-003", "X-Admin-Protocol is present", "SGP.22 §6.2", E),
    check(
        "HTTP-004",
        "X-Admin-Protocol has the form gsma/rsp/v2.x.y",
        "SGP.22 §6.2, Annex I",
        E,
    ),
    check("HTTP-005", "The body is one JSON object", "SGP.22 §6.5", E),
    check(
        "ENV-001",
        "The request has a header object",
        "SGP.22 §6.5.1.1",
        E,
    ),
    check(
        "ENV-002",
        "functionRequesterIdentifier is one the certificate's operator may use",
        "SGP.22 §6.5.1.1, §6.4",
        E,
    ),
    check(
        "ENV-003",
        "functionCallIdentifier is present",
        "SGP.22 §6.5.1.1",
        E,
    ),
    check(
        "ENV-004",
        "functionCallIdentifier is not reused for a different request",
        "SGP.22 §5.2.4 (call correlation)",
        E,
    ),
    check(
        "FLD-001",
        "Field names are spelled and cased exactly",
        "SGP.22 §6.5.2; real clients send smdpAddress, comfirmationCode, profiletype",
        E,
    ),
    check(
        "FLD-002",
        "Fields have their JSON types (strings; releaseFlag a boolean)",
        "SGP.22 §6.5.2 schemas",
        E,
    ),
    check(
        "FLD-003",
        "ICCIDs are 19 or 20 digits (optional F pad)",
        "SGP.22 §5.2.1",
        E,
    ),
    check("FLD-004", "EIDs are 32 digits", "SGP.22 §5.2.1", E),
    check(
        "FLD-005",
        "MatchingIDs use only 0-9, A-Z and -",
        "SGP.22 §4.1.1",
        E,
    ),
    check(
        "FLD-006",
        "ConfirmOrder carries releaseFlag",
        "SGP.22 §5.3.2 (M)",
        E,
    ),
    check(
        "FLD-007",
        "finalProfileStatusIndicator is Available or Unavailable",
        "SGP.22 §5.3.3, Table 29",
        E,
    ),
    check(
        "FLD-008",
        "DownloadOrder gives iccid or profileType",
        "SGP.22 §5.3.1, Table 6a",
        E,
    ),
    check(
        "FLD-009",
        "CancelOrder repeats the order's EID and MatchingID",
        "SGP.22 §5.3.3 (SHALL)",
        E,
    ),
    check(
        "SEQ-001",
        "ConfirmOrder follows a DownloadOrder of that ICCID",
        "SGP.22 §3.1.6, §5.3.2",
        E,
    ),
    check(
        "SEQ-002",
        "ReleaseProfile follows a ConfirmOrder with releaseFlag false",
        "SGP.22 §5.3.4",
        W,
    ),
    check(
        "SEQ-003",
        "No ES2+ call targets a profile that is already installed",
        "SGP.22 §3.1.6",
        W,
    ),
    check(
        "CB-001",
        "The notification endpoint answers 204",
        "SGP.22 §6.3",
        E,
    ),
    check(
        "CB-002",
        "The notification endpoint answers with an empty body",
        "SGP.22 §6.3",
        W,
    ),
    check(
        "CB-003",
        "The notification endpoint accepts unknown fields (tac, imei, …)",
        "es2plus.md §3.5: Idemia sends them",
        E,
    ),
    check(
        "CB-004",
        "The notification endpoint accepts timeStamp for timestamp",
        "SGP.22 Annex I",
        W,
    ),
    check(
        "CB-005",
        "The notification endpoint accepts an ICCID with the F pad",
        "es2plus.md §3.5, §8",
        W,
    ),
    check(
        "CB-006",
        "The notification endpoint accepts the same notification twice",
        "at-least-once delivery",
        E,
    ),
    check(
        "CB-007",
        "The notification endpoint answers within 2 s",
        "delivery timeouts of real SM-DP+s",
        E,
    ),
    check(
        "CB-008",
        "The notification endpoint refuses a client without certificate when mTLS is configured",
        "SGP.22 §6.1.1",
        E,
    ),
];

/// The check with this id.
pub fn find(id: &str) -> Option<&'static Check> {
    CHECKS.iter().find(|c| c.id == id)
}

/// The check's position in [`CHECKS`]. Every request is graded on some thirty checks, so this
/// is on the hot path: a table indexed by the id's first letter and number, built at compile
/// time (which also proves those two tell every check apart), then one comparison.
pub fn position(id: &str) -> Option<usize> {
    let (letter, number) = slot(id.as_bytes())?;
    let position = POSITIONS[letter][number];
    let found = CHECKS.get(usize::from(position))?;
    // Ids come from string literals, usually the very ones in the catalog.
    let same = std::ptr::eq(found.id, id) || found.id == id;
    same.then_some(usize::from(position))
}

/// Checks per letter that the table has room for (numbers 1..=15).
const NUMBERS: usize = 16;
/// No check at this slot.
const EMPTY: u8 = u8::MAX;

/// `POSITIONS[letter][number]`: the position of the check with that first letter and number.
const POSITIONS: [[u8; NUMBERS]; 26] = {
    let mut table = [[EMPTY; NUMBERS]; 26];
    let mut i = 0;
    while i < CHECKS.len() {
        let Some((letter, number)) = slot(CHECKS[i].id.as_bytes()) else {
            panic!("a check id is not LETTERS-NNN with NNN below 16");
        };
        assert!(
            table[letter][number] == EMPTY,
            "two checks share a first letter and number"
        );
        assert!(i < EMPTY as usize, "too many checks for a u8 position");
        table[letter][number] = i as u8;
        i += 1;
    }
    table
};

/// The first letter (`A` = 0) and the three-digit number of `TLS-001`-shaped ids.
const fn slot(id: &[u8]) -> Option<(usize, usize)> {
    let len = id.len();
    if len < 5 || !id[0].is_ascii_uppercase() || id[len - 4] != b'-' {
        return None;
    }
    let (h, t, u) = (id[len - 3], id[len - 2], id[len - 1]);
    if !h.is_ascii_digit() || !t.is_ascii_digit() || !u.is_ascii_digit() {
        return None;
    }
    let number = (h - b'0') as usize * 100 + (t - b'0') as usize * 10 + (u - b'0') as usize;
    if number >= NUMBERS {
        return None;
    }
    Some(((id[0] - b'A') as usize, number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_its_own_position() {
        for (i, c) in CHECKS.iter().enumerate() {
            assert_eq!(position(c.id), Some(i), "{}", c.id);
        }
        assert_eq!(position("TLS-999"), None);
        assert_eq!(position("TXS-001"), None);
        assert_eq!(position("T"), None);
        assert_eq!(position("TLS-0a1"), None);
        assert_eq!(position("tLS-001"), None);
        assert_eq!(position("TLS-0001"), None);
        assert_eq!(position(""), None);
    }

    #[test]
    fn ids_are_unique_and_shaped() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
        assert!(CHECKS
            .iter()
            .all(|c| c.id.contains('-') && !c.title.is_empty()));
    }
}
