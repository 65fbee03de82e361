//! The YAML scenario format, as serde types. Unknown keys are errors everywhere.
//!
//! Values that need checks beyond their type (ICCIDs, references between sections, networks)
//! are kept as [`Spanned`] so a failed check can point at the exact line and column. Settings
//! are `Option`s so that a file can override only some keys of the files it includes; the
//! defaults are applied once, after merging (see `check.rs`). `docs/scenarios.md` documents
//! every key; `smdpp-mock scenario schema` prints the JSON Schema derived from these types.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use crate::profile::machine::{CancelSessionReason, DeviceEvent, InstallResult, LocalOperation};
use crate::profile::ProfileState;

/// A scenario file.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ScenarioFile {
    /// Other scenario files to load first, relative to this one. Lists (operators, profile
    /// types, devices, faults) are concatenated; settings in this file override theirs key by key.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub include: Vec<Spanned<String>>,
    /// SM-DP+ settings.
    #[serde(default)]
    pub smdp: SmdpSettings,
    /// The simulated SM-DSs that ConfirmOrder/ReleaseProfile register events with.
    #[serde(default)]
    pub smds: SmdsSettings,
    /// The operators (Profile Owners) that may call ES2+.
    #[serde(default)]
    pub operators: Vec<OperatorSpec>,
    /// Profile types and their inventory.
    #[serde(default)]
    pub profile_types: Vec<ProfileTypeSpec>,
    /// What simulated devices do once a profile is released; the first matching rule applies.
    #[serde(default)]
    #[schemars(with = "Vec<DeviceRule>")]
    pub devices: Vec<Spanned<DeviceRule>>,
    /// Fault injection on ES2+ and ES9+ calls and on notifications; the first matching rule
    /// that still has budget fires.
    #[serde(default)]
    #[schemars(with = "Vec<FaultRule>")]
    pub faults: Vec<Spanned<FaultRule>>,
}

/// SM-DP+ settings. Every key is optional; defaults are in `docs/scenarios.md`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SmdpSettings {
    /// The SM-DP+ FQDN: used in Activation Codes and as a SAN of the server certificate.
    /// Default `localhost`.
    #[schemars(with = "Option<String>")]
    pub address: Option<Spanned<String>>,
    /// The SM-DP+'s `functionRequesterIdentifier` in notifications it sends. Default: the
    /// address.
    pub requester_identifier: Option<String>,
    /// The `X-Admin-Protocol` value on every response (SGP.22 §6.2). Default `gsma/rsp/v2.5.0`.
    #[schemars(with = "Option<String>")]
    pub admin_protocol: Option<Spanned<String>>,
    /// Seed that makes generated MatchingIDs a reproducible (and so predictable) sequence, for
    /// tests of one's own. Default: each one from the operating system's random source.
    pub matching_id_seed: Option<u64>,
    /// How long a download order stays valid after DownloadOrder (e.g. `7d`). Default: forever.
    pub order_expiry: Option<HumanDuration>,
    /// Strictness switches for real-world client quirks.
    #[serde(default)]
    pub strict: StrictSettings,
    /// Attempt limits of an order, agreed with the operator out of band (SGP.22 §3.1.3).
    #[serde(default)]
    pub limits: LimitSettings,
    /// `lenient` (default): conformance grading only observes. `strict`: a request that
    /// fails an error-severity client check is refused (HTTP checks with 415/400, the others
    /// with `Failed 1.3.1 / 2.1` naming the check), before anything changes.
    pub conformance: Option<ConformanceMode>,
    /// A PEM certificate revocation list of the test CA (e.g. `certs/crl.pem`, written by
    /// `smdpp-mock certs revoke`), relative to this file: client certificates it lists are
    /// refused at the TLS handshake (reason `revoked`). Default: none.
    #[schemars(with = "Option<String>")]
    pub crl_file: Option<Spanned<String>>,
}

/// How conformance grading affects answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ConformanceMode {
    /// Grade only.
    Lenient,
    /// Refuse what fails.
    Strict,
}

