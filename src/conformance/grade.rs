//! Grading one ES2+ request against the catalog: pure functions from what was received (and
//! the state of the profile it names) to pass/fail outcomes.

use super::catalog::CheckId;
use crate::ids::{Eid, Iccid, MatchingId};
use crate::json::{Json, Object};
use crate::profile::{OrderMatchingId, Profile, ProfileState};
use crate::scenario::Operator;
use crate::sgp22::Function;

/// One graded check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grade {
    /// The check id.
    pub check: CheckId,
    /// Whether the request passed it.
    pub passed: bool,
    /// What was wrong (empty when passed).
    pub message: String,
}

impl Grade {
    /// `check` passed.
    pub fn pass(check: CheckId) -> Grade {
        Grade {
            check,
            passed: true,
            message: String::new(),
        }
    }

    /// `check` failed: `message` says what was wrong.
    pub fn fail(check: CheckId, message: impl Into<String>) -> Grade {
        Grade {
            check,
            passed: false,
            message: message.into(),
        }
    }
}

fn verdict(check: CheckId, ok: bool, message: impl FnOnce() -> String) -> Grade {
    if ok {
        Grade::pass(check)
    } else {
        Grade::fail(check, message())
    }
}

/// The HTTP-level checks, from the method and headers, added to `out`.
pub(crate) fn http(
    out: &mut Vec<Grade>,
    method: &str,
    content_type: Option<&str>,
    admin_protocol: Option<&str>,
) {
    let json = is_json(content_type);
    out.push(verdict(CheckId::Http001, method == "POST", || {
        format!("method {method}")
    }));
    out.push(verdict(CheckId::Http002, json, || match content_type {
        Some(c) => format!("Content-Type is {c:?}, not application/json"),
        None => "no Content-Type header (application/json expected)".into(),
    }));
    out.push(verdict(CheckId::Http003, admin_protocol.is_some(), || {
        "no X-Admin-Protocol header".into()
    }));
    // The shape is graded only when there is a header to look at (HTTP-003 covers its absence).
    if let Some(v) = admin_protocol {
        out.push(verdict(CheckId::Http004, is_v2_protocol(v), || {
            format!("X-Admin-Protocol is {v:?}, not gsma/rsp/v2.x.y")
        }));
    }
}

/// Whether a `Content-Type` is JSON (`application/json`, any parameters).
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    crate::sgp22::is_json(content_type)
}

/// `gsma/rsp/v2.<digits>.<digits>`.
fn is_v2_protocol(v: &str) -> bool {
    let number = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    v.strip_prefix("gsma/rsp/v2.")
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(minor, patch)| number(minor) && number(patch))
}

/// Keys each function defines (SGP.22 §6.5.2).
fn known_fields(function: Function) -> &'static [&'static str] {
    match function {
        Function::DownloadOrder => &["header", "eid", "iccid", "profileType"],
        Function::ConfirmOrder => &[
            "header",
            "iccid",
            "eid",
            "matchingId",
            "confirmationCode",
            "smdsAddress",
            "releaseFlag",
        ],
        Function::CancelOrder => &[
            "header",
            "iccid",
            "eid",
            "matchingId",
            "finalProfileStatusIndicator",
        ],
        Function::ReleaseProfile => &["header", "iccid"],
    }
}

const HEADER_FIELDS: &[&str] = &["functionRequesterIdentifier", "functionCallIdentifier"];

/// Misspellings seen in real clients (docs/conformance.md, FLD-001), besides case differences.
const MISSPELLINGS: &[(&str, &str)] = &[
    ("smdpAddress", "smdsAddress"),
    ("comfirmationCode", "confirmationCode"),
];

