//! Fault injection at run time: which scenario fault rule fires for an ES2+ call, an ES9+ call
//! or a notification. Rules know status codes, not the engines' error types: each engine builds
//! its answer.
//!
//! Rules are tried in order; the first whose matchers all hold, whose probability draw passes
//! and whose `times` budget is not spent fires. Draws come from SplitMix64 over a per-rule
//! counter, so a seed gives the same sequence on every run.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::ids::{Eid, IccidKey};
use crate::profile::machine::NotificationPoint;
use crate::scenario::{FaultSpec, FaultTarget};
use crate::sgp22::{Es9Function, Function, StatusCode};

/// What is known about an ES2+ call when faults are considered.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    /// The function.
    pub function: Function,
    /// The calling operator's id.
    pub operator: &'a str,
    /// The ICCID the request names.
    pub iccid: Option<IccidKey>,
    /// The EID the request names, or that the named order has.
    pub eid: Option<Eid>,
    /// The profile type the request names, or of the named ICCID.
    pub profile_type: Option<&'a str>,
}

/// What is known about an ES9+ call when faults are considered: the function, and the order
/// of its session once one is known.
#[derive(Debug, Clone, Copy)]
pub struct Es9Facts<'a> {
    /// The function.
    pub function: Es9Function,
    /// The owner of the session's order.
    pub operator: Option<&'a str>,
    /// The session's order.
    pub iccid: Option<IccidKey>,
    /// The session's eUICC.
    pub eid: Option<Eid>,
    /// The profile type of the session's order.
    pub profile_type: Option<&'a str>,
}

/// What a fired rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultAction {
    /// The rule's name.
    pub name: String,
    /// Answer `Failed` with this code and message instead of running the function.
    pub error: Option<(StatusCode, String)>,
    /// Wait this long before answering.
    pub delay: Option<Duration>,
    /// Close the connection without answering; the function is not run.
    pub close: bool,
    /// Notifications: never deliver.
    pub drop: bool,
    /// Notifications: deliver twice.
    pub duplicate: bool,
}

/// What is known about a notification when faults are considered.
#[derive(Debug, Clone, Copy)]
pub struct NotificationFacts<'a> {
    /// The profile owner.
    pub operator: &'a str,
    /// The profile.
    pub iccid: IccidKey,
    /// The order's EID.
    pub eid: Option<Eid>,
    /// The profile type.
    pub profile_type: &'a str,
    /// The point.
    pub point: NotificationPoint,
}

/// The fault rules of a running scenario with their counters.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Vec<Rule>,
}

#[derive(Debug)]
struct Rule {
    spec: FaultSpec,
    fired: AtomicU32,
    draws: AtomicU64,
}

impl Faults {
    /// Fresh counters for `specs`.
    pub fn new(specs: &[FaultSpec]) -> Self {
        Faults {
            rules: specs
                .iter()
                .map(|spec| Rule {
                    spec: spec.clone(),
                    fired: AtomicU32::new(0),
                    draws: AtomicU64::new(0),
                })
                .collect(),
        }
    }

    /// Whether there are no rules at all (the common case: nothing to compute per call).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The action of the first ES2+ rule that fires for `call`, if any.
    pub fn check(&self, call: &CallFacts<'_>) -> Option<FaultAction> {
        self.rules
            .iter()
            .filter(|r| r.spec.target == FaultTarget::Es2)
            .find_map(|rule| rule.fire(Some(call.function), call))
    }

    /// The action of the first ES9+ rule that fires for `call`, if any.
    pub fn check_es9(&self, call: &Es9Facts<'_>) -> Option<FaultAction> {
        let facts = CallFacts {
            function: Function::DownloadOrder, // ignored: ES9+ rules match `es9_function`
            operator: call.operator.unwrap_or(""),
            iccid: call.iccid,
            eid: call.eid,
            profile_type: call.profile_type,
        };
        self.rules
            .iter()
            .filter(|r| r.spec.target == FaultTarget::Es9)
            .filter(|r| r.spec.es9_function.is_none_or(|f| f == call.function))
            .filter(|r| r.spec.operator.is_none() || call.operator.is_some())
            .find_map(|rule| rule.fire(None, &facts))
    }

