//! Names and numbers defined by SGP.22 that every layer shares: the ES2+ and ES9+ functions and
//! the subject/reason status codes (§5.2.6).

use std::fmt;

use serde::Serialize;

/// Path prefix of the ES2+ functions (SGP.22 §6.5.2, Table 57).
pub const PATH_PREFIX: &str = "/gsma/rsp2/es2plus/";

/// Path of HandleDownloadProgressInfo at the operator (SGP.22 §6.5.2, Table 57).
pub(crate) const HDPI_PATH: &str = "/gsma/rsp2/es2plus/handleDownloadProgressInfo";

/// The `X-Admin-Protocol` header (SGP.22 §6.2), in lower case as HTTP/2 writes it.
pub const ADMIN_PROTOCOL_HEADER: &str = "x-admin-protocol";

/// The `X-Admin-Protocol` this mock's clients send (SGP.22 §6.2: `gsma/rsp/v<SGP.22 version>`).
pub const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.5.0";

/// The ES2+ functions the SM-DP+ provides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Function {
    /// SGP.22 §5.3.1.
    DownloadOrder,
    /// SGP.22 §5.3.2.
    ConfirmOrder,
    /// SGP.22 §5.3.3.
    CancelOrder,
    /// SGP.22 §5.3.4.
    ReleaseProfile,
}

impl Function {
    /// All functions, in spec order.
    pub const ALL: [Function; 4] = [
        Function::DownloadOrder,
        Function::ConfirmOrder,
        Function::CancelOrder,
        Function::ReleaseProfile,
    ];

    /// The last path segment, e.g. `downloadOrder`.
    pub fn path_segment(self) -> &'static str {
        match self {
            Function::DownloadOrder => "downloadOrder",
            Function::ConfirmOrder => "confirmOrder",
            Function::CancelOrder => "cancelOrder",
            Function::ReleaseProfile => "releaseProfile",
        }
    }

    /// The function for a path segment.
    pub fn from_path_segment(segment: &str) -> Option<Function> {
        Function::ALL
            .into_iter()
            .find(|f| f.path_segment() == segment)
    }

    /// The full request path.
    pub fn path(self) -> String {
        format!("{PATH_PREFIX}{}", self.path_segment())
    }

    /// The spec name, e.g. `DownloadOrder`.
    pub fn name(self) -> &'static str {
        match self {
            Function::DownloadOrder => "DownloadOrder",
            Function::ConfirmOrder => "ConfirmOrder",
            Function::CancelOrder => "CancelOrder",
            Function::ReleaseProfile => "ReleaseProfile",
        }
    }
}

impl fmt::Display for Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Path prefix of the ES9+ functions (SGP.22 §6.5.2, Table 57).
pub(crate) const ES9_PATH_PREFIX: &str = "/gsma/rsp2/es9plus/";

/// The `X-Admin-Protocol` the mock's ES9+ answers carry: the SGP.22 version it implements.
pub(crate) const ES9_ADMIN_PROTOCOL: &str = "gsma/rsp/v2.2.0";

/// The ES9+ functions the SM-DP+ provides to the LPA (SGP.22 §5.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Es9Function {
    /// SGP.22 §5.6.1.
    InitiateAuthentication,
    /// SGP.22 §5.6.3.
    AuthenticateClient,
    /// SGP.22 §5.6.2.
    GetBoundProfilePackage,
    /// SGP.22 §5.6.4.
    HandleNotification,
    /// SGP.22 §5.6.5.
    CancelSession,
}

impl Es9Function {
    /// All functions, in the order of a download.
    pub const ALL: [Es9Function; 5] = [
        Es9Function::InitiateAuthentication,
        Es9Function::AuthenticateClient,
        Es9Function::GetBoundProfilePackage,
        Es9Function::HandleNotification,
        Es9Function::CancelSession,
    ];

