//! The ASN.1 binding of ES9+ (SGP.22 §6.6): one path, `POST /gsma/rsp2/asn1` with
//! `Content-Type: application/x-gsma-rsp-asn1`, a DER `RemoteProfileProvisioningRequest`
//! (`[2] CHOICE`, tag `A2`, of the five ES9+ requests) answered with a
//! `RemoteProfileProvisioningResponse`.
//!
//! The data are the JSON binding's (§6.5.2), so this module converts between the DER and the
//! JSON binding's fields (base64 of the same data objects, `transactionId` in hex): an LPA
//! builds the JSON fields and sends them as DER ([`encode_request`], [`decode_response`]), an
//! SM-DP+ reads the DER into the fields its functions read ([`decode_request`],
//! [`encode_response`]).
//!
//! Tagging follows X.680 §31.2.7 under the module's `AUTOMATIC TAGS`: a context tag on a
//! *tagged* CHOICE type is implicit, so `authenticateServerResponse [56]
//! AuthenticateServerResponse` is the eUICC's `BF38` object as it is, and the
//! `cancelSessionResponse` of `CancelSessionRequestEs9` (components untagged, so tagged `[0]`,
//! `[1]`) is `A1` around the chosen alternative of the card's `BF41`; the alternatives of the
//! response CHOICEs are `[0]` (the `…Ok` SEQUENCE, `A0`) and `[1]` (the error INTEGER, `81`).
//! Some compilers (Python's asn1tools) tag such a component explicitly, doubling the tag
//! (`BF38 { BF38 { … } }`); [`decode_request`] accepts that form as well, and the bare object
//! where a context tag replaced its own.

use serde_json::{Map, Value};

use crate::{crypto, tlv};

/// The one path of the ASN.1 binding (§6.6.1).
pub const PATH: &str = "/gsma/rsp2/asn1";
/// The media type of the ASN.1 binding (§6.2).
pub const CONTENT_TYPE: &str = "application/x-gsma-rsp-asn1";
/// `RemoteProfileProvisioningRequest ::= [2] CHOICE` and the response: tag `A2`.
const ENVELOPE: u32 = 0xA2;
/// The `…Ok` alternative of a response CHOICE (automatic tag `[0]`, constructed).
const OK: u32 = 0xA0;
/// The error INTEGER alternative of a response CHOICE (automatic tag `[1]`).
const ERROR: u32 = 0x81;

/// The ES9+ functions of the binding, by their alternative of the CHOICE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// `initiateAuthenticationRequest [57]`, tag `BF39`.
    InitiateAuthentication,
    /// `authenticateClientRequest [59]`, tag `BF3B`.
    AuthenticateClient,
    /// `getBoundProfilePackageRequest [58]`, tag `BF3A`.
    GetBoundProfilePackage,
    /// `cancelSessionRequestEs9 [65]`, tag `BF41`.
    CancelSession,
    /// `handleNotification [61]`, tag `BF3D` (no response, §6.6.2.4).
    HandleNotification,
}

/// Why bytes are not a message of the binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Asn1Error(pub String);

impl From<tlv::TlvError> for Asn1Error {
    fn from(e: tlv::TlvError) -> Self {
        Asn1Error(e.to_string())
    }
}

