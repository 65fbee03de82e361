//! Committing a transition and carrying out its effects, under one rule for every caller (the
//! ES2+ functions, simulated devices, the admin API): the effects run while the profile is
//! still locked, so the notifications of one ICCID are queued in the order their transitions
//! were committed.

use std::sync::Arc;

use tracing::debug;

use super::{simulator, App, World};
use crate::fault::NotificationFacts;
use crate::ids::IccidKey;
use crate::notify::compose::DeviceResult;
use crate::notify::{compose, Outgoing};
use crate::profile::machine::{DownloadFailure, Effect, NotificationPoint, Step};
use crate::profile::Profile;
use crate::store::{AllocateError, UpdateError};

impl App {
    /// Runs `check` on the profile with this ICCID in `world`, commits the step it returns and
    /// carries out the step's effects; the profile as committed.
    ///
    /// `check` runs under the profile's lock and must not touch the store; neither may the
    /// effects (`App::carry_out` runs under the same lock, so a store read there would wait
    /// for itself). On any error nothing changes and nothing is carried out. Must be called inside the Tokio runtime: device
    /// timelines run as tasks.
    pub fn commit<E>(
        &self,
        world: &Arc<World>,
        key: IccidKey,
        check: impl FnOnce(&Profile) -> Result<Step, E>,
    ) -> Result<Profile, UpdateError<E>> {
        world.store.update_then(key, check, |updated| {
            self.carry_out(world, &updated.profile, updated.effects, None);
            updated.profile
        })
    }

    /// Like [`App::commit`], for a step a real eUICC reported with its installation result
    /// (ES9+): point 4 carries what the eUICC sent.
    pub(crate) fn commit_reported<E>(
        &self,
        world: &Arc<World>,
        key: IccidKey,
        reported: Option<&DeviceResult>,
        check: impl FnOnce(&Profile) -> Result<Step, E>,
    ) -> Result<Profile, UpdateError<E>> {
        world.store.update_then(key, check, |updated| {
            self.carry_out(world, &updated.profile, updated.effects, reported);
            updated.profile
        })
    }

    /// Like [`App::commit`], for an Available profile of `profile_type` the store picks
    /// (DownloadOrder by profile type).
    pub fn commit_allocation<E>(
        &self,
        world: &Arc<World>,
        profile_type: &str,
        check: impl Fn(&Profile) -> Result<Step, E>,
    ) -> Result<Profile, AllocateError<E>> {
        world.store.allocate_then(profile_type, check, |updated| {
            self.carry_out(world, &updated.profile, updated.effects, None);
            updated.profile
        })
    }

    /// Carries out the effects of a transition committed on `profile` in `world`.
    ///
    /// Must be called inside the Tokio runtime: device timelines run as tasks. Runs under the
    /// committed profile's lock (and the store's commit guard): nothing here may touch the
    /// store, or it would wait for itself.
    fn carry_out(
        &self,
        world: &Arc<World>,
        profile: &Profile,
        effects: Vec<Effect>,
        reported: Option<&DeviceResult>,
    ) {
        for effect in effects {
            match effect {
                Effect::SmdsRegisterEvent { address, event_id } => {
                    self.register_event(world, profile, &address, event_id.as_str());
                }
                Effect::SmdsDeleteEvent { address, event_id } => {
                    self.delete_event(world, profile, &address, event_id.as_str());
                }
                Effect::Released => simulator::start(self, world, profile),
                Effect::Notify {
                    point,
                    outcome,
                    eid,
                } => self.notify(world, profile, point, outcome, eid, reported),
            }
        }
    }

    /// Queues the HandleDownloadProgressInfo for a step `profile` reached, if its owner has a
    /// callback (SGP.22 §5.3.5: the ICCID identifies the operator to notify).
    fn notify(
        &self,
        world: &Arc<World>,
        profile: &Profile,
        point: NotificationPoint,
        outcome: Result<(), DownloadFailure>,
        eid: Option<crate::ids::Eid>,
        reported: Option<&DeviceResult>,
    ) {
        let scenario = &world.scenario;
        let Some(callback) = world.callback(&profile.owner) else {
            debug!(iccid = %profile.iccid, ?point, "no callback configured: notification not sent");
            return;
        };
        let format = &callback.format;
        // What SGP.22 leaves to agreement is sent only where the callback's format asks.
        let optional = match (point, outcome) {
            (NotificationPoint::EligibilityAndRetryLimit, Ok(())) => !format.eligibility_success,
            (NotificationPoint::BppDownload, Ok(())) => !format.bpp_download_success,
            (
                NotificationPoint::ConfirmationFailure,
                Err(DownloadFailure::ConfirmationCodeRefused),
            ) => !format.confirmation_failure_each_attempt,
            _ => false,
        };
        if optional {
            return;
        }
        let id = self.notifier.next_id();
        let call_id = format!("HDPI-{}-{id}", self.run_id);
        let now = self.clock.now();
        let body = compose::body(
            &compose::Content {
                profile,
                eid: eid.or(profile.eid),
                point,
                outcome,
                at: now,
                requester: &scenario.settings().requester_identifier,
                call_id: &call_id,
                device_result: reported.filter(|_| point == NotificationPoint::BppInstallation),
            },
            format,
        );
        let fault = world.faults.check_notification(&NotificationFacts {
            operator: &profile.owner,
            iccid: profile.iccid.key(),
            eid: profile.eid,
            profile_type: &profile.profile_type,
            point,
        });
        let iccid = body["iccid"].as_str().unwrap_or_default().to_owned();
        self.notifier.enqueue(
            id,
            Outgoing {
                key: profile.iccid.key(),
                iccid,
                operator: profile.owner.to_string(),
                point_id: compose::point_id(point, format),
                callback,
                body,
                call_id,
                admin_protocol: scenario.admin_protocol().into(),
                drop: fault.as_ref().is_some_and(|f| f.drop),
                delay: fault.as_ref().and_then(|f| f.delay),
                duplicate: fault.as_ref().is_some_and(|f| f.duplicate),
            },
            now,
        );
    }
}
