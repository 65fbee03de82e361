//! The device side (ES9+, SGP.22 §3.1.3, §5.6) of the lifecycle, simulated: downloads,
//! installation results, Confirmation Code and attempt limits, CancelSession, and the eUICC's
//! local enable/disable/delete notifications.
//!
//! Transitions follow Figure 15 of §3.1.6; the HandleDownloadProgressInfo each step causes
//! (§5.3.5, Table 32a–c) is returned as an [`Effect::Notify`], never sent from here.

use time::OffsetDateTime;

use super::{Draft, Effect, Refusal, Rules};
use crate::ids::Eid;
use crate::profile::{OnDevice, Profile, ProfileState};

/// A simulated ES9+ event for the profile of one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceEvent {
    /// AuthenticateClient and GetBoundProfilePackage succeed: the BPP is delivered (§3.1.3.2).
    /// From Downloaded this is a retry that rebinds the BPP.
    Download,
    /// ES9+ AuthenticateClient matched the eUICC to this order and passed its checks
    /// (§3.1.3 steps 3-4): one download attempt, the point-1 notification, no state change.
    Authenticated,
    /// ES9+ GetBoundProfilePackage bound the profile to the eUICC and delivered it
    /// (§3.1.3.2 steps 9-11): the order is linked to the EID and Downloaded (again, on a retry).
    BoundProfilePackage,
    /// GetBoundProfilePackage with a wrong Confirmation Code (§3.1.3.2 step 7).
    WrongConfirmationCode,
    /// The eligibility check of AuthenticateClient fails (§3.1.3 step 4).
    EligibilityFailure,
    /// GetBoundProfilePackage retry finds no BPP to rebind (§3.1.6, `8.2 / 3.7`).
    RebindFailure,
    /// ES9+ CancelSession (§5.6.5).
    CancelSession(CancelSessionReason),
    /// The ProfileInstallationResult of ES9+ HandleNotification (§3.1.3.3).
    InstallResult(InstallResult),
    /// An "Other notification" from the eUICC after installation (§3.5).
    Local(LocalOperation),
}

impl DeviceEvent {
    /// The event's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            DeviceEvent::Download => "download",
            DeviceEvent::Authenticated => "authenticate",
            DeviceEvent::BoundProfilePackage => "bound profile package",
            DeviceEvent::WrongConfirmationCode => "wrong confirmation code",
            DeviceEvent::EligibilityFailure => "eligibility failure",
            DeviceEvent::RebindFailure => "rebind failure",
            DeviceEvent::CancelSession(_) => "cancel session",
            DeviceEvent::InstallResult(InstallResult::Success) => "install success",
            DeviceEvent::InstallResult(InstallResult::Failure { .. }) => "install failure",
            DeviceEvent::Local(LocalOperation::Enable) => "enable",
            DeviceEvent::Local(LocalOperation::Disable) => "disable",
            DeviceEvent::Local(LocalOperation::Delete) => "delete",
        }
    }

    /// Whether the event is part of a download session, which starts with an AuthenticateClient
    /// that counts against the download attempt limit (§3.1.3 step 3).
    fn opens_session(&self) -> bool {
        matches!(
            self,
            DeviceEvent::Download
                | DeviceEvent::Authenticated
                | DeviceEvent::WrongConfirmationCode
                | DeviceEvent::EligibilityFailure
                | DeviceEvent::RebindFailure
                | DeviceEvent::CancelSession(_)
        )
    }
}

/// ES9+ CancelSession reasons (SGP.22 §5.6.5, ASN.1 `CancelSessionReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelSessionReason {
    /// `endUserRejection(0)`.
    EndUserRejection,
    /// `postponed(1)`: the order stays as it is, no notification.
    Postponed,
    /// `timeout(2)`: the order stays as it is, no notification.
    Timeout,
    /// `pprNotAllowed(3)`.
    PprNotAllowed,
    /// `metadataMismatch(4)`.
    MetadataMismatch,
    /// `loadBppExecutionError(5)`.
    LoadBppExecutionError,
    /// `undefinedReason(127)`.
    Undefined,
}

