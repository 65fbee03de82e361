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
    pub id: CheckId,
    /// One line.
    pub title: &'static str,
    /// Where the rule comes from.
    pub reference: &'static str,
    /// Error or warning.
    pub severity: Severity,
}

impl Severity {
    /// `error` or `warning`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl CheckId {
    /// What exercises a check, for the report to say while nothing has: the callback checks
    /// that ordinary deliveries grade, and the ones only the probe can.
    pub fn exercised_by(self) -> Option<&'static str> {
        match self {
            CheckId::Cb001 | CheckId::Cb002 | CheckId::Cb007 => Some(
                "graded on every notification delivery, and by the probe: smdpp-mock conformance probe --operator ID",
            ),
            CheckId::Cb003 | CheckId::Cb004 | CheckId::Cb005 | CheckId::Cb006 | CheckId::Cb008 => {
                Some("only the probe checks this: smdpp-mock conformance probe --operator ID")
            }
            _ => None,
        }
    }
}

const fn check(
    id: CheckId,
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

/// The stable identifier of a check: `TLS-001` and so on, one variant each, in catalog order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckId {
    /// A client certificate is presented.
    Tls001,
    /// The client certificate identifies an operator.
    Tls002,
    /// ES2+ functions are called with POST.
    Http001,
    /// Content-Type is application/json.
    Http002,
    /// X-Admin-Protocol is present.
    Http003,
    /// X-Admin-Protocol has the form gsma/rsp/v2.x.y.
    Http004,
    /// The body is one JSON object.
    Http005,
    /// The request has a header object.
    Env001,
    /// functionRequesterIdentifier is one the certificate's operator may use.
    Env002,
    /// functionCallIdentifier is present.
    Env003,
    /// functionCallIdentifier is not reused for a different request.
    Env004,
    /// Field names are spelled and cased exactly.
    Fld001,
    /// Fields have their JSON types (strings; releaseFlag a boolean).
    Fld002,
    /// ICCIDs are 19 or 20 digits (optional F pad).
    Fld003,
    /// EIDs are 32 digits.
    Fld004,
    /// MatchingIDs use only 0-9, A-Z and -.
    Fld005,
    /// ConfirmOrder carries releaseFlag.
    Fld006,
    /// finalProfileStatusIndicator is Available or Unavailable.
    Fld007,
    /// DownloadOrder gives iccid or profileType.
    Fld008,
    /// CancelOrder repeats the order's EID and MatchingID.
    Fld009,
    /// ConfirmOrder follows a DownloadOrder of that ICCID.
    Seq001,
    /// ReleaseProfile follows a ConfirmOrder with releaseFlag false.
    Seq002,
    /// No ES2+ call targets a profile that is already installed.
    Seq003,
    /// The notification endpoint answers 204.
    Cb001,
    /// The notification endpoint answers with an empty body.
    Cb002,
    /// The notification endpoint accepts unknown fields (tac, imei, …).
    Cb003,
    /// The notification endpoint accepts timeStamp for timestamp.
    Cb004,
    /// The notification endpoint accepts an ICCID with the F pad.
    Cb005,
    /// The notification endpoint accepts the same notification twice.
    Cb006,
    /// The notification endpoint answers within 2 s.
    Cb007,
    /// The notification endpoint refuses a client without certificate when mTLS is configured.
    Cb008,
}

