//! The ASN.1 binding of ES9+ (SGP.22 §6.6) on the one engine: `POST /gsma/rsp2/asn1` carries a
//! DER `RemoteProfileProvisioningRequest`, which [`decode`] turns into the function it chooses
//! and the same fields the JSON binding's body has ([`smdpp_rsp::es9`]); the function runs
//! as for JSON, and [`answer`] encodes its outcome as the `RemoteProfileProvisioningResponse`.
//!
//! A `Failed` outcome becomes the error INTEGER of the function's response type by
//! [`ERROR_CODES`], one table for the five functions. §6.3 keeps HTTP 200 for an answered error;
//! a status code the response type cannot say is its `undefinedError(127)`, and where the type
//! has none (InitiateAuthenticationResponse) the call is answered with an HTTP status (§6.3
//! allows 4xx/5xx): 400 for a malformed request, 500 otherwise. HandleNotification has no
//! response (§6.6.2.4): 204, as in the JSON binding (§6.3).

use bytes::Bytes;
use serde_json::{json, Map, Value};
use smdpp_rsp::crypto;
use smdpp_rsp::es9::{self, Function as Asn1Function};

use super::{Failure, Record};
use crate::exchange::{Answer, HttpRefusal};
use crate::sgp22::{self, Es9Function, ExecutionStatus, StatusCode};

/// What the journal shows of a DER request or answer: the binding, and the DER in base64.
pub(crate) fn journal_text(der: &[u8]) -> Bytes {
    Bytes::from(
        json!({ "binding": "ASN.1 (SGP.22 §6.6)", "der": crypto::base64_encode(der) }).to_string(),
    )
}

/// The function a DER request calls and its fields, or HTTP 400: not a
/// `RemoteProfileProvisioningRequest` of the five ES9+ functions.
pub(crate) fn decode(der: &[u8]) -> Result<(Es9Function, Map<String, Value>), HttpRefusal> {
    es9::decode_request(der)
        .map(|(function, fields)| (function_of(function), fields))
        .map_err(|e| {
            HttpRefusal::new(
                400,
                format!(
                    "the body is not a DER RemoteProfileProvisioningRequest (SGP.22 §6.6.1): {e}"
                ),
            )
        })
}

fn function_of(function: Asn1Function) -> Es9Function {
    match function {
        Asn1Function::InitiateAuthentication => Es9Function::InitiateAuthentication,
        Asn1Function::AuthenticateClient => Es9Function::AuthenticateClient,
        Asn1Function::GetBoundProfilePackage => Es9Function::GetBoundProfilePackage,
        Asn1Function::CancelSession => Es9Function::CancelSession,
        Asn1Function::HandleNotification => Es9Function::HandleNotification,
    }
}

fn asn1_of(function: Es9Function) -> Asn1Function {
    match function {
        Es9Function::InitiateAuthentication => Asn1Function::InitiateAuthentication,
        Es9Function::AuthenticateClient => Asn1Function::AuthenticateClient,
        Es9Function::GetBoundProfilePackage => Asn1Function::GetBoundProfilePackage,
        Es9Function::CancelSession => Asn1Function::CancelSession,
        Es9Function::HandleNotification => Asn1Function::HandleNotification,
    }
}

/// The status codes the functions answer (§5.6.1–§5.6.5, as the JSON binding carries them)
/// and the error INTEGER of the function's ASN.1 response type that says the same (§6.6.2).
pub(crate) const ERROR_CODES: &[(Es9Function, StatusCode, u64)] = {
    use Es9Function::{
        AuthenticateClient as Ac, CancelSession as Cs, GetBoundProfilePackage as Gbpp,
        InitiateAuthentication as Ia,
    };
    &[
        // InitiateAuthenticationResponse (§6.6.2.1); no undefinedError.
        (Ia, sgp22::SMDP_ADDRESS_REFUSED, 1), // invalidDpAddress
        (Ia, sgp22::SVN_UNSUPPORTED, 2),      // euiccVersionNotSupportedByDp
        (Ia, sgp22::SECURITY_CONFIGURATION_UNSUPPORTED, 3), // ciPKIdNotSupported
        // No DPauth certified by a CI the eUICC supports: the same thing, seen from the SM-DP+.
        (Ia, sgp22::SMDP_CERTIFICATE_UNAVAILABLE, 3), // ciPKIdNotSupported
        // AuthenticateClientResponseEs9 (§6.6.2.2).
        (Ac, sgp22::EUM_CERTIFICATE_INVALID, 1),
        (Ac, sgp22::EUM_CERTIFICATE_EXPIRED, 2),
        (Ac, sgp22::EUICC_CERTIFICATE_INVALID, 3),
        (Ac, sgp22::EUICC_CERTIFICATE_EXPIRED, 4),
        (Ac, sgp22::EUICC_VERIFICATION_FAILED, 5), // euiccSignatureInvalid
        (Ac, sgp22::MATCHING_ID_REFUSED, 6),
        (Ac, sgp22::EID_REFUSED, 7), // eidMismatch
        (Ac, sgp22::NO_ELIGIBLE_PROFILE, 8),
        (Ac, sgp22::CI_UNKNOWN, 9), // ciPKUnknown
        (Ac, sgp22::TRANSACTION_ID_UNKNOWN, 10),
        (Ac, sgp22::EUICC_INSUFFICIENT_MEMORY, 11),
        // GetBoundProfilePackageResponse (§6.6.2.3).
        (Gbpp, sgp22::EUICC_VERIFICATION_FAILED, 1), // euiccSignatureInvalid
        (Gbpp, sgp22::CONFIRMATION_CODE_MISSING, 2),
        (Gbpp, sgp22::CONFIRMATION_CODE_REFUSED, 3),
        (Gbpp, sgp22::CONFIRMATION_CODE_RETRIES_EXCEEDED, 4),
        (Gbpp, sgp22::BPP_UNAVAILABLE, 5), // bppRebindingRefused
        (Gbpp, sgp22::ORDER_EXPIRED, 6),   // downloadOrderExpired
        (Gbpp, sgp22::TRANSACTION_ID_UNKNOWN, 95),
        // CancelSessionResponseEs9 (§6.6.2.5).
        (Cs, sgp22::TRANSACTION_ID_UNKNOWN, 1),
        (Cs, sgp22::EUICC_VERIFICATION_FAILED, 2), // euiccSignatureInvalid
    ]
};