/// Strictness switches. Every one defaults to `true`: the spec to the letter.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct StrictSettings {
    /// Refuse requests without a `gsma/rsp/v…` `X-Admin-Protocol` header (HTTP 400).
    pub require_admin_protocol_header: Option<bool>,
    /// Refuse requests whose `Content-Type` is not `application/json` (HTTP 415); on the ES9+
    /// ASN.1 path (SGP.22 §6.6), not `application/x-gsma-rsp-asn1`.
    pub require_json_content_type: Option<bool>,
    /// Refuse CancelOrder without the EID / MatchingID the order has (SGP.22 §5.3.3 "SHALL").
    pub cancel_order_requires_associated_ids: Option<bool>,
}

/// Attempt limits of an order, and what the SM-DP+ remembers.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct LimitSettings {
    /// Download attempts allowed; the next one ends the order in Error (`8.8.5 / 6.4`).
    /// Default 5.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub download_attempts: Option<Spanned<u32>>,
    /// Wrong Confirmation Codes tolerated; the next one ends the order in Error (`8.2.7 / 6.4`).
    /// Default 3.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub confirmation_code_attempts: Option<Spanned<u32>>,
    /// SM-DS EventIDs remembered and refused for reuse (SGP.22 §3.6.1.1), about 25 bytes each;
    /// past this many the oldest is forgotten (counted in `/metrics`). Default 1048576.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub retired_event_ids: Option<Spanned<u32>>,
}

/// What a simulated SM-DS does with an ES12 RegisterEvent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SmdsBehaviour {
    /// Registration succeeds.
    #[default]
    Register,
    /// The SM-DS cannot be reached: `8.9 / 5.1 Inaccessible`.
    Inaccessible,
    /// The SM-DS answers with an error: `8.9 / 4.2 Execution Error`.
    Fail,
    /// A real SM-DS: ES12 over mutual TLS (the SM-DP+'s DPtls as client certificate),
    /// RegisterEvent in ConfirmOrder or ReleaseProfile (its failure theirs: `8.9 / 5.1` when it
    /// cannot be reached, `8.9 / 4.2` when it refuses), DeleteEvent when the order ends.
    Es12,
}

/// The SM-DSs: the mock's own (ES11, ES12 on its listener) and simulated ones.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SmdsSettings {
    /// The address (`host[:port]`) of the mock's own SM-DS, as ConfirmOrder's `smdsAddress`
    /// names it and LPAs reach it. Default: the host of `smdp.address` with the SM-DS
    /// listener's port (`--smds-listen`); a host without a port gets that port.
    #[schemars(with = "Option<String>")]
    pub address: Option<Spanned<String>>,
    /// A root SM-DS (`host[:port]`) the mock's SM-DS cascades ES12 registrations to, as an
    /// Alternative SM-DS (§3.6.1.2, ES15 with its DStls): registrations with
    /// `forwardingIndicator: true` are registered there too, under an EventID of its own, and
    /// deleted there with them. Without it the mock's SM-DS is a root SM-DS.
    #[schemars(with = "Option<String>")]
    pub root: Option<Spanned<String>>,
    /// Event Records the mock's SM-DS holds whenever the world starts (at start, after a reset
    /// or a scenario load), registered by the mock's SM-DP+: discovery for LPA tests without
    /// ES2+ orders.
    #[serde(default)]
    pub events: Vec<PresetEventSpec>,
    /// What Event Registration does at SM-DS addresses not listed in `addresses` and not the
    /// mock's own. Default `register`.
    pub default: Option<SmdsBehaviour>,
    /// What Event Registration does per SM-DS address (FQDN): the mock's own SM-DS too
    /// (`inaccessible` or `fail` make its registrations fail).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SmdsBehaviour>")]
    pub addresses: HashMap<Spanned<String>, SmdsBehaviour>,
}

/// An Event Record of `smds.events`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct PresetEventSpec {
    /// The eUICC (32 digits).
    #[schemars(with = "String")]
    pub eid: Spanned<String>,
    /// The EventID (1 to 255 bytes): the MatchingID the device then downloads with.
    #[schemars(with = "String")]
    pub event_id: Spanned<String>,
    /// Where the device downloads (`host[:port]`). Default: the mock's SM-DP+ (the address
    /// its Activation Codes name).
    #[schemars(with = "Option<String>")]
    pub rsp_server_address: Option<Spanned<String>>,
}