    /// The action of the first notification rule that fires for `n`, if any.
    pub fn check_notification(&self, n: &NotificationFacts<'_>) -> Option<FaultAction> {
        let facts = CallFacts {
            function: Function::DownloadOrder, // ignored: notification rules name no function
            operator: n.operator,
            iccid: Some(n.iccid),
            eid: n.eid,
            profile_type: Some(n.profile_type),
        };
        self.rules
            .iter()
            .filter(|r| r.spec.target == FaultTarget::Notification)
            .filter(|r| r.spec.point.is_none_or(|p| p == n.point))
            .find_map(|rule| rule.fire(None, &facts))
    }

    /// How often each rule fired, by name.
    pub fn fired(&self) -> Vec<(String, u32)> {
        self.rules
            .iter()
            .map(|r| (r.spec.name.clone(), r.fired.load(Ordering::Relaxed)))
            .collect()
    }
}

impl Rule {
    fn fire(&self, function: Option<Function>, call: &CallFacts<'_>) -> Option<FaultAction> {
        let s = &self.spec;
        let matches = s.function.is_none_or(|f| Some(f) == function)
            && s.operator.as_deref().is_none_or(|o| o == call.operator)
            && s.iccid.is_none_or(|i| Some(i) == call.iccid)
            && s.eid.is_none_or(|e| Some(e) == call.eid)
            && s.profile_type
                .as_deref()
                .is_none_or(|t| Some(t) == call.profile_type);
        if !matches {
            return None;
        }
        if let Some(p) = s.probability {
            let n = self.draws.fetch_add(1, Ordering::Relaxed);
            let draw = crate::rng::unit(s.seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            if draw >= p {
                return None;
            }
        }
        let budget = s.times.unwrap_or(u32::MAX);
        self.fired
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < budget).then_some(n + 1)
            })
            .ok()?;
        Some(FaultAction {
            name: s.name.clone(),
            error: s.error.clone(),
            delay: s.delay,
            close: s.close,
            drop: s.drop,
            duplicate: s.duplicate,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sgp22::PROFILE_TYPE_UNAVAILABLE;

    fn spec() -> FaultSpec {
        FaultSpec {
            name: "t".into(),
            target: FaultTarget::Es2,
            point: None,
            drop: false,
            duplicate: false,
            function: Some(Function::DownloadOrder),
            es9_function: None,
            iccid: None,
            eid: None,
            profile_type: Some("A".into()),
            operator: None,
            error: Some((PROFILE_TYPE_UNAVAILABLE, "x".into())),
            delay: None,
            close: false,
            times: Some(2),
            probability: None,
            seed: 0,
        }
    }

    fn call(ty: &str) -> CallFacts<'_> {
        CallFacts {
            function: Function::DownloadOrder,
            operator: "op",
            iccid: None,
            eid: None,
            profile_type: Some(ty),
        }
    }

    #[test]
    fn times_and_matchers() {
        let faults = Faults::new(&[spec()]);
        assert!(faults.check(&call("B")).is_none());
        assert!(faults.check(&call("A")).is_some());
        assert!(faults.check(&call("A")).is_some());
        assert!(faults.check(&call("A")).is_none(), "budget of 2 spent");
        assert_eq!(faults.fired(), vec![("t".to_string(), 2)]);
    }

    #[test]
    fn probability_is_seeded_and_roughly_right() {
        let mut s = spec();
        s.times = None;
        s.probability = Some(0.25);
        s.seed = 42;
        let run = || {
            let f = Faults::new(std::slice::from_ref(&s));
            (0..4000)
                .map(|_| f.check(&call("A")).is_some())
                .collect::<Vec<_>>()
        };
        let (a, b) = (run(), run());
        assert_eq!(a, b, "same seed, same sequence");
        let hits = a.iter().filter(|h| **h).count();
        assert!((800..1200).contains(&hits), "{hits} of 4000 at p=0.25");
    }
}