impl CancelSessionReason {
    /// The ASN.1 value.
    pub fn code(self) -> u8 {
        match self {
            CancelSessionReason::EndUserRejection => 0,
            CancelSessionReason::Postponed => 1,
            CancelSessionReason::Timeout => 2,
            CancelSessionReason::PprNotAllowed => 3,
            CancelSessionReason::MetadataMismatch => 4,
            CancelSessionReason::LoadBppExecutionError => 5,
            CancelSessionReason::Undefined => 127,
        }
    }

    /// Postponed and timeout leave the order pending (Table 32b).
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            CancelSessionReason::Postponed | CancelSessionReason::Timeout
        )
    }
}

/// The `finalResult` of a ProfileInstallationResult (SGP.22 §5.6.3 ASN.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallResult {
    /// `successResult`.
    Success,
    /// `errorResult`.
    Failure {
        /// `bppCommandId` (0 initialiseSecureChannel … 5 loadProfileElements).
        bpp_command_id: u8,
        /// `errorReason` (e.g. 10 installFailedDueToInsufficientMemoryForProfile).
        error_reason: u8,
    },
}

/// Local profile operations the eUICC reports in Other Notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalOperation {
    /// `notificationLocalEnable`.
    Enable,
    /// `notificationLocalDisable`.
    Disable,
    /// `notificationLocalDelete`.
    Delete,
}

/// The step of the download a notification reports (SGP.22 Table 32a), plus the local events.
/// Scenarios name them in kebab case (`bpp-download`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum NotificationPoint {
    /// 1: eligibility and retry limit check.
    EligibilityAndRetryLimit,
    /// 2: Confirmation Code check failure.
    ConfirmationFailure,
    /// 3: BPP download.
    BppDownload,
    /// 4: BPP installation.
    BppInstallation,
    /// The profile was enabled on the device.
    LocalEnable,
    /// The profile was disabled on the device.
    LocalDisable,
    /// The profile was deleted from the device.
    LocalDelete,
}

/// Why a download step failed; the notification layer maps these to SGP.22 status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadFailure {
    /// Download attempt limit exceeded (`8.8.5 / 6.4`, Table 32c).
    DownloadAttemptsExceeded,
    /// Wrong Confirmation Code (`8.2.7 / 3.8`).
    ConfirmationCodeRefused,
    /// Confirmation Code attempt limit exceeded (`8.2.7 / 6.4`, Table 32c).
    ConfirmationCodeAttemptsExceeded,
    /// No eligible profile for this device (`8.2.5 / 4.3`).
    NotEligible,
    /// The order outlived its validity (`8.8.5 / 4.10`).
    OrderExpired,
    /// No BPP to rebind (`8.2 / 3.7`).
    BppNotAvailable,
    /// A terminal CancelSession (Table 32b).
    SessionCancelled(CancelSessionReason),
    /// The eUICC could not install the profile.
    InstallationFailed {
        /// `bppCommandId`.
        bpp_command_id: u8,
        /// `errorReason`.
        error_reason: u8,
    },
}

/// Applies a device event from the eUICC `eid` to the draft transition; `in_session` when
/// AuthenticateClient already counted the download attempt.
pub(super) fn apply(
    d: &mut Draft,
    event: DeviceEvent,
    eid: Eid,
    in_session: bool,
    rules: &Rules,
    now: OffsetDateTime,
) -> Result<(), Refusal> {
    check_applies(d, event, eid)?;
    if order_expired(d.profile, rules, now) {
        d.end_in_error(
            eid,
            NotificationPoint::EligibilityAndRetryLimit,
            DownloadFailure::OrderExpired,
        );
        return Ok(());
    }
    // Within an ES9+ session, AuthenticateClient counted the attempt; the session's later
    // steps do not count again.
    if event.opens_session() && !in_session {
        d.next.download_attempts = d.profile.download_attempts.saturating_add(1);
        if d.next.download_attempts > rules.max_download_attempts {
            d.end_in_error(
                eid,
                NotificationPoint::EligibilityAndRetryLimit,
                DownloadFailure::DownloadAttemptsExceeded,
            );
            return Ok(());
        }
    }
    step(d, event, eid, rules)
}

