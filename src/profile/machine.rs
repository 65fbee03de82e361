//! The profile lifecycle as one pure function: `(profile, event, rules, now) → step | refusal`.
//!
//! Transitions follow SGP.22 §3.1.6 (Figure 15), the ES2+ function descriptions of §5.3.1–§5.3.4
//! and, for the simulated device side, §3.1.3 (see [`device`]).
//! A refusal never changes the profile: [`transition`] takes the profile by reference and returns
//! the next version in [`Step`], which the store commits only if nothing else refuses it.

use std::fmt;
use std::sync::Arc;

use time::OffsetDateTime;

use super::{OnDevice, OrderMatchingId, Profile, ProfileState};
use crate::ids::{Eid, MatchingId};

pub mod device;

pub use device::{
    CancelSessionReason, DeviceEvent, DownloadFailure, InstallResult, LocalOperation,
    NotificationPoint,
};

/// What `CancelOrder` does with the ICCID (SGP.22 §5.3.3, Table 29).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FinalProfileStatus {
    /// Back to the inventory for future use.
    Available,
    /// Never to be used again.
    Unavailable,
}

/// The confirmation of an order (SGP.22 §5.3.2), after the wire fields have been validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    /// The EID given in ConfirmOrder.
    pub eid: Option<Eid>,
    /// The MatchingID to bind: the operator's, or one the SM-DP+ generated.
    pub matching_id: OrderMatchingId,
    /// SHA-256 of the Confirmation Code.
    pub confirmation_code_hash: Option<[u8; 32]>,
    /// The SM-DS for Event Registration.
    pub smds_address: Option<Arc<str>>,
    /// Release immediately (`releaseFlag`).
    pub release: bool,
}

/// Something that happens to a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// ES2+ DownloadOrder reserved this profile (SGP.22 §5.3.1).
    DownloadOrder {
        /// The EID to link the order to.
        eid: Option<Eid>,
    },
    /// ES2+ ConfirmOrder (SGP.22 §5.3.2).
    ConfirmOrder(Confirmation),
    /// ES2+ ReleaseProfile (SGP.22 §5.3.4).
    ReleaseProfile,
    /// ES2+ CancelOrder (SGP.22 §5.3.3).
    CancelOrder {
        /// The EID the caller says is associated with the order.
        eid: Option<Eid>,
        /// The MatchingID the caller says is associated with the order.
        matching_id: Option<OrderMatchingId>,
        /// What becomes of the ICCID.
        final_status: FinalProfileStatus,
    },
    /// Something the (simulated) eUICC of `eid` did through the LPA and ES9+.
    Device {
        /// The eUICC.
        eid: Eid,
        /// What happened.
        event: DeviceEvent,
    },
    /// A step of a real ES9+ session of the eUICC `eid` after its AuthenticateClient, which
    /// counted the download attempt ([`DeviceEvent::Authenticated`]): the same as
    /// [`Event::Device`], without counting the attempt again.
    Session {
        /// The eUICC.
        eid: Eid,
        /// What happened.
        event: DeviceEvent,
    },
}

impl Event {
    /// The event's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Event::DownloadOrder { .. } => "DownloadOrder",
            Event::ConfirmOrder(_) => "ConfirmOrder",
            Event::ReleaseProfile => "ReleaseProfile",
            Event::CancelOrder { .. } => "CancelOrder",
            Event::Device { event, .. } | Event::Session { event, .. } => event.name(),
        }
    }
}

/// Policy knobs that the scenario sets and the transitions obey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// CancelOrder must repeat the order's EID and MatchingID when it has them (SGP.22 §5.3.3:
    /// "SHALL be provided"). When false, omitting them is accepted; a wrong value is still refused.
    pub cancel_requires_associated_ids: bool,
    /// Download attempts (AuthenticateClient sessions) an order allows; the next one ends it in
    /// Error with notification point 1 `8.8.5 / 6.4` (SGP.22 §3.1.3, Table 32c).
    pub max_download_attempts: u32,
    /// Wrong Confirmation Codes an order tolerates; the next one exceeds the maximum and ends it
    /// in Error with notification point 2 `8.2.7 / 6.4` (SGP.22 §3.1.3.2 step 7, Table 32c).
    pub max_confirmation_code_attempts: u32,
    /// How long an order stays valid after DownloadOrder; a device event after that ends it in
    /// Error with notification point 1 `8.8.5 / 4.10` (SGP.22 §5.6, Time to Live Expired).
    pub order_expiry: Option<std::time::Duration>,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            cancel_requires_associated_ids: true,
            max_download_attempts: 5,
            max_confirmation_code_attempts: 3,
            order_expiry: None,
        }
    }
}

