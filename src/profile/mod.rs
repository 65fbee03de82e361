//! A profile in the SM-DP+ inventory and its lifecycle states (SGP.22 §3.1.6).
//!
//! This module and [`machine`] are pure: no I/O, no clock reads, no locks.

#[doc(hidden)]
pub mod machine;

pub use machine::{
    CancelSessionReason, DeviceEvent, InstallResult, LocalOperation, NotificationPoint, Refusal,
};

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{Eid, Iccid, MatchingId};

/// The SM-DP+ side profile states of SGP.22 §3.1.6 (Table 6b, Figure 15), in spec order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProfileState {
    /// In inventory and free.
    Available,
    /// Reserved by DownloadOrder without an EID.
    Allocated,
    /// Reserved by DownloadOrder with an EID.
    Linked,
    /// ConfirmOrder done with `releaseFlag` false: waiting for ReleaseProfile.
    Confirmed,
    /// Ready for download by the eUICC.
    Released,
    /// The Bound Profile Package was delivered to the LPA.
    Downloaded,
    /// The eUICC reported a successful installation.
    Installed,
    /// The order ended without an installation (limits, rejection, install failure).
    Error,
    /// The ICCID will never be used again.
    Unavailable,
}

impl ProfileState {
    /// Every state, in spec order.
    pub const ALL: [ProfileState; 9] = [
        ProfileState::Available,
        ProfileState::Allocated,
        ProfileState::Linked,
        ProfileState::Confirmed,
        ProfileState::Released,
        ProfileState::Downloaded,
        ProfileState::Installed,
        ProfileState::Error,
        ProfileState::Unavailable,
    ];

    /// The state's name as SGP.22 writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Available => "Available",
            ProfileState::Allocated => "Allocated",
            ProfileState::Linked => "Linked",
            ProfileState::Confirmed => "Confirmed",
            ProfileState::Released => "Released",
            ProfileState::Downloaded => "Downloaded",
            ProfileState::Installed => "Installed",
            ProfileState::Error => "Error",
            ProfileState::Unavailable => "Unavailable",
        }
    }

    /// Whether an order in this state has been confirmed and so carries a MatchingID.
    pub fn has_matching_id(self) -> bool {
        matches!(
            self,
            ProfileState::Confirmed
                | ProfileState::Released
                | ProfileState::Downloaded
                | ProfileState::Installed
                | ProfileState::Error
        )
    }

    /// Position in [`ProfileState::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl std::str::FromStr for ProfileState {
    type Err = String;

    /// The state named exactly as SGP.22 writes it.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProfileState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a profile state (Available, Allocated, Linked, Confirmed, Released, Downloaded, Installed, Error, Unavailable)"
                )
            })
    }
}

impl fmt::Display for ProfileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The MatchingID bound to an order by ConfirmOrder.
///
/// SGP.22 §4.1.1 allows a zero-length MatchingID for the Default SM-DP+ use case; it is not
/// registered in the MatchingID index because it identifies nothing on its own.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OrderMatchingId {
    /// The Default SM-DP+ case: the eUICC is found by its EID.
    Empty,
    /// An Activation Code token or SM-DS EventID.
    Id(MatchingId),
}

impl OrderMatchingId {
    /// The wire form (`""` for the empty MatchingID).
    pub fn as_str(&self) -> &str {
        match self {
            OrderMatchingId::Empty => "",
            OrderMatchingId::Id(id) => id.as_str(),
        }
    }

    /// The MatchingID when it is not empty.
    pub fn id(&self) -> Option<&MatchingId> {
        match self {
            OrderMatchingId::Empty => None,
            OrderMatchingId::Id(id) => Some(id),
        }
    }
}

/// A profile state with the order associations that fit it: the one place that decides which
/// states carry an EID, a MatchingID and a Confirmation Code (SGP.22 §3.1.6: Linked and the
/// states after a download know the eUICC; Confirmed and later carry the MatchingID that
/// ConfirmOrder fixed). Scenario inventories and the admin API's forced states are built from
/// it, so a profile can never start in a state its order contradicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Order {
    state: ProfileState,
    eid: Option<Eid>,
    /// `None` in a state with a MatchingID means "generate one".
    matching_id: Option<OrderMatchingId>,
    confirmation_code_hash: Option<[u8; 32]>,
}

/// Which part of an [`Order`] an [`AssociationError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderField {
    /// The state.
    State,
    /// The EID.
    Eid,
    /// The MatchingID.
    MatchingId,
    /// The Confirmation Code.
    ConfirmationCode,
}