/// Unknown keys that are almost a known key.
fn misspelt<'a>(map: &'a Object<'_>, known: &[&str]) -> Vec<(&'a str, &'static str)> {
    let mut out = Vec::new();
    for key in map.keys() {
        if known.contains(&key) {
            continue;
        }
        let meant = known
            .iter()
            .find(|k| k.eq_ignore_ascii_case(key))
            .map(|k| -> &'static str { static_name(k) })
            .or_else(|| {
                MISSPELLINGS
                    .iter()
                    .find(|(wrong, right)| *wrong == key && known.contains(right))
                    .map(|(_, right)| *right)
            });
        if let Some(meant) = meant {
            out.push((key, meant));
        }
    }
    out
}

/// The `'static` name of a known field.
fn static_name(name: &str) -> &'static str {
    const ALL: &[&str] = &[
        "header",
        "eid",
        "iccid",
        "profileType",
        "matchingId",
        "confirmationCode",
        "smdsAddress",
        "releaseFlag",
        "finalProfileStatusIndicator",
        "functionRequesterIdentifier",
        "functionCallIdentifier",
    ];
    ALL.iter().find(|n| **n == name).copied().unwrap_or("field")
}

/// Everything graded from the body (`None`: it is not JSON), with the profile the request
/// names as it was before, added to `out` (the request path's one vector of grades).
pub(crate) fn parsed_body_into(
    out: &mut Vec<Grade>,
    function: Function,
    body: Option<&Json<'_>>,
    operator: Option<&Operator>,
    before: Option<&Profile>,
) {
    let map = match body {
        Some(Json::Object(map)) => {
            out.push(Grade::pass(CheckId::Http005));
            map
        }
        _ => {
            out.push(Grade::fail(
                CheckId::Http005,
                "the body is not one JSON object",
            ));
            return;
        }
    };
    let header = map.get("header").and_then(Json::as_object);
    envelope(out, header, operator);
    field_names(out, function, map, header);
    field_types(out, function, map, header);
    field_values(out, map);
    function_fields(out, function, map, before);
    if let Some(p) = before {
        sequence(out, function, p);
    }
}

/// The envelope (ENV-001 to ENV-003): a header naming the calling operator and the call.
fn envelope(out: &mut Vec<Grade>, header: Option<&Object<'_>>, operator: Option<&Operator>) {
    out.push(verdict(CheckId::Env001, header.is_some(), || {
        "no header object".into()
    }));
    let Some(h) = header else {
        return;
    };
    let requester = h.get("functionRequesterIdentifier").and_then(Json::as_str);
    if let Some(op) = operator {
        out.push(verdict(
            CheckId::Env002,
            requester.is_some_and(|r| op.requester_identifiers.iter().any(|x| x == r)),
            || match requester {
                Some(r) => format!(
                    "functionRequesterIdentifier {r:?} is not one of operator {}",
                    op.id
                ),
                None => "no functionRequesterIdentifier".into(),
            },
        ));
    }
    out.push(verdict(
        CheckId::Env003,
        h.get("functionCallIdentifier")
            .and_then(Json::as_str)
            .is_some_and(|c| !c.is_empty()),
        || "no functionCallIdentifier".into(),
    ));
}

/// FLD-001: no key that is almost one the function defines, in the body or its header.
fn field_names(
    out: &mut Vec<Grade>,
    function: Function,
    map: &Object<'_>,
    header: Option<&Object<'_>>,
) {
    let mut wrong: Vec<String> = misspelt(map, known_fields(function))
        .into_iter()
        .map(|(k, m)| format!("{k} (should be {m})"))
        .collect();
    if let Some(h) = header {
        wrong.extend(
            misspelt(h, HEADER_FIELDS)
                .into_iter()
                .map(|(k, m)| format!("header.{k} (should be {m})")),
        );
    }
    out.push(verdict(CheckId::Fld001, wrong.is_empty(), || {
        wrong.join(", ")
    }));
}

