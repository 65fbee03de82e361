//! Delivery of HandleDownloadProgressInfo notifications (SGP.22 §5.3.5) to operator callbacks.
//!
//! Never on the request path: [`Notifier::enqueue`] only puts a job on a bounded queue. A
//! background dispatcher delivers at least once and in order per ICCID: one delivery per ICCID
//! is in flight at a time, retried with exponential backoff and jitter up to the callback's
//! attempt limit, each attempt under a timeout. Every attempt is written to the
//! [`DeliveryLog`]; a delivery that exhausts its attempts is marked failed and stays visible,
//! and the next notification for that ICCID goes on. When the queue is full the new
//! notification is refused: marked dropped, counted and logged.

pub mod hdpi;
pub mod retry;
pub mod transport;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use time::OffsetDateTime;
use tokio::sync::{mpsc, Notify};
use tracing::{info, warn};

use crate::clock::es2_timestamp;
use crate::ids::IccidKey;
use crate::scenario::Callback;
use transport::SharedTransport;

/// Default bound of the notification queue.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default number of delivery records kept.
pub const DEFAULT_LOG_CAPACITY: usize = 10_000;
/// Deliveries in flight at once (across ICCIDs; one per ICCID at most).
pub const MAX_IN_FLIGHT: usize = 64;

/// One notification to deliver.
#[derive(Debug, Clone)]
pub struct Job {
    /// The ICCID, for ordering.
    pub key: IccidKey,
    /// Where and how.
    pub callback: Arc<Callback>,
    /// The JSON body.
    pub body: Bytes,
    /// `X-Admin-Protocol` to send.
    pub admin_protocol: Arc<str>,
    /// Wait this long before the first attempt (fault rule).
    pub delay: Option<Duration>,
    /// Deliver a second time after success (fault rule).
    pub duplicate: bool,
    /// The delivery log record.
    pub id: u64,
}

/// The state of a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Queued or being attempted.
    Pending,
    /// A receiver answered 2xx (204 when required).
    Delivered,
    /// Every attempt failed.
    Failed,
    /// Never attempted: the queue was full, or a fault rule dropped it.
    Dropped,
}

/// One attempt.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// When it started (UTC).
    pub at: String,
    /// The receiver's HTTP status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it failed, or a note (e.g. 200 where 204 is expected).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took.
    pub latency_ms: u64,
}

/// One notification and what became of it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// Sequence number.
    pub id: u64,
    /// The profile owner.
    pub operator: String,
    /// The ICCID, as in the body.
    pub iccid: String,
    /// notificationPointId.
    pub notification_point_id: u32,
    /// The callback URL.
    pub url: String,
    /// The body's functionCallIdentifier (the same on every retry).
    pub function_call_identifier: String,
    /// When it was queued.
    pub created: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Why it was dropped, when it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The attempts so far.
    pub attempts: Vec<Attempt>,
    /// The body.
    pub body: serde_json::Value,
}

/// Totals since start.
#[derive(Debug, Default)]
pub struct DeliveryCounters {
    /// Notifications queued.
    pub queued: AtomicU64,
    /// Delivered.
    pub delivered: AtomicU64,
    /// Failed after every attempt.
    pub failed: AtomicU64,
    /// Dropped because the queue was full.
    pub dropped_queue_full: AtomicU64,
    /// Dropped by a fault rule.
    pub dropped_by_fault: AtomicU64,
    /// Attempts made.
    pub attempts: AtomicU64,
}

/// A bounded log of deliveries: the oldest finished records go first when it is full.
#[derive(Debug)]
pub struct DeliveryLog {
    records: Mutex<VecDeque<DeliveryRecord>>,
    capacity: usize,
    changed: crate::change_signal::ChangeSignal,
    /// Totals.
    pub counters: DeliveryCounters,
}

impl DeliveryLog {
    fn new(capacity: usize) -> Self {
        DeliveryLog {
            records: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            changed: crate::change_signal::ChangeSignal::new(),
            counters: DeliveryCounters::default(),
        }
    }