    /// The last path segment, e.g. `initiateAuthentication`.
    pub fn path_segment(self) -> &'static str {
        match self {
            Es9Function::InitiateAuthentication => "initiateAuthentication",
            Es9Function::AuthenticateClient => "authenticateClient",
            Es9Function::GetBoundProfilePackage => "getBoundProfilePackage",
            Es9Function::HandleNotification => "handleNotification",
            Es9Function::CancelSession => "cancelSession",
        }
    }

    /// The function for a path segment.
    pub fn from_path_segment(segment: &str) -> Option<Es9Function> {
        Es9Function::ALL
            .into_iter()
            .find(|f| f.path_segment() == segment)
    }

    /// The full request path.
    pub fn path(self) -> String {
        format!("{ES9_PATH_PREFIX}{}", self.path_segment())
    }

    /// The spec name, e.g. `InitiateAuthentication`.
    pub fn name(self) -> &'static str {
        match self {
            Es9Function::InitiateAuthentication => "InitiateAuthentication",
            Es9Function::AuthenticateClient => "AuthenticateClient",
            Es9Function::GetBoundProfilePackage => "GetBoundProfilePackage",
            Es9Function::HandleNotification => "HandleNotification",
            Es9Function::CancelSession => "CancelSession",
        }
    }
}

impl fmt::Display for Es9Function {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Path prefix of the ES12 functions (SGP.22 §6.5.2, Table 57); ES11's are ES9+'s.
pub(crate) const ES12_PATH_PREFIX: &str = "/gsma/rsp2/es12/";

/// The functions of the SM-DS (SGP.22 §5.8, §5.9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum SmdsFunction {
    /// ES11.InitiateAuthentication (§5.8.1), on ES9+'s path.
    InitiateAuthentication,
    /// ES11.AuthenticateClient (§5.8.2), on ES9+'s path.
    AuthenticateClient,
    /// ES12.RegisterEvent (§5.9.1).
    RegisterEvent,
    /// ES12.DeleteEvent (§5.9.2).
    DeleteEvent,
}

impl SmdsFunction {
    /// The function of a request path (Table 57).
    pub(crate) fn from_path(path: &str) -> Option<SmdsFunction> {
        if let Some(segment) = path.strip_prefix(ES9_PATH_PREFIX) {
            return match segment {
                "initiateAuthentication" => Some(SmdsFunction::InitiateAuthentication),
                "authenticateClient" => Some(SmdsFunction::AuthenticateClient),
                _ => None,
            };
        }
        match path.strip_prefix(ES12_PATH_PREFIX)? {
            "registerEvent" => Some(SmdsFunction::RegisterEvent),
            "deleteEvent" => Some(SmdsFunction::DeleteEvent),
            _ => None,
        }
    }

    /// The full request path.
    pub(crate) fn path(self) -> String {
        match self {
            SmdsFunction::InitiateAuthentication => {
                format!("{ES9_PATH_PREFIX}initiateAuthentication")
            }
            SmdsFunction::AuthenticateClient => format!("{ES9_PATH_PREFIX}authenticateClient"),
            SmdsFunction::RegisterEvent => format!("{ES12_PATH_PREFIX}registerEvent"),
            SmdsFunction::DeleteEvent => format!("{ES12_PATH_PREFIX}deleteEvent"),
        }
    }

    /// The spec name, e.g. `RegisterEvent`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            SmdsFunction::InitiateAuthentication => "InitiateAuthentication",
            SmdsFunction::AuthenticateClient => "AuthenticateClient",
            SmdsFunction::RegisterEvent => "RegisterEvent",
            SmdsFunction::DeleteEvent => "DeleteEvent",
        }
    }

    /// Whether it is an ES12 function (mutual TLS, a request header).
    pub(crate) fn is_es12(self) -> bool {
        matches!(
            self,
            SmdsFunction::RegisterEvent | SmdsFunction::DeleteEvent
        )
    }
}

