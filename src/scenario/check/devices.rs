//! The `devices` section: which simulated device plays which orders, and timelines walked
//! through the state machine so an impossible one is refused at load time.

use std::time::Duration;

use crate::ids::Eid;
use crate::profile::machine::{transition, Event, Rules};
use crate::profile::{OrderMatchingId, Profile, ProfileState};
use crate::scenario::file::{self, DeviceEventName};
use crate::scenario::load::Loaded;
use crate::scenario::{DeviceRule, Operator, ProfileType, TimelineStep, DEFAULT_DEVICE_EID};

use super::Checker;

/// Most repetitions of one timeline step.
const MAX_TIMES: u32 = 10_000;

impl Checker<'_> {
    pub(super) fn devices(
        &mut self,
        loaded: &Loaded,
        operators: &[Operator],
        types: &[ProfileType],
        rules: &Rules,
    ) -> Vec<DeviceRule> {
        let mut out = Vec::new();
        for (src, f, _) in &loaded.files {
            for rule in &f.devices {
                let r = &rule.value;
                let profile_type = r
                    .matches
                    .profile_type
                    .as_ref()
                    .and_then(|t| self.known_type(*src, t, types));
                let operator = r
                    .matches
                    .operator
                    .as_ref()
                    .and_then(|o| self.known_operator(*src, o, operators));
                let eid = match &r.matches.eid {
                    Some(t) => self.parse::<Eid>(*src, t),
                    None => None,
                };
                let device_eid = match &r.device_eid {
                    Some(t) => self.parse::<Eid>(*src, t),
                    None => Some(DEFAULT_DEVICE_EID),
                };
                let timeline = self.timeline(*src, &r.timeline, device_eid, rules);
                let over_es9 = r
                    .protocol
                    .as_ref()
                    .is_some_and(|p| p.value == file::DeviceProtocol::Es9);
                if let Some(protocol) = r.protocol.as_ref().filter(|_| over_es9) {
                    if let Some(step) = r
                        .timeline
                        .iter()
                        .find(|s| s.event.value == DeviceEventName::RebindFailure)
                    {
                        self.at(
                            *src,
                            &step.event.referenced,
                            "`rebind-failure` cannot be played over ES9+ (this SM-DP+ never reuses a Bound Profile Package); use `protocol: simulated`",
                        );
                        continue;
                    }
                    if device_eid
                        .is_some_and(|e| !e.to_string().starts_with(smdpp_rsp::pki::EUM_IIN))
                    {
                        self.at(
                            *src,
                            &protocol.referenced,
                            format!(
                                "`protocol: es9` needs a deviceEid the mock's EUM may issue (starting with {})",
                                smdpp_rsp::pki::EUM_IIN
                            ),
                        );
                        continue;
                    }
                }
                if let Some(step) = r
                    .timeline
                    .iter()
                    .find(|s| s.event.value == DeviceEventName::Discover)
                    .filter(|_| !over_es9)
                {
                    self.at(
                        *src,
                        &step.event.referenced,
                        "`discover` finds the order's event at the mock's SM-DS over ES11: it needs `protocol: es9`",
                    );
                    continue;
                }
                if let Some(curves) = r.curves.as_ref().filter(|_| !over_es9) {
                    self.at(
                        *src,
                        &curves.referenced,
                        "`curves` chooses the software eUICC of `protocol: es9`; a simulated device has none",
                    );
                    continue;
                }
                let curves = r
                    .curves
                    .as_ref()
                    .map_or(file::DeviceCurves::Nist, |c| c.value)
                    .curves();
                if let (Some(device_eid), Some(timeline)) = (device_eid, timeline) {
                    out.push(DeviceRule {
                        profile_type,
                        eid,
                        operator,
                        device_eid,
                        timeline,
                        over_es9,
                        curves,
                    });
                }
            }
        }
        out
    }

    pub(super) fn timeline(
        &mut self,
        src: usize,
        steps: &[file::DeviceStep],
        device_eid: Option<Eid>,
        rules: &Rules,
    ) -> Option<Vec<TimelineStep>> {
        let mut out = Vec::new();
        // Walk the timeline through the state machine, from a released order with a
        // Confirmation Code, so impossible sequences are found now rather than at run time.
        let eid = device_eid?;
        let mut profile = Profile::available(
            "8900000000000000001".parse().ok()?,
            "check".into(),
            "check".into(),
        );
        profile.state = ProfileState::Released;
        profile.matching_id = Some(OrderMatchingId::Empty);
        profile.confirmation_code_hash = Some(Box::new([0; 32]));
        let mut history: Vec<&str> = Vec::new();
        for step in steps {
            let name = step.event.value;
            if (step.error_reason.is_some() || step.bpp_command_id.is_some())
                && name != DeviceEventName::InstallFailure
            {
                self.at(
                    src,
                    &step.event.referenced,
                    "`errorReason` and `bppCommandId` belong to `install-failure` only",
                );
                return None;
            }
            let times = step.times.unwrap_or(1);
            if times == 0 || times > MAX_TIMES {
                self.at(
                    src,
                    &step.event.referenced,
                    format!("`times` must be 1 to {MAX_TIMES}"),
                );
                return None;
            }
            let event = name.event(step.error_reason, step.bpp_command_id);
            for i in 0..times {
                let simulated = Event::Device { eid, event };
                match transition(
                    &profile,
                    &simulated,
                    rules,
                    time::OffsetDateTime::UNIX_EPOCH,
                ) {
                    Ok(s) => profile = s.next,
                    Err(refusal) => {
                        let after = if history.is_empty() {
                            "the release".to_string()
                        } else {
                            history.join(", ")
                        };
                        self.at(
                            src,
                            &step.event.referenced,
                            format!(
                                "timeline step {:?} cannot happen after {after}: {refusal}",
                                event.name()
                            ),
                        );
                        return None;
                    }
                }
                out.push(TimelineStep {
                    after: if i == 0 {
                        step.after.map_or(Duration::ZERO, |d| d.0)
                    } else {
                        Duration::ZERO
                    },
                    event,
                    discover: name == DeviceEventName::Discover,
                });
                history.push(event.name());
            }
        }
        Some(out)
    }
}