    fn push(&self, record: DeliveryRecord) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        if records.len() >= self.capacity {
            // Prefer evicting a finished record; pending ones are still being worked on.
            match records
                .iter()
                .position(|r| r.state != DeliveryState::Pending)
            {
                Some(i) => {
                    records.remove(i);
                }
                None => {
                    records.pop_front();
                }
            }
        }
        // Ids are taken before records are pushed, so two pushes can race: keep the log sorted
        // by id (almost always this is the end) so `update` can find records.
        let at = records.partition_point(|r| r.id < record.id);
        records.insert(at, record);
        drop(records);
        self.changed.notify();
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut DeliveryRecord)) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        // Ids grow monotonically, so the log is sorted by id.
        if let Ok(i) = records.binary_search_by_key(&id, |r| r.id) {
            f(&mut records[i]);
        }
        drop(records);
        self.changed.notify();
    }

    /// Forgets every record (deliveries in flight go on, unrecorded).
    pub fn clear(&self) {
        self.records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The newest record's id (0 when the log is empty).
    pub fn last_id(&self) -> u64 {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.back().map_or(0, |r| r.id)
    }

    /// Copies of the records, oldest first.
    pub fn records(&self) -> Vec<DeliveryRecord> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records.iter().cloned().collect()
    }

    /// Waits until `done` holds for the records, or `timeout` passes; returns whether it held.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&[DeliveryRecord]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        self.changed
            .wait_until(deadline, || {
                let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
                done(records.make_contiguous()).then_some(())
            })
            .await
            .is_some()
    }
}

/// Handle to the dispatcher: cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    queue: mpsc::Sender<Job>,
    /// Most notifications held at once: queued, waiting behind their ICCID, or in flight.
    capacity: usize,
    log: Arc<DeliveryLog>,
    next_id: Arc<AtomicU64>,
    outstanding: Arc<Outstanding>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier").finish_non_exhaustive()
    }
}

/// Jobs queued or in flight, so shutdown can wait for them.
#[derive(Debug, Default)]
struct Outstanding {
    count: AtomicUsize,
    idle: Notify,
}

impl Outstanding {
    fn done(&self) {
        if self.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// A notification ready to queue.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The ICCID.
    pub key: IccidKey,
    /// The ICCID as written in the body.
    pub iccid: String,
    /// The profile owner.
    pub operator: String,
    /// notificationPointId.
    pub point_id: u32,
    /// The callback.
    pub callback: Arc<Callback>,
    /// The body.
    pub body: serde_json::Value,
    /// The body's functionCallIdentifier.
    pub call_id: String,
    /// `X-Admin-Protocol`.
    pub admin_protocol: Arc<str>,
    /// Fault rule: drop it.
    pub drop: bool,
    /// Fault rule: delay it.
    pub delay: Option<Duration>,
    /// Fault rule: deliver it twice.
    pub duplicate: bool,
}

impl Notifier {
    /// Starts the dispatcher on the current Tokio runtime (tests use this with paused time).
    pub fn start(transport: SharedTransport, queue_capacity: usize, log_capacity: usize) -> Self {
        let (notifier, rx) = Self::new(queue_capacity, log_capacity);
        tokio::spawn(dispatch(
            rx,
            transport,
            notifier.log.clone(),
            notifier.outstanding.clone(),
        ));
        notifier
    }

    /// Starts the dispatcher on a runtime of its own, on one thread, so that a burst of
    /// notifications can take at most one core from the ES2+ listener.
    pub fn start_dedicated(
        transport: SharedTransport,
        queue_capacity: usize,
        log_capacity: usize,
    ) -> std::io::Result<Self> {
        let (notifier, rx) = Self::new(queue_capacity, log_capacity);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (log, outstanding) = (notifier.log.clone(), notifier.outstanding.clone());
        std::thread::Builder::new()
            .name("smdpp-notify".into())
            .spawn(move || runtime.block_on(dispatch(rx, transport, log, outstanding)))?;
        Ok(notifier)
    }

    fn new(queue_capacity: usize, log_capacity: usize) -> (Self, mpsc::Receiver<Job>) {
        let (tx, rx) = mpsc::channel(queue_capacity.max(1));
        let notifier = Notifier {
            queue: tx,
            capacity: queue_capacity.max(1),
            log: Arc::new(DeliveryLog::new(log_capacity)),
            next_id: Arc::new(AtomicU64::new(1)),
            outstanding: Arc::default(),
        };
        (notifier, rx)
    }