impl fmt::Display for SmdsFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// `functionExecutionStatus.status` values (SGP.22 §5.2.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) enum ExecutionStatus {
    /// The function succeeded.
    #[serde(rename = "Executed-Success")]
    ExecutedSuccess,
    /// The function failed; `statusCodeData` says why.
    #[serde(rename = "Failed")]
    Failed,
}

impl ExecutionStatus {
    /// The wire value, e.g. `Executed-Success`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::ExecutedSuccess => "Executed-Success",
            ExecutionStatus::Failed => "Failed",
        }
    }
}

/// A subject code and reason code pair (SGP.22 §5.2.6.1, §5.2.6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode {
    /// Subject code, e.g. `8.2.1` (Profile ICCID).
    pub subject: &'static str,
    /// Reason code, e.g. `3.9` (Unknown).
    pub reason: &'static str,
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.subject, self.reason)
    }
}

const fn code(subject: &'static str, reason: &'static str) -> StatusCode {
    StatusCode { subject, reason }
}

/// Malformed field (`1.3.1 Protocol Format / 2.1 Invalid`). Mock convention: SGP.22 defers the
/// generic codes to SGP.02 (§5.2.6.3); this follows osmo-smdpp.
pub(crate) const FORMAT_INVALID: StatusCode = code("1.3.1", "2.1");
/// Mandatory field missing (`1.3.1 / 2.2 Mandatory Element Missing`). Mock convention.
pub(crate) const MANDATORY_ELEMENT_MISSING: StatusCode = code("1.3.1", "2.2");
/// Conditional field missing (`1.3.1 / 2.3 Conditional Element Missing`). Mock convention.
pub(crate) const CONDITIONAL_ELEMENT_MISSING: StatusCode = code("1.3.1", "2.3");
/// The client certificate maps to no operator (`1.1 Function Requester / 1.1 Unknown`).
pub(crate) const REQUESTER_UNKNOWN: StatusCode = code("1.1", "1.1");
/// `functionRequesterIdentifier` is not one the certificate's operator may use
/// (`1.1 Function Requester / 1.2 Not Allowed`).
pub(crate) const REQUESTER_NOT_ALLOWED: StatusCode = code("1.1", "1.2");
/// Internal or injected failure (`1.2 Function Provider / 4.2 Execution Error`).
pub(crate) const EXECUTION_ERROR: StatusCode = code("1.2", "4.2");

