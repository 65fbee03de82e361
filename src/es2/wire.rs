//! The ES2+ JSON envelope (SGP.22 §6.5.1) and typed access to request fields.
//!
//! Requests are read field by field from a JSON object rather than through derived structs, so
//! that a missing field and a wrongly typed field get their own status codes and name the field.

use super::status::Es2Error;
use crate::ids::{Eid, Iccid, MatchingId};
use crate::json::{Json, Object};
use crate::profile::OrderMatchingId;

/// The request header (SGP.22 §6.5.1.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RequestHeader {
    /// `functionRequesterIdentifier`.
    pub function_requester_identifier: String,
    /// `functionCallIdentifier`.
    pub function_call_identifier: String,
}

/// A request body: one JSON object.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    map: &'a Object<'a>,
}

impl<'a> Fields<'a> {
    /// Fields of `map`.
    pub(crate) fn new(map: &'a Object<'a>) -> Self {
        Fields { map }
    }

    /// The request header: present, an object, with both identifiers as non-empty strings.
    pub(crate) fn header(&self) -> Result<RequestHeader, Es2Error> {
        let header = match self.map.get("header") {
            None | Some(Json::Null) => return Err(Es2Error::missing("header")),
            Some(Json::Object(h)) => Fields::new(h),
            Some(_) => return Err(Es2Error::invalid("header", "must be a JSON object")),
        };
        // The path is spelt out only for an error: this runs on every call.
        let field = |name: &str| -> Result<String, Es2Error> {
            match header.opt_str(name) {
                Ok(Some(s)) if !s.is_empty() => Ok(s.to_owned()),
                Ok(_) => Err(Es2Error::missing(&format!("header.{name}"))),
                Err(_) => Err(Es2Error::invalid(
                    &format!("header.{name}"),
                    "must be a string",
                )),
            }
        };
        Ok(RequestHeader {
            function_requester_identifier: field("functionRequesterIdentifier")?,
            function_call_identifier: field("functionCallIdentifier")?,
        })
    }

    /// An optional string field; JSON `null` counts as absent.
    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<&'a str>, Es2Error> {
        match self.map.get(name) {
            None | Some(Json::Null) => Ok(None),
            Some(Json::String(s)) => Ok(Some(s)),
            Some(_) => Err(Es2Error::invalid(name, "must be a string")),
        }
    }

    /// A mandatory string field.
    pub(crate) fn str(&self, name: &str) -> Result<&'a str, Es2Error> {
        self.opt_str(name)?.ok_or_else(|| Es2Error::missing(name))
    }

    /// A mandatory boolean field.
    pub(crate) fn bool(&self, name: &str) -> Result<bool, Es2Error> {
        match self.map.get(name) {
            None | Some(Json::Null) => Err(Es2Error::missing(name)),
            Some(Json::Bool(b)) => Ok(*b),
            Some(_) => Err(Es2Error::invalid(name, "must be true or false")),
        }
    }

    /// An optional ICCID field.
    pub(crate) fn opt_iccid(&self, name: &str) -> Result<Option<Iccid>, Es2Error> {
        self.opt_str(name)?
            .map(|s| s.parse().map_err(|e| Es2Error::invalid(name, e)))
            .transpose()
    }

    /// A mandatory ICCID field.
    pub(crate) fn iccid(&self, name: &str) -> Result<Iccid, Es2Error> {
        self.opt_iccid(name)?.ok_or_else(|| Es2Error::missing(name))
    }

    /// An optional `matchingId`-like field: absent, empty (SGP.22 §5.3.2: "no MatchingID"),
    /// or a MatchingID.
    pub(crate) fn opt_matching_id(&self, name: &str) -> Result<Option<OrderMatchingId>, Es2Error> {
        Ok(match self.opt_str(name)? {
            None => None,
            Some("") => Some(OrderMatchingId::Empty),
            Some(s) => Some(OrderMatchingId::Id(
                s.parse::<MatchingId>()
                    .map_err(|e| Es2Error::invalid(name, e))?,
            )),
        })
    }

    /// An optional EID field.
    pub(crate) fn opt_eid(&self, name: &str) -> Result<Option<Eid>, Es2Error> {
        self.opt_str(name)?
            .map(|s| s.parse().map_err(|e| Es2Error::invalid(name, e)))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn header_rules() {
        let cases = [
            (json!({}), "header"),
            (json!({"header": 1}), "header"),
            (
                json!({"header": {"functionCallIdentifier": "x"}}),
                "header.functionRequesterIdentifier",
            ),
            (
                json!({"header": {"functionRequesterIdentifier": "a", "functionCallIdentifier": ""}}),
                "header.functionCallIdentifier",
            ),
            (
                json!({"header": {"functionRequesterIdentifier": 5, "functionCallIdentifier": "x"}}),
                "header.functionRequesterIdentifier",
            ),
        ];
        for (body, field) in cases {
            let text = body.to_string();
            let doc = crate::json::parse(text.as_bytes()).unwrap();
            let err = Fields::new(doc.as_object().unwrap()).header().unwrap_err();
            assert_eq!(err.subject_identifier.as_deref(), Some(field), "{body}");
        }
    }
}
