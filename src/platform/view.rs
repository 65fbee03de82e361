//! JSON views of profiles and profile types, shared by the platform and admin APIs.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;

use crate::clock::es2_timestamp;
use crate::profile::{OrderMatchingId, Profile, ProfileState};

/// One profile.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileView {
    /// The ICCID in the inventory's form.
    pub iccid: String,
    /// The profile type.
    pub profile_type: String,
    /// The owning operator (admin API only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// SGP.22 §3.1.6 state.
    pub state: String,
    /// The order's EID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eid: Option<String>,
    /// The order's MatchingID (`""` for Default SM-DP+ orders).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub matching_id: Option<String>,
    /// `1$<SM-DP+ address>$<MatchingID>`, with `$$1` when a Confirmation Code is required
    /// (SGP.22 §4.1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activation_code: Option<String>,
    /// Whether the order needs a Confirmation Code.
    pub confirmation_code_required: bool,
    /// The SM-DS of the order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smds_address: Option<String>,
    /// With an SM-DS: whether the order's event is registered there now (registered at release,
    /// deleted when the order ends: SGP.22 §3.6.1, §3.6.3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smds_event_registered: Option<bool>,
    /// Download attempts of the order.
    pub download_attempts: u32,
    /// Wrong Confirmation Codes of the order.
    pub confirmation_code_attempts: u32,
    /// `enabled`, `disabled` or `deleted` once installed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_device: Option<String>,
    /// When the profile last entered each state (UTC).
    pub state_times: BTreeMap<String, String>,
    /// The last 16 transitions, oldest first.
    pub transitions: Vec<TransitionView>,
    /// What a generated profile authenticates to a network with, to provision a test network
    /// with the same values (absent for a package of the user's own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<SubscriptionView>,
}

/// A generated profile's subscription (docs/scenarios.md, `profileTypes[].subscription`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SubscriptionView {
    /// The IMSI (EF.IMSI).
    pub imsi: String,
    /// Milenage's subscriber key K, 32 hex digits.
    pub k: String,
    /// OPc, 32 hex digits.
    pub opc: String,
}

/// One transition.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub(crate) struct TransitionView {
    /// The state entered.
    pub state: String,
    /// When (UTC).
    pub time: String,
}

impl ProfileView {
    /// The view of `p`; `with_operator` for the admin API.
    pub(crate) fn of(p: &Profile, smdp_address: &str, with_operator: bool) -> Self {
        let matching_id = p.matching_id.as_ref().map(|m| m.as_str().to_owned());
        let activation_code = match &p.matching_id {
            Some(OrderMatchingId::Id(id)) if p.state.has_matching_id() => {
                Some(if p.confirmation_code_hash.is_some() {
                    format!("1${smdp_address}${id}$$1")
                } else {
                    format!("1${smdp_address}${id}")
                })
            }
            _ => None,
        };
        ProfileView {
            iccid: p.iccid.to_string(),
            profile_type: p.profile_type.to_string(),
            operator: with_operator.then(|| p.owner.to_string()),
            state: p.state.to_string(),
            eid: p.eid.map(|e| e.to_string()),
            matching_id,
            activation_code,
            confirmation_code_required: p.confirmation_code_hash.is_some(),
            smds_address: p.smds_address.as_deref().map(str::to_owned),
            smds_event_registered: p.smds_address.is_some().then_some(p.smds_event_registered),
            download_attempts: p.download_attempts,
            confirmation_code_attempts: p.confirmation_code_attempts,
            on_device: p.on_device.map(|d| d.as_str().to_owned()),
            state_times: ProfileState::ALL
                .iter()
                .filter_map(|s| p.entered.get(*s).map(|t| (s.to_string(), es2_timestamp(t))))
                .collect(),
            subscription: None,
            transitions: p
                .history
                .iter()
                .map(|t| TransitionView {
                    state: t.to.to_string(),
                    time: time::OffsetDateTime::from_unix_timestamp(i64::from(t.at))
                        .map(es2_timestamp)
                        .unwrap_or_default(),
                })
                .collect(),
        }
    }
}

impl ProfileView {
    /// The view with the subscription of a generated profile (see
    /// `Scenario::subscription_of`).
    pub(crate) fn with_subscription(
        mut self,
        subscription: Option<smdpp_rsp::profile_package::Subscription>,
    ) -> Self {
        self.subscription = subscription.map(|s| SubscriptionView {
            imsi: s.imsi,
            k: smdpp_rsp::crypto::hex_upper(&s.k),
            opc: smdpp_rsp::crypto::hex_upper(&s.opc),
        });
        self
    }
}

/// One profile type with its profiles counted by state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileTypeView {
    /// The type name.
    pub id: String,
    /// The owning operator (admin API only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// Profiles of the type in all states.
    pub total: usize,
    /// Profiles by state; every state is present.
    pub counts: BTreeMap<String, usize>,
}

impl ProfileTypeView {
    /// The view of a type with `counts` indexed like [`ProfileState::ALL`].
    pub(crate) fn of(id: &str, owner: &str, counts: [usize; 9], with_operator: bool) -> Self {
        ProfileTypeView {
            id: id.to_owned(),
            operator: with_operator.then(|| owner.to_owned()),
            total: counts.iter().sum(),
            counts: ProfileState::ALL
                .iter()
                .map(|s| (s.to_string(), counts[s.index()]))
                .collect(),
        }
    }
}

/// A page of profiles.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfilePage {
    /// The profiles, in inventory order.
    pub profiles: Vec<ProfileView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