/// `8.1.1 EID / 2.2 Mandatory Element Missing` (ConfirmOrder, Table 27).
pub(crate) const EID_MANDATORY_ELEMENT_MISSING: StatusCode = code("8.1.1", "2.2");
/// `8.1.1 EID / 3.10 Invalid Association` (ConfirmOrder, Table 27).
pub(crate) const EID_INVALID_ASSOCIATION: StatusCode = code("8.1.1", "3.10");
/// `8.2.1 Profile ICCID / 1.2 Not Allowed` (Tables 24, 27, 30, 32).
pub(crate) const ICCID_NOT_ALLOWED: StatusCode = code("8.2.1", "1.2");
/// `8.2.1 Profile ICCID / 3.3 Already in Use` (Tables 24, 30).
pub(crate) const ICCID_ALREADY_IN_USE: StatusCode = code("8.2.1", "3.3");
/// `8.2.1 Profile ICCID / 3.5 Invalid Transition` (Table 32).
pub(crate) const ICCID_INVALID_TRANSITION: StatusCode = code("8.2.1", "3.5");
/// `8.2.1 Profile ICCID / 3.9 Unknown` (Tables 24, 27, 30, 32).
pub(crate) const ICCID_UNKNOWN: StatusCode = code("8.2.1", "3.9");
/// `8.2.1 Profile ICCID / 3.10 Invalid Association` (CancelOrder, Table 30).
pub(crate) const ICCID_INVALID_ASSOCIATION: StatusCode = code("8.2.1", "3.10");
/// `8.2.5 Profile Type / 1.2 Not Allowed` (Table 24).
pub(crate) const PROFILE_TYPE_NOT_ALLOWED: StatusCode = code("8.2.5", "1.2");
/// `8.2.5 Profile Type / 3.7 Unavailable` (Table 24).
pub(crate) const PROFILE_TYPE_UNAVAILABLE: StatusCode = code("8.2.5", "3.7");
/// `8.2.5 Profile Type / 3.8 Refused` (Table 24).
pub(crate) const PROFILE_TYPE_REFUSED: StatusCode = code("8.2.5", "3.8");
/// `8.2.5 Profile Type / 3.9 Unknown` (Table 24).
pub(crate) const PROFILE_TYPE_UNKNOWN: StatusCode = code("8.2.5", "3.9");
/// `8.2.6 Matching ID / 3.3 Already in Use` (ConfirmOrder, Table 27).
pub(crate) const MATCHING_ID_ALREADY_IN_USE: StatusCode = code("8.2.6", "3.3");
/// `8.2.6 Matching ID / 3.10 Invalid Association` (CancelOrder, Table 30).
pub(crate) const MATCHING_ID_INVALID_ASSOCIATION: StatusCode = code("8.2.6", "3.10");
/// `8.9 SM-DS / 4.2 Execution Error` (ConfirmOrder, Table 27).
pub(crate) const SMDS_EXECUTION_ERROR: StatusCode = code("8.9", "4.2");
/// `8.9 SM-DS / 5.1 Inaccessible` (ConfirmOrder, Table 27).
pub(crate) const SMDS_INACCESSIBLE: StatusCode = code("8.9", "5.1");

