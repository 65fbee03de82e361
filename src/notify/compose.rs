//! The body of ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5, §6.5.2.5), in the spec's form or
//! a real-world variant (`callback.format` in docs/scenarios.md).

use serde_json::{json, Map, Value};
use time::OffsetDateTime;

use crate::clock::es2_timestamp;
use crate::profile::machine::{CancelSessionReason, DownloadFailure, NotificationPoint};
use crate::profile::Profile;
use crate::scenario::{NotificationFormat, ResultDataForm, TimestampKey};
use crate::sgp22::{ExecutionStatus, FunctionExecutionStatus, StatusCode, StatusCodeData};

/// The notificationPointId of `point` (Table 32a; local events as configured).
pub(crate) fn point_id(point: NotificationPoint, format: &NotificationFormat) -> u32 {
    match point {
        NotificationPoint::EligibilityAndRetryLimit => 1,
        NotificationPoint::ConfirmationFailure => 2,
        NotificationPoint::BppDownload => 3,
        NotificationPoint::BppInstallation => 4,
        NotificationPoint::LocalEnable => format.local_points[0],
        NotificationPoint::LocalDisable => format.local_points[1],
        NotificationPoint::LocalDelete => format.local_points[2],
    }
}

/// What a `notificationPointId` means under `format`, in words: the steps of SGP.22 Table 32a,
/// or the scenario's local enable/disable/delete points.
pub(crate) fn point_name(point_id: u32, format: &NotificationFormat) -> &'static str {
    match point_id {
        1 => "eligibility and retry limit",
        2 => "confirmation failure",
        3 => "BPP download",
        4 => "BPP installation",
        id if id == format.local_points[0] => "local enable",
        id if id == format.local_points[1] => "local disable",
        id if id == format.local_points[2] => "local delete",
        _ => "unknown point",
    }
}

/// The status code a failed step reports (Tables 32b and 32c; §5.6 for the others).
pub(crate) fn failure_code(failure: DownloadFailure) -> (StatusCode, String) {
    let code = |subject, reason| StatusCode { subject, reason };
    match failure {
        DownloadFailure::DownloadAttemptsExceeded => (
            code("8.8.5", "6.4"),
            "maximum number of download attempts exceeded".into(),
        ),
        DownloadFailure::ConfirmationCodeRefused => {
            (code("8.2.7", "3.8"), "wrong Confirmation Code".into())
        }
        DownloadFailure::ConfirmationCodeAttemptsExceeded => (
            code("8.2.7", "6.4"),
            "maximum number of Confirmation Code attempts exceeded".into(),
        ),
        DownloadFailure::NotEligible => (
            code("8.2.5", "4.3"),
            "no eligible profile for this eUICC/device".into(),
        ),
        DownloadFailure::OrderExpired => (code("8.8.5", "4.10"), "download order expired".into()),
        DownloadFailure::BppNotAvailable => (
            code("8.2", "3.7"),
            "BPP not available for a new binding".into(),
        ),
        DownloadFailure::SessionCancelled(reason) => {
            let (c, text) = match reason {
                CancelSessionReason::EndUserRejection => (code("8.8.5", "3.8"), "end user rejection"),
                CancelSessionReason::PprNotAllowed => (code("8.2.8", "1.2"), "PPR not allowed"),
                CancelSessionReason::MetadataMismatch => (code("8.2.9", "3.11"), "metadata mismatch"),
                CancelSessionReason::LoadBppExecutionError => {
                    (code("8.2.10", "4.2"), "load BPP execution error")
                }
                CancelSessionReason::Undefined
                | CancelSessionReason::Postponed
                | CancelSessionReason::Timeout => (code("8", "4.2"), "undefined reason"),
            };
            (c, format!("CancelSession: {text} ({})", reason.code()))
        }
        DownloadFailure::InstallationFailed {
            bpp_command_id,
            error_reason,
        } => (
            code("8.2.10", "4.2"),
            format!(
                "profile installation failed: bppCommandId {bpp_command_id}, errorReason {error_reason} ({})",
                error_reason_name(error_reason)
            ),
        ),
    }
}