/// FLD-002: the known keys have their JSON types (strings, but an object header and a boolean
/// releaseFlag).
fn field_types(
    out: &mut Vec<Grade>,
    function: Function,
    map: &Object<'_>,
    header: Option<&Object<'_>>,
) {
    let mut types = Vec::new();
    for (key, value) in map.iter() {
        let ok = match key {
            "header" => value.is_object(),
            "releaseFlag" => value.is_boolean(),
            k if known_fields(function).contains(&k) => value.is_string(),
            _ => true,
        };
        if !ok {
            types.push(format!("{key} is {value}"));
        }
    }
    if let Some(h) = header {
        for key in HEADER_FIELDS {
            if h.get(key).is_some_and(|v| !v.is_string()) {
                types.push(format!("header.{key} is not a string"));
            }
        }
    }
    out.push(verdict(CheckId::Fld002, types.is_empty(), || {
        types.join(", ")
    }));
}

/// FLD-003 to FLD-005: the identifiers given are well-formed.
fn field_values(out: &mut Vec<Grade>, map: &Object<'_>) {
    let text = |k: &str| map.get(k).and_then(Json::as_str);
    if let Some(i) = text("iccid") {
        out.push(verdict(CheckId::Fld003, i.parse::<Iccid>().is_ok(), || {
            format!("iccid {i:?}")
        }));
    }
    if let Some(e) = text("eid") {
        out.push(verdict(CheckId::Fld004, e.parse::<Eid>().is_ok(), || {
            format!("eid {e:?}")
        }));
    }
    if let Some(m) = text("matchingId").filter(|m| !m.is_empty()) {
        out.push(verdict(
            CheckId::Fld005,
            m.parse::<MatchingId>().is_ok(),
            || format!("matchingId {m:?}"),
        ));
    }
}

/// FLD-006 to FLD-009: what each function requires of its body.
fn function_fields(
    out: &mut Vec<Grade>,
    function: Function,
    map: &Object<'_>,
    before: Option<&Profile>,
) {
    // JSON null counts as absent, as in normal processing.
    let present = |k: &str| map.get(k).is_some_and(|v| !v.is_null());
    match function {
        Function::DownloadOrder => {
            // A miscased iccid/profileType is FLD-001's finding; don't count it twice.
            let miscased = map.keys().any(|k| {
                !["iccid", "profileType"].contains(&k)
                    && (k.eq_ignore_ascii_case("iccid") || k.eq_ignore_ascii_case("profileType"))
            });
            if !miscased {
                out.push(verdict(
                    CheckId::Fld008,
                    present("iccid") || present("profileType"),
                    || "neither iccid nor profileType".into(),
                ));
            }
        }
        Function::ConfirmOrder => {
            out.push(verdict(CheckId::Fld006, present("releaseFlag"), || {
                "no releaseFlag".into()
            }))
        }
        Function::CancelOrder => {
            let indicator = map
                .get("finalProfileStatusIndicator")
                .and_then(Json::as_str);
            out.push(verdict(
                CheckId::Fld007,
                matches!(indicator, Some("Available" | "Unavailable")),
                || match indicator {
                    Some(i) => format!(
                        "finalProfileStatusIndicator is {i:?}, not Available or Unavailable"
                    ),
                    None => "no finalProfileStatusIndicator".into(),
                },
            ));
            if let Some(p) = before {
                let mut missing = Vec::new();
                if p.eid.is_some() && !present("eid") {
                    missing.push("eid");
                }
                if matches!(p.matching_id, Some(OrderMatchingId::Id(_))) && !present("matchingId") {
                    missing.push("matchingId");
                }
                out.push(verdict(CheckId::Fld009, missing.is_empty(), || {
                    format!(
                        "the order has {} but the request leaves it out",
                        missing.join(" and ")
                    )
                }));
            }
        }
        Function::ReleaseProfile => {}
    }
}

/// SEQ-001 to SEQ-003: the call fits the profile's state before it.
fn sequence(out: &mut Vec<Grade>, function: Function, p: &Profile) {
    match function {
        Function::ConfirmOrder => out.push(verdict(
            CheckId::Seq001,
            matches!(p.state, ProfileState::Allocated | ProfileState::Linked),
            || format!("ConfirmOrder on a profile in state {}", p.state),
        )),
        Function::ReleaseProfile => out.push(verdict(
            CheckId::Seq002,
            p.state == ProfileState::Confirmed,
            || format!("ReleaseProfile on a profile in state {}", p.state),
        )),
        _ => {}
    }
    out.push(verdict(
        CheckId::Seq003,
        p.state != ProfileState::Installed,
        || format!("{} on an installed profile", function.name()),
    ));
}