/// An operator.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OperatorSpec {
    /// Unique id; also the file name of its client certificate (`certs/<id>.pem`).
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// Allowed `functionRequesterIdentifier` values. Default: `[id]`.
    pub requester_identifiers: Option<Vec<String>>,
    /// Client certificate subject CN or DNS/URI SAN values identifying the operator.
    /// Default: `[id]`.
    #[schemars(with = "Option<Vec<String>>")]
    pub certificate_names: Option<Vec<Spanned<String>>>,
    /// Source networks the operator may connect from, as IPs or CIDRs (the vendor's IP
    /// whitelisting). Default: any address.
    #[schemars(with = "Option<Vec<String>>")]
    pub allowed_source_ips: Option<Vec<Spanned<String>>>,
    /// Where HandleDownloadProgressInfo notifications for this operator's profiles go.
    pub callback: Option<CallbackSpec>,
}

/// The operator's notification endpoint and how deliveries behave.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CallbackSpec {
    /// Base URL (`https://…` or, for local receivers, `http://…`); the path
    /// `/gsma/rsp2/es2plus/handleDownloadProgressInfo` is appended unless the URL ends with it.
    #[schemars(with = "String")]
    pub url: Spanned<String>,
    /// Time one delivery attempt may take. Default `5s`.
    pub timeout: Option<HumanDuration>,
    /// Delivery attempts before a notification is marked failed. Default 8.
    pub max_attempts: Option<u32>,
    /// Delay before the first retry; doubled each time, with jitter. Default `200ms`.
    pub initial_backoff: Option<HumanDuration>,
    /// Longest delay between retries. Default `30s`.
    pub max_backoff: Option<HumanDuration>,
    /// Present `certs/smdpp-client.pem` as TLS client certificate. Default `false`.
    pub client_certificate: Option<bool>,
    /// PEM file of CAs that sign the receiver's server certificate, relative to the scenario
    /// file. Default: the mock's own CA (`certs/ca.pem`).
    pub ca_file: Option<String>,
    /// Count any answer but `204 No Content` as a failed attempt (SGP.22 §6.3). Default
    /// `false`: any 2xx is accepted, and a non-204 answer is noted in the delivery log.
    pub require_no_content: Option<bool>,
    /// How the notification body is written: the spec's form by default, or the variants real
    /// SM-DP+s send.
    #[serde(default)]
    pub format: NotificationFormatSpec,
}

/// How HandleDownloadProgressInfo bodies are written: SGP.22 §6.5.2.5, or a variant real
/// SM-DP+s send (docs/scenarios.md).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct NotificationFormatSpec {
    /// Key of the time field: `timestamp` (SGP.22 §6.5.2.5, default) or `timeStamp` (Annex I).
    pub timestamp_key: Option<TimestampKey>,
    /// `notificationPointId` as a JSON `number` (default) or `string` (Annex I).
    pub point_id_type: Option<PointIdType>,
    /// Write 19-digit ICCIDs with the trailing `F` pad, as some SM-DP+s do. Default `false`
    /// (the inventory's own form).
    pub pad_iccid: Option<bool>,
    /// `resultData` of point 4: `final-result` (the `finalResult` element, default),
    /// `full-pir` (the whole ProfileInstallationResult, as pySim expects) or `omit`.
    pub result_data: Option<ResultDataForm>,
    /// Send point 3 (BPP download) on success, which SGP.22 leaves to agreement. Default `true`.
    pub bpp_download_success: Option<bool>,
    /// Send point 1 (eligibility and retry limit check) on success, which SGP.22 leaves to
    /// agreement. Default `false`.
    pub eligibility_success: Option<bool>,
    /// Send point 2 on every wrong Confirmation Code, not only when the retries are exhausted
    /// (SGP.22 §3.1.3.2 step 8 notifies then only). Default `false`.
    pub confirmation_failure_each_attempt: Option<bool>,
    /// notificationPointId of the local events; SGP.22 reserves 0-99, so the defaults are
    /// 100 (enable), 101 (disable), 102 (delete). Telna and Monogoto use 6, 7, 8.
    #[serde(default)]
    pub local_points: LocalPointsSpec,
}

