//! The `faults` section: what each rule matches and what it does.

use std::collections::HashMap;

use crate::ids::{Eid, Iccid, IccidKey};
use crate::scenario::load::Loaded;
use crate::scenario::{FaultSpec, FaultTarget, Operator, ProfileType};
use crate::sgp22::{status_code_by_name, Es9Function, Function};

use super::Checker;

impl Checker<'_> {
    pub(super) fn faults(
        &mut self,
        loaded: &Loaded,
        operators: &[Operator],
        types: &[ProfileType],
        inventory: &HashMap<IccidKey, u32>,
    ) -> Vec<FaultSpec> {
        let mut out = Vec::new();
        let mut index = 0;
        for (src, f, _) in &loaded.files {
            for rule in &f.faults {
                let r = &rule.value;
                let name = r.name.clone().unwrap_or_else(|| format!("faults[{index}]"));
                index += 1;
                let m = &r.matches;
                let mut ok = true;
                let es9 = r.target == FaultTarget::Es9;
                let es9_function = match (&m.function, es9) {
                    (Some(t), true) => {
                        let f = Es9Function::ALL
                            .into_iter()
                            .find(|f| f.path_segment() == t.value || f.name() == t.value);
                        if f.is_none() {
                            self.at(
                                *src,
                                &t.referenced,
                                format!(
                                    "unknown ES9+ function {:?}; expected one of initiateAuthentication, authenticateClient, getBoundProfilePackage, handleNotification, cancelSession",
                                    t.value
                                ),
                            );
                            ok = false;
                        }
                        f
                    }
                    _ => None,
                };
                let function = match m.function.as_ref().filter(|_| !es9) {
                    Some(t) => {
                        let f = Function::ALL
                            .into_iter()
                            .find(|f| f.path_segment() == t.value || f.name() == t.value);
                        if f.is_none() {
                            self.at(
                                *src,
                                &t.referenced,
                                format!(
                                    "unknown function {:?}; expected one of downloadOrder, confirmOrder, cancelOrder, releaseProfile",
                                    t.value
                                ),
                            );
                            ok = false;
                        }
                        f
                    }
                    None => None,
                };
                let iccid = match &m.iccid {
                    Some(t) => {
                        let parsed = self.parse::<Iccid>(*src, t).map(|i| i.key());
                        if parsed.is_some_and(|k| !inventory.contains_key(&k)) {
                            self.at(
                                *src,
                                &t.referenced,
                                format!("ICCID {} is not in the inventory", t.value),
                            );
                            ok = false;
                        }
                        ok &= parsed.is_some();
                        parsed
                    }
                    None => None,
                };
                let eid = match &m.eid {
                    Some(t) => {
                        let parsed = self.parse::<Eid>(*src, t);
                        ok &= parsed.is_some();
                        parsed
                    }
                    None => None,
                };
                let profile_type = match &m.profile_type {
                    Some(t) => {
                        let known = self.known_type(*src, t, types);
                        ok &= known.is_some();
                        known
                    }
                    None => None,
                };
                let operator = match &m.operator {
                    Some(o) => {
                        let known = self.known_operator(*src, o, operators);
                        ok &= known.is_some();
                        known
                    }
                    None => None,
                };
                let error = match &r.error {
                    Some(text) => match status_code_by_name(&text.value) {
                        Some(code) => Some((
                            code,
                            r.message
                                .clone()
                                .unwrap_or_else(|| format!("injected fault ({name})")),
                        )),
                        None => {
                            self.at(
                                *src,
                                &text.referenced,
                                format!(
                                    "unknown status {:?}: use a catalog name such as iccid-unknown or profile-type-unavailable, or subject/reason such as 8.2.1/3.3",
                                    text.value
                                ),
                            );
                            ok = false;
                            None
                        }
                    },
                    None => None,
                };
                let notification = r.target == FaultTarget::Notification;
                let mut misplaced = Vec::new();
                if notification {
                    for (given, key) in [
                        (r.error.is_some(), "error"),
                        (r.close, "close"),
                        (m.function.is_some(), "match.function"),
                    ] {
                        if given {
                            misplaced.push(key);
                        }
                    }
                } else {
                    for (given, key) in [
                        (r.drop, "drop"),
                        (r.duplicate, "duplicate"),
                        (m.notification_point.is_some(), "match.notificationPoint"),
                    ] {
                        if given {
                            misplaced.push(key);
                        }
                    }
                }
                if !misplaced.is_empty() {
                    let target = if notification {
                        "notification"
                    } else if es9 {
                        "es9"
                    } else {
                        "es2"
                    };
                    self.at(
                        *src,
                        &rule.referenced,
                        format!(
                            "fault {name:?}: {} cannot be used with target {target}",
                            misplaced.join(", ")
                        ),
                    );
                    ok = false;
                }
                let acts = if notification {
                    r.drop || r.duplicate || r.delay.is_some()
                } else {
                    r.error.is_some() || r.delay.is_some() || r.close
                };
                if !acts {
                    let what = if notification {
                        "`drop`, `duplicate` or `delay`"
                    } else {
                        "`error`, `delay` or `close`"
                    };
                    self.at(
                        *src,
                        &rule.referenced,
                        format!("fault {name:?} does nothing: give {what}"),
                    );
                    ok = false;
                }
                if r.error.is_some() && r.close {
                    self.at(
                        *src,
                        &rule.referenced,
                        format!("fault {name:?}: `error` and `close` exclude each other"),
                    );
                    ok = false;
                }
                if let Some(p) = r.probability {
                    if !(0.0..=1.0).contains(&p) {
                        self.at(
                            *src,
                            &rule.referenced,
                            format!("fault {name:?}: probability {p} is not between 0 and 1"),
                        );
                        ok = false;
                    }
                }
                if r.times == Some(0) {
                    self.at(
                        *src,
                        &rule.referenced,
                        format!("fault {name:?}: `times` must be at least 1"),
                    );
                    ok = false;
                }
                if ok {
                    out.push(FaultSpec {
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
                    });
                }
            }
        }
        out
    }
}