impl CheckId {
    /// The id as reports print it, e.g. `TLS-001`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Tls001 => "TLS-001",
            CheckId::Tls002 => "TLS-002",
            CheckId::Http001 => "HTTP-001",
            CheckId::Http002 => "HTTP-002",
            CheckId::Http003 => "HTTP-003",
            CheckId::Http004 => "HTTP-004",
            CheckId::Http005 => "HTTP-005",
            CheckId::Env001 => "ENV-001",
            CheckId::Env002 => "ENV-002",
            CheckId::Env003 => "ENV-003",
            CheckId::Env004 => "ENV-004",
            CheckId::Fld001 => "FLD-001",
            CheckId::Fld002 => "FLD-002",
            CheckId::Fld003 => "FLD-003",
            CheckId::Fld004 => "FLD-004",
            CheckId::Fld005 => "FLD-005",
            CheckId::Fld006 => "FLD-006",
            CheckId::Fld007 => "FLD-007",
            CheckId::Fld008 => "FLD-008",
            CheckId::Fld009 => "FLD-009",
            CheckId::Seq001 => "SEQ-001",
            CheckId::Seq002 => "SEQ-002",
            CheckId::Seq003 => "SEQ-003",
            CheckId::Cb001 => "CB-001",
            CheckId::Cb002 => "CB-002",
            CheckId::Cb003 => "CB-003",
            CheckId::Cb004 => "CB-004",
            CheckId::Cb005 => "CB-005",
            CheckId::Cb006 => "CB-006",
            CheckId::Cb007 => "CB-007",
            CheckId::Cb008 => "CB-008",
        }
    }

    /// The check's entry in [`CHECKS`].
    pub fn check(self) -> &'static Check {
        // `CHECKS` lists every variant at its own position (checked at compile time below).
        &CHECKS[self as usize]
    }

    /// The check with this id text, e.g. `HTTP-003`.
    pub fn parse(text: &str) -> Option<CheckId> {
        CHECKS.iter().map(|c| c.id).find(|id| id.as_str() == text)
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Every check, grouped: TLS, HTTP, envelope, fields, sequence, callback endpoint.
pub const CHECKS: &[Check] = &[
    check(
        CheckId::Tls001,
        "A client certificate is presented",
        "SGP.22 §6.1.1 (mutual TLS on ES2+)",
        E,
    ),
    check(
        CheckId::Tls002,
        "The client certificate identifies an operator",
        "SGP.22 §6.1.1, §6.4",
        E,
    ),
    check(
        CheckId::Http001,
        "ES2+ functions are called with POST",
        "SGP.22 §6.2",
        E,
    ),
    check(
        CheckId::Http002,
        "Content-Type is application/json",
        "SGP.22 §6.2",
        E,
    ),
    check(
        CheckId::Http003,
        "X-Admin-Protocol is present",
        "SGP.22 §6.2",
        E,
    ),
    check(
        CheckId::Http004,
        "X-Admin-Protocol has the form gsma/rsp/v2.x.y",
        "SGP.22 §6.2, Annex I",
        E,
    ),
    check(
        CheckId::Http005,
        "The body is one JSON object",
        "SGP.22 §6.5",
        E,
    ),
    check(
        CheckId::Env001,
        "The request has a header object",
        "SGP.22 §6.5.1.1",
        E,
    ),
    check(
        CheckId::Env002,
        "functionRequesterIdentifier is one the certificate's operator may use",
        "SGP.22 §6.5.1.1, §6.4",
        E,
    ),
    check(
        CheckId::Env003,
        "functionCallIdentifier is present",
        "SGP.22 §6.5.1.1",
        E,
    ),
    check(
        CheckId::Env004,
        "functionCallIdentifier is not reused for a different request",
        "SGP.22 §5.2.4 (call correlation)",
        E,
    ),
    check(
        CheckId::Fld001,
        "Field names are spelled and cased exactly",
        "SGP.22 §6.5.2; real clients send smdpAddress, comfirmationCode, profiletype",
        E,
    ),
    check(
        CheckId::Fld002,
        "Fields have their JSON types (strings; releaseFlag a boolean)",
        "SGP.22 §6.5.2 schemas",
        E,
    ),
    check(
        CheckId::Fld003,
        "ICCIDs are 19 or 20 digits (optional F pad)",
        "SGP.22 §5.2.1",
        E,
    ),
    check(CheckId::Fld004, "EIDs are 32 digits", "SGP.22 §5.2.1", E),
    check(
        CheckId::Fld005,
        "MatchingIDs use only 0-9, A-Z and -",
        "SGP.22 §4.1.1",
        E,
    ),
    check(
        CheckId::Fld006,
        "ConfirmOrder carries releaseFlag",
        "SGP.22 §5.3.2 (M)",
        E,
    ),
    check(
        CheckId::Fld007,
        "finalProfileStatusIndicator is Available or Unavailable",
        "SGP.22 §5.3.3, Table 29",
        E,
    ),
    check(
        CheckId::Fld008,
        "DownloadOrder gives iccid or profileType",
        "SGP.22 §5.3.1, Table 6a",
        E,
    ),
    check(
        CheckId::Fld009,
        "CancelOrder repeats the order's EID and MatchingID",
        "SGP.22 §5.3.3 (SHALL)",
        E,
    ),
    check(
        CheckId::Seq001,
        "ConfirmOrder follows a DownloadOrder of that ICCID",
        "SGP.22 §3.1.6, §5.3.2",
        E,
    ),
    check(
        CheckId::Seq002,
        "ReleaseProfile follows a ConfirmOrder with releaseFlag false",
        "SGP.22 §5.3.4",
        W,
    ),
    check(
        CheckId::Seq003,
        "No ES2+ call targets a profile that is already installed",
        "SGP.22 §3.1.6",
        W,
    ),
    check(
        CheckId::Cb001,
        "The notification endpoint answers 204",
        "SGP.22 §6.3",
        E,
    ),
    check(
        CheckId::Cb002,
        "The notification endpoint answers with an empty body",
        "SGP.22 §6.3",
        W,
    ),
    check(
        CheckId::Cb003,
        "The notification endpoint accepts unknown fields (tac, imei, …)",
        "SGP.22 §6.5.2.5; SM-DP+s in the field add vendor fields (docs/conformance.md)",
        E,
    ),
    check(
        CheckId::Cb004,
        "The notification endpoint accepts timeStamp for timestamp",
        "SGP.22 Annex I",
        W,
    ),
    check(
        CheckId::Cb005,
        "The notification endpoint accepts an ICCID with the F pad",
        "SGP.22 §6.5.2.5 (iccid pattern ^[0-9]{19}[0-9F]?$)",
        W,
    ),
    check(
        CheckId::Cb006,
        "The notification endpoint accepts the same notification twice",
        "at-least-once delivery",
        E,
    ),
    check(
        CheckId::Cb007,
        "The notification endpoint answers within 2 s",
        "delivery timeouts of real SM-DP+s",
        E,
    ),
    check(
        CheckId::Cb008,
        "The notification endpoint refuses a client without certificate when mTLS is configured",
        "SGP.22 §6.1.1",
        E,
    ),
];

// Each variant sits at its own position, so `CheckId::check` is one index.
const _: () = {
    let mut i = 0;
    while i < CHECKS.len() {
        assert!(CHECKS[i].id as usize == i, "CHECKS is not in CheckId order");
        i += 1;
    }
};

/// How fast a notification endpoint must answer (CB-007): real SM-DP+s give up on a receiver
/// after a few seconds.
pub(crate) const CALLBACK_ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// The check with this id.
pub fn find(id: &str) -> Option<&'static Check> {
    CheckId::parse(id).map(CheckId::check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_shaped() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|c| c.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), CHECKS.len());
        assert!(CHECKS
            .iter()
            .all(|c| c.id.as_str().contains('-') && !c.title.is_empty()));
        for c in CHECKS {
            assert_eq!(CheckId::parse(c.id.as_str()), Some(c.id));
        }
        for text in [
            "TLS-999", "TXS-001", "T", "TLS-0a1", "tLS-001", "TLS-0001", "",
        ] {
            assert_eq!(CheckId::parse(text), None, "{text:?}");
        }
    }
}