/// Key of the HDPI time field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
pub enum TimestampKey {
    /// SGP.22 §6.5.2.5.
    #[serde(rename = "timestamp")]
    Timestamp,
    /// SGP.22 Annex I example.
    #[serde(rename = "timeStamp")]
    TimeStamp,
}

/// JSON type of `notificationPointId`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum PointIdType {
    /// A JSON number (SGP.22 §6.5.2.5).
    Number,
    /// A JSON string (SGP.22 Annex I).
    String,
}

/// Form of `resultData`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ResultDataForm {
    /// The `finalResult` element (SGP.22 Table 32a).
    FinalResult,
    /// The whole ProfileInstallationResult (tag BF37).
    FullPir,
    /// No `resultData`.
    Omit,
}

/// notificationPointId of the local events.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct LocalPointsSpec {
    /// `notificationLocalEnable`. Default 100.
    pub enable: Option<u32>,
    /// `notificationLocalDisable`. Default 101.
    pub disable: Option<u32>,
    /// `notificationLocalDelete`. Default 102.
    pub delete: Option<u32>,
}

/// A profile type and its inventory.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ProfileTypeSpec {
    /// The type name operators put in `profileType`.
    #[schemars(with = "String")]
    pub id: Spanned<String>,
    /// The owning operator's id.
    #[schemars(with = "String")]
    pub owner: Spanned<String>,
    /// Free text, for people.
    // Only people (and the schema) read it.
    #[allow(dead_code)]
    pub description: Option<String>,
    /// The profiles of this type.
    #[serde(default)]
    #[schemars(with = "Vec<ProfileEntry>")]
    pub profiles: Vec<Spanned<ProfileEntry>>,
    /// A profile package (UPP, DER profile elements) of the user's own that ES9+ downloads
    /// deliver for this type, relative to this file, personalised per order (the header's
    /// ICCID and EF.ICCID). Default: a synthetic package per order.
    #[schemars(with = "Option<String>")]
    pub profile_package: Option<Spanned<String>>,
    /// How ES9+ protects this type's packages (SGP.22 §2.5.3). Default `sessionKeys`.
    #[serde(default)]
    pub package_protection: PackageProtection,
    /// How the generated packages' IMSI, Milenage K and OPc are derived from each ICCID, so a
    /// test network can be provisioned with the same values (docs/scenarios.md). Default: MCC
    /// `001`, MNC `01`, the OP of 3GPP TS 35.208 test set 1, key seed `smdpp-mock`.
    #[schemars(with = "Option<SubscriptionSpec>")]
    pub subscription: Option<Spanned<SubscriptionSpec>>,
}

/// `profileTypes[].subscription`: what the generated packages' subscriptions derive from.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SubscriptionSpec {
    /// Mobile country code, 3 digits. Default `001`.
    pub mcc: Option<String>,
    /// Mobile network code, 2 or 3 digits. Default `01`.
    pub mnc: Option<String>,
    /// The operator's OP, 32 hex digits. Default: 3GPP TS 35.208 test set 1.
    pub op: Option<String>,
    /// What each K is derived from besides the ICCID. Default `smdpp-mock`.
    pub key_seed: Option<String>,
}

/// How the profile package is protected inside the Bound Profile Package (SGP.22 §2.5.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum PackageProtection {
    /// With the session keys of the key agreement with the eUICC.
    #[default]
    SessionKeys,
    /// With random keys of the order (PPK-ENC, PPK-MAC, §2.5.3's "random key mode"), handed to
    /// the eUICC by ReplaceSessionKeys (§5.5.4): a rebinding on a download retry leaves the
    /// protected package as it was.
    ProfileProtectionKeys,
}