fn error_reason_name(reason: u8) -> &'static str {
    match reason {
        1 => "incorrectInputValues",
        2 => "invalidSignature",
        3 => "invalidTransactionId",
        4 => "unsupportedCrtValues",
        5 => "unsupportedRemoteOperationType",
        6 => "unsupportedProfileClass",
        7 => "scp03tStructureError",
        8 => "scp03tSecurityError",
        9 => "installFailedDueToIccidAlreadyExistsOnEuicc",
        10 => "installFailedDueToInsufficientMemoryForProfile",
        11 => "installFailedDueToInterruption",
        12 => "installFailedDueToPEProcessingError",
        13 => "installFailedDueToDataMismatch",
        14 => "testProfileInstallFailedDueToInvalidNaaKey",
        15 => "pprNotAllowed",
        127 => "installFailedDueToUnknownError",
        _ => "unknown",
    }
}

/// Everything one notification says.
#[derive(Debug, Clone)]
pub(crate) struct Content<'a> {
    /// The profile after the step.
    pub profile: &'a Profile,
    /// The eUICC the step was reached with (the order's, or the device's before it is bound).
    pub eid: Option<crate::ids::Eid>,
    /// The step.
    pub point: NotificationPoint,
    /// Success or why it failed.
    pub outcome: Result<(), DownloadFailure>,
    /// When the step was reached.
    pub at: OffsetDateTime,
    /// The SM-DP+'s `functionRequesterIdentifier`.
    pub requester: &'a str,
    /// Unique per notification; the same on every retry of it.
    pub call_id: &'a str,
    /// The Profile Installation Result a real eUICC sent (ES9+), which point 4 reports as it
    /// is rather than composed.
    pub device_result: Option<&'a DeviceResult>,
}

/// What a real eUICC reported of an installation (SGP.22 §5.6.4): the signed
/// ProfileInstallationResult as received and its `finalResult` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DeviceResult {
    /// The whole `ProfileInstallationResult` (`BF37`), signed by the eUICC.
    pub(crate) installation_result: Vec<u8>,
    /// Its `finalResult` (`A2`) data object.
    pub(crate) final_result: Vec<u8>,
}

/// The JSON body.
pub(crate) fn body(c: &Content<'_>, format: &NotificationFormat) -> Value {
    let mut m = Map::new();
    m.insert(
        "header".into(),
        json!({ "functionRequesterIdentifier": c.requester, "functionCallIdentifier": c.call_id }),
    );
    if let Some(eid) = c.eid {
        m.insert("eid".into(), json!(eid.to_string()));
    }
    let mut iccid = c.profile.iccid.to_string();
    if format.pad_iccid && iccid.len() == 19 {
        iccid.push('F');
    }
    m.insert("iccid".into(), json!(iccid));
    m.insert("profileType".into(), json!(&*c.profile.profile_type));
    let key = match format.timestamp_key {
        TimestampKey::Timestamp => "timestamp",
        TimestampKey::TimeStamp => "timeStamp",
    };
    m.insert(key.into(), json!(es2_timestamp(c.at)));
    let id = point_id(c.point, format);
    m.insert(
        "notificationPointId".into(),
        if format.point_id_as_string {
            json!(id.to_string())
        } else {
            json!(id)
        },
    );
    // notificationPointStatus has the shape of functionExecutionStatus (§5.3.5, §6.5.1.2).
    let status = match c.outcome {
        Ok(()) => FunctionExecutionStatus {
            status: ExecutionStatus::ExecutedSuccess,
            status_code_data: None,
        },
        Err(failure) => {
            let (code, message) = failure_code(failure);
            FunctionExecutionStatus {
                status: ExecutionStatus::Failed,
                status_code_data: Some(StatusCodeData::new(
                    code,
                    Some(c.profile.iccid.to_string()),
                    message,
                )),
            }
        }
    };
    m.insert(
        "notificationPointStatus".into(),
        serde_json::to_value(&status).unwrap_or_default(),
    );
    if c.point == NotificationPoint::BppInstallation {
        if let Some(data) = result_data(c, format.result_data) {
            m.insert("resultData".into(), json!(base64(&data)));
        }
    }
    Value::Object(m)
}