/// Work that follows from a transition and is done outside the state machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// ES12 RegisterEvent at the SM-DS, with the MatchingID as EventID (SGP.22 §3.6.1).
    SmdsRegisterEvent {
        /// The SM-DS address.
        address: Arc<str>,
        /// The EventID.
        event_id: MatchingId,
    },
    /// ES12 DeleteEvent at the SM-DS (SGP.22 §3.6.3), after a cancelled order.
    SmdsDeleteEvent {
        /// The SM-DS address.
        address: Arc<str>,
        /// The EventID.
        event_id: MatchingId,
    },
    /// The profile has just become Released: a simulated device may start its download.
    Released,
    /// ES2+ HandleDownloadProgressInfo to the profile owner (SGP.22 §5.3.5).
    Notify {
        /// The step reached.
        point: NotificationPoint,
        /// Success, or why the step failed.
        outcome: Result<(), DownloadFailure>,
        /// The eUICC the step was reached with, which the notification names even before the
        /// order is bound to it (Table 32a: `eid` "SHALL be set if available").
        eid: Option<Eid>,
    },
}

/// An accepted transition: the profile as it is afterwards, and what must happen next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The profile after the event.
    pub next: Profile,
    /// Side effects, in order.
    pub effects: Vec<Effect>,
}

/// Why an event is refused. Each ES2+ function maps these to its own status codes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// DownloadOrder named a profile that is not Available.
    #[error("profile is {state}, not Available")]
    NotAvailable {
        /// The profile's state.
        state: ProfileState,
    },
    /// CancelOrder on a profile the eUICC already has.
    #[error("profile is already {state}")]
    AlreadyDownloaded {
        /// The profile's state.
        state: ProfileState,
    },
    /// The event does not apply in the profile's state.
    #[error("{event} is not possible in state {from}")]
    InvalidTransition {
        /// The profile's state.
        from: ProfileState,
        /// The event's name.
        event: &'static str,
    },
    /// The EID given differs from the one associated with the order.
    #[error("{}", eid_mismatch_text(.associated, .given))]
    EidMismatch {
        /// The order's EID.
        associated: Option<Eid>,
        /// The EID in the request.
        given: Eid,
    },
    /// The MatchingID given differs from the one associated with the order.
    #[error("{}", match .associated {
        Some(_) => format!("MatchingID {:?} is not the one associated with this order", .given.as_str()),
        None => format!("MatchingID {:?} given, but no MatchingID is associated with this order", .given.as_str()),
    })]
    MatchingIdMismatch {
        /// The order's MatchingID.
        associated: Option<OrderMatchingId>,
        /// The MatchingID in the request.
        given: OrderMatchingId,
    },
    /// The order needs an EID (SM-DS or Default SM-DP+ use case) and none is known.
    #[error("an EID is required: {reason}")]
    EidRequired {
        /// Which rule requires it.
        reason: &'static str,
    },
    /// An SM-DS address was given with a zero-length MatchingID (SGP.22 §5.3.2).
    #[error("the MatchingID must not be empty when smdsAddress is given")]
    EmptyMatchingIdWithSmds,
    /// A device event before the order was released (ES9+ `8.2 / 1.2`).
    #[error("the profile has not been released (state {state})")]
    NotReleased {
        /// The profile's state.
        state: ProfileState,
    },
    /// A wrong Confirmation Code for an order that has none.
    #[error("the order has no Confirmation Code")]
    NoConfirmationCode,
    /// A local operation that does not fit the profile's status on the device.
    #[error("cannot {operation} a profile that is {}", match .on_device {
        Some(s) => s.as_str(),
        None => "not installed",
    })]
    OnDevice {
        /// The operation.
        operation: &'static str,
        /// The profile's status on the device.
        on_device: Option<OnDevice>,
    },
    /// CancelOrder omitted an identifier the order has (SGP.22 §5.3.3).
    #[error("{field} must be given: the order has one associated")]
    AssociatedIdMissing {
        /// `eid` or `matchingId`.
        field: &'static str,
    },
}

fn eid_mismatch_text(associated: &Option<Eid>, given: &Eid) -> String {
    match associated {
        Some(a) => format!("EID {given} differs from the EID {a} associated with this ICCID"),
        None => format!("EID {given} given, but no EID is associated with this order"),
    }
}