/// One ICCID, a list of them, or a range, with an optional initial order state.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ProfileEntry {
    /// A single ICCID, with its Luhn check digit (19 digits, optional `F` pad, or 20 digits).
    #[schemars(with = "Option<String>")]
    pub iccid: Option<Spanned<String>>,
    /// Several ICCIDs.
    #[schemars(with = "Option<Vec<String>>")]
    pub iccids: Option<Vec<Spanned<String>>>,
    /// Consecutive ICCIDs whose check digits are computed.
    #[schemars(with = "Option<IccidRange>")]
    pub range: Option<Spanned<IccidRange>>,
    /// The state the profiles start in. Default `Available`.
    #[schemars(with = "Option<ProfileState>")]
    pub state: Option<Spanned<ProfileState>>,
    /// The EID the order is linked to (required for Linked, Downloaded, Installed).
    #[schemars(with = "Option<String>")]
    pub eid: Option<Spanned<String>>,
    /// The order's MatchingID (Confirmed and later; generated when absent). Not for ranges.
    #[schemars(with = "Option<String>")]
    pub matching_id: Option<Spanned<String>>,
    /// The order's Confirmation Code (Confirmed and later); stored as SHA-256 only.
    #[schemars(with = "Option<String>")]
    pub confirmation_code: Option<Spanned<String>>,
}

/// Consecutive ICCIDs.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct IccidRange {
    /// The first ICCID without its check digit: 18 digits for 19-digit ICCIDs, 19 for 20.
    pub start: String,
    /// How many ICCIDs.
    pub count: u32,
    /// Write the 19-digit ICCIDs with the trailing `F` pad. Default `false`.
    #[serde(default)]
    pub pad: bool,
}

/// Which profiles a device rule applies to; every key given must match.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeviceMatch {
    /// Profile type id.
    #[schemars(with = "Option<String>")]
    pub profile_type: Option<Spanned<String>>,
    /// The order's EID.
    #[schemars(with = "Option<String>")]
    pub eid: Option<Spanned<String>>,
    /// Owning operator id.
    #[schemars(with = "Option<String>")]
    pub operator: Option<Spanned<String>>,
}

/// What the simulated device does after a profile is released.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeviceRule {
    /// Which profiles; absent matches every profile.
    #[serde(default, rename = "match")]
    pub matches: DeviceMatch,
    /// The EID the device presents when the order has none. Default
    /// `89049032000000000000000000000000` plus nothing else: one shared test eUICC.
    #[schemars(with = "Option<String>")]
    pub device_eid: Option<Spanned<String>>,
    /// The steps, in order. An empty timeline means "manual": tests drive the device.
    #[serde(default)]
    pub timeline: Vec<DeviceStep>,
    /// `simulated` (default): the steps move the order directly. `es9`: a software eUICC and
    /// the library's LPA play them over the real ES9+ listener (the journal and the dashboard
    /// show the calls); the device EID must be in the mock EUM's range (89049032…).
    #[schemars(with = "Option<DeviceProtocol>")]
    pub protocol: Option<Spanned<DeviceProtocol>>,
    /// With `protocol: es9`: the curves of the software eUICC's certificate chains, and so the
    /// CIs it trusts (SGP.22 §2.6.7.1): `nist` (default), `brainpool`, or `both` (NIST named
    /// first).
    #[schemars(with = "Option<DeviceCurves>")]
    pub curves: Option<Spanned<DeviceCurves>>,
}

/// The curves of a software eUICC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DeviceCurves {
    /// NIST P-256 only.
    Nist,
    /// brainpoolP256r1 only.
    Brainpool,
    /// Both, NIST first.
    Both,
}

impl DeviceCurves {
    /// The curves, in the order the card names their CIs.
    pub(crate) fn curves(self) -> Vec<smdpp_rsp::crypto::Curve> {
        use smdpp_rsp::crypto::Curve;
        match self {
            DeviceCurves::Nist => vec![Curve::NistP256],
            DeviceCurves::Brainpool => vec![Curve::BrainpoolP256r1],
            DeviceCurves::Both => vec![Curve::NistP256, Curve::BrainpoolP256r1],
        }
    }
}

/// How a device timeline is played.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DeviceProtocol {
    /// Events committed directly on the order.
    Simulated,
    /// A software eUICC and LPA over ES9+.
    Es9,
}

/// One step of a device timeline.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeviceStep {
    /// Wait this long after the previous step (or the release). Default `0ms`.
    pub after: Option<HumanDuration>,
    /// What happens.
    #[schemars(with = "DeviceEventName")]
    pub event: Spanned<DeviceEventName>,
    /// Repeat the event this many times (e.g. three wrong codes). Default 1.
    pub times: Option<u32>,
    /// `install-failure`: the eUICC's `errorReason` (SGP.22 §5.6.3). Default 11
    /// (installFailedDueToInterruption).
    pub error_reason: Option<u8>,
    /// `install-failure`: the failing `bppCommandId`. Default 5 (loadProfileElements).
    pub bpp_command_id: Option<u8>,
}