/// `resultData` of point 4: the DER of the `finalResult` element, or of a whole (unsigned for
/// real: the signature is zeros) ProfileInstallationResult, or nothing.
fn result_data(c: &Content<'_>, form: ResultDataForm) -> Option<Vec<u8>> {
    if let Some(device) = c.device_result {
        return match form {
            ResultDataForm::Omit => None,
            ResultDataForm::FinalResult => Some(device.final_result.clone()),
            ResultDataForm::FullPir => Some(device.installation_result.clone()),
        };
    }
    // finalResult [2] CHOICE { successResult [0], errorResult [1] } (SGP.22 §2.5.6, AUTOMATIC TAGS).
    let inner = match c.outcome {
        Ok(()) => tlv(
            0xA0,
            &[
                // aid [APPLICATION 15]: the ISD-P the profile went into.
                tlv(
                    0x4F,
                    &[
                        0xA0, 0x00, 0x00, 0x05, 0x59, 0x10, 0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0x89,
                        0x00, 0x00, 0x10, 0x00,
                    ],
                ),
                // simaResponse: one EUICCResponse with peStatus ok.
                tlv(
                    0x04,
                    &tlv(0x30, &tlv(0xA0, &tlv(0x30, &tlv(0x80, &[0x00])))),
                ),
            ]
            .concat(),
        ),
        Err(DownloadFailure::InstallationFailed {
            bpp_command_id,
            error_reason,
        }) => tlv(
            0xA1,
            &[
                tlv(0x80, &der_uint(bpp_command_id)),
                tlv(0x81, &der_uint(error_reason)),
            ]
            .concat(),
        ),
        Err(_) => return None,
    };
    let final_result = tlv(0xA2, &inner);
    match form {
        ResultDataForm::Omit => None,
        ResultDataForm::FinalResult => Some(final_result),
        ResultDataForm::FullPir => {
            let iccid_bcd = bcd_swapped(&c.profile.iccid.digits());
            let metadata = tlv(
                0xBF2F,
                &[
                    tlv(0x80, &[0x01]),                // seqNumber
                    tlv(0x81, &[0x07, 0x80]),          // profileManagementOperation: install
                    tlv(0x0C, c.requester.as_bytes()), // notificationAddress
                    tlv(0x5A, &iccid_bcd),             // iccid
                ]
                .concat(),
            );
            let data = tlv(
                0xBF27,
                &[
                    tlv(0x80, &[0u8; 16]), // transactionId
                    metadata,
                    tlv(0x06, &[0x2B, 0x06, 0x01, 0x04, 0x01, 0x83, 0x8A, 0x2F]), // smdpOid
                    final_result,
                ]
                .concat(),
            );
            Some(tlv(0xBF37, &[data, tlv(0x5F37, &[0u8; 64])].concat()))
        }
    }
}

/// The content octets of a non-negative DER INTEGER (a leading zero keeps 128..=255 positive).
fn der_uint(v: u8) -> Vec<u8> {
    if v >= 0x80 {
        vec![0x00, v]
    } else {
        vec![v]
    }
}

/// A DER TLV with a one- or two-byte tag.
fn tlv(tag: u16, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len() + 5);
    if tag > 0xFF {
        out.extend_from_slice(&tag.to_be_bytes());
    } else {
        out.push(tag as u8);
    }
    match value.len() {
        n if n < 0x80 => out.push(n as u8),
        n if n <= 0xFF => out.extend_from_slice(&[0x81, n as u8]),
        n => out.extend_from_slice(&[0x82, (n >> 8) as u8, n as u8]),
    }
    out.extend_from_slice(value);
    out
}

/// ICCID digits as swapped-nibble BCD, padded with F (ETSI TS 102 221).
fn bcd_swapped(digits: &str) -> Vec<u8> {
    let d: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
    d.chunks(2)
        .map(|pair| {
            let lo = pair[0];
            let hi = pair.get(1).copied().unwrap_or(0xF);
            (hi << 4) | lo
        })
        .collect()
}

/// Standard base64 with padding.
pub(crate) fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn der_shapes() {
        assert_eq!(tlv(0x80, &[5]), vec![0x80, 0x01, 0x05]);
        assert_eq!(tlv(0xBF27, &[]), vec![0xBF, 0x27, 0x00]);
        assert_eq!(tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        assert_eq!(bcd_swapped("8944501"), vec![0x98, 0x44, 0x05, 0xF1]);
        assert_eq!(der_uint(127), vec![0x7F]);
        assert_eq!(der_uint(200), vec![0x00, 0xC8]);
    }
}
