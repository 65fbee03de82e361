//! Scenarios: the YAML description of a whole test world (docs/scenarios.md).
//!
//! [`file`] holds the serde types of the format, `load.rs` reads files and includes,
//! `check.rs` validates and merges them into a [`Scenario`]: the checked, ready-to-run form the
//! server uses. Loading is all-or-nothing: any problem yields [`ScenarioErrors`] (each with
//! `file:line:column`) and no scenario.

mod check;
pub(crate) mod error;
pub(crate) mod file;
mod load;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::ids::MatchingIdGenerator;
use crate::ids::{Eid, Iccid, IccidKey};
use crate::ipnet::IpNetwork;
use crate::profile::machine::{DeviceEvent, NotificationPoint, Rules};
use crate::profile::{Order, Profile};
use crate::sgp22::{Function, StatusCode, HDPI_PATH};

pub use error::{Diagnostic, ScenarioErrors};
pub(crate) use file::PackageProtection;
pub(crate) use file::{FaultTarget, ResultDataForm, ScenarioFile, SmdsBehaviour, TimestampKey};

/// The built-in default scenario (`scenarios/default.yaml`).
pub const DEFAULT_SCENARIO_YAML: &str = include_str!("../../scenarios/default.yaml");

/// The EID simulated devices present when an order has none and the rule names none.
pub const DEFAULT_DEVICE_EID: Eid = match Eid::from_value(89049032000000000000000000000001) {
    Some(eid) => eid,
    None => panic!("not an EID"),
};

/// The JSON Schema of the scenario format, derived from the serde types.
pub fn json_schema() -> serde_json::Value {
    let mut schema = serde_json::to_value(schemars::schema_for!(ScenarioFile)).unwrap_or_default();
    if let Some(obj) = schema.as_object_mut() {
        obj.insert("title".into(), "smdpp-mock scenario".into());
    }
    schema
}

/// Name of the built-in scenario in messages.
pub(crate) const DEFAULT_SCENARIO_NAME: &str = "<built-in default scenario>";

/// Effective SM-DP+ settings, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The SM-DP+ FQDN.
    pub address: String,
    /// The `X-Admin-Protocol` value.
    pub admin_protocol: Arc<str>,
    /// The SM-DP+'s `functionRequesterIdentifier` in notifications.
    pub requester_identifier: String,
    /// Seed of generated MatchingIDs.
    pub matching_id_seed: Option<u64>,
    /// How long an order stays valid after DownloadOrder.
    pub order_expiry: Option<Duration>,
    /// Refuse requests without `X-Admin-Protocol`.
    pub require_admin_protocol_header: bool,
    /// Refuse requests whose `Content-Type` is not JSON.
    pub require_json_content_type: bool,
    /// Refuse requests that fail conformance checks the normal processing would accept.
    pub conformance_strict: bool,
    /// The CRL the TLS listener enforces.
    pub crl_file: Option<PathBuf>,
    /// SM-DS EventIDs remembered for refusing reuse (`smdp.limits.retiredEventIds`).
    pub retired_event_ids: usize,
}

/// Where and how notifications for an operator are delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// The full URL, path included.
    pub url: String,
    /// Time one attempt may take.
    pub timeout: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// First retry delay.
    pub initial_backoff: Duration,
    /// Longest retry delay.
    pub max_backoff: Duration,
    /// Present `certs/smdpp-client.pem`.
    pub client_certificate: bool,
    /// CAs for the receiver's certificate; `None` means the mock's own CA.
    pub ca_file: Option<PathBuf>,
    /// Only `204 No Content` counts as delivered.
    pub require_no_content: bool,
    /// How bodies are written.
    pub format: NotificationFormat,
}