/// Why a state and associations do not fit together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum AssociationError {
    /// The state has an order linked to an eUICC, and no EID was given.
    #[error("state {0} needs an `eid`: the order is linked to an eUICC")]
    EidRequired(ProfileState),
    /// The state has no linked order, and an EID was given.
    #[error("state {0} cannot have an `eid` (Linked and later states can)")]
    EidNotAllowed(ProfileState),
    /// The state has no confirmed order, and a MatchingID was given.
    #[error(
        "state {0} cannot have a `matchingId`: only confirmed orders (Confirmed and later) do"
    )]
    MatchingIdNotAllowed(ProfileState),
    /// An empty MatchingID (SGP.22 §4.1.1, Default SM-DP+) without the EID that finds the order.
    #[error("an empty `matchingId` (Default SM-DP+ use case) needs an `eid`")]
    EmptyMatchingIdNeedsEid,
    /// The state has no confirmed order, and a Confirmation Code was given.
    #[error("state {0} cannot have a `confirmationCode`: only confirmed orders do")]
    ConfirmationCodeNotAllowed(ProfileState),
}

impl AssociationError {
    /// The part of the order the error is about.
    pub(crate) fn field(&self) -> OrderField {
        match self {
            AssociationError::EidRequired(_) => OrderField::State,
            AssociationError::EidNotAllowed(_) => OrderField::Eid,
            AssociationError::MatchingIdNotAllowed(_)
            | AssociationError::EmptyMatchingIdNeedsEid => OrderField::MatchingId,
            AssociationError::ConfirmationCodeNotAllowed(_) => OrderField::ConfirmationCode,
        }
    }
}

impl Order {
    /// `state` with these associations, or every reason they do not fit.
    pub(crate) fn new(
        state: ProfileState,
        eid: Option<Eid>,
        matching_id: Option<OrderMatchingId>,
        confirmation_code_hash: Option<[u8; 32]>,
    ) -> Result<Order, Vec<AssociationError>> {
        use ProfileState::*;
        let mut errors = Vec::new();
        let linked = matches!(state, Linked | Downloaded | Installed);
        let no_order = matches!(state, Available | Allocated | Unavailable);
        if linked && eid.is_none() {
            errors.push(AssociationError::EidRequired(state));
        }
        if no_order && eid.is_some() {
            errors.push(AssociationError::EidNotAllowed(state));
        }
        match &matching_id {
            Some(_) if !state.has_matching_id() => {
                errors.push(AssociationError::MatchingIdNotAllowed(state))
            }
            Some(OrderMatchingId::Empty) if eid.is_none() => {
                errors.push(AssociationError::EmptyMatchingIdNeedsEid)
            }
            _ => {}
        }
        if confirmation_code_hash.is_some() && !state.has_matching_id() {
            errors.push(AssociationError::ConfirmationCodeNotAllowed(state));
        }
        if errors.is_empty() {
            Ok(Order {
                state,
                eid,
                matching_id,
                confirmation_code_hash,
            })
        } else {
            Err(errors)
        }
    }

    /// The state.
    pub(crate) fn state(&self) -> ProfileState {
        self.state
    }
}

/// What the eUICC last reported about an installed profile (SGP.22 §3.5 Other Notifications).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OnDevice {
    /// Installed and disabled (the state right after installation).
    Disabled,
    /// Enabled.
    Enabled,
    /// Deleted from the eUICC.
    Deleted,
}

impl OnDevice {
    /// The name, for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            OnDevice::Disabled => "disabled",
            OnDevice::Enabled => "enabled",
            OnDevice::Deleted => "deleted",
        }
    }
}

/// When the profile last entered each state, as Unix seconds (0 = never).
///
/// Fixed size and 4 bytes a state (good until 2106), so a million-profile inventory stays small
/// and does not grow with every transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StateTimes([u32; 9]);

impl Profile {
    /// Records that the profile entered `state` at `at`.
    pub fn record_transition(&mut self, state: ProfileState, at: OffsetDateTime) {
        self.entered.record(state, at);
        if self.history.len() == HISTORY_LEN {
            self.history.remove(0);
        }
        self.history.push(Transition {
            to: state,
            at: u32::try_from(at.unix_timestamp().max(0)).unwrap_or(u32::MAX),
        });
    }
}

impl StateTimes {
    /// Unix seconds per state, indexed like [`ProfileState::ALL`] (0 = never).
    pub fn raw(&self) -> [u32; 9] {
        self.0
    }

    /// From [`StateTimes::raw`].
    pub fn from_raw(raw: [u32; 9]) -> Self {
        StateTimes(raw)
    }

