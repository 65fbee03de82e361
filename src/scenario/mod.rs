//! Scenarios: the YAML description of a whole test world (design.md §8).
//!
//! [`file`] holds the serde types of the YAML format; [`Scenario`] is the checked, ready-to-run
//! form the server uses. Loading is all-or-nothing: a file that fails any check yields an error
//! and no scenario.

pub mod file;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

use crate::ids::{check_fqdn, Iccid, IccidKey};
use crate::profile::machine::Rules;
use crate::profile::Profile;

pub use file::{ScenarioFile, SmdsBehaviour};

/// The built-in default scenario (`scenarios/default.yaml`).
pub const DEFAULT_SCENARIO_YAML: &str = include_str!("../../scenarios/default.yaml");

/// An operator (Profile Owner) as the server sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    /// Unique id; also the default certificate name and requester identifier.
    pub id: Arc<str>,
    /// Values the operator may send as `functionRequesterIdentifier`.
    pub requester_identifiers: Vec<String>,
    /// Client certificate names (subject CN or SAN) that identify this operator.
    pub certificate_names: Vec<String>,
}

/// A profile type and who owns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileType {
    /// The operator-defined type name (SGP.22 §5.3.1 `profileType`).
    pub id: Arc<str>,
    /// The owning operator's id.
    pub owner: Arc<str>,
}

/// A checked scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    file: ScenarioFile,
    operators: Vec<Operator>,
    profile_types: HashMap<Arc<str>, ProfileType>,
    rules: Rules,
    profile_count: usize,
}

impl Scenario {
    /// The built-in default scenario.
    pub fn default_scenario() -> Result<Self> {
        Self::from_yaml(DEFAULT_SCENARIO_YAML).context("the built-in default scenario")
    }

    /// Parses and checks a scenario.
    pub fn from_yaml(text: &str) -> Result<Self> {
        let file: ScenarioFile = serde_saphyr::from_str(text).map_err(|e| anyhow!("{e}"))?;
        Self::from_file(file)
    }

    /// Reads, parses and checks a scenario file.
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Self::from_yaml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Checks a parsed scenario file.
    pub fn from_file(file: ScenarioFile) -> Result<Self> {
        check_fqdn(&file.smdp.address).map_err(|e| anyhow!("smdp.address: {e}"))?;
        if !file.smdp.admin_protocol.starts_with("gsma/rsp/v") {
            bail!(
                "smdp.adminProtocol: {:?} does not have the form gsma/rsp/vX.Y.Z",
                file.smdp.admin_protocol
            );
        }
        if file.smdp.limits.download_attempts == 0
            || file.smdp.limits.confirmation_code_attempts == 0
        {
            bail!("smdp.limits: attempt limits must be at least 1");
        }
        for address in file.smds.addresses.keys() {
            check_fqdn(address).map_err(|e| anyhow!("smds.addresses: {e}"))?;
        }

        let mut operators = Vec::new();
        let mut seen_names: HashMap<String, &str> = HashMap::new();
        for op in &file.operators {
            if operators.iter().any(|o: &Operator| *o.id == *op.id) {
                bail!("operators: the id {:?} is used twice", op.id);
            }
            let certificate_names = op
                .certificate_names
                .clone()
                .unwrap_or_else(|| vec![op.id.clone()]);
            for name in &certificate_names {
                if let Some(other) = seen_names.insert(name.clone(), &op.id) {
                    bail!(
                        "operators: certificate name {name:?} identifies both {other:?} and {:?}",
                        op.id
                    );
                }
            }
            operators.push(Operator {
                id: op.id.as_str().into(),
                requester_identifiers: op
                    .requester_identifiers
                    .clone()
                    .unwrap_or_else(|| vec![op.id.clone()]),
                certificate_names,
            });
        }

        let mut profile_types = HashMap::new();
        for pt in &file.profile_types {
            let Some(owner) = operators.iter().find(|o| *o.id == *pt.owner) else {
                bail!(
                    "profileTypes: {:?} is owned by {:?}, which is not an operator",
                    pt.id,
                    pt.owner
                );
            };
            let id: Arc<str> = pt.id.as_str().into();
            let previous = profile_types.insert(
                id.clone(),
                ProfileType {
                    id,
                    owner: owner.id.clone(),
                },
            );
            if previous.is_some() {
                bail!("profileTypes: the id {:?} is used twice", pt.id);
            }
        }

        let rules = Rules {
            cancel_requires_associated_ids: file.smdp.strict.cancel_order_requires_associated_ids,
            max_download_attempts: file.smdp.limits.download_attempts,
            max_confirmation_code_attempts: file.smdp.limits.confirmation_code_attempts,
        };
        let mut scenario = Scenario {
            file,
            operators,
            profile_types,
            rules,
            profile_count: 0,
        };
        scenario.profile_count = scenario.check_inventory()?;
        Ok(scenario)
    }

