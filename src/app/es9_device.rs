//! Device timelines played over the real protocol (`protocol: es9` in a device rule): a
//! software eUICC for the device's EID, issued by the mock's EUM, and the library's LPA call the
//! ES9+ listener of this very process, so the journal, the dashboard and the operator's
//! notifications show what a real device would cause. Each step becomes what a device does:
//!
//! | step | over ES9+ |
//! |---|---|
//! | `download` | InitiateAuthentication, AuthenticateClient, GetBoundProfilePackage; the package loaded on the card, its installation result kept there |
//! | `discover` | ES11 at the mock's SM-DS (InitiateAuthentication, AuthenticateClient), then `download` with the order's EventID |
//! | `install-success` / `install-failure` | HandleNotification with the card's installation result (the failure is the card's, with the step's codes) |
//! | `wrong-confirmation-code` | a download with a wrong code (refused, counted) |
//! | `eligibility-failure` | a download by a card that reports no free memory |
//! | `end-user-rejection`, `postponed`, … | AuthenticateClient, then CancelSession with that reason |
//! | `enable`, `disable`, `delete` | the local operation on the card, then its notification sent |

use std::sync::Arc;

use tracing::{debug, info, warn};

use super::{App, DeviceKit, World};
use crate::ids::{Eid, IccidKey};
use crate::profile::machine::{DeviceEvent, InstallResult, LocalOperation};
use crate::profile::OrderMatchingId;
use crate::scenario::TimelineStep;
use smdpp_rsp::euicc::Euicc;
use smdpp_rsp::lpa::{Lpa, LpaError};

/// A wrong Confirmation Code, hashed (what a device whose user mistyped sends).
fn wrong_code() -> [u8; 32] {
    smdpp_rsp::crypto::sha256(b"not the code")
}

/// The device a rule plays over ES9+: its EID, the curves of its eUICC's chains, its steps.
pub(super) struct Card {
    pub(super) eid: Eid,
    pub(super) curves: Vec<smdpp_rsp::crypto::Curve>,
    pub(super) steps: Vec<TimelineStep>,
}

/// Plays the card's steps for the order on `key` with a software eUICC over ES9+.
pub(super) async fn run(
    app: App,
    world: Arc<World>,
    key: IccidKey,
    order: u32,
    card: Card,
    released: crate::clock::ClockMark,
) {
    let Some(kit) = app.device_kit().cloned() else {
        return;
    };
    let Card { eid, curves, steps } = card;
    let Some(lpa) = device(&kit, eid, &curves, &steps) else {
        return;
    };
    let player = OverEs9 {
        app: app.clone(),
        world: world.clone(),
        key,
        order,
        lpa,
    };
    super::simulator::play_timeline(&app, &world, steps, released, player).await;
}

/// A device that plays its steps over ES9+ with its LPA.
struct OverEs9 {
    app: App,
    world: Arc<World>,
    key: IccidKey,
    order: u32,
    lpa: Lpa,
}

impl super::simulator::Player for OverEs9 {
    async fn play(&mut self, step: &TimelineStep) -> bool {
        let Some(profile) = self
            .world
            .store
            .get(self.key)
            .filter(|p| p.order_seq == self.order)
        else {
            info!(
                event = step.event.name(),
                "device timeline (ES9+) stopped: the order is gone"
            );
            return false;
        };
        let matching_id = match &profile.matching_id {
            Some(OrderMatchingId::Id(id)) => id.to_string(),
            _ => String::new(),
        };
        let code = format!(
            "1${}${matching_id}",
            self.app.activation_address(&self.world)
        );
        let stored_code = profile.confirmation_code_hash.as_deref().copied();
        let result = if step.discover {
            self.discover_and_download(&matching_id, stored_code).await
        } else {
            play(
                &mut self.lpa,
                step.event,
                &code,
                stored_code,
                &profile.iccid,
            )
            .await
        };
        match result {
            Ok(()) => debug!(iccid = %profile.iccid, event = step.event.name(), "device (ES9+)"),
            Err(e) => {
                // What a real device would show its user; the SM-DP+'s side is in the journal.
                info!(iccid = %profile.iccid, event = step.event.name(), error = %e, "device (ES9+): the step was refused");
            }
        }
        true
    }
}