/// Applies `event` to `profile` at time `now` under `rules`.
///
/// Returns the next version of the profile and its effects, or why the event is refused. The
/// input is never modified.
pub fn transition(
    profile: &Profile,
    event: &Event,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<Step, Refusal> {
    let mut draft = Draft {
        profile,
        next: profile.clone(),
        effects: Vec::new(),
        event: event.name(),
    };
    match event {
        Event::DownloadOrder { eid } => download_order(&mut draft, *eid)?,
        Event::ConfirmOrder(c) => confirm_order(&mut draft, c)?,
        Event::ReleaseProfile => release_profile(&mut draft)?,
        Event::Device { eid, event: step } | Event::Session { eid, event: step } => {
            let in_session = matches!(event, Event::Session { .. });
            device::apply(&mut draft, *step, *eid, in_session, rules, now)?;
            delete_smds_event_when_the_order_ends(&mut draft);
        }
        Event::CancelOrder {
            eid,
            matching_id,
            final_status,
        } => cancel_order(&mut draft, *eid, matching_id.as_ref(), *final_status, rules)?,
    }
    Ok(draft.finish(now))
}

/// A transition being worked out: the profile as it was, the next version built from a copy
/// of it, and the effects so far. A refusal drops it, so the profile is never changed.
struct Draft<'a> {
    /// The profile before the event.
    profile: &'a Profile,
    /// The profile after it, so far.
    next: Profile,
    /// Side effects, in order.
    effects: Vec<Effect>,
    /// The event's name, for refusals.
    event: &'static str,
}

impl Draft<'_> {
    /// The event does not apply in the profile's state.
    fn invalid(&self) -> Refusal {
        Refusal::InvalidTransition {
            from: self.profile.state,
            event: self.event,
        }
    }

    /// The accepted step: a changed state is recorded with its time, and entering Released
    /// lets a simulated device start.
    fn finish(mut self, now: OffsetDateTime) -> Step {
        if self.next.state != self.profile.state {
            self.next.record_transition(self.next.state, now);
            if self.next.state == ProfileState::Released {
                self.effects.push(Effect::Released);
            }
        }
        Step {
            next: self.next,
            effects: self.effects,
        }
    }
}

/// ES2+ DownloadOrder (§5.3.1) reserves an Available profile, linked to the EID when given.
fn download_order(d: &mut Draft, eid: Option<Eid>) -> Result<(), Refusal> {
    use ProfileState::*;
    if d.profile.state != Available {
        return Err(Refusal::NotAvailable {
            state: d.profile.state,
        });
    }
    d.next.eid = eid;
    d.next.state = if eid.is_some() { Linked } else { Allocated };
    d.next.order_seq = d.profile.order_seq.wrapping_add(1);
    Ok(())
}

/// ES2+ ConfirmOrder (§5.3.2) binds the MatchingID, Confirmation Code and SM-DS address, and
/// releases the order at once when `releaseFlag` says so.
fn confirm_order(d: &mut Draft, c: &Confirmation) -> Result<(), Refusal> {
    use ProfileState::*;
    if !matches!(d.profile.state, Allocated | Linked) {
        return Err(d.invalid());
    }
    // §5.3.2: an EID given in both calls must be the same.
    if let (Some(associated), Some(given)) = (d.profile.eid, c.eid) {
        if associated != given {
            return Err(Refusal::EidMismatch {
                associated: Some(associated),
                given,
            });
        }
    }
    let eid = d.profile.eid.or(c.eid);
    if c.smds_address.is_some() && c.matching_id == OrderMatchingId::Empty {
        return Err(Refusal::EmptyMatchingIdWithSmds);
    }
    if eid.is_none() {
        if c.smds_address.is_some() {
            return Err(Refusal::EidRequired {
                reason: "an SM-DS address is given and DownloadOrder carried no EID",
            });
        }
        if c.matching_id == OrderMatchingId::Empty {
            return Err(Refusal::EidRequired {
                reason: "the MatchingID is empty (Default SM-DP+ use case) and DownloadOrder carried no EID",
            });
        }
    }
    d.next.eid = eid;
    d.next.matching_id = Some(c.matching_id.clone());
    d.next.confirmation_code_hash = c.confirmation_code_hash.map(Box::new);
    d.next.smds_address = c.smds_address.clone();
    d.next.state = if c.release { Released } else { Confirmed };
    if c.release {
        register_smds_event(&mut d.next, &mut d.effects);
    }
    Ok(())
}

/// ES2+ ReleaseProfile (§5.3.4) releases a Confirmed order.
fn release_profile(d: &mut Draft) -> Result<(), Refusal> {
    use ProfileState::*;
    match d.profile.state {
        // §5.3.4 NOTE: "If a Profile has already been released this function will return
        // 'Executed-Success' and take no other action" — also once it has moved on.
        Released | Downloaded | Installed | Error => Ok(()),
        Confirmed => {
            d.next.state = Released;
            register_smds_event(&mut d.next, &mut d.effects);
            Ok(())
        }
        _ => Err(d.invalid()),
    }
}

