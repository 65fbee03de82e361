//! Conformance of operator clients (docs/conformance.md): every ES2+ request is graded against the
//! [`catalog`] as it arrives (refused TLS handshakes included); the operator's notification
//! endpoint is graded by an active [`probe`]. The report is JSON or JUnit XML.
//!
//! In the default lenient mode grading only observes. With `smdp.conformance: strict` every
//! failed error-severity check refuses the request: HTTP checks with 415/400, the others with
//! `Failed 1.3.1 / 2.1` naming the check, before anything changes.

pub mod catalog;
pub(crate) mod grade;
pub(crate) mod policy;
mod report;

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;

use crate::striped::Striped;

use serde::Serialize;

use catalog::{CheckId, CHECKS};
use grade::Grade;
pub(crate) use report::{CheckResult, Report, Summary};

/// Failures kept per check.
const FAILURES_KEPT: usize = 20;
/// Call identifiers remembered per process, for ENV-004; the memory is dropped when full.
const CALL_IDS_KEPT: usize = 100_000;

/// One failed check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    /// When (UTC).
    pub time: String,
    /// The operator, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// What was wrong.
    pub message: String,
    /// The start of the offending request (or the probe step).
    pub excerpt: String,
    /// The journal entry of the request, when it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal_seq: Option<u64>,
}

#[derive(Debug, Default, Clone)]
struct Stats {
    passed: u64,
    failed: u64,
    failures: VecDeque<Failure>,
}

/// Where a graded request came from.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// When (UTC).
    pub time: std::sync::Arc<str>,
    /// The operator.
    pub operator: Option<std::sync::Arc<str>>,
    /// The request, for the excerpt.
    pub excerpt: String,
    /// Its journal entry.
    pub journal_seq: Option<u64>,
}

/// The results so far.
#[derive(Debug, Default)]
pub struct Conformance {
    /// Passed and failed counts, indexed like [`catalog::CHECKS`] (empty until the first
    /// record), in stripes: every request adds to them.
    tallies: Striped<Vec<(u64, u64)>>,
    /// The failures kept, indexed like [`catalog::CHECKS`]: taken only when a check failed.
    stats: Mutex<Vec<Stats>>,
    /// Request fingerprints by a hash of (operator, functionCallIdentifier): a hash, not the
    /// strings, so grading a call allocates nothing (a 64-bit collision is not a practical risk).
    /// Striped by that hash.
    call_ids: Striped<HashMap<u64, u64, BuildHasherDefault<AlreadyHashed>>>,
    /// Keys `call_ids` with this process's random SipHash keys, so clients cannot choose call
    /// identifiers that collide in the table.
    call_id_keys: std::hash::RandomState,
}

/// The keys of `call_ids` are keyed SipHash values already; hashing them again is wasted work.
#[derive(Debug, Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; anything else still hashes correctly, if slowly.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Conformance {
    /// Adds graded outcomes.
    pub fn record(&self, outcomes: &[Grade], ctx: &Context) {
        {
            let mut tallies = self.tallies.mine();
            if tallies.is_empty() {
                tallies.resize(catalog::CHECKS.len(), (0, 0));
            }
            for o in outcomes {
                let Some(t) = tallies.get_mut(o.check as usize) else {
                    debug_assert!(false, "{} is not in the catalog", o.check);
                    continue;
                };
                if o.passed {
                    t.0 += 1;
                } else {
                    t.1 += 1;
                }
            }
        }
        if outcomes.iter().all(|o| o.passed) {
            return;
        }
        let mut stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        if stats.is_empty() {
            stats.resize_with(catalog::CHECKS.len(), Stats::default);
        }
        for o in outcomes.iter().filter(|o| !o.passed) {
            let Some(s) = stats.get_mut(o.check as usize) else {
                continue;
            };
            if s.failures.len() == FAILURES_KEPT {
                s.failures.pop_front();
            }
            s.failures.push_back(Failure {
                time: ctx.time.to_string(),
                operator: ctx.operator.as_deref().map(str::to_owned),
                // Messages quote what the client sent: kept bounded, like the excerpt.
                message: crate::journal::cut(&o.message, 300),
                excerpt: ctx.excerpt.chars().take(300).collect(),
                journal_seq: ctx.journal_seq,
            });
        }
    }

    /// ENV-004: the outcome for `call_id` of `operator` carrying a request with `fingerprint`.
    pub fn call_identifier(&self, operator: &str, call_id: &str, fingerprint: u64) -> Grade {
        use std::hash::BuildHasher;
        let key = self.call_id_keys.hash_one((operator, call_id));
        let mut seen = self.call_ids.of(key);
        if seen.len() >= CALL_IDS_KEPT / self.call_ids.len() {
            seen.clear();
        }
        match seen.insert(key, fingerprint) {
            Some(previous) if previous != fingerprint => Grade {
                check: CheckId::Env004,
                passed: false,
                message: format!(
                    "functionCallIdentifier {call_id:?} was used before for a different request"
                ),
            },
            _ => Grade {
                check: CheckId::Env004,
                passed: true,
                message: String::new(),
            },
        }
    }

    /// Forgets every result.
    pub fn reset(&self) {
        self.tallies.each(|t| t.clear());
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.call_ids.each(|seen| seen.clear());
    }

    /// The report: every check with its counts and kept failures.
    pub fn report(&self) -> Report {
        let mut counts = vec![(0u64, 0u64); CHECKS.len()];
        self.tallies.each(|t| {
            for (sum, part) in counts.iter_mut().zip(t.iter()) {
                sum.0 += part.0;
                sum.1 += part.1;
            }
        });
        let stats = self.stats.lock().unwrap_or_else(|e| e.into_inner());
        let checks: Vec<CheckResult> = CHECKS
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut s = stats.get(i).cloned().unwrap_or_default();
                (s.passed, s.failed) = counts[i];
                CheckResult {
                    check: *c,
                    result: if s.failed > 0 {
                        "failed"
                    } else if s.passed > 0 {
                        "passed"
                    } else {
                        "not-exercised"
                    },
                    passed: s.passed,
                    failed: s.failed,
                    failures: s.failures.into_iter().collect(),
                    note: (s.passed + s.failed == 0)
                        .then(|| c.id.exercised_by())
                        .flatten(),
                }
            })
            .collect();
        let count = |r: &str| checks.iter().filter(|c| c.result == r).count();
        Report {
            summary: Summary {
                checks: checks.len(),
                passed: count("passed"),
                failed: count("failed"),
                not_exercised: count("not-exercised"),
                failed_errors: checks
                    .iter()
                    .filter(|c| {
                        c.result == "failed" && c.check.severity == catalog::Severity::Error
                    })
                    .count(),
            },
            checks,
        }
    }
}