/// `InitiateAuthenticationResponse`'s error INTEGER (§6.6.2.1).
pub const INITIATE_AUTHENTICATION_ERRORS: &[(u64, &str)] = &[
    (1, "invalidDpAddress"),
    (2, "euiccVersionNotSupportedByDp"),
    (3, "ciPKIdNotSupported"),
];
/// `AuthenticateClientResponseEs9`'s error INTEGER (§6.6.2.2).
pub const AUTHENTICATE_CLIENT_ERRORS: &[(u64, &str)] = &[
    (1, "eumCertificateInvalid"),
    (2, "eumCertificateExpired"),
    (3, "euiccCertificateInvalid"),
    (4, "euiccCertificateExpired"),
    (5, "euiccSignatureInvalid"),
    (6, "matchingIdRefused"),
    (7, "eidMismatch"),
    (8, "noEligibleProfile"),
    (9, "ciPKUnknown"),
    (10, "invalidTransactionId"),
    (11, "insufficientMemory"),
    (127, "undefinedError"),
];
/// `GetBoundProfilePackageResponse`'s error INTEGER (§6.6.2.3).
pub const GET_BOUND_PROFILE_PACKAGE_ERRORS: &[(u64, &str)] = &[
    (1, "euiccSignatureInvalid"),
    (2, "confirmationCodeMissing"),
    (3, "confirmationCodeRefused"),
    (4, "confirmationCodeRetriesExceeded"),
    (5, "bppRebindingRefused"),
    (6, "downloadOrderExpired"),
    (95, "invalidTransactionId"),
    (127, "undefinedError"),
];
/// `CancelSessionResponseEs9`'s error INTEGER (§6.6.2.5).
pub const CANCEL_SESSION_ERRORS: &[(u64, &str)] = &[
    (1, "invalidTransactionId"),
    (2, "euiccSignatureInvalid"),
    (127, "undefinedError"),
];

impl Function {
    /// Every function, in the order of the CHOICE.
    pub const ALL: [Function; 5] = [
        Function::InitiateAuthentication,
        Function::AuthenticateClient,
        Function::GetBoundProfilePackage,
        Function::CancelSession,
        Function::HandleNotification,
    ];

    /// The tag of its request, and of its response (the same, but for HandleNotification,
    /// which has none).
    pub fn tag(self) -> u32 {
        match self {
            Function::InitiateAuthentication => 0xBF39,
            Function::AuthenticateClient => 0xBF3B,
            Function::GetBoundProfilePackage => 0xBF3A,
            Function::CancelSession => 0xBF41,
            Function::HandleNotification => 0xBF3D,
        }
    }

