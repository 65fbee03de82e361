//! Simulated devices: when a profile is released, the scenario's first matching device rule
//! plays its timeline against the store, step by step, through the same state machine and the
//! same commit path ([`App::commit`]) as everything else. [`simulate`] lets tests (and the
//! admin API) make a device act directly.

use std::sync::Arc;

use tracing::{debug, info};

use crate::app::{App, World};
use crate::ids::{Eid, IccidKey, MatchingId};
use crate::profile::machine::{transition, DeviceEvent, Event, Refusal};
use crate::profile::Profile;
use crate::scenario::{TimelineStep, DEFAULT_DEVICE_EID};
use crate::sgp22::StatusCode;
use crate::store::UpdateError;

/// Why a simulated device event did not happen.
pub type SimulateError = UpdateError<Refusal>;

/// Starts the device timeline for a just-released `profile`, if a rule with steps matches.
pub fn start(app: &App, world: &Arc<World>, profile: &Profile) {
    let Some(rule) = world.scenario.device_rule_for(profile) else {
        return;
    };
    if rule.timeline.is_empty() {
        return; // manual: the device acts only through `simulate`
    }
    let eid = profile.eid.unwrap_or(rule.device_eid);
    let steps = rule.timeline.clone();
    let (app, world, key) = (app.clone(), world.clone(), profile.iccid.key());
    let order = profile.order_seq;
    // Measured from the release itself, so a clock advance made right after it counts.
    let released = app.clock.mark();
    if rule.over_es9 {
        if app.device_kit().is_some() {
            debug!(iccid = %profile.iccid, %eid, steps = steps.len(), "device timeline started over ES9+");
            let card = super::es9_device::Card {
                eid,
                curves: rule.curves.clone(),
                steps,
            };
            tokio::spawn(super::es9_device::run(
                app, world, key, order, card, released,
            ));
            return;
        }
        info!(iccid = %profile.iccid, "ES9+ is off: the device timeline is played directly");
    }
    debug!(iccid = %profile.iccid, %eid, steps = steps.len(), "device timeline started");
    tokio::spawn(async move {
        let player = Direct {
            app: app.clone(),
            world: world.clone(),
            key,
            order,
            eid,
        };
        play_timeline(&app, &world, steps, released, player).await;
    });
}

/// A device playing a timeline: what it does at each step.
pub(super) trait Player: Send {
    /// Does `step`; `false` ends the timeline (the order is gone, the step was refused).
    fn play(&mut self, step: &TimelineStep) -> impl std::future::Future<Output = bool> + Send;
}

/// The one timeline runner: each step at its time after `released` (by the mock's clock), as
/// long as `world` is the world in force, until the player stops.
pub(super) async fn play_timeline(
    app: &App,
    world: &Arc<World>,
    steps: Vec<TimelineStep>,
    released: crate::clock::ClockMark,
    mut player: impl Player,
) {
    let mut due = std::time::Duration::ZERO;
    for step in steps {
        due += step.after;
        if !step.after.is_zero() {
            app.clock.sleep_until(released, due).await;
        }
        if !app.is_current(world) {
            return; // the scenario was reset or replaced
        }
        if !player.play(&step).await {
            return;
        }
    }
}

/// Why a timeline stops early.
#[derive(Debug)]
enum Stop {
    /// The order it was started for was cancelled (and maybe ordered again since).
    OrderGone,
    /// The state machine refused the step.
    Refused(Refusal),
}

/// A device played directly on the store: each step one device event through the state
/// machine and [`App::commit`].
struct Direct {
    app: App,
    world: Arc<World>,
    key: IccidKey,
    order: u32,
    eid: Eid,
}

impl Player for Direct {
    async fn play(&mut self, step: &TimelineStep) -> bool {
        let event = Event::Device {
            eid: self.eid,
            event: step.event,
        };
        let now = self.app.clock.now();
        let (world, order) = (&self.world, self.order);
        let result = self.app.commit(world, self.key, |p| {
            if p.order_seq != order {
                return Err(Stop::OrderGone);
            }
            transition(p, &event, world.scenario.rules(), now).map_err(Stop::Refused)
        });
        match result {
            Ok(profile) => {
                info!(
                    iccid = %profile.iccid, event = step.event.name(),
                    state = %profile.state, "device"
                );
                true
            }
            // The operator cancelled the order meanwhile: the device gives up.
            Err(UpdateError::Refused(Stop::OrderGone)) => {
                info!(
                    event = step.event.name(),
                    "device timeline stopped: the order is gone"
                );
                false
            }
            Err(UpdateError::Refused(Stop::Refused(refusal))) => {
                info!(event = step.event.name(), %refusal, "device timeline stopped");
                false
            }
            Err(other) => {
                info!(event = step.event.name(), ?other, "device timeline stopped");
                false
            }
        }
    }
}

/// Lets the device of the order on `key` do `event` now; the effects (notifications) follow
/// as for any transition. The EID defaults to the order's, then to the matching device rule's,
/// then to [`DEFAULT_DEVICE_EID`].
pub fn simulate(
    app: &App,
    key: IccidKey,
    eid: Option<Eid>,
    event: DeviceEvent,
) -> Result<Profile, SimulateError> {
    let world = app.world();
    let current = world.store.get(key).ok_or(UpdateError::UnknownIccid)?;
    let eid = eid.or(current.eid).unwrap_or_else(|| {
        world
            .scenario
            .device_rule_for(&current)
            .map_or(DEFAULT_DEVICE_EID, |r| r.device_eid)
    });
    let now = app.clock.now();
    app.commit(&world, key, |p| {
        transition(
            p,
            &Event::Device { eid, event },
            world.scenario.rules(),
            now,
        )
    })
}

/// Like [`simulate`], for the order a device finds by its MatchingID (the Activation Code token).
pub fn simulate_by_matching_id(
    app: &App,
    matching_id: &MatchingId,
    eid: Option<Eid>,
    event: DeviceEvent,
) -> Result<Profile, SimulateError> {
    let key = app
        .world()
        .store
        .find_by_matching_id(matching_id)
        .ok_or(UpdateError::UnknownIccid)?;
    simulate(app, key, eid, event)
}

/// The ES9+ status code the SM-DP+ would answer the device with for a refused event
/// (SGP.22 §5.6.3, §5.6.2 status code tables).
pub fn es9_code(error: &SimulateError) -> StatusCode {
    let code = |subject, reason| StatusCode { subject, reason };
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