/// The download order ends (installed, or in Error): its SM-DS event goes too (§3.1.3.3 step
/// 10 after the installation result; §3.1.3.1 step 6 and §5.6.5 step 10 after a terminal
/// CancelSession).
fn delete_smds_event_when_the_order_ends(d: &mut Draft) {
    use ProfileState::*;
    if d.next.state != d.profile.state && matches!(d.next.state, Installed | Error) {
        delete_smds_event(&mut d.next, &mut d.effects);
    }
}

/// ES2+ CancelOrder (§5.3.3) ends an order the eUICC does not have yet: the identifiers given
/// must be the order's, and the ICCID goes back to the inventory or out of use.
fn cancel_order(
    d: &mut Draft,
    eid: Option<Eid>,
    matching_id: Option<&OrderMatchingId>,
    final_status: FinalProfileStatus,
    rules: &Rules,
) -> Result<(), Refusal> {
    use ProfileState::*;
    match d.profile.state {
        Allocated | Linked | Confirmed | Released | Error => {}
        Downloaded | Installed => {
            return Err(Refusal::AlreadyDownloaded {
                state: d.profile.state,
            })
        }
        Available | Unavailable => return Err(d.invalid()),
    }
    check_associated_eid(d.profile.eid, eid, rules)?;
    check_associated_matching_id(d.profile.matching_id.as_ref(), matching_id, rules)?;
    delete_smds_event(&mut d.next, &mut d.effects);
    d.next.clear_order();
    d.next.state = match final_status {
        FinalProfileStatus::Available => Available,
        FinalProfileStatus::Unavailable => Unavailable,
    };
    Ok(())
}

/// SM-DS Event Registration when the profile is released (SGP.22 §5.3.2, §5.3.4).
fn register_smds_event(next: &mut Profile, effects: &mut Vec<Effect>) {
    if next.smds_event_registered {
        return;
    }
    if let (Some(address), Some(OrderMatchingId::Id(event_id))) =
        (&next.smds_address, &next.matching_id)
    {
        effects.push(Effect::SmdsRegisterEvent {
            address: address.clone(),
            event_id: event_id.clone(),
        });
        next.smds_event_registered = true;
    }
}

/// SM-DS Event Deletion (SGP.22 §3.6.3) when the order's event is registered.
fn delete_smds_event(next: &mut Profile, effects: &mut Vec<Effect>) {
    if let (true, Some(address), Some(OrderMatchingId::Id(event_id))) = (
        next.smds_event_registered,
        &next.smds_address,
        &next.matching_id,
    ) {
        effects.push(Effect::SmdsDeleteEvent {
            address: address.clone(),
            event_id: event_id.clone(),
        });
        next.smds_event_registered = false;
    }
}

fn check_associated_eid(
    associated: Option<Eid>,
    given: Option<Eid>,
    rules: &Rules,
) -> Result<(), Refusal> {
    match (associated, given) {
        (Some(a), Some(g)) if a != g => Err(Refusal::EidMismatch {
            associated: Some(a),
            given: g,
        }),
        // §5.3.3 checks the EID only "if there is an EID already associated with the ICCID".
        (None, Some(_)) => Ok(()),
        (Some(_), None) if rules.cancel_requires_associated_ids => {
            Err(Refusal::AssociatedIdMissing { field: "eid" })
        }
        _ => Ok(()),
    }
}

fn check_associated_matching_id(
    associated: Option<&OrderMatchingId>,
    given: Option<&OrderMatchingId>,
    rules: &Rules,
) -> Result<(), Refusal> {
    match (associated, given) {
        (Some(a), Some(g)) if a != g => Err(Refusal::MatchingIdMismatch {
            associated: Some(a.clone()),
            given: g.clone(),
        }),
        // Likewise the MatchingID (§5.3.3).
        (None, Some(_)) => Ok(()),
        // An empty MatchingID cannot be "provided" in a way that differs from absent.
        (Some(OrderMatchingId::Id(_)), None) if rules.cancel_requires_associated_ids => {
            Err(Refusal::AssociatedIdMissing {
                field: "matchingId",
            })
        }
        _ => Ok(()),
    }
}

impl fmt::Display for FinalProfileStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FinalProfileStatus::Available => "Available",
            FinalProfileStatus::Unavailable => "Unavailable",
        })
    }
}

#[cfg(test)]
mod tests;