    /// Records that `state` was entered at `at`.
    pub fn record(&mut self, state: ProfileState, at: OffsetDateTime) {
        self.0[state.index()] = u32::try_from(at.unix_timestamp().max(1)).unwrap_or(u32::MAX);
    }

    /// When `state` was last entered, if ever.
    pub fn get(&self, state: ProfileState) -> Option<OffsetDateTime> {
        match self.0[state.index()] {
            0 => None,
            t => OffsetDateTime::from_unix_timestamp(i64::from(t)).ok(),
        }
    }
}

/// Transitions a profile remembers; older ones are dropped.
pub const HISTORY_LEN: usize = 16;

/// One state change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    /// The state entered.
    pub to: ProfileState,
    /// When, as Unix seconds.
    pub at: u32,
}

/// One profile of the SM-DP+ inventory together with its pending order, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// The ICCID in the inventory's own form.
    pub iccid: Iccid,
    /// The operator (Profile Owner) the profile belongs to.
    pub owner: Arc<str>,
    /// The operator-defined profile type.
    pub profile_type: Arc<str>,
    /// The lifecycle state.
    pub state: ProfileState,
    /// The eUICC the order is linked to.
    pub eid: Option<Eid>,
    /// The MatchingID fixed by ConfirmOrder.
    pub matching_id: Option<OrderMatchingId>,
    /// SHA-256 of the Confirmation Code; the code itself is never stored (SGP.22 §5.3.2).
    /// Boxed: most profiles have none, and the inventory can hold millions.
    pub confirmation_code_hash: Option<Box<[u8; 32]>>,
    /// The SM-DS where the download event is (or will be) registered.
    pub smds_address: Option<Arc<str>>,
    /// Whether the SM-DS event registration has been performed.
    pub smds_event_registered: bool,
    /// Download attempts of the current order (SGP.22 §3.1.3).
    pub download_attempts: u32,
    /// Wrong Confirmation Code attempts of the current order (SGP.22 §3.1.3.2).
    pub confirmation_code_attempts: u32,
    /// The profile's status on the eUICC once installed.
    pub on_device: Option<OnDevice>,
    /// Counts DownloadOrders on this profile, so work for an earlier order (a device timeline)
    /// can tell that the order it belonged to is gone.
    pub order_seq: u32,
    /// When each state was last entered.
    pub entered: StateTimes,
    /// The last [`HISTORY_LEN`] state changes, oldest first (empty until the first one, so an
    /// untouched inventory costs nothing).
    pub history: Vec<Transition>,
    /// Whether anything was committed on the profile since the inventory was loaded (a change
    /// of counters alone included): what the state file saves.
    pub(crate) modified: bool,
}

impl Profile {
    /// A profile fresh in the inventory, in state Available.
    pub fn available(iccid: Iccid, owner: Arc<str>, profile_type: Arc<str>) -> Self {
        Profile {
            iccid,
            owner,
            profile_type,
            state: ProfileState::Available,
            eid: None,
            matching_id: None,
            confirmation_code_hash: None,
            smds_address: None,
            smds_event_registered: false,
            download_attempts: 0,
            confirmation_code_attempts: 0,
            on_device: None,
            order_seq: 0,
            entered: StateTimes::default(),
            history: Vec::new(),
            modified: false,
        }
    }

    /// This profile (its ICCID, owner and type) in the state and with the associations of
    /// `order`. An order in a state with a MatchingID but none given gets `generated()`; an
    /// installed profile is enabled on the device. History and counters are left as they are.
    pub(crate) fn with_order(
        &self,
        order: &Order,
        generated: impl FnOnce() -> MatchingId,
    ) -> Profile {
        let mut next =
            Profile::available(self.iccid, self.owner.clone(), self.profile_type.clone());
        next.order_seq = self.order_seq;
        next.entered = self.entered;
        next.history = self.history.clone();
        next.state = order.state;
        next.eid = order.eid;
        next.confirmation_code_hash = order.confirmation_code_hash.map(Box::new);
        if order.state.has_matching_id() {
            next.matching_id = Some(
                order
                    .matching_id
                    .clone()
                    .unwrap_or_else(|| OrderMatchingId::Id(generated())),
            );
        }
        if order.state == ProfileState::Installed {
            next.on_device = Some(OnDevice::Enabled);
        }
        next
    }

    /// Drops everything that belonged to the order, as when it is cancelled.
    fn clear_order(&mut self) {
        self.eid = None;
        self.matching_id = None;
        self.confirmation_code_hash = None;
        self.smds_address = None;
        self.smds_event_registered = false;
        self.download_attempts = 0;
        self.confirmation_code_attempts = 0;
        self.on_device = None;
    }
}
