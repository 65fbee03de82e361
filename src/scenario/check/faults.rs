//! The `faults` section: what each rule matches and what it does.

use std::collections::HashMap;

use serde_saphyr::Spanned;

use crate::ids::{Eid, Iccid, IccidKey};
use crate::scenario::file::FaultRule;
use crate::scenario::load::Loaded;
use crate::scenario::{FaultSpec, FaultTarget, Operator, ProfileType};
use crate::sgp22::{status_code_by_name, Es9Function, Function, StatusCode};

use super::Checker;

/// What the rules' match keys may name: the scenario's operators, profile types and inventory.
struct Known<'a> {
    operators: &'a [Operator],
    types: &'a [ProfileType],
    inventory: &'a HashMap<IccidKey, u32>,
}

/// Checks an optional key with `check`, which reports what is wrong with a given value: an
/// absent key stays absent, a given one that fails the check clears `ok`.
fn checked<T, U>(
    given: Option<&T>,
    ok: &mut bool,
    check: impl FnOnce(&T) -> Option<U>,
) -> Option<U> {
    let value = check(given?);
    *ok &= value.is_some();
    value
}

impl Checker<'_> {
    /// The fault rules of every file, in order, named `faults[i]` when they have no name; a
    /// rule with a problem is reported and left out.
    pub(super) fn faults(
        &mut self,
        loaded: &Loaded,
        operators: &[Operator],
        types: &[ProfileType],
        inventory: &HashMap<IccidKey, u32>,
    ) -> Vec<FaultSpec> {
        let known = Known {
            operators,
            types,
            inventory,
        };
        let mut out = Vec::new();
        let mut index = 0;
        for (src, f, _) in &loaded.files {
            for rule in &f.faults {
                let name = rule
                    .value
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("faults[{index}]"));
                index += 1;
                out.extend(self.fault(*src, rule, name, &known));
            }
        }
        out
    }

    /// One rule, with every problem reported (all of them, not only the first); `None` when
    /// there is any.
    fn fault(
        &mut self,
        src: usize,
        rule: &Spanned<FaultRule>,
        name: String,
        known: &Known,
    ) -> Option<FaultSpec> {
        let r = &rule.value;
        let m = &r.matches;
        let mut ok = true;
        let es9 = r.target == FaultTarget::Es9;
        let es9_function = checked(m.function.as_ref().filter(|_| es9), &mut ok, |t| {
            self.es9_function(src, t)
        });
        let function = checked(m.function.as_ref().filter(|_| !es9), &mut ok, |t| {
            self.es2_function(src, t)
        });
        let iccid = checked(m.iccid.as_ref(), &mut ok, |t| {
            self.inventory_iccid(src, t, known.inventory)
        });
        let eid = checked(m.eid.as_ref(), &mut ok, |t| self.parse::<Eid>(src, t));
        let profile_type = checked(m.profile_type.as_ref(), &mut ok, |t| {
            self.known_type(src, t, known.types)
        });
        let operator = checked(m.operator.as_ref(), &mut ok, |o| {
            self.known_operator(src, o, known.operators)
        });
        let error = checked(r.error.as_ref(), &mut ok, |text| {
            let code = self.status(src, text)?;
            let message = r
                .message
                .clone()
                .unwrap_or_else(|| format!("injected fault ({name})"));
            Some((code, message))
        });
        for problem in rule_problems(r, &name) {
            self.at(src, &rule.referenced, problem);
            ok = false;
        }
        ok.then(|| FaultSpec {
            name,
            target: r.target,
            point: m.notification_point.as_ref().map(|p| p.value),
            drop: r.drop,
            duplicate: r.duplicate,
            function,
            es9_function,
            iccid,
            eid,
            profile_type,
            operator,
            error,
            delay: r.delay.map(|d| d.0),
            close: r.close,
            times: r.times,
            probability: r.probability,
            seed: r.seed.unwrap_or(0),
        })
    }

    /// `match.function` of an `es9` rule: an ES9+ function by path segment or name.
    fn es9_function(&mut self, src: usize, t: &Spanned<String>) -> Option<Es9Function> {
        let f = Es9Function::ALL
            .into_iter()
            .find(|f| f.path_segment() == t.value || f.name() == t.value);
        self.found(src, t, f, || format!(
            "unknown ES9+ function {:?}; expected one of initiateAuthentication, authenticateClient, getBoundProfilePackage, handleNotification, cancelSession",
            t.value
        ))
    }

    /// `match.function` of any other rule: an ES2+ function by path segment or name.
    fn es2_function(&mut self, src: usize, t: &Spanned<String>) -> Option<Function> {
        let f = Function::ALL
            .into_iter()
            .find(|f| f.path_segment() == t.value || f.name() == t.value);
        self.found(src, t, f, || format!(
            "unknown function {:?}; expected one of downloadOrder, confirmOrder, cancelOrder, releaseProfile",
            t.value
        ))
    }

    /// What a lookup of `t` found, with `unknown` reported at `t` when it found nothing.
    fn found<T>(
        &mut self,
        src: usize,
        t: &Spanned<String>,
        found: Option<T>,
        unknown: impl FnOnce() -> String,
    ) -> Option<T> {
        if found.is_none() {
            self.at(src, &t.referenced, unknown());
        }
        found
    }

    /// `match.iccid`: an ICCID, and one of the inventory's (a rule for an ICCID that cannot
    /// occur is a mistake).
    fn inventory_iccid(
        &mut self,
        src: usize,
        t: &Spanned<String>,
        inventory: &HashMap<IccidKey, u32>,
    ) -> Option<IccidKey> {
        let parsed = self.parse::<Iccid>(src, t).map(|i| i.key());
        if parsed.is_some_and(|k| !inventory.contains_key(&k)) {
            self.at(
                src,
                &t.referenced,
                format!("ICCID {} is not in the inventory", t.value),
            );
            return None;
        }
        parsed
    }

    /// `error`: a catalog name or subject/reason codes.
    fn status(&mut self, src: usize, text: &Spanned<String>) -> Option<StatusCode> {
        let code = status_code_by_name(&text.value);
        self.found(src, text, code, || format!(
            "unknown status {:?}: use a catalog name such as iccid-unknown or profile-type-unavailable, or subject/reason such as 8.2.1/3.3",
            text.value
        ))
    }
}

