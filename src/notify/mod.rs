//! Delivery of HandleDownloadProgressInfo notifications (SGP.22 §5.3.5) to operator callbacks.
//!
//! Never on the request path: [`Notifier::enqueue`] only puts a job on a bounded queue. A
//! background dispatcher delivers at least once and in order per ICCID: one delivery per ICCID
//! is in flight at a time, retried with exponential backoff and jitter up to the callback's
//! attempt limit, each attempt under a timeout. Every attempt is written to the
//! [`DeliveryLog`]; a delivery that exhausts its attempts is marked failed and stays visible,
//! and the next notification for that ICCID goes on. When the queue is full the new
//! notification is refused: marked dropped, counted and logged.

pub(crate) mod compose;
mod dispatch;
mod log;
pub(crate) mod retry;
pub mod transport;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::clock::es2_timestamp;
use crate::ids::IccidKey;
use crate::scenario::Callback;
use dispatch::{dispatch, Job, Outstanding};
use transport::SharedTransport;

pub use log::{Attempt, DeliveryCounters, DeliveryLog, DeliveryRecord, DeliveryState};

/// Default bound of the notification queue.
pub(crate) const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Default number of delivery records kept.
pub(crate) const DEFAULT_LOG_CAPACITY: usize = 10_000;
/// Deliveries in flight at once (across ICCIDs; one per ICCID at most).
pub(crate) const MAX_IN_FLIGHT: usize = 64;

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

    /// Grades every delivery attempt from now on in `conformance` (the callback checks real
    /// traffic can tell).
    pub fn grade_into(&self, conformance: Arc<crate::conformance::Conformance>) {
        self.log.grade_into(conformance);
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
            point: compose::point_name(n.point_id, &n.callback.format),
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
            operator: n.operator.as_str().into(),
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

#[cfg(test)]
mod tests;