/// The device events a timeline can contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum DeviceEventName {
    /// The BPP is downloaded (notification point 3).
    Download,
    /// `protocol: es9` only: the device finds the order's event at the mock's SM-DS (ES11,
    /// SGP.22 §3.6.2) and downloads with its EventID (point 3), as `download` does with the
    /// Activation Code.
    Discover,
    /// A wrong Confirmation Code is entered (point 2).
    WrongConfirmationCode,
    /// The device is not eligible (point 1, `8.2.5 / 4.3`).
    EligibilityFailure,
    /// A retried download finds no BPP to rebind.
    RebindFailure,
    /// The end user rejects the download (CancelSession reason 0).
    EndUserRejection,
    /// The user postpones (CancelSession reason 1): nothing changes.
    Postponed,
    /// The session times out (CancelSession reason 2): nothing changes.
    Timeout,
    /// The PPR check fails (CancelSession reason 3).
    PprNotAllowed,
    /// The metadata differ (CancelSession reason 4).
    MetadataMismatch,
    /// Loading the BPP fails (CancelSession reason 5).
    LoadBppExecutionError,
    /// CancelSession with reason 127.
    UndefinedReason,
    /// Installation succeeds (point 4).
    InstallSuccess,
    /// Installation fails with `errorReason` (point 4, Error).
    InstallFailure,
    /// The user enables the profile.
    Enable,
    /// The user disables the profile.
    Disable,
    /// The user deletes the profile.
    Delete,
}

impl DeviceEventName {
    /// The state-machine event; `error_reason` and `bpp_command_id` only matter for
    /// `install-failure` (defaults 11 and 5).
    pub(crate) fn event(self, error_reason: Option<u8>, bpp_command_id: Option<u8>) -> DeviceEvent {
        use DeviceEventName as N;
        let cancel = DeviceEvent::CancelSession;
        match self {
            N::Download | N::Discover => DeviceEvent::Download,
            N::WrongConfirmationCode => DeviceEvent::WrongConfirmationCode,
            N::EligibilityFailure => DeviceEvent::EligibilityFailure,
            N::RebindFailure => DeviceEvent::RebindFailure,
            N::EndUserRejection => cancel(CancelSessionReason::EndUserRejection),
            N::Postponed => cancel(CancelSessionReason::Postponed),
            N::Timeout => cancel(CancelSessionReason::Timeout),
            N::PprNotAllowed => cancel(CancelSessionReason::PprNotAllowed),
            N::MetadataMismatch => cancel(CancelSessionReason::MetadataMismatch),
            N::LoadBppExecutionError => cancel(CancelSessionReason::LoadBppExecutionError),
            N::UndefinedReason => cancel(CancelSessionReason::Undefined),
            N::InstallSuccess => DeviceEvent::InstallResult(InstallResult::Success),
            N::InstallFailure => DeviceEvent::InstallResult(InstallResult::Failure {
                bpp_command_id: bpp_command_id.unwrap_or(5),
                error_reason: error_reason.unwrap_or(11),
            }),
            N::Enable => DeviceEvent::Local(LocalOperation::Enable),
            N::Disable => DeviceEvent::Local(LocalOperation::Disable),
            N::Delete => DeviceEvent::Local(LocalOperation::Delete),
        }
    }
}

/// Which ES2+ calls a fault rule applies to; every key given must match.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct FaultMatch {
    /// `downloadOrder`, `confirmOrder`, `cancelOrder` or `releaseProfile`; with `target: es9`,
    /// `initiateAuthentication`, `authenticateClient`, `getBoundProfilePackage`,
    /// `handleNotification` or `cancelSession`.
    #[schemars(with = "Option<String>")]
    pub function: Option<Spanned<String>>,
    /// The request's ICCID (pad-insensitive).
    #[schemars(with = "Option<String>")]
    pub iccid: Option<Spanned<String>>,
    /// The request's EID, or the EID of the order it names.
    #[schemars(with = "Option<String>")]
    pub eid: Option<Spanned<String>>,
    /// The request's profile type, or the type of the ICCID it names.
    #[schemars(with = "Option<String>")]
    pub profile_type: Option<Spanned<String>>,
    /// The calling operator (for notifications: the profile owner).
    #[schemars(with = "Option<String>")]
    pub operator: Option<Spanned<String>>,
    /// For `target: notification`: the notification point.
    #[schemars(with = "Option<crate::profile::machine::NotificationPoint>")]
    pub notification_point: Option<Spanned<crate::profile::machine::NotificationPoint>>,
}