    /// Notifications held now: queued, waiting behind their ICCID, or being retried.
    pub fn depth(&self) -> usize {
        self.outstanding.count.load(Ordering::Acquire)
    }

    /// The delivery log.
    pub fn log(&self) -> &Arc<DeliveryLog> {
        &self.log
    }

    /// Continues delivery ids after `last_id` (a restart from a state file).
    pub fn continue_after(&self, last_id: u64) {
        self.next_id
            .fetch_max(last_id.saturating_add(1), Ordering::Relaxed);
    }

    /// The next delivery id that [`Notifier::next_id`] will hand out.
    pub fn peek_next_id(&self) -> u64 {
        self.next_id.load(Ordering::Relaxed)
    }

    /// A fresh delivery id, also usable in functionCallIdentifiers.
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Queues a notification; never waits. Returns its delivery id.
    pub fn enqueue(&self, id: u64, n: Outgoing, now: OffsetDateTime) -> u64 {
        let body = Bytes::from(serde_json::to_vec(&n.body).unwrap_or_default());
        let mut record = DeliveryRecord {
            id,
            operator: n.operator.clone(),
            iccid: n.iccid.clone(),
            notification_point_id: n.point_id,
            url: n.callback.url.clone(),
            function_call_identifier: n.call_id.clone(),
            created: es2_timestamp(now),
            state: DeliveryState::Pending,
            reason: None,
            attempts: Vec::new(),
            body: n.body,
        };
        self.log.counters.queued.fetch_add(1, Ordering::Relaxed);
        if n.drop {
            record.state = DeliveryState::Dropped;
            record.reason = Some("dropped by a fault rule".into());
            self.log
                .counters
                .dropped_by_fault
                .fetch_add(1, Ordering::Relaxed);
            info!(id, iccid = %n.iccid, point = n.point_id, "notification dropped by a fault rule");
            self.log.push(record);
            return id;
        }
        self.log.push(record);
        if self.outstanding.count.load(Ordering::Acquire) >= self.capacity {
            self.refuse(id, &n.iccid, n.point_id, "notification queue full");
            return id;
        }
        let job = Job {
            key: n.key,
            callback: n.callback,
            body,
            admin_protocol: n.admin_protocol,
            delay: n.delay,
            duplicate: n.duplicate,
            id,
        };
        self.outstanding.count.fetch_add(1, Ordering::AcqRel);
        if let Err(e) = self.queue.try_send(job) {
            self.outstanding.done();
            let reason = match e {
                mpsc::error::TrySendError::Full(_) => "notification queue full",
                mpsc::error::TrySendError::Closed(_) => "notification dispatcher stopped",
            };
            self.refuse(id, &n.iccid, n.point_id, reason);
        }
        id
    }

    fn refuse(&self, id: u64, iccid: &str, point: u32, reason: &'static str) {
        self.log
            .counters
            .dropped_queue_full
            .fetch_add(1, Ordering::Relaxed);
        warn!(id, iccid, point, reason, "notification dropped");
        self.log.update(id, |r| {
            r.state = DeliveryState::Dropped;
            r.reason = Some(reason.into());
        });
    }

    /// Waits until every queued notification is delivered or failed, for at most `deadline`.
    /// Returns how many were still outstanding.
    pub async fn drain(&self, deadline: Duration) -> usize {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let idle = self.outstanding.idle.notified();
            tokio::pin!(idle);
            idle.as_mut().enable();
            let left = self.outstanding.count.load(Ordering::Acquire);
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(until, idle).await.is_err() {
                return self.outstanding.count.load(Ordering::Acquire);
            }
        }
    }
}

/// The dispatcher: keeps one delivery in flight per ICCID, the rest queued behind it.
async fn dispatch(
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
        let latency_ms = started.elapsed().as_millis() as u64;
        log.counters.attempts.fetch_add(1, Ordering::Relaxed);
        let (accepted, status, error) = match result {
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

#[cfg(test)]
mod tests;