    /// Checks every ICCID once (format, Luhn digit, uniqueness) and counts the profiles.
    fn check_inventory(&self) -> Result<usize> {
        let mut seen: HashSet<IccidKey> = HashSet::new();
        let mut count = 0;
        for pt in &self.file.profile_types {
            for (index, entry) in pt.profiles.iter().enumerate() {
                let at = || format!("profileTypes[{:?}].profiles[{index}]", pt.id);
                for iccid in entry.iccids().with_context(at)? {
                    if !iccid.luhn_valid() {
                        bail!(
                            "{}: ICCID {iccid} has a wrong Luhn check digit (expected {})",
                            at(),
                            crate::ids::luhn_check_digit(
                                &iccid.digits()[..iccid.digits().len() - 1]
                            )
                            .unwrap_or(0)
                        );
                    }
                    if !seen.insert(iccid.key()) {
                        bail!("{}: ICCID {iccid} appears more than once", at());
                    }
                    count += 1;
                }
            }
        }
        Ok(count)
    }

    /// The SM-DP+ address used in Activation Codes and the server certificate.
    pub fn smdp_address(&self) -> &str {
        &self.file.smdp.address
    }

    /// The `X-Admin-Protocol` value the server announces.
    pub fn admin_protocol(&self) -> &str {
        &self.file.smdp.admin_protocol
    }

    /// Whether requests must carry a `gsma/rsp/v…` `X-Admin-Protocol` header.
    pub fn require_admin_protocol_header(&self) -> bool {
        self.file.smdp.strict.require_admin_protocol_header
    }

    /// Seed of the MatchingID generator, if the scenario fixes one.
    pub fn matching_id_seed(&self) -> Option<u64> {
        self.file.smdp.matching_id_seed
    }

    /// Rules the state machine obeys.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// What the simulated SM-DS at `address` does with an Event Registration.
    pub fn smds_behaviour(&self, address: &str) -> SmdsBehaviour {
        self.file
            .smds
            .addresses
            .iter()
            .find(|(a, _)| a.eq_ignore_ascii_case(address))
            .map(|(_, b)| *b)
            .unwrap_or(self.file.smds.default)
    }

    /// The SM-DS addresses the scenario names, with their behaviour.
    pub fn smds_addresses(&self) -> &BTreeMap<String, SmdsBehaviour> {
        &self.file.smds.addresses
    }

    /// All operators.
    pub fn operators(&self) -> &[Operator] {
        &self.operators
    }

    /// The operator with this id.
    pub fn operator(&self, id: &str) -> Option<&Operator> {
        self.operators.iter().find(|o| &*o.id == id)
    }

    /// The operator a client certificate with these names (CN and SANs) belongs to.
    pub fn operator_for_certificate<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Option<&Operator> {
        let names: Vec<&str> = names.into_iter().collect();
        self.operators.iter().find(|op| {
            op.certificate_names
                .iter()
                .any(|n| names.iter().any(|c| c == n))
        })
    }

    /// The profile type with this id.
    pub fn profile_type(&self, id: &str) -> Option<&ProfileType> {
        self.profile_types.get(id)
    }

    /// All profile types, in file order.
    pub fn profile_types(&self) -> impl Iterator<Item = &ProfileType> {
        self.file
            .profile_types
            .iter()
            .filter_map(|pt| self.profile_types.get(pt.id.as_str()))
    }

    /// How many profiles the inventory holds.
    pub fn profile_count(&self) -> usize {
        self.profile_count
    }

