//! Strict conformance (`smdp.conformance: strict`): in the default lenient mode grading only
//! observes; in strict mode a failed error-severity check refuses the request before anything
//! changes. This module says which failures refuse, and with what.

use super::catalog::{CheckId, Severity};
use super::grade::Grade;

/// The HTTP refusal (status and message) for a request whose head fails a check, decided before
/// its body is read.
pub(crate) fn head_refusal(grades: &[Grade]) -> Option<(u16, &'static str)> {
    let failed = |id: CheckId| grades.iter().any(|g| g.check == id && !g.passed);
    if failed(CheckId::Http002) {
        return Some((
            415,
            "Content-Type must be application/json (SGP.22 §6.2; conformance HTTP-002)",
        ));
    }
    if failed(CheckId::Http003) || failed(CheckId::Http004) {
        return Some((
            400,
            "X-Admin-Protocol must be gsma/rsp/v2.x.y (SGP.22 §6.2; conformance HTTP-003/004)",
        ));
    }
    None
}

/// The failed check that refuses a graded request, answered `Failed 1.3.1 / 2.1` naming it.
/// Identity problems are left to the normal answers (`1.1 / 1.x`), which say more.
pub(crate) fn body_refusal(grades: &[Grade]) -> Option<&Grade> {
    grades.iter().find(|g| {
        !g.passed
            && !matches!(g.check, CheckId::Env002 | CheckId::Tls001 | CheckId::Tls002)
            && g.check.check().severity == Severity::Error
    })
}