/// `undefinedError(127)`: every status code a response type with it has no value of its own for.
const UNDEFINED_ERROR: u64 = 127;

/// The error INTEGER of `function`'s response that says `code`, if its response type can.
pub(crate) fn error_code(function: Es9Function, code: StatusCode) -> Option<u64> {
    ERROR_CODES
        .iter()
        .find(|(f, c, _)| *f == function && *c == code)
        .map(|(_, _, value)| *value)
        .or_else(|| {
            asn1_of(function)
                .error_name(UNDEFINED_ERROR)
                .map(|_| UNDEFINED_ERROR)
        })
}

/// The DER answer of a function's outcome (not HandleNotification's, which has none), written
/// into `record` with the execution status and the status code it stands for.
pub(crate) fn answer(
    record: &mut Record,
    function: Es9Function,
    outcome: Result<Map<String, Value>, Failure>,
) -> Answer {
    let asn1 = asn1_of(function);
    let (response, status, code) = match outcome {
        Ok(fields) => (Ok(fields), ExecutionStatus::ExecutedSuccess, None),
        Err(failure) => match error_code(function, failure.code) {
            Some(value) => (Err(value), ExecutionStatus::Failed, Some(failure.code)),
            None => return unrepresentable(record, function, &failure),
        },
    };
    match es9::encode_response(asn1, &response) {
        Ok(der) => {
            let journal = journal_text(&der);
            let answer = Answer::of(200, Bytes::from(der), es9::CONTENT_TYPE);
            record.encoded(status, code, answer, journal)
        }
        // The function's own fields did not encode: a fault of the mock, not of the client.
        Err(e) => record.refusal(HttpRefusal::new(
            500,
            format!("the answer of {function} could not be encoded in ASN.1: {e}"),
        )),
    }
}

/// A failure the response type has no value for (§6.3: 4xx/5xx): 400 for a request the
/// function found malformed, 500 for the rest; journaled as `Failed` with its status code.
fn unrepresentable(record: &mut Record, function: Es9Function, failure: &Failure) -> Answer {
    let malformed = [
        sgp22::FORMAT_INVALID,
        sgp22::MANDATORY_ELEMENT_MISSING,
        sgp22::CONDITIONAL_ELEMENT_MISSING,
    ]
    .contains(&failure.code);
    let http = if malformed { 400 } else { 500 };
    let answer = HttpRefusal::new(
        http,
        format!(
            "{function} failed with {} ({}), which its ASN.1 response type cannot carry (SGP.22 §6.6.2)",
            failure.code, failure.message
        ),
    )
    .answer();
    let journal = answer.body.clone();
    record.encoded(ExecutionStatus::Failed, Some(failure.code), answer, journal)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every value in the table is one the response type's enumeration names.
    #[test]
    fn the_table_names_values_of_the_enumerations() {
        for (function, code, value) in ERROR_CODES {
            assert!(
                asn1_of(*function).error_name(*value).is_some(),
                "{function} {code} → {value}"
            );
        }
        assert_eq!(
            error_code(Es9Function::AuthenticateClient, sgp22::ORDER_EXPIRED),
            Some(127)
        );
        assert_eq!(
            error_code(Es9Function::InitiateAuthentication, sgp22::FORMAT_INVALID),
            None
        );
        for f in Es9Function::ALL {
            assert_eq!(function_of(asn1_of(f)), f);
        }
    }
}