    /// Its path segment in the JSON binding (`initiateAuthentication`, …, §6.5.2).
    pub fn path_segment(self) -> &'static str {
        match self {
            Function::InitiateAuthentication => "initiateAuthentication",
            Function::AuthenticateClient => "authenticateClient",
            Function::GetBoundProfilePackage => "getBoundProfilePackage",
            Function::CancelSession => "cancelSession",
            Function::HandleNotification => "handleNotification",
        }
    }

    /// The function of a JSON path segment.
    pub fn from_path_segment(segment: &str) -> Option<Function> {
        Function::ALL
            .into_iter()
            .find(|f| f.path_segment() == segment)
    }

    /// The values of its response's error INTEGER, with their names (empty: no response).
    pub fn error_codes(self) -> &'static [(u64, &'static str)] {
        match self {
            Function::InitiateAuthentication => INITIATE_AUTHENTICATION_ERRORS,
            Function::AuthenticateClient => AUTHENTICATE_CLIENT_ERRORS,
            Function::GetBoundProfilePackage => GET_BOUND_PROFILE_PACKAGE_ERRORS,
            Function::CancelSession => CANCEL_SESSION_ERRORS,
            Function::HandleNotification => &[],
        }
    }

    /// The name of error `code` of its response, if the enumeration has it.
    pub fn error_name(self, code: u64) -> Option<&'static str> {
        self.error_codes()
            .iter()
            .find(|(value, _)| *value == code)
            .map(|(_, name)| *name)
    }

    fn request(self) -> &'static [(&'static str, Part)] {
        match self {
            // §6.6.2.1: euiccChallenge [1] Octet16, smdpAddress [3] UTF8String, euiccInfo1.
            Function::InitiateAuthentication => &[
                ("euiccChallenge", Part::Octets(0x81)),
                ("smdpAddress", Part::Text(0x83)),
                ("euiccInfo1", Part::Object(&[0xBF20])),
            ],
            // §6.6.2.2
            Function::AuthenticateClient => &[
                ("transactionId", Part::Hex(0x80)),
                (
                    "authenticateServerResponse",
                    Part::Choice {
                        wire: 0xBF38,
                        own: 0xBF38,
                    },
                ),
            ],
            // §6.6.2.3
            Function::GetBoundProfilePackage => &[
                ("transactionId", Part::Hex(0x80)),
                (
                    "prepareDownloadResponse",
                    Part::Choice {
                        wire: 0xBF21,
                        own: 0xBF21,
                    },
                ),
            ],
            // §6.6.2.5: no component tagged, so AUTOMATIC TAGS gives [0] and [1].
            Function::CancelSession => &[
                ("transactionId", Part::Hex(0x80)),
                (
                    "cancelSessionResponse",
                    Part::Choice {
                        wire: 0xA1,
                        own: 0xBF41,
                    },
                ),
            ],
            // §6.6.2.4: the untagged CHOICE PendingNotification under [0], explicit.
            Function::HandleNotification => &[(
                "pendingNotification",
                Part::Explicit {
                    wire: 0xA0,
                    inner: &[0xBF37, 0x30],
                },
            )],
        }
    }

    /// The components of the `…Ok` SEQUENCE of its response.
    fn ok(self) -> &'static [(&'static str, Part)] {
        match self {
            // InitiateAuthenticationOkEs9 (§6.6.2.1)
            Function::InitiateAuthentication => &[
                ("transactionId", Part::Hex(0x80)),
                ("serverSigned1", Part::Object(&[0x30])),
                ("serverSignature1", Part::Object(&[0x5F37])),
                ("euiccCiPKIdToBeUsed", Part::Object(&[0x04])),
                ("serverCertificate", Part::Object(&[0x30])),
            ],
            // AuthenticateClientOk (§6.6.2.2)
            Function::AuthenticateClient => &[
                ("transactionId", Part::Hex(0x80)),
                ("profileMetadata", Part::Object(&[0xBF25])),
                ("smdpSigned2", Part::Object(&[0x30])),
                ("smdpSignature2", Part::Object(&[0x5F37])),
                ("smdpCertificate", Part::Object(&[0x30])),
            ],
            // GetBoundProfilePackageOk (§6.6.2.3)
            Function::GetBoundProfilePackage => &[
                ("transactionId", Part::Hex(0x80)),
                ("boundProfilePackage", Part::Object(&[0xBF36])),
            ],
            // CancelSessionOk ::= SEQUENCE {} (§6.6.2.5)
            Function::CancelSession | Function::HandleNotification => &[],
        }
    }
}

/// One component of a SEQUENCE, and its JSON field.
#[derive(Debug, Clone, Copy)]
enum Part {
    /// `transactionId`: the value of primitive `tag`; upper-case hex in JSON.
    Hex(u32),
    /// An OCTET STRING with context tag `tag`; base64 of its value in JSON.
    Octets(u32),
    /// A UTF8String with context tag `tag`; a string in JSON.
    Text(u32),
    /// A whole data object with one of these tags; base64 of it in JSON.
    Object(&'static [u32]),
    /// A tagged CHOICE type (own tag `own`) under the implicit context tag `wire`; base64 of
    /// the object with its own tag in JSON.
    Choice { wire: u32, own: u32 },
    /// An untagged CHOICE under the explicit context tag `wire`; base64 of the chosen object
    /// (one of `inner`) in JSON.
    Explicit { wire: u32, inner: &'static [u32] },
}

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, Asn1Error> {
    fields
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Asn1Error(format!("{name} is missing or not a string")))
}

fn binary(fields: &Map<String, Value>, name: &str) -> Result<Vec<u8>, Asn1Error> {
    crypto::base64_decode(text(fields, name)?)
        .ok_or_else(|| Asn1Error(format!("{name} is not base64")))
}

fn object_with<'a>(name: &str, der: &'a [u8], tags: &[u32]) -> Result<tlv::Tlv<'a>, Asn1Error> {
    let object = tlv::read_exact(der).map_err(|e| Asn1Error(format!("{name}: {e}")))?;
    if !tags.contains(&object.tag) {
        return Err(Asn1Error(format!(
            "{name}: tag {:X} is not one of {}",
            object.tag,
            tag_list(tags)
        )));
    }
    Ok(object)
}