/// `8.1 eUICC / 6.1 Verification Failed` (ES9+ Tables 40, 43, 46).
pub(crate) const EUICC_VERIFICATION_FAILED: StatusCode = code("8.1", "6.1");
/// `8.1 eUICC / 4.8 Insufficient Memory` (AuthenticateClient, Table 43).
pub(crate) const EUICC_INSUFFICIENT_MEMORY: StatusCode = code("8.1", "4.8");
/// `8.1.1 EID / 3.8 Refused` (AuthenticateClient, Table 43).
pub(crate) const EID_REFUSED: StatusCode = code("8.1.1", "3.8");
/// `8.1.2 EUM Certificate / 6.1 Verification Failed` (Table 43).
pub(crate) const EUM_CERTIFICATE_INVALID: StatusCode = code("8.1.2", "6.1");
/// `8.1.2 EUM Certificate / 6.3 Expired` (Table 43).
pub(crate) const EUM_CERTIFICATE_EXPIRED: StatusCode = code("8.1.2", "6.3");
/// `8.1.3 eUICC Certificate / 6.1 Verification Failed` (Table 43).
pub(crate) const EUICC_CERTIFICATE_INVALID: StatusCode = code("8.1.3", "6.1");
/// `8.1.3 eUICC Certificate / 6.3 Expired` (Table 43).
pub(crate) const EUICC_CERTIFICATE_EXPIRED: StatusCode = code("8.1.3", "6.3");
/// `8.2 Profile / 1.2 Not allowed`: not yet released (Table 43).
pub(crate) const PROFILE_NOT_RELEASED: StatusCode = code("8.2", "1.2");
/// `8.2 Profile / 3.7 Unavailable`: no BPP for a new binding (Table 40).
pub(crate) const BPP_UNAVAILABLE: StatusCode = code("8.2", "3.7");
/// `8.2.5 Profile Type / 4.3 Stopped on warning`: no eligible profile (Table 43).
pub(crate) const NO_ELIGIBLE_PROFILE: StatusCode = code("8.2.5", "4.3");
/// `8.2.6 MatchingID / 3.8 Refused` (AuthenticateClient, Table 43).
pub(crate) const MATCHING_ID_REFUSED: StatusCode = code("8.2.6", "3.8");
/// `8.2.7 Confirmation Code / 2.2 Mandatory Element Missing` (Table 40).
pub(crate) const CONFIRMATION_CODE_MISSING: StatusCode = code("8.2.7", "2.2");
/// `8.2.7 Confirmation Code / 3.8 Refused` (Table 40).
pub(crate) const CONFIRMATION_CODE_REFUSED: StatusCode = code("8.2.7", "3.8");
/// `8.2.7 Confirmation Code / 6.4 Maximum number of retries exceeded` (Table 40).
pub(crate) const CONFIRMATION_CODE_RETRIES_EXCEEDED: StatusCode = code("8.2.7", "6.4");
/// `8.8 SM-DP+ / 3.10 Invalid Association`: the SM-DP+ OID (CancelSession, Table 46).
pub(crate) const SMDP_OID_INVALID: StatusCode = code("8.8", "3.10");
/// `8.8.1 SM-DP+ Address / 3.8 Refused` (InitiateAuthentication, Table 37).
pub(crate) const SMDP_ADDRESS_REFUSED: StatusCode = code("8.8.1", "3.8");
/// `8.8.2 Security configuration / 3.1 Unsupported` (Table 37).
pub(crate) const SECURITY_CONFIGURATION_UNSUPPORTED: StatusCode = code("8.8.2", "3.1");
/// `8.8.3 Specification Version Number / 3.1 Unsupported` (Table 37).
pub(crate) const SVN_UNSUPPORTED: StatusCode = code("8.8.3", "3.1");
/// `8.8.4 SM-DP+ Certificate / 3.7 Unavailable` (Table 37).
pub(crate) const SMDP_CERTIFICATE_UNAVAILABLE: StatusCode = code("8.8.4", "3.7");
/// `8.8.5 Download order / 4.10 Time to Live Expired` (Tables 40, 43).
pub(crate) const ORDER_EXPIRED: StatusCode = code("8.8.5", "4.10");
/// `8.8.5 Download order / 6.4 Maximum number of retries exceeded` (Table 43).
pub(crate) const DOWNLOAD_RETRIES_EXCEEDED: StatusCode = code("8.8.5", "6.4");
/// `8.10.1 TransactionId / 3.9 Unknown` (Tables 40, 43, 46).
pub(crate) const TRANSACTION_ID_UNKNOWN: StatusCode = code("8.10.1", "3.9");
/// `8.11.1 CI Public Key / 3.9 Unknown` (Table 43).
pub(crate) const CI_UNKNOWN: StatusCode = code("8.11.1", "3.9");
/// `8.9.1 SM-DS Address / 3.8 Refused` (ES11 InitiateAuthentication, Table 48a).
pub(crate) const SMDS_ADDRESS_REFUSED: StatusCode = code("8.9.1", "3.8");
/// `8.9.2 Security configuration / 3.1 Unsupported` (Table 48a).
pub(crate) const SMDS_SECURITY_CONFIGURATION_UNSUPPORTED: StatusCode = code("8.9.2", "3.1");
/// `8.9.3 SVN / 3.1 Unsupported` (Table 48a).
pub(crate) const SMDS_SVN_UNSUPPORTED: StatusCode = code("8.9.3", "3.1");
/// `8.9.4 SM-DS Certificate / 3.7 Unavailable` (Table 48a).
pub(crate) const SMDS_CERTIFICATE_UNAVAILABLE: StatusCode = code("8.9.4", "3.7");
/// `8.9.5 Event Record / 3.3 Already in use` (ES12 RegisterEvent, Table 54).
pub(crate) const EVENT_ALREADY_IN_USE: StatusCode = code("8.9.5", "3.3");
/// `8.9.5 Event Record / 3.9 Unknown` (ES11 AuthenticateClient Table 52, ES12 DeleteEvent
/// Table 56).
pub(crate) const EVENT_UNKNOWN: StatusCode = code("8.9.5", "3.9");