impl OverEs9 {
    /// Event Retrieval at the mock's SM-DS (§3.6.2), then the download of the order's event
    /// (§3.1.3 option b: its EventID is the order's MatchingID).
    async fn discover_and_download(
        &mut self,
        event_id: &str,
        stored_code: Option<[u8; 32]>,
    ) -> Result<(), LpaError> {
        let Some(smds) = self.app.smds() else {
            return Err(LpaError::Protocol("the mock's SM-DS does not run".into()));
        };
        let es9_route = self.lpa.route_to.replace(smds.route.clone());
        let found = self.lpa.discover(&smds.address, None).await;
        self.lpa.route_to = es9_route;
        let event = found?
            .into_iter()
            .find(|e| e.event_id == event_id)
            .ok_or_else(|| {
                LpaError::Protocol(format!(
                    "the SM-DS holds no event {event_id} for this eUICC"
                ))
            })?;
        let authenticated = self
            .lpa
            .authenticate_at(&event.rsp_server_address, &event.event_id)
            .await?;
        self.lpa
            .complete(authenticated, stored_code)
            .await
            .map(|_| ())
    }
}

/// The eUICC of `eid` with what the timeline needs of it, and its LPA.
fn device(
    kit: &DeviceKit,
    eid: Eid,
    curves: &[smdpp_rsp::crypto::Curve],
    steps: &[TimelineStep],
) -> Option<Lpa> {
    let chains: Result<Vec<_>, _> = curves
        .iter()
        .map(|curve| kit.pki.issue_euicc_on(*curve, &eid.to_string()))
        .collect();
    let chains = match chains {
        Ok(c) => c,
        Err(e) => {
            warn!(%eid, error = %format!("{e:#}"), "device timeline (ES9+) not started: no eUICC for this EID");
            return None;
        }
    };
    let mut euicc = match Euicc::with_chains(chains) {
        Ok(e) => e,
        Err(e) => {
            warn!(%eid, error = %e, "device timeline (ES9+) not started");
            return None;
        }
    };
    // The SM-DP+'s certificates are checked against the mock clock's idea of now elsewhere; a
    // test that moves that clock far must not make the card refuse them.
    euicc.ignore_validity();
    if let Some(DeviceEvent::InstallResult(InstallResult::Failure {
        bpp_command_id,
        error_reason,
    })) = steps
        .iter()
        .map(|s| s.event)
        .find(|e| matches!(e, DeviceEvent::InstallResult(InstallResult::Failure { .. })))
    {
        euicc.faults.install_failure = Some((bpp_command_id, error_reason));
    }
    let mut lpa = match Lpa::new(euicc, std::slice::from_ref(&kit.ci)) {
        Ok(l) => l,
        Err(e) => {
            warn!(%eid, error = %e, "device timeline (ES9+) not started");
            return None;
        }
    };
    lpa.route_to = Some(kit.route.clone());
    // The result is the `install-…` step's to send.
    lpa.send_result = false;
    Some(lpa)
}

/// One step as a device does it.
async fn play(
    lpa: &mut Lpa,
    event: DeviceEvent,
    code: &str,
    stored_code: Option<[u8; 32]>,
    iccid: &crate::ids::Iccid,
) -> Result<(), LpaError> {
    match event {
        DeviceEvent::Download => {
            let authenticated = lpa.authenticate(code).await?;
            lpa.complete(authenticated, stored_code).await.map(|_| ())
        }
        DeviceEvent::WrongConfirmationCode => {
            let authenticated = lpa.authenticate(code).await?;
            lpa.complete(authenticated, Some(wrong_code()))
                .await
                .map(|_| ())
        }
        DeviceEvent::EligibilityFailure => {
            lpa.euicc_mut().faults.free_nvm = Some(0);
            let result = lpa.authenticate(code).await.map(|_| ());
            lpa.euicc_mut().faults.free_nvm = None;
            result
        }
        DeviceEvent::CancelSession(reason) => {
            lpa.authenticate(code).await?;
            lpa.cancel_session(reason.code()).await
        }
        DeviceEvent::InstallResult(_) => lpa.send_notifications().await.map(|_| ()),
        DeviceEvent::Local(operation) => {
            let result = match operation {
                LocalOperation::Enable => lpa.enable(iccid),
                LocalOperation::Disable => lpa.disable(iccid),
                LocalOperation::Delete => lpa.delete(iccid),
            };
            if result != 0 {
                return Err(LpaError::Euicc {
                    function: "a local profile operation",
                    answer: format!("result {result}"),
                });
            }
            lpa.send_notifications().await.map(|_| ())
        }
        // Refused when the scenario is checked.
        other => Err(LpaError::Protocol(format!(
            "{} cannot be played over ES9+",
            other.name()
        ))),
    }
}