/// A fingerprint of the request without its header, to tell a retry of the same request
/// (same call identifier, same content) from a reuse for a different one. Members are sorted
/// by key, so equal requests hash equally whatever their field order.
pub(crate) fn fingerprint(function: Function, body: &Json<'_>) -> Option<u64> {
    use std::hash::{Hash, Hasher};
    let map = body.as_object()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    function.name().hash(&mut hasher);
    for (key, value) in map.iter().filter(|(k, _)| *k != "header") {
        key.hash(&mut hasher);
        hash_json(value, &mut hasher);
    }
    Some(hasher.finish())
}

/// Feeds a value's structure into `hasher`, without serialising it.
fn hash_json(value: &Json<'_>, hasher: &mut impl std::hash::Hasher) {
    use std::hash::Hash;
    std::mem::discriminant(value).hash(hasher);
    match value {
        Json::Null => {}
        Json::Bool(b) => b.hash(hasher),
        // serde_json's text for the number: 1 and 1.0 differ, as they do in `Value`.
        Json::Number(n) => {
            use std::fmt::Write;
            struct Feed<'h, H>(&'h mut H);
            impl<H: std::hash::Hasher> Write for Feed<'_, H> {
                fn write_str(&mut self, s: &str) -> std::fmt::Result {
                    self.0.write(s.as_bytes());
                    Ok(())
                }
            }
            let _ = write!(Feed(hasher), "{n}");
        }
        Json::String(s) => s.hash(hasher),
        Json::Array(items) => {
            items.len().hash(hasher);
            for item in items {
                hash_json(item, hasher);
            }
        }
        Json::Object(o) => {
            o.len().hash(hasher);
            for (k, v) in o.iter() {
                k.hash(hasher);
                hash_json(v, hasher);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(function: Function, body: &[u8]) -> Vec<Grade> {
        let parsed = crate::json::parse(body).ok();
        let mut out = Vec::new();
        parsed_body_into(&mut out, function, parsed.as_ref(), None, None);
        out
    }

    fn failed(outcomes: &[Grade]) -> Vec<CheckId> {
        outcomes
            .iter()
            .filter(|o| !o.passed)
            .map(|o| o.check)
            .collect()
    }

    #[test]
    fn misspellings_and_cases() {
        let request = br#"{"header":{"functionrequesterIDentifier":"a","functionCallIdentifier":"1"},"iccid":"8944500100000000004","smdpAddress":"x","releaseFlag":"true","vendor":1}"#;
        let out = body(Function::ConfirmOrder, request);
        assert_eq!(failed(&out), vec![CheckId::Fld001, CheckId::Fld002]);
        let msg = &out
            .iter()
            .find(|o| o.check == CheckId::Fld001)
            .unwrap()
            .message;
        assert!(msg.contains("smdpAddress (should be smdsAddress)"), "{msg}");
        assert!(
            msg.contains(
                "header.functionrequesterIDentifier (should be functionRequesterIdentifier)"
            ),
            "{msg}"
        );
    }

    #[test]
    fn protocol_shape() {
        assert!(is_v2_protocol("gsma/rsp/v2.5.0"));
        assert!(!is_v2_protocol("gsma/rsp/v3.1.0"));
        assert!(!is_v2_protocol("gsma/rsp/v2.5"));
        assert!(!is_v2_protocol("gsma/rsp/v2.5.0.1"));
        assert!(!is_v2_protocol("gsma/rsp/v2..0"));
        assert!(!is_v2_protocol("gsma/rsp/v2.5."));
        assert!(is_v2_protocol("gsma/rsp/v2.10.42"));
    }
}
