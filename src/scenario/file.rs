//! The YAML scenario format, as serde types. Unknown keys are errors everywhere.

use std::collections::BTreeMap;

use serde::Deserialize;

/// A scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScenarioFile {
    /// SM-DP+ settings.
    #[serde(default)]
    pub smdp: SmdpSettings,
    /// The simulated SM-DSs that ConfirmOrder/ReleaseProfile register events with.
    #[serde(default)]
    pub smds: SmdsSettings,
    /// The operators (Profile Owners) that may call ES2+.
    pub operators: Vec<OperatorSpec>,
    /// Profile types and their inventory.
    #[serde(default)]
    pub profile_types: Vec<ProfileTypeSpec>,
}

/// SM-DP+ settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SmdpSettings {
    /// The SM-DP+ FQDN: used in Activation Codes and as a SAN of the server certificate.
    #[serde(default = "default_address")]
    pub address: String,
    /// The `X-Admin-Protocol` value on every response (SGP.22 §6.2).
    #[serde(default = "default_admin_protocol")]
    pub admin_protocol: String,
    /// Fixed seed for generated MatchingIDs, for reproducible runs.
    #[serde(default)]
    pub matching_id_seed: Option<u64>,
    /// Strictness switches for real-world client quirks.
    #[serde(default)]
    pub strict: StrictSettings,
    /// Attempt limits of an order, agreed with the operator out of band (SGP.22 §3.1.3).
    #[serde(default)]
    pub limits: LimitSettings,
}

/// Attempt limits of an order.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitSettings {
    /// Download attempts allowed; the next one ends the order in Error (`8.8.5 / 6.4`).
    #[serde(default = "default_download_attempts")]
    pub download_attempts: u32,
    /// Wrong Confirmation Codes tolerated; the next one ends the order in Error (`8.2.7 / 6.4`).
    #[serde(default = "default_confirmation_code_attempts")]
    pub confirmation_code_attempts: u32,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            download_attempts: default_download_attempts(),
            confirmation_code_attempts: default_confirmation_code_attempts(),
        }
    }
}

fn default_download_attempts() -> u32 {
    5
}

fn default_confirmation_code_attempts() -> u32 {
    3
}

impl Default for SmdpSettings {
    fn default() -> Self {
        SmdpSettings {
            address: default_address(),
            admin_protocol: default_admin_protocol(),
            matching_id_seed: None,
            strict: StrictSettings::default(),
            limits: LimitSettings::default(),
        }
    }
}

fn default_address() -> String {
    "localhost".into()
}

fn default_admin_protocol() -> String {
    "gsma/rsp/v2.5.0".into()
}

fn yes() -> bool {
    true
}

/// Strictness switches. The defaults follow the spec to the letter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StrictSettings {
    /// Refuse requests without a `gsma/rsp/v…` `X-Admin-Protocol` header (HTTP 400).
    #[serde(default = "yes")]
    pub require_admin_protocol_header: bool,
    /// Refuse CancelOrder without the EID / MatchingID the order has (SGP.22 §5.3.3 "SHALL").
    #[serde(default = "yes")]
    pub cancel_order_requires_associated_ids: bool,
}

impl Default for StrictSettings {
    fn default() -> Self {
        StrictSettings {
            require_admin_protocol_header: true,
            cancel_order_requires_associated_ids: true,
        }
    }
}

/// What a simulated SM-DS does with an ES12 RegisterEvent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SmdsBehaviour {
    /// Registration succeeds.
    #[default]
    Register,
    /// The SM-DS cannot be reached: `8.9 / 5.1 Inaccessible`.
    Inaccessible,
    /// The SM-DS answers with an error: `8.9 / 4.2 Execution Error`.
    Fail,
}

/// The simulated SM-DSs.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SmdsSettings {
    /// Behaviour of SM-DS addresses not listed in `addresses`.
    #[serde(default)]
    pub default: SmdsBehaviour,
    /// Behaviour per SM-DS address.
    #[serde(default)]
    pub addresses: BTreeMap<String, SmdsBehaviour>,
}

/// An operator.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OperatorSpec {
    /// Unique id.
    pub id: String,
    /// Allowed `functionRequesterIdentifier` values (default: the id).
    #[serde(default)]
    pub requester_identifiers: Option<Vec<String>>,
    /// Client certificate subject CN or SAN values identifying the operator (default: the id).
    #[serde(default)]
    pub certificate_names: Option<Vec<String>>,
}

/// A profile type and its inventory.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileTypeSpec {
    /// The type name operators put in `profileType`.
    pub id: String,
    /// The owning operator's id.
    pub owner: String,
    /// The profiles of this type.
    #[serde(default)]
    pub profiles: Vec<ProfileEntry>,
}

/// One ICCID, or a range of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProfileEntry {
    /// A single ICCID, with its Luhn check digit.
    #[serde(default)]
    pub iccid: Option<String>,
    /// Consecutive ICCIDs whose check digits are computed.
    #[serde(default)]
    pub range: Option<IccidRange>,
}

/// Consecutive ICCIDs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IccidRange {
    /// The first ICCID without its check digit: 18 digits for 19-digit ICCIDs, 19 for 20.
    pub start: String,
    /// How many ICCIDs.
    pub count: u32,
    /// Write the 19-digit ICCIDs with the trailing `F` pad.
    #[serde(default)]
    pub pad: bool,
}
