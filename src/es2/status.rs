//! ES2+ status codes (SGP.22 §5.2.6) and the business error type that carries them.
//!
//! Every `Failed` answer is built from an [`Es2Error`]; this is the one place where a failure
//! becomes subject and reason codes.

use std::fmt;

pub(crate) use crate::sgp22::*;

/// A business failure of an ES2+ function: answered with HTTP 200 and status `Failed`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub(crate) struct Es2Error {
    /// Subject and reason.
    pub code: StatusCode,
    /// The offending object: a field name for format errors, otherwise the ICCID, EID, etc.
    pub subject_identifier: Option<String>,
    /// Human-readable explanation.
    pub message: String,
}

impl Es2Error {
    /// A failure with `code` and `message`.
    pub(crate) fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Es2Error {
            code,
            subject_identifier: None,
            message: message.into(),
        }
    }

    /// Names the offending object.
    pub(crate) fn subject(mut self, id: impl ToString) -> Self {
        self.subject_identifier = Some(id.to_string());
        self
    }

    /// `field` is missing.
    pub(crate) fn missing(field: &str) -> Self {
        Es2Error::new(
            MANDATORY_ELEMENT_MISSING,
            format!("mandatory element {field} is missing"),
        )
        .subject(field)
    }

    /// `field` is present but invalid.
    pub(crate) fn invalid(field: &str, why: impl fmt::Display) -> Self {
        Es2Error::new(FORMAT_INVALID, format!("{field}: {why}")).subject(field)
    }
}

impl From<&Es2Error> for crate::sgp22::StatusCodeData {
    fn from(e: &Es2Error) -> Self {
        crate::sgp22::StatusCodeData::new(e.code, e.subject_identifier.clone(), e.message.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn catalog_names_and_codes_are_unique() {
        let names: HashSet<_> = CATALOG.iter().map(|(n, _)| n).collect();
        let codes: HashSet<_> = CATALOG.iter().map(|(_, c)| c).collect();
        assert_eq!(names.len(), CATALOG.len());
        assert_eq!(codes.len(), CATALOG.len());
    }
}
