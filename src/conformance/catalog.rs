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

/// The check's position in [`CHECKS`], found without string comparisons: every request is
/// graded on some thirty checks, so this is on the hot path. Ids are unique by their first
/// letter and number (`TLS-001`, `HTTP-004`, …), which a test checks.
pub fn position(id: &str) -> Option<usize> {
    static KEYS: std::sync::OnceLock<Vec<(u32, usize)>> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        let mut keys: Vec<(u32, usize)> = CHECKS
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((key(c.id)?, i)))
            .collect();
        keys.sort_unstable();
        keys
    });
    let k = key(id)?;
    let i = keys.binary_search_by_key(&k, |&(k, _)| k).ok()?;
    let (_, position) = keys[i];
    // Ids come from this crate's code; the length tells apart what letter and number do not.
    (CHECKS[position].id.len() == id.len()).then_some(position)
}

/// First letter, second letter and the three-digit number, packed: `TLS-001` → T, L, 1.
fn key(id: &str) -> Option<u32> {
    let b = id.as_bytes();
    let [first, second, ..] = *b else {
        return None;
    };
    let [h, t, u] = *b.get(b.len().checked_sub(3)?..)? else {
        return None;
    };
    let digit = |c: u8| c.is_ascii_digit().then(|| u32::from(c - b'0'));
    let number = digit(h)? * 100 + digit(t)? * 10 + digit(u)?;
    Some(u32::from(first) << 24 | u32::from(second) << 16 | number)
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