impl Draft<'_> {
    /// Queues the HandleDownloadProgressInfo of a step. The order is bound to the eUICC only
    /// when the BPP is (§3.1.3.2 step 9, Download and BoundProfilePackage in [`step`]); the
    /// notifications name the eUICC all the same (Table 32a: eid "SHALL be set if available").
    fn notify(&mut self, eid: Eid, point: NotificationPoint, outcome: Result<(), DownloadFailure>) {
        self.effects.push(Effect::Notify {
            point,
            outcome,
            eid: Some(eid),
        })
    }

    /// The order ends in Error, with `failure` notified at `point`.
    fn end_in_error(&mut self, eid: Eid, point: NotificationPoint, failure: DownloadFailure) {
        self.next.state = ProfileState::Error;
        self.notify(eid, point, Err(failure));
    }
}

/// Whether the event may happen at all: in a state the device can reach (a released order, or
/// an installed profile for local operations), and from the eUICC the order is bound to.
fn check_applies(d: &Draft, event: DeviceEvent, eid: Eid) -> Result<(), Refusal> {
    use ProfileState::*;
    match (event, d.profile.state) {
        (DeviceEvent::InstallResult(_), Downloaded) | (DeviceEvent::Local(_), Installed) => {}
        (DeviceEvent::InstallResult(_) | DeviceEvent::Local(_), _) => return Err(d.invalid()),
        (_, Released | Downloaded) => {}
        (_, Available | Allocated | Linked | Confirmed) => {
            return Err(Refusal::NotReleased {
                state: d.profile.state,
            })
        }
        (_, Installed | Error | Unavailable) => return Err(d.invalid()),
    }
    match d.profile.eid {
        Some(associated) if associated != eid => Err(Refusal::EidMismatch {
            associated: Some(associated),
            given: eid,
        }),
        _ => Ok(()),
    }
}

/// Whether the order outlived `rules.order_expiry`, counted from DownloadOrder (Allocated or
/// Linked, whichever came last).
fn order_expired(profile: &Profile, rules: &Rules, now: OffsetDateTime) -> bool {
    let Some(expiry) = rules.order_expiry else {
        return false;
    };
    let ordered = [ProfileState::Allocated, ProfileState::Linked]
        .into_iter()
        .filter_map(|s| profile.entered.get(s))
        .max();
    ordered.is_some_and(|at| now > at + expiry)
}

/// The event's own step, once the order is known to be alive and within its attempts.
fn step(d: &mut Draft, event: DeviceEvent, eid: Eid, rules: &Rules) -> Result<(), Refusal> {
    use ProfileState::*;
    match event {
        DeviceEvent::Download => {
            // AuthenticateClient passed the eligibility check (point 1, whose success SGP.22
            // leaves to agreement: the callback format decides), then GetBoundProfilePackage
            // links the order to the eUICC (§3.1.3.2 step 9) and delivers the BPP (point 3).
            d.notify(eid, NotificationPoint::EligibilityAndRetryLimit, Ok(()));
            d.next.eid = Some(eid);
            d.next.state = Downloaded;
            d.notify(eid, NotificationPoint::BppDownload, Ok(()));
        }
        DeviceEvent::Authenticated => {
            // Point 1's success is sent only where the callback's format asks for it.
            d.notify(eid, NotificationPoint::EligibilityAndRetryLimit, Ok(()));
        }
        DeviceEvent::BoundProfilePackage => {
            d.next.eid = Some(eid);
            d.next.state = Downloaded;
            d.notify(eid, NotificationPoint::BppDownload, Ok(()));
        }
        DeviceEvent::WrongConfirmationCode => wrong_confirmation_code(d, eid, rules)?,
        DeviceEvent::EligibilityFailure => d.end_in_error(
            eid,
            NotificationPoint::EligibilityAndRetryLimit,
            DownloadFailure::NotEligible,
        ),
        DeviceEvent::RebindFailure => {
            if d.profile.state != Downloaded {
                return Err(d.invalid());
            }
            d.end_in_error(
                eid,
                NotificationPoint::BppDownload,
                DownloadFailure::BppNotAvailable,
            );
        }
        DeviceEvent::CancelSession(reason) => cancel_session(d, eid, reason),
        DeviceEvent::InstallResult(InstallResult::Success) => {
            d.next.state = Installed;
            d.next.on_device = Some(OnDevice::Disabled);
            d.notify(eid, NotificationPoint::BppInstallation, Ok(()));
        }
        DeviceEvent::InstallResult(InstallResult::Failure {
            bpp_command_id,
            error_reason,
        }) => d.end_in_error(
            eid,
            NotificationPoint::BppInstallation,
            DownloadFailure::InstallationFailed {
                bpp_command_id,
                error_reason,
            },
        ),
        DeviceEvent::Local(op) => local_operation(d, eid, event, op)?,
    }
    Ok(())
}