/// The catalog's code for a subject and reason code received from another server, if the mock
/// knows it.
pub(crate) fn known_code(subject: &str, reason: &str) -> Option<StatusCode> {
    CATALOG
        .iter()
        .map(|(_, c)| *c)
        .find(|c| c.subject == subject && c.reason == reason)
}

/// Every code the mock can answer with, by a stable kebab-case name (for scenarios and docs).
pub(crate) const CATALOG: &[(&str, StatusCode)] = &[
    ("format-invalid", FORMAT_INVALID),
    ("mandatory-element-missing", MANDATORY_ELEMENT_MISSING),
    ("conditional-element-missing", CONDITIONAL_ELEMENT_MISSING),
    ("requester-unknown", REQUESTER_UNKNOWN),
    ("requester-not-allowed", REQUESTER_NOT_ALLOWED),
    ("execution-error", EXECUTION_ERROR),
    ("eid-missing", EID_MANDATORY_ELEMENT_MISSING),
    ("eid-invalid-association", EID_INVALID_ASSOCIATION),
    ("iccid-not-allowed", ICCID_NOT_ALLOWED),
    ("iccid-already-in-use", ICCID_ALREADY_IN_USE),
    ("iccid-invalid-transition", ICCID_INVALID_TRANSITION),
    ("iccid-unknown", ICCID_UNKNOWN),
    ("iccid-invalid-association", ICCID_INVALID_ASSOCIATION),
    ("profile-type-not-allowed", PROFILE_TYPE_NOT_ALLOWED),
    ("profile-type-unavailable", PROFILE_TYPE_UNAVAILABLE),
    ("profile-type-refused", PROFILE_TYPE_REFUSED),
    ("profile-type-unknown", PROFILE_TYPE_UNKNOWN),
    ("matching-id-already-in-use", MATCHING_ID_ALREADY_IN_USE),
    (
        "matching-id-invalid-association",
        MATCHING_ID_INVALID_ASSOCIATION,
    ),
    ("smds-execution-error", SMDS_EXECUTION_ERROR),
    ("smds-inaccessible", SMDS_INACCESSIBLE),
    ("euicc-verification-failed", EUICC_VERIFICATION_FAILED),
    ("euicc-insufficient-memory", EUICC_INSUFFICIENT_MEMORY),
    ("eid-refused", EID_REFUSED),
    ("eum-certificate-invalid", EUM_CERTIFICATE_INVALID),
    ("eum-certificate-expired", EUM_CERTIFICATE_EXPIRED),
    ("euicc-certificate-invalid", EUICC_CERTIFICATE_INVALID),
    ("euicc-certificate-expired", EUICC_CERTIFICATE_EXPIRED),
    ("profile-not-released", PROFILE_NOT_RELEASED),
    ("bpp-unavailable", BPP_UNAVAILABLE),
    ("no-eligible-profile", NO_ELIGIBLE_PROFILE),
    ("matching-id-refused", MATCHING_ID_REFUSED),
    ("confirmation-code-missing", CONFIRMATION_CODE_MISSING),
    ("confirmation-code-refused", CONFIRMATION_CODE_REFUSED),
    (
        "confirmation-code-retries-exceeded",
        CONFIRMATION_CODE_RETRIES_EXCEEDED,
    ),
    ("smdp-oid-invalid", SMDP_OID_INVALID),
    ("smdp-address-refused", SMDP_ADDRESS_REFUSED),
    (
        "security-configuration-unsupported",
        SECURITY_CONFIGURATION_UNSUPPORTED,
    ),
    ("svn-unsupported", SVN_UNSUPPORTED),
    ("smdp-certificate-unavailable", SMDP_CERTIFICATE_UNAVAILABLE),
    ("order-expired", ORDER_EXPIRED),
    ("download-retries-exceeded", DOWNLOAD_RETRIES_EXCEEDED),
    ("transaction-id-unknown", TRANSACTION_ID_UNKNOWN),
    ("ci-unknown", CI_UNKNOWN),
    ("smds-address-refused", SMDS_ADDRESS_REFUSED),
    (
        "smds-security-configuration-unsupported",
        SMDS_SECURITY_CONFIGURATION_UNSUPPORTED,
    ),
    ("smds-svn-unsupported", SMDS_SVN_UNSUPPORTED),
    ("smds-certificate-unavailable", SMDS_CERTIFICATE_UNAVAILABLE),
    ("event-already-in-use", EVENT_ALREADY_IN_USE),
    ("event-unknown", EVENT_UNKNOWN),
];