fn tag_list(tags: &[u32]) -> String {
    tags.iter()
        .map(|t| format!("{t:X}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The DER of `parts` from the JSON `fields`, concatenated.
fn encode_parts(
    parts: &[(&'static str, Part)],
    fields: &Map<String, Value>,
) -> Result<Vec<u8>, Asn1Error> {
    let mut out = Vec::new();
    for (name, part) in parts {
        match *part {
            Part::Hex(tag) => {
                let bytes = crypto::hex_decode(text(fields, name)?)
                    .ok_or_else(|| Asn1Error(format!("{name} is not hex")))?;
                tlv::push(&mut out, tag, &bytes);
            }
            Part::Octets(tag) => tlv::push(&mut out, tag, &binary(fields, name)?),
            Part::Text(tag) => tlv::push(&mut out, tag, text(fields, name)?.as_bytes()),
            Part::Object(tags) => {
                let der = binary(fields, name)?;
                object_with(name, &der, tags)?;
                out.extend_from_slice(&der);
            }
            Part::Choice { wire, own } => {
                let der = binary(fields, name)?;
                let object = object_with(name, &der, &[own])?;
                tlv::push(&mut out, wire, object.value);
            }
            Part::Explicit { wire, inner } => {
                let der = binary(fields, name)?;
                object_with(name, &der, inner)?;
                tlv::push(&mut out, wire, &der);
            }
        }
    }
    Ok(out)
}

/// The JSON fields of the components `parts` of a SEQUENCE, in their order; components after
/// them are ignored (`EXTENSIBILITY IMPLIED`).
fn decode_parts(
    parts: &[(&'static str, Part)],
    components: &[tlv::Tlv<'_>],
) -> Result<Map<String, Value>, Asn1Error> {
    let mut fields = Map::new();
    for (i, (name, part)) in parts.iter().enumerate() {
        let component = components
            .get(i)
            .ok_or_else(|| Asn1Error(format!("{name} is missing")))?;
        let expect = |tag: u32| {
            if component.tag == tag {
                Ok(())
            } else {
                Err(Asn1Error(format!(
                    "{name}: expected tag {tag:X}, found {:X}",
                    component.tag
                )))
            }
        };
        let value = match *part {
            Part::Hex(tag) => {
                expect(tag)?;
                Value::String(crypto::hex_upper(component.value))
            }
            Part::Octets(tag) => {
                expect(tag)?;
                Value::String(crypto::base64_encode(component.value))
            }
            Part::Text(tag) => {
                expect(tag)?;
                let text = std::str::from_utf8(component.value)
                    .map_err(|_| Asn1Error(format!("{name} is not UTF-8")))?;
                Value::String(text.to_owned())
            }
            Part::Object(tags) => {
                object_with(name, component.raw, tags)?;
                Value::String(crypto::base64_encode(component.raw))
            }
            Part::Choice { wire, own } => Value::String(crypto::base64_encode(&tagged_choice(
                name, component, wire, own,
            )?)),
            Part::Explicit { wire, inner } => {
                let chosen = if component.tag == wire {
                    object_with(name, component.value, inner)?
                } else {
                    // The chosen object without its [0] (lenient).
                    object_with(name, component.raw, inner)?
                };
                Value::String(crypto::base64_encode(chosen.raw))
            }
        };
        fields.insert((*name).to_owned(), value);
    }
    Ok(fields)
}

/// The object with its own tag `own` of a tagged CHOICE component: `wire { alternative }`
/// (X.680), `wire { own { alternative } }` (a tag doubled), or `own { alternative }` itself.
fn tagged_choice(
    name: &str,
    component: &tlv::Tlv<'_>,
    wire: u32,
    own: u32,
) -> Result<Vec<u8>, Asn1Error> {
    if component.tag != wire && component.tag != own {
        return Err(Asn1Error(format!(
            "{name}: expected tag {wire:X}, found {:X}",
            component.tag
        )));
    }
    let alternative =
        tlv::read_exact(component.value).map_err(|e| Asn1Error(format!("{name}: {e}")))?;
    if alternative.tag == own {
        return Ok(alternative.raw.to_vec());
    }
    Ok(tlv::encode(own, component.value))
}

/// `A2 { … }` around `inner`.
fn envelope(inner: &[u8]) -> Vec<u8> {
    tlv::encode(ENVELOPE, inner)
}

/// The `RemoteProfileProvisioningRequest` of `function` with the JSON binding's request
/// fields (what an LPA sends).
pub fn encode_request(
    function: Function,
    fields: &Map<String, Value>,
) -> Result<Vec<u8>, Asn1Error> {
    let body = encode_parts(function.request(), fields)?;
    Ok(envelope(&tlv::encode(function.tag(), &body)))
}

/// The function a `RemoteProfileProvisioningRequest` calls and its request as the JSON
/// binding's fields (what an SM-DP+ reads). Bounded by the input: one level is parsed at a
/// time, nothing recurses.
pub fn decode_request(der: &[u8]) -> Result<(Function, Map<String, Value>), Asn1Error> {
    let envelope = tlv::read_tagged(der, ENVELOPE)
        .map_err(|e| Asn1Error(format!("RemoteProfileProvisioningRequest: {e}")))?;
    let request = tlv::read_exact(envelope.value)
        .map_err(|e| Asn1Error(format!("RemoteProfileProvisioningRequest: {e}")))?;
    let function = Function::ALL
        .into_iter()
        .find(|f| f.tag() == request.tag)
        .ok_or_else(|| {
            Asn1Error(format!(
                "RemoteProfileProvisioningRequest: tag {:X} is none of its alternatives (BF39, BF3B, BF3A, BF41, BF3D)",
                request.tag
            ))
        })?;
    let components = request
        .children()
        .map_err(|e| Asn1Error(format!("{}: {e}", function.path_segment())))?;
    let fields = decode_parts(function.request(), &components)?;
    Ok((function, fields))
}

/// What a response carries: the `…Ok` SEQUENCE as the JSON binding's fields, or the error
/// INTEGER.
pub type Response = Result<Map<String, Value>, u64>;

/// The `RemoteProfileProvisioningResponse` of `function` (what an SM-DP+ answers):
/// `A2 { tag { A0 { … } } }` or `A2 { tag { 81 code } }`. HandleNotification has none.
pub fn encode_response(function: Function, response: &Response) -> Result<Vec<u8>, Asn1Error> {
    if function == Function::HandleNotification {
        return Err(Asn1Error(
            "HandleNotification has no response (§6.6.2.4)".into(),
        ));
    }
    let alternative = match response {
        Ok(fields) => tlv::encode(OK, &encode_parts(function.ok(), fields)?),
        Err(code) => tlv::encode(ERROR, &tlv::uint_value(*code)),
    };
    Ok(envelope(&tlv::encode(function.tag(), &alternative)))
}

/// The response of `function` in a `RemoteProfileProvisioningResponse` (what an LPA reads).
pub fn decode_response(function: Function, der: &[u8]) -> Result<Response, Asn1Error> {
    let envelope = tlv::read_tagged(der, ENVELOPE)
        .map_err(|e| Asn1Error(format!("RemoteProfileProvisioningResponse: {e}")))?;
    let name = function.path_segment();
    let response = tlv::read_tagged(envelope.value, function.tag())
        .map_err(|e| Asn1Error(format!("{name} response: {e}")))?;
    let alternative =
        tlv::read_exact(response.value).map_err(|e| Asn1Error(format!("{name} response: {e}")))?;
    match alternative.tag {
        ERROR => Ok(Err(alternative.uint()?)),
        OK => {
            let components = alternative.children()?;
            Ok(Ok(decode_parts(function.ok(), &components)?))
        }
        other => Err(Asn1Error(format!(
            "{name} response: alternative {other:X} is neither A0 nor 81"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hex(text: &str) -> Vec<u8> {
        crypto::hex_decode(text).unwrap()
    }

    fn object(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// The X.680 encoding: the card's `BF41` becomes `A1 { alternative }`.
    #[test]
    fn cancel_session_request_round_trips() {
        let card = hex("BF4103810105");
        let fields = object(json!({
            "transactionId": "0102",
            "cancelSessionResponse": crypto::base64_encode(&card),
        }));
        let der = encode_request(Function::CancelSession, &fields).unwrap();
        assert_eq!(der, hex("A20CBF410980020102A103810105"));
        assert_eq!(
            decode_request(&der).unwrap(),
            (Function::CancelSession, fields)
        );
    }

    /// What Python's asn1tools encodes from RSPDefinitions (the tag of a tagged CHOICE
    /// component doubled) reads the same.
    #[test]
    fn a_doubled_tag_reads_as_the_card_object() {
        let der = hex("A20FBF410C80020102A106BF4103810105");
        let (function, fields) = decode_request(&der).unwrap();
        assert_eq!(function, Function::CancelSession);
        assert_eq!(
            binary(&fields, "cancelSessionResponse").unwrap(),
            hex("BF4103810105")
        );
    }

    #[test]
    fn errors_and_empty_oks_encode_as_the_spec_tags_them() {
        let der = encode_response(Function::GetBoundProfilePackage, &Err(95)).unwrap();
        assert_eq!(der, hex("A206BF3A0381015F"));
        assert_eq!(
            decode_response(Function::GetBoundProfilePackage, &der).unwrap(),
            Err(95)
        );
        let der = encode_response(Function::CancelSession, &Ok(Map::new())).unwrap();
        assert_eq!(der, hex("A205BF4102A000"));
        assert_eq!(
            decode_response(Function::CancelSession, &der).unwrap(),
            Ok(Map::new())
        );
        assert!(encode_response(Function::HandleNotification, &Err(1)).is_err());
    }

    #[test]
    fn ok_responses_round_trip() {
        let fields = object(json!({
            "transactionId": "0A0B",
            "boundProfilePackage": crypto::base64_encode(&hex("BF3603800100")),
        }));
        let der = encode_response(Function::GetBoundProfilePackage, &Ok(fields.clone())).unwrap();
        assert_eq!(
            decode_response(Function::GetBoundProfilePackage, &der).unwrap(),
            Ok(fields)
        );
    }

    #[test]
    fn requests_of_every_function_round_trip() {
        let b64 = |h: &str| Value::String(crypto::base64_encode(&hex(h)));
        let cases = [
            (
                Function::InitiateAuthentication,
                json!({"euiccChallenge": b64("00112233445566778899AABBCCDDEEFF"),
                       "smdpAddress": "smdp.example.com", "euiccInfo1": b64("BF200100")}),
            ),
            (
                Function::AuthenticateClient,
                json!({"transactionId": "01", "authenticateServerResponse": b64("BF3803A00100")}),
            ),
            (
                Function::GetBoundProfilePackage,
                json!({"transactionId": "01", "prepareDownloadResponse": b64("BF2103A10100")}),
            ),
            (
                Function::HandleNotification,
                json!({"pendingNotification": b64("BF3703800101")}),
            ),
        ];
        for (function, fields) in cases {
            let fields = object(fields);
            let der = encode_request(function, &fields).unwrap();
            assert_eq!(decode_request(&der).unwrap(), (function, fields));
        }
    }

    #[test]
    fn malformed_requests_are_errors() {
        for der in [
            &b""[..],
            &hex("A2"),
            &hex("A200"),
            &hex("A203BF3900"),
            &hex("A203BF3F00"),
            &hex("A2058001FF"),
            &hex("A204BF3B0180"),
            &hex("A206BF3B03800101"),
            &hex("A207BF3D04A0020400"),
            &hex("A208BF3D05A0033001"),
        ] {
            assert!(decode_request(der).is_err(), "{der:02X?}");
        }
    }
}
