//! The dispatcher: one delivery in flight per ICCID, the rest queued behind it; each delivery
//! attempted until the receiver accepts or the callback's attempts are spent, with backoff.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Notify};
use tracing::warn;

use time::OffsetDateTime;

use super::log::{Attempt, DeliveryLog, DeliveryState};
use super::retry;
use super::transport::AttemptResult;
use super::transport::SharedTransport;
use super::MAX_IN_FLIGHT;
use crate::clock::es2_timestamp;
use crate::conformance::catalog::{CheckId, CALLBACK_ANSWER_WITHIN};
use crate::conformance::grade::Grade;
use crate::conformance::Conformance;
use crate::ids::IccidKey;
use crate::scenario::Callback;

/// One notification to deliver.
#[derive(Debug, Clone)]
pub(super) struct Job {
    /// The ICCID, for ordering.
    pub(super) key: IccidKey,
    /// Where and how.
    pub(super) callback: Arc<Callback>,
    /// The JSON body.
    pub(super) body: Bytes,
    /// `X-Admin-Protocol` to send.
    pub(super) admin_protocol: Arc<str>,
    /// Wait this long before the first attempt (fault rule).
    pub(super) delay: Option<Duration>,
    /// Deliver a second time after success (fault rule).
    pub(super) duplicate: bool,
    /// The delivery log record.
    pub(super) id: u64,
    /// The profile owner, whose endpoint it is.
    pub(super) operator: Arc<str>,
}

/// Jobs queued or in flight, so shutdown can wait for them.
#[derive(Debug, Default)]
pub(super) struct Outstanding {
    pub(super) count: AtomicUsize,
    pub(super) idle: Notify,
}