/// What is wrong with the rule as a whole, in the order reported: keys that do not fit its
/// target, no action, actions that exclude each other, and out-of-range numbers.
fn rule_problems(r: &FaultRule, name: &str) -> Vec<String> {
    let mut problems = Vec::new();
    let notification = r.target == FaultTarget::Notification;
    let m = &r.matches;
    let (misplaced, target) = if notification {
        let keys = [
            (r.error.is_some(), "error"),
            (r.close, "close"),
            (m.function.is_some(), "match.function"),
        ];
        (keys, "notification")
    } else {
        let keys = [
            (r.drop, "drop"),
            (r.duplicate, "duplicate"),
            (m.notification_point.is_some(), "match.notificationPoint"),
        ];
        (
            keys,
            if r.target == FaultTarget::Es9 {
                "es9"
            } else {
                "es2"
            },
        )
    };
    let misplaced: Vec<&str> = misplaced
        .into_iter()
        .filter_map(|(given, key)| given.then_some(key))
        .collect();
    if !misplaced.is_empty() {
        problems.push(format!(
            "fault {name:?}: {} cannot be used with target {target}",
            misplaced.join(", ")
        ));
    }
    let (acts, what) = if notification {
        (
            r.drop || r.duplicate || r.delay.is_some(),
            "`drop`, `duplicate` or `delay`",
        )
    } else {
        (
            r.error.is_some() || r.delay.is_some() || r.close,
            "`error`, `delay` or `close`",
        )
    };
    if !acts {
        problems.push(format!("fault {name:?} does nothing: give {what}"));
    }
    if r.error.is_some() && r.close {
        problems.push(format!(
            "fault {name:?}: `error` and `close` exclude each other"
        ));
    }
    if let Some(p) = r.probability.filter(|p| !(0.0..=1.0).contains(p)) {
        problems.push(format!(
            "fault {name:?}: probability {p} is not between 0 and 1"
        ));
    }
    if r.times == Some(0) {
        problems.push(format!("fault {name:?}: `times` must be at least 1"));
    }
    problems
}