/// The status code with this catalog name, or written as `subject/reason` (e.g. `8.2.1/3.3`).
pub(crate) fn status_code_by_name(text: &str) -> Option<StatusCode> {
    if let Some((_, code)) = CATALOG.iter().find(|(n, _)| *n == text) {
        return Some(*code);
    }
    let (subject, reason) = text.split_once('/')?;
    let dotted = |s: &str| {
        !s.is_empty()
            && s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    };
    if !(dotted(subject) && dotted(reason)) {
        return None;
    }
    Some(StatusCode {
        subject: intern(subject),
        reason: intern(reason),
    })
}

/// A `'static` copy of a code outside the catalog; each distinct text is allocated once, so
/// reloading scenarios does not grow memory.
fn intern(text: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static INTERNED: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = INTERNED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    match set.get(text) {
        Some(known) => known,
        None => {
            let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
            set.insert(leaked);
            leaked
        }
    }
}

/// `statusCodeData` (SGP.22 §5.2.5, §6.5.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StatusCodeData {
    /// Subject code.
    pub subject_code: &'static str,
    /// Reason code.
    pub reason_code: &'static str,
    /// The offending object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_identifier: Option<String>,
    /// Explanation.
    pub message: String,
}

impl StatusCodeData {
    /// The data of a failure with `code`.
    pub(crate) fn new(
        code: StatusCode,
        subject_identifier: Option<String>,
        message: impl Into<String>,
    ) -> Self {
        StatusCodeData {
            subject_code: code.subject,
            reason_code: code.reason,
            subject_identifier,
            message: message.into(),
        }
    }
}

/// `functionExecutionStatus` (SGP.22 §6.5.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct FunctionExecutionStatus {
    /// Outcome.
    pub status: ExecutionStatus,
    /// Present on `Failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code_data: Option<StatusCodeData>,
}

/// The response header (SGP.22 §6.5.1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResponseHeader {
    /// The outcome.
    pub function_execution_status: FunctionExecutionStatus,
}

impl ResponseHeader {
    /// `status` without status code data.
    pub(crate) fn of(status: ExecutionStatus) -> Self {
        ResponseHeader {
            function_execution_status: FunctionExecutionStatus {
                status,
                status_code_data: None,
            },
        }
    }

    /// `Failed` with `data`.
    pub(crate) fn failed(data: StatusCodeData) -> Self {
        ResponseHeader {
            function_execution_status: FunctionExecutionStatus {
                status: ExecutionStatus::Failed,
                status_code_data: Some(data),
            },
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    header: &'a ResponseHeader,
    #[serde(flatten)]
    body: Option<&'a T>,
}

/// Serialises a response: the header plus, unless it failed, the output fields of `body`.
pub(crate) fn response_json<T: Serialize>(header: &ResponseHeader, body: Option<&T>) -> Vec<u8> {
    let body = match header.function_execution_status.status {
        ExecutionStatus::Failed => None,
        _ => body,
    };
    // Serialising these plain structs into a Vec cannot fail.
    serde_json::to_vec(&Envelope { header, body }).unwrap_or_default()
}

/// Whether a `Content-Type` value is JSON (`application/json`, any parameters, any case).
pub(crate) fn is_json(content_type: Option<&str>) -> bool {
    is_media(content_type, "application/json")
}

/// Whether a `Content-Type` value is `media_type` (any parameters, any case).
pub(crate) fn is_media(content_type: Option<&str>, media_type: &str) -> bool {
    content_type.is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|m| m.trim().eq_ignore_ascii_case(media_type))
    })
}