/// What a fault rule acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FaultTarget {
    /// ES2+ calls from the operator.
    #[default]
    Es2,
    /// HandleDownloadProgressInfo deliveries to the operator.
    Notification,
    /// ES9+ calls from LPAs.
    Es9,
}

/// A fault: what to do with matching ES2+ or ES9+ calls or notifications, how often.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct FaultRule {
    /// A label for logs and the admin API.
    pub name: Option<String>,
    /// `es2` (default): ES2+ calls. `notification`: deliveries to the operator's callback.
    /// `es9`: ES9+ calls from LPAs (matched on the order of their session).
    #[serde(default)]
    pub target: FaultTarget,
    /// Which calls; absent matches every ES2+ call.
    #[serde(default, rename = "match")]
    pub matches: FaultMatch,
    /// Answer `Failed` with this status instead of running the function: a catalog name such
    /// as `profile-type-unavailable` (see `docs/scenarios.md`) or raw codes `8.2.5/3.7`.
    #[schemars(with = "Option<String>")]
    pub error: Option<Spanned<String>>,
    /// The `message` of that status. Default: "injected fault" and the rule's name.
    pub message: Option<String>,
    /// Wait this long before answering.
    pub delay: Option<HumanDuration>,
    /// Close the connection without an answer (after `delay`).
    #[serde(default)]
    pub close: bool,
    /// Notifications: never deliver it (marked dropped in the delivery log).
    #[serde(default)]
    pub drop: bool,
    /// Notifications: deliver it twice (at-least-once delivery, made visible).
    #[serde(default)]
    pub duplicate: bool,
    /// Fire at most this many times.
    pub times: Option<u32>,
    /// Fire with this probability (0 to 1) on each matching call.
    pub probability: Option<f64>,
    /// Seed for `probability`, so runs are reproducible. Default 0.
    pub seed: Option<u64>,
}

/// A duration written as a number and a unit: `250ms`, `2s`, `5m`, `1h`, `7d`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HumanDuration(pub std::time::Duration);

impl std::str::FromStr for HumanDuration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{s:?} is not a duration such as 250ms, 2s, 5m, 1h or 7d");
        let split = s.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        let (number, unit) = s.split_at(split);
        let n: u64 = number.parse().map_err(|_| bad())?;
        let ms = match unit {
            "ms" => Some(n),
            "s" => n.checked_mul(1000),
            "m" => n.checked_mul(60_000),
            "h" => n.checked_mul(3_600_000),
            "d" => n.checked_mul(86_400_000),
            _ => None,
        }
        .ok_or_else(bad)?;
        Ok(HumanDuration(std::time::Duration::from_millis(ms)))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for HumanDuration {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": "^[0-9]+(ms|s|m|h|d)$",
            "description": "A duration: a number and a unit, e.g. 250ms, 2s, 5m, 1h, 7d."
        })
    }
}

impl JsonSchema for ProfileState {
    fn schema_name() -> Cow<'static, str> {
        "ProfileState".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let names: Vec<&str> = ProfileState::ALL.iter().map(|s| s.as_str()).collect();
        json_schema!({
            "type": "string",
            "enum": names,
            "description": "An SM-DP+ profile state (SGP.22 §3.1.6)."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ms = |s: &str| s.parse::<HumanDuration>().map(|d| d.0.as_millis());
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("2s"), Ok(2000));
        assert_eq!(ms("7d"), Ok(7 * 86_400_000));
        for bad in [
            "",
            "5",
            "ms",
            "1.5s",
            "2 s",
            "-1s",
            "3w",
            "99999999999999999999d",
        ] {
            assert!(ms(bad).is_err(), "{bad}");
        }
    }
}