/// GetBoundProfilePackage with a wrong Confirmation Code (§3.1.3.2 steps 7-8): counted, and
/// the order ends in Error once the retries run out.
fn wrong_confirmation_code(d: &mut Draft, eid: Eid, rules: &Rules) -> Result<(), Refusal> {
    if d.profile.confirmation_code_hash.is_none() {
        return Err(Refusal::NoConfirmationCode);
    }
    d.next.confirmation_code_attempts = d.profile.confirmation_code_attempts.saturating_add(1);
    if d.next.confirmation_code_attempts > rules.max_confirmation_code_attempts {
        d.end_in_error(
            eid,
            NotificationPoint::ConfirmationFailure,
            DownloadFailure::ConfirmationCodeAttemptsExceeded,
        );
    } else {
        // §3.1.3.2 step 8 notifies only when the retries are exhausted (above); this
        // per-attempt one is sent only where the callback's format asks for it.
        d.notify(
            eid,
            NotificationPoint::ConfirmationFailure,
            Err(DownloadFailure::ConfirmationCodeRefused),
        );
    }
    Ok(())
}

/// ES9+ CancelSession (§5.6.5): postponed and timeout keep the order for a retry, the other
/// reasons end it.
fn cancel_session(d: &mut Draft, eid: Eid, reason: CancelSessionReason) {
    if !reason.is_terminal() {
        // §3.1.3.1 step 5: postponed or timeout keep the order "in the 'Released'
        // state available for a further retry", also after its package was delivered
        // (the package stays bound to the eUICC).
        d.next.state = ProfileState::Released;
    } else {
        // SGP.22 leaves the point open; the step reached so far is the natural one.
        let point = if d.profile.state == ProfileState::Downloaded {
            NotificationPoint::BppDownload
        } else {
            NotificationPoint::EligibilityAndRetryLimit
        };
        d.end_in_error(eid, point, DownloadFailure::SessionCancelled(reason));
    }
}

/// A local enable, disable or delete the eUICC reports (§3.5), which must fit the profile's
/// status on the device.
fn local_operation(
    d: &mut Draft,
    eid: Eid,
    event: DeviceEvent,
    op: LocalOperation,
) -> Result<(), Refusal> {
    let on_device = d.profile.on_device;
    let (from_ok, to, point) = match op {
        LocalOperation::Enable => (
            on_device == Some(OnDevice::Disabled),
            OnDevice::Enabled,
            NotificationPoint::LocalEnable,
        ),
        LocalOperation::Disable => (
            on_device == Some(OnDevice::Enabled),
            OnDevice::Disabled,
            NotificationPoint::LocalDisable,
        ),
        LocalOperation::Delete => (
            on_device != Some(OnDevice::Deleted),
            OnDevice::Deleted,
            NotificationPoint::LocalDelete,
        ),
    };
    if !from_ok {
        return Err(Refusal::OnDevice {
            operation: event.name(),
            on_device,
        });
    }
    d.next.on_device = Some(to);
    d.notify(eid, point, Ok(()));
    Ok(())
}