/// The longest server address (`smdpAddress`, `smdsAddress`, `rspServerAddress`): an FQDN of
/// 255 characters (what `ids::check_fqdn` takes), `:` and a port of 5 digits. Anything longer
/// is refused before it is kept.
pub(crate) const MAX_ADDRESS: usize = 255 + 6;

/// Whether `given` (an `smdpAddress` as an LPA sent it, an `smdsAddress` of ConfirmOrder) names
/// one of the `accepted` addresses of a server: a case-insensitive
/// host, one trailing (root) dot ignored, `:443` implied when no port is given.
pub(crate) fn address_accepted(given: &str, accepted: &[String]) -> bool {
    if given.len() > MAX_ADDRESS {
        return false;
    }
    let given = normal_address(given);
    accepted.iter().any(|a| normal_address(a) == given)
}

/// `host:port` in lower case, without a trailing dot, `443` when no port is given.
pub(crate) fn normal_address(text: &str) -> String {
    let lower = text.trim().to_ascii_lowercase();
    let (host, port) = match lower.strip_prefix('[') {
        Some(rest) => match rest.split_once("]:") {
            Some((host, port)) => (host, Some(port)),
            None => (rest.trim_end_matches(']'), None),
        },
        None => match lower.rsplit_once(':') {
            Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
                (host, Some(port))
            }
            _ => (lower.as_str(), None),
        },
    };
    format!(
        "{}:{}",
        host.strip_suffix('.').unwrap_or(host),
        port.unwrap_or("443")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failed_response_omits_output_fields() {
        let header = ResponseHeader::failed(StatusCodeData::new(
            crate::sgp22::ICCID_UNKNOWN,
            Some("iccid".into()),
            "unknown",
        ));
        let v: serde_json::Value =
            serde_json::from_slice(&response_json(&header, Some(&json!({"iccid": "x"})))).unwrap();
        assert_eq!(
            v,
            json!({"header": {"functionExecutionStatus": {"status": "Failed", "statusCodeData": {
                "subjectCode": "8.2.1", "reasonCode": "3.9", "subjectIdentifier": "iccid", "message": "unknown"
            }}}})
        );
    }

    #[test]
    fn a_success_carries_the_fields_beside_the_header() {
        let header = ResponseHeader::of(ExecutionStatus::ExecutedSuccess);
        let v: serde_json::Value = serde_json::from_slice(&response_json(
            &header,
            Some(&json!({"transactionId": "01"})),
        ))
        .unwrap();
        assert_eq!(
            v,
            json!({"header": {"functionExecutionStatus": {"status": "Executed-Success"}}, "transactionId": "01"})
        );
    }

    #[test]
    fn addresses() {
        let accepted = ["localhost:6444".to_string(), "smdp.example:443".to_string()];
        for ok in [
            "localhost:6444",
            "LOCALHOST:6444",
            "smdp.example",
            "smdp.example.",
            "SMDP.example:443",
        ] {
            assert!(address_accepted(ok, &accepted), "{ok}");
        }
        let dots = format!("localhost{}:6444", ".".repeat(61_000));
        for refused in [
            "localhost",
            "localhost:6445",
            "other:6444",
            "",
            "smdp.example:444",
            "localhost..:6444",
            &dots,
        ] {
            assert!(!address_accepted(refused, &accepted), "{refused}");
        }
        assert!(address_accepted("localhost.:6444", &accepted));
    }
}