impl Callback {
    /// A callback to `url` with every other setting at its default (docs/scenarios.md).
    ///
    /// The URL must be `http://` or `https://` with a host; the HandleDownloadProgressInfo path
    /// is appended unless it ends with it.
    pub fn with_defaults(url: &str) -> Result<Callback, String> {
        let ok = url.parse::<axum::http::Uri>().ok().is_some_and(|u| {
            matches!(u.scheme_str(), Some("http" | "https")) && u.authority().is_some()
        });
        if !ok {
            return Err(format!(
                "{url:?} is not an http:// or https:// URL with a host"
            ));
        }
        let url = if url.ends_with(HDPI_PATH) {
            url.to_owned()
        } else {
            format!("{}{HDPI_PATH}", url.trim_end_matches('/'))
        };
        Ok(Callback {
            url,
            timeout: Duration::from_secs(5),
            max_attempts: 8,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(30),
            client_certificate: false,
            ca_file: None,
            require_no_content: false,
            format: NotificationFormat::default(),
        })
    }
}

/// How HandleDownloadProgressInfo bodies are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationFormat {
    /// `timeStamp` instead of `timestamp`.
    pub timestamp_key: TimestampKey,
    /// `notificationPointId` as a string.
    pub point_id_as_string: bool,
    /// 19-digit ICCIDs with the `F` pad.
    pub pad_iccid: bool,
    /// Form of `resultData`.
    pub result_data: ResultDataForm,
    /// Send point 3 on success.
    pub bpp_download_success: bool,
    /// Send point 1 on success.
    pub eligibility_success: bool,
    /// Send point 2 on every wrong Confirmation Code.
    pub confirmation_failure_each_attempt: bool,
    /// Point ids of the local enable, disable and delete events.
    pub local_points: [u32; 3],
}

impl Default for NotificationFormat {
    fn default() -> Self {
        NotificationFormat {
            timestamp_key: TimestampKey::Timestamp,
            point_id_as_string: false,
            pad_iccid: false,
            result_data: ResultDataForm::FinalResult,
            bpp_download_success: true,
            eligibility_success: false,
            confirmation_failure_each_attempt: false,
            local_points: [100, 101, 102],
        }
    }
}

/// An operator (Profile Owner) as the server sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operator {
    /// Unique id; also the default certificate name and requester identifier.
    pub id: Arc<str>,
    /// Values the operator may send as `functionRequesterIdentifier`.
    pub requester_identifiers: Vec<String>,
    /// Client certificate names (subject CN or SAN) that identify this operator.
    pub certificate_names: Vec<String>,
    /// Networks the operator may connect from; `None` means anywhere.
    pub allowed_sources: Option<Vec<IpNetwork>>,
    /// The notification endpoint.
    pub callback: Option<Arc<Callback>>,
}

impl Operator {
    /// Whether the operator may connect from `ip`.
    pub fn allows_source(&self, ip: IpAddr) -> bool {
        self.allowed_sources
            .as_ref()
            .is_none_or(|nets| nets.iter().any(|n| n.contains(ip)))
    }
}

/// A profile type and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileType {
    /// The operator-defined type name (SGP.22 §5.3.1 `profileType`).
    pub id: Arc<str>,
    /// The owning operator's id.
    pub owner: Arc<str>,
    /// The profile package ES9+ downloads deliver, personalised per order (`profilePackage`);
    /// `None`: a synthetic one.
    pub package: Option<Arc<smdpp_rsp::profile_package::ProfilePackage>>,
    /// How ES9+ protects the package in the Bound Profile Package (`packageProtection`).
    pub protection: PackageProtection,
    /// How the generated packages' IMSI, K and OPc are derived (`subscription`).
    pub subscription: smdpp_rsp::profile_package::SubscriptionRule,
}

/// The ICCIDs of one inventory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum IccidSource {
    List(Vec<Iccid>),
    Range {
        first: u128,
        width: usize,
        count: u32,
        pad: bool,
    },
}