    /// The initial inventory, in file order. Generated on demand, so a large range costs no
    /// memory until the store is filled.
    pub fn profiles(&self) -> impl Iterator<Item = Profile> + '_ {
        self.file.profile_types.iter().flat_map(move |pt| {
            let ty = self.profile_types.get(pt.id.as_str()).cloned();
            pt.profiles.iter().flat_map(move |entry| {
                let ty = ty.clone();
                // Checked in `check_inventory`, so the errors cannot occur here.
                entry
                    .iccids()
                    .into_iter()
                    .flatten()
                    .filter_map(move |iccid| {
                        ty.as_ref()
                            .map(|t| Profile::available(iccid, t.owner.clone(), t.id.clone()))
                    })
            })
        })
    }
}

impl file::ProfileEntry {
    /// The ICCIDs this entry stands for.
    fn iccids(&self) -> Result<Box<dyn Iterator<Item = Iccid> + '_>> {
        match (&self.iccid, &self.range) {
            (Some(text), None) => {
                let iccid: Iccid = text.parse().map_err(|e| anyhow!("iccid: {e}"))?;
                Ok(Box::new(std::iter::once(iccid)))
            }
            (None, Some(range)) => {
                let start = &range.start;
                if !(start.len() == 18 || start.len() == 19)
                    || !start.bytes().all(|b| b.is_ascii_digit())
                {
                    bail!(
                        "range.start: {start:?} must be the first ICCID without its check digit \
                         (18 or 19 digits)"
                    );
                }
                let first: u128 = start.parse().map_err(|_| anyhow!("range.start"))?;
                let width = start.len();
                if range.pad && width == 19 {
                    bail!("range.pad: only 19-digit ICCIDs (an 18-digit start) take the F pad");
                }
                let last = first
                    .checked_add(u128::from(range.count))
                    .filter(|end| end.saturating_sub(1).to_string().len() <= width)
                    .ok_or_else(|| {
                        anyhow!("range: {start} + {} overflows {width} digits", range.count)
                    })?;
                let pad = range.pad;
                Ok(Box::new((first..last).filter_map(move |n| {
                    Iccid::with_check_digit(&format!("{n:0width$}"), pad).ok()
                })))
            }
            _ => bail!("give exactly one of `iccid` and `range`"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_loads() {
        let s = Scenario::default_scenario().unwrap();
        assert!(s.operator("test-mno").is_some());
        assert!(s.operator("other-mno").is_some());
        let types: Vec<_> = s.profile_types().collect();
        assert!(types.len() >= 2);
        for t in &types {
            let n = s
                .profiles()
                .filter(|p| p.profile_type == t.id && p.owner == t.owner)
                .count();
            if &*t.owner == "test-mno" {
                assert!(n >= 100, "{} has {n}", t.id);
            }
        }
        assert!(s.profiles().all(|p| p.iccid.luhn_valid()));
        assert_eq!(s.profiles().count(), s.profile_count());
    }

    fn minimal(profiles: &str) -> String {
        format!(
            "operators:\n  - id: a\nprofileTypes:\n  - id: T\n    owner: a\n    profiles:\n{profiles}"
        )
    }

    #[test]
    fn inventory_mistakes_are_errors() {
        for (yaml, needle) in [
            (minimal("      - iccid: \"8944500102198304827\"\n"), "Luhn"),
            (
                minimal("      - iccid: \"8944500102198304826\"\n      - iccid: \"8944500102198304826F\"\n"),
                "more than once",
            ),
            (minimal("      - range: { start: \"89445\", count: 3 }\n"), "18 or 19"),
            (minimal("      - {}\n"), "exactly one"),
            (
                minimal("      - range: { start: \"999999999999999999\", count: 3 }\n"),
                "overflows",
            ),
            (
                "operators:\n  - id: a\nprofileTypes:\n  - id: T\n    owner: b\n    profiles: []\n"
                    .to_string(),
                "not an operator",
            ),
            ("operators: []\nbogus: 1\n".to_string(), "bogus"),
        ] {
            let err = format!("{:#}", Scenario::from_yaml(&yaml).unwrap_err());
            assert!(err.contains(needle), "{yaml}\n=> {err}");
        }
    }

    #[test]
    fn ranges_generate_luhn_iccids() {
        let s = Scenario::from_yaml(&minimal(
            "      - range: { start: \"894450010000000000\", count: 5, pad: true }\n",
        ))
        .unwrap();
        let all: Vec<String> = s.profiles().map(|p| p.iccid.to_string()).collect();
        assert_eq!(all.len(), 5);
        assert!(all.iter().all(|i| i.len() == 20 && i.ends_with('F')));
        assert!(s.profiles().all(|p| p.iccid.luhn_valid()));
    }
}
