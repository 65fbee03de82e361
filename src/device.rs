//! Simulated devices: when a profile is released, the scenario's first matching device rule
//! plays its timeline against the store, step by step, through the same state machine and
//! effects as everything else (design.md §6).

use std::sync::Arc;

use tracing::{debug, info};

use crate::app::{App, World};
use crate::ids::{Eid, IccidKey};
use crate::profile::machine::{transition, Event};
use crate::profile::Profile;
use crate::scenario::TimelineStep;

/// Starts the device timeline for a just-released `profile`, if a rule with steps matches.
pub fn start(app: &App, world: &Arc<World>, profile: &Profile) {
    let Some(rule) = world.scenario.device_rule_for(profile) else {
        return;
    };
    if rule.timeline.is_empty() {
        return; // manual: tests drive the device through the admin API
    }
    let eid = profile.eid.unwrap_or(rule.device_eid);
    let steps = rule.timeline.clone();
    let (app, world, key) = (app.clone(), world.clone(), profile.iccid.key());
    debug!(iccid = %profile.iccid, %eid, steps = steps.len(), "device timeline started");
    tokio::spawn(run(app, world, key, eid, steps));
}

async fn run(app: App, world: Arc<World>, key: IccidKey, eid: Eid, steps: Vec<TimelineStep>) {
    for step in steps {
        if !step.after.is_zero() {
            tokio::time::sleep(step.after).await;
        }
        if !app.is_current(&world) {
            return; // the scenario was reset or replaced
        }
        let event = Event::Device {
            eid,
            event: step.event,
        };
        let now = app.clock.now();
        match world
            .store
            .update(key, |p| transition(p, &event, world.scenario.rules(), now))
        {
            Ok(updated) => {
                info!(iccid = %updated.profile.iccid, event = step.event.name(), state = %updated.profile.state, "device");
                app.carry_out(&world, &updated.profile, updated.effects);
            }
            Err(refusal) => {
                // E.g. the operator cancelled the order meanwhile: the device gives up.
                info!(
                    event = step.event.name(),
                    ?refusal,
                    "device timeline stopped"
                );
                return;
            }
        }
    }
}

/// Why a simulated device event did not happen.
pub type SimulateError = crate::store::UpdateError<crate::profile::machine::Refusal>;

/// Lets the device of the order on `key` do `event` now, as the admin API and tests do; the
/// effects (notifications) follow as for any transition. The EID defaults to the order's, then
/// to the matching device rule's, then to [`crate::scenario::DEFAULT_DEVICE_EID`].
pub fn simulate(
    app: &App,
    key: IccidKey,
    eid: Option<Eid>,
    event: crate::profile::machine::DeviceEvent,
) -> Result<Profile, SimulateError> {
    let world = app.world();
    let current = world
        .store
        .get(key)
        .ok_or(crate::store::UpdateError::UnknownIccid)?;
    let eid = eid.or(current.eid).unwrap_or_else(|| {
        world
            .scenario
            .device_rule_for(&current)
            .map_or(crate::scenario::DEFAULT_DEVICE_EID, |r| r.device_eid)
    });
    let now = app.clock.now();
    let updated = world.store.update(key, |p| {
        transition(
            p,
            &Event::Device { eid, event },
            world.scenario.rules(),
            now,
        )
    })?;
    app.carry_out(&world, &updated.profile, updated.effects);
    Ok(updated.profile)
}

/// The ES9+ status code the SM-DP+ would answer the device with for a refused event
/// (SGP.22 §5.6; es2plus.md §4.2).
pub fn es9_code(error: &SimulateError) -> crate::spec::StatusCode {
    use crate::profile::machine::Refusal;
    use crate::store::UpdateError;
    let code = |subject, reason| crate::spec::StatusCode { subject, reason };
    match error {
        // No order with this ICCID/MatchingID: the MatchingID is refused.
        UpdateError::UnknownIccid => code("8.2.6", "3.8"),
        UpdateError::Refused(Refusal::NotReleased { .. }) => code("8.2", "1.2"),
        UpdateError::Refused(Refusal::EidMismatch { .. }) => code("8.1.1", "3.8"),
        UpdateError::Refused(Refusal::NoConfirmationCode) => code("8.2.7", "3.8"),
        // The order is over (installed, failed or retired): nothing to download any more.
        UpdateError::Refused(_) | UpdateError::MatchingIdInUse(_) => code("8.2.6", "3.8"),
    }
}

/// Like [`simulate`], for the order a device finds by its MatchingID (the Activation Code token).
pub fn simulate_by_matching_id(
    app: &App,
    matching_id: &crate::ids::MatchingId,
    eid: Option<Eid>,
    event: crate::profile::machine::DeviceEvent,
) -> Result<Profile, SimulateError> {
    let key = app
        .world()
        .store
        .find_by_matching_id(matching_id)
        .ok_or(crate::store::UpdateError::UnknownIccid)?;
    simulate(app, key, eid, event)
}