impl IccidSource {
    fn len(&self) -> usize {
        match self {
            IccidSource::List(l) => l.len(),
            IccidSource::Range { count, .. } => *count as usize,
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = Iccid> + '_> {
        match self {
            IccidSource::List(l) => Box::new(l.iter().copied()),
            IccidSource::Range {
                first,
                width,
                count,
                pad,
            } => {
                let (width, pad) = (*width, *pad);
                Box::new(
                    (*first..*first + u128::from(*count))
                        .filter_map(move |n| Iccid::from_body(n, width, pad)),
                )
            }
        }
    }
}

/// One entry of the inventory, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InventoryEntry {
    pub(crate) profile_type: Arc<str>,
    pub(crate) owner: Arc<str>,
    pub(crate) iccids: IccidSource,
    pub(crate) initial: Order,
}

/// A step of a device timeline: wait, then let the device do something.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineStep {
    /// Delay after the previous step.
    pub after: Duration,
    /// The event.
    pub event: DeviceEvent,
    /// A download whose MatchingID the device found at the mock's SM-DS (`discover`).
    pub discover: bool,
}

/// What simulated devices do with matching released profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    /// Profile type to match.
    pub profile_type: Option<Arc<str>>,
    /// Order EID to match.
    pub eid: Option<Eid>,
    /// Owning operator to match.
    pub operator: Option<Arc<str>>,
    /// The EID the device presents when the order has none.
    pub device_eid: Eid,
    /// The steps, `times` already expanded; empty means manual.
    pub timeline: Vec<TimelineStep>,
    /// Played by a software eUICC and LPA over ES9+ instead of directly.
    pub over_es9: bool,
    /// Over ES9+: the curves of the software eUICC's chains (`curves`), NIST P-256 by default.
    pub curves: Vec<smdpp_rsp::crypto::Curve>,
}

impl DeviceRule {
    /// Whether the rule applies to `profile`.
    pub fn matches(&self, profile: &Profile) -> bool {
        self.profile_type
            .as_ref()
            .is_none_or(|t| *t == profile.profile_type)
            && self.operator.as_ref().is_none_or(|o| *o == profile.owner)
            && self.eid.is_none_or(|e| Some(e) == profile.eid)
    }
}

/// A fault rule, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// Label for logs.
    pub name: String,
    /// ES2+ calls or notifications.
    pub target: FaultTarget,
    /// Notification point to match.
    pub point: Option<NotificationPoint>,
    /// Never deliver the notification.
    pub drop: bool,
    /// Deliver the notification twice.
    pub duplicate: bool,
    /// Function to match.
    pub function: Option<Function>,
    /// ES9+ function to match (`target: es9`).
    pub es9_function: Option<crate::sgp22::Es9Function>,
    /// ICCID to match.
    pub iccid: Option<IccidKey>,
    /// EID to match.
    pub eid: Option<Eid>,
    /// Profile type to match.
    pub profile_type: Option<Arc<str>>,
    /// Calling operator to match.
    pub operator: Option<Arc<str>>,
    /// Answer `Failed` with this code and message.
    pub error: Option<(StatusCode, String)>,
    /// Wait before answering.
    pub delay: Option<Duration>,
    /// Close the connection without answering.
    pub close: bool,
    /// Fire at most this often.
    pub times: Option<u32>,
    /// Fire with this probability.
    pub probability: Option<f64>,
    /// Seed for `probability`.
    pub seed: u64,
}

/// The checked `smds` section.
#[derive(Debug, Clone, Default)]
pub(crate) struct SmdsScenario {
    pub(crate) default: SmdsBehaviour,
    /// By address as `sgp22::normal_address` writes it.
    pub(crate) addresses: HashMap<String, SmdsBehaviour>,
    pub(crate) address: Option<String>,
    pub(crate) root: Option<String>,
    pub(crate) events: Vec<PresetEvent>,
}

/// An Event Record of `smds.events`.
#[derive(Debug, Clone)]
pub(crate) struct PresetEvent {
    pub(crate) eid: crate::ids::Eid,
    pub(crate) event_id: String,
    /// `None`: the mock's SM-DP+.
    pub(crate) rsp_server_address: Option<String>,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    settings: Settings,
    smds: SmdsScenario,
    operators: Vec<Operator>,
    profile_types: Vec<ProfileType>,
    inventory: Vec<InventoryEntry>,
    devices: Vec<DeviceRule>,
    faults: Vec<FaultSpec>,
    rules: Rules,
    profile_count: usize,
    sources: Vec<String>,
}