impl Outstanding {
    pub(super) fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// The dispatcher: keeps one delivery in flight per ICCID, the rest queued behind it.
pub(super) async fn dispatch(
    mut rx: mpsc::Receiver<Job>,
    transport: SharedTransport,
    log: Arc<DeliveryLog>,
    outstanding: Arc<Outstanding>,
) {
    let mut waiting: HashMap<IccidKey, VecDeque<Job>> = HashMap::new();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<IccidKey>();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    loop {
        tokio::select! {
            job = rx.recv() => {
                let Some(job) = job else { break };
                match waiting.get_mut(&job.key) {
                    // Something for this ICCID is in flight: wait behind it.
                    Some(queue) => queue.push_back(job),
                    None => {
                        waiting.insert(job.key, VecDeque::new());
                        spawn_delivery(job, &slots, &transport, &log, &outstanding, &done_tx);
                    }
                }
            }
            Some(key) = done_rx.recv() => {
                let next = waiting.get_mut(&key).and_then(VecDeque::pop_front);
                match next {
                    Some(job) => spawn_delivery(job, &slots, &transport, &log, &outstanding, &done_tx),
                    None => {
                        waiting.remove(&key);
                    }
                }
            }
        }
    }
}

fn spawn_delivery(
    job: Job,
    slots: &Arc<tokio::sync::Semaphore>,
    transport: &SharedTransport,
    log: &Arc<DeliveryLog>,
    outstanding: &Arc<Outstanding>,
    done: &mpsc::UnboundedSender<IccidKey>,
) {
    // Whatever happens to the task (even a panic), the ICCID's queue moves on and shutdown is
    // not kept waiting.
    let finished = Finished {
        key: job.key,
        outstanding: outstanding.clone(),
        done: done.clone(),
    };
    let (slots, transport, log) = (slots.clone(), transport.clone(), log.clone());
    tokio::spawn(async move {
        deliver(job, &slots, transport, &log).await;
        drop(finished);
    });
}

struct Finished {
    key: IccidKey,
    outstanding: Arc<Outstanding>,
    done: mpsc::UnboundedSender<IccidKey>,
}

impl Drop for Finished {
    fn drop(&mut self) {
        self.outstanding.done();
        let _ = self.done.send(self.key);
    }
}

/// Delivers one notification (twice for a `duplicate` fault) and records the outcome.
async fn deliver(
    job: Job,
    slots: &tokio::sync::Semaphore,
    transport: SharedTransport,
    log: &DeliveryLog,
) {
    if let Some(delay) = job.delay {
        tokio::time::sleep(delay).await;
    }
    let delivered = attempt_until_done(&job, slots, &transport, log).await;
    if delivered {
        log.counters.delivered.fetch_add(1, Ordering::Relaxed);
        log.update(job.id, |r| r.state = DeliveryState::Delivered);
        if job.duplicate {
            // The copy's fate does not change the record: the notification was delivered.
            attempt_until_done(&job, slots, &transport, log).await;
        }
    } else {
        log.counters.failed.fetch_add(1, Ordering::Relaxed);
        warn!(id = job.id, url = %job.callback.url, "notification failed after every attempt");
        log.update(job.id, |r| r.state = DeliveryState::Failed);
    }
}

/// Attempts until a receiver accepts or the callback's attempts are spent; true if accepted.
async fn attempt_until_done(
    job: &Job,
    slots: &tokio::sync::Semaphore,
    transport: &SharedTransport,
    log: &DeliveryLog,
) -> bool {
    let cb = &job.callback;
    for attempt in 1..=cb.max_attempts {
        let (at, started) = (es2_timestamp(OffsetDateTime::now_utc()), Instant::now());
        let result = {
            // A slot only for the attempt itself, not for the backoff: a dead callback must
            // not hold up everyone else's notifications.
            let _slot = slots.acquire().await;
            match tokio::time::timeout(
                cb.timeout,
                transport.post(cb, job.body.clone(), &job.admin_protocol),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {:?}", cb.timeout)),
            }
        };
        let latency = started.elapsed();
        let latency_ms = latency.as_millis() as u64;
        log.counters.attempts.fetch_add(1, Ordering::Relaxed);
        if let Some(conformance) = log.graded_by() {
            grade(conformance, job, &result, latency);
        }
        let (accepted, status, error) = match result.map(|a| a.status) {
            Ok(204) => (true, Some(204), None),
            Ok(s) if (200..300).contains(&s) && !cb.require_no_content => (
                true,
                Some(s),
                Some(format!("answered {s}; SGP.22 §6.3 expects 204")),
            ),
            Ok(s) => (false, Some(s), Some(format!("answered {s}"))),
            Err(e) => (false, None, Some(e)),
        };
        log.update(job.id, |r| {
            r.attempts.push(Attempt {
                at,
                status,
                error,
                latency_ms,
            });
        });
        if accepted {
            return true;
        }
        if attempt < cb.max_attempts {
            let jitter = crate::rng::unit(job.id.wrapping_mul(31).wrapping_add(u64::from(attempt)));
            tokio::time::sleep(retry::backoff(
                attempt,
                cb.initial_backoff,
                cb.max_backoff,
                jitter,
            ))
            .await;
        }
    }
    false
}

/// Grades one real delivery attempt against the callback checks it can tell (CB-001, CB-002,
/// CB-007): the operator's endpoint is graded by ordinary traffic, not only by the probe.
fn grade(conformance: &Conformance, job: &Job, result: &AttemptResult, latency: Duration) {
    let mut grades = Vec::with_capacity(3);
    match result {
        Ok(answer) => {
            grades.push(if answer.status == 204 {
                Grade::pass(CheckId::Cb001)
            } else {
                Grade::fail(CheckId::Cb001, format!("answered {}", answer.status))
            });
            if (200..300).contains(&answer.status) {
                grades.push(if answer.body_bytes == 0 {
                    Grade::pass(CheckId::Cb002)
                } else {
                    Grade::fail(
                        CheckId::Cb002,
                        format!("answered with a body of {} bytes", answer.body_bytes),
                    )
                });
            }
            grades.push(if latency <= CALLBACK_ANSWER_WITHIN {
                Grade::pass(CheckId::Cb007)
            } else {
                Grade::fail(
                    CheckId::Cb007,
                    format!("answered after {} ms", latency.as_millis()),
                )
            });
        }
        Err(e) if e.starts_with("no answer within") => grades.push(Grade::fail(
            CheckId::Cb007,
            format!("{e} (attempt timeout)"),
        )),
        // The endpoint could not be reached: that says nothing about how it answers.
        Err(_) => {}
    }
    if grades.is_empty() {
        return;
    }
    conformance.record(
        &grades,
        &crate::conformance::Context {
            time: crate::clock::es2_timestamp_shared(OffsetDateTime::now_utc()),
            operator: Some(job.operator.clone()),
            excerpt: format!("notification #{} to {}", job.id, job.callback.url),
            journal_seq: None,
        },
    );
}