impl Scenario {
    /// The built-in default scenario.
    pub fn default_scenario() -> Result<Self, ScenarioErrors> {
        Self::from_yaml_named(DEFAULT_SCENARIO_NAME, DEFAULT_SCENARIO_YAML, Path::new("."))
    }

    /// Parses and checks scenario text (includes relative to the working directory).
    pub fn from_yaml(text: &str) -> Result<Self, ScenarioErrors> {
        Self::from_yaml_named("<scenario>", text, Path::new("."))
    }

    /// Parses and checks scenario text called `name`; includes are relative to `base_dir`.
    pub fn from_yaml_named(
        name: &str,
        text: &str,
        base_dir: &Path,
    ) -> Result<Self, ScenarioErrors> {
        check::build(load::Loaded::from_text(name, text, base_dir)?)
    }

    /// Reads, parses and checks one scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioErrors> {
        Self::load_all(&[path.to_path_buf()])
    }

    /// Reads, parses, merges and checks scenario files and directories, in order.
    pub fn load_all(paths: &[PathBuf]) -> Result<Self, ScenarioErrors> {
        check::build(load::Loaded::from_paths(paths)?)
    }

    /// The files the scenario was read from, in load order.
    pub fn sources(&self) -> &[String] {
        &self.sources
    }

    /// Effective SM-DP+ settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The SM-DP+ address used in Activation Codes and the server certificate.
    pub fn smdp_address(&self) -> &str {
        &self.settings.address
    }

    /// The certificate revocation list client certificates are checked against, if any.
    pub fn crl_file(&self) -> Option<&Path> {
        self.settings.crl_file.as_deref()
    }

    /// The `X-Admin-Protocol` value the server announces.
    pub fn admin_protocol(&self) -> &str {
        &self.settings.admin_protocol
    }

    /// [`Scenario::admin_protocol`], shared.
    pub fn admin_protocol_shared(&self) -> Arc<str> {
        self.settings.admin_protocol.clone()
    }

    /// Seed of the MatchingID generator, if the scenario fixes one.
    pub fn matching_id_seed(&self) -> Option<u64> {
        self.settings.matching_id_seed
    }

    /// SM-DS EventIDs remembered for refusing reuse (`smdp.limits.retiredEventIds`).
    pub fn retired_event_ids(&self) -> usize {
        self.settings.retired_event_ids
    }

    /// Rules the state machine obeys.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// What Event Registration at the SM-DS at `address` does: `register` at an address
    /// neither listed nor the default's.
    pub fn smds_behaviour(&self, address: &str) -> SmdsBehaviour {
        self.smds
            .addresses
            .get(&crate::sgp22::normal_address(address))
            .copied()
            .unwrap_or(self.smds.default)
    }

    /// Whether `smds.addresses` lists `address` (as InitiateAuthentication compares addresses:
    /// case-insensitively, a root dot ignored, `:443` implied).
    pub(crate) fn smds_listed(&self, address: &str) -> bool {
        self.smds
            .addresses
            .contains_key(&crate::sgp22::normal_address(address))
    }

    /// The address of the mock's own SM-DS the scenario gives (`smds.address`).
    pub fn smds_own_address(&self) -> Option<&str> {
        self.smds.address.as_deref()
    }

    /// The root SM-DS the mock's SM-DS cascades registrations to (`smds.root`).
    pub(crate) fn smds_root(&self) -> Option<&str> {
        self.smds.root.as_deref()
    }

    /// The Event Records of `smds.events`.
    pub(crate) fn preset_events(&self) -> &[PresetEvent] {
        &self.smds.events
    }

    /// All operators.
    pub fn operators(&self) -> &[Operator] {
        &self.operators
    }

    /// The operator with this id.
    pub fn operator(&self, id: &str) -> Option<&Operator> {
        self.operators.iter().find(|o| &*o.id == id)
    }

    /// The operators a client certificate with these names (CN and SANs) belongs to: one, or
    /// none, or (a certificate whose names belong to two operators) several, which callers
    /// refuse as ambiguous rather than pick by scenario order.
    pub(crate) fn operators_for_certificate<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Vec<&Operator> {
        let names: Vec<&str> = names.into_iter().collect();
        self.operators
            .iter()
            .filter(|op| {
                op.certificate_names
                    .iter()
                    .any(|n| names.iter().any(|c| c == n))
            })
            .collect()
    }

    /// Whether any operator may connect from `ip`: the vendor's firewall, applied before TLS.
    pub fn source_allowed(&self, ip: IpAddr) -> bool {
        self.operators.iter().any(|o| o.allows_source(ip))
    }

    /// The profile type with this id.
    pub fn profile_type(&self, id: &str) -> Option<&ProfileType> {
        self.profile_types.iter().find(|t| &*t.id == id)
    }

    /// The subscription (IMSI, Milenage K and OPc) the generated package of `profile` carries,
    /// by its type's rule; `None` when the type delivers a package of the user's own.
    pub fn subscription_of(
        &self,
        profile: &Profile,
    ) -> Option<smdpp_rsp::profile_package::Subscription> {
        let profile_type = self.profile_type(&profile.profile_type)?;
        profile_type
            .package
            .is_none()
            .then(|| profile_type.subscription.for_iccid(&profile.iccid))
    }

    /// All profile types, in file order.
    pub fn profile_types(&self) -> impl Iterator<Item = &ProfileType> {
        self.profile_types.iter()
    }

    /// Device rules, in order; the first that matches applies.
    pub fn device_rule_for(&self, profile: &Profile) -> Option<&DeviceRule> {
        self.devices.iter().find(|d| d.matches(profile))
    }

    /// Fault rules, in order.
    pub fn faults(&self) -> &[FaultSpec] {
        &self.faults
    }

    /// How many profiles the inventory holds.
    pub fn profile_count(&self) -> usize {
        self.profile_count
    }

    /// SHA-256 (hex) over the inventory's identity: each profile's ICCID, type and owner, in
    /// order. A state file written for another inventory is refused by it.
    pub fn inventory_fingerprint(&self) -> String {
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        for entry in &self.inventory {
            ctx.update(entry.profile_type.as_bytes());
            ctx.update(&[0]);
            ctx.update(entry.owner.as_bytes());
            ctx.update(&[0]);
            for iccid in entry.iccids.iter() {
                ctx.update(&iccid.key().packed().to_le_bytes());
            }
        }
        crate::ids::hex(ctx.finish().as_ref())
    }

    /// The initial inventory, in file order. Generated on demand, so a large range costs no
    /// memory until the store is filled.
    ///
    /// A profile the scenario parks with an order but no `matchingId` gets one generated: from
    /// the operating system's random source, unless `matchingIdSeed` asks for reproducible
    /// IDs. A random one is marked modified, so that `--state-file` keeps it across a restart.
    pub fn profiles(&self) -> impl Iterator<Item = Profile> + '_ {
        let generator = Arc::new(MatchingIdGenerator::new(
            self.settings
                .matching_id_seed
                .map(|seed| seed ^ INVENTORY_SEED),
        ));
        self.inventory.iter().flat_map(move |entry| {
            let generator = generator.clone();
            entry.iccids.iter().map(move |iccid| {
                let mut drawn = false;
                let mut profile =
                    Profile::available(iccid, entry.owner.clone(), entry.profile_type.clone())
                        .with_order(&entry.initial, || {
                            drawn = true;
                            generator.next_id()
                        });
                profile.modified |= drawn && !generator.is_seeded();
                profile
            })
        })
    }
}

/// Mixed into the seed of MatchingIDs generated for the initial inventory, so they differ from
/// the ones ConfirmOrder generates with the same scenario seed.
const INVENTORY_SEED: u64 = 0x5EED_1A7E_0F0F_C0DE;
