//! The delivery log: every notification and each of its attempts, bounded in records (the
//! oldest finished ones go first), with totals since start and long-polls on it.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

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
    /// What the point means: `BPP download`, `local enable`…
    pub point: &'static str,
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
    /// Where delivery attempts are graded, once an application has said so.
    graded_by: std::sync::OnceLock<std::sync::Arc<crate::conformance::Conformance>>,
}

impl DeliveryLog {
    pub(super) fn new(capacity: usize) -> Self {
        DeliveryLog {
            records: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            changed: crate::change_signal::ChangeSignal::new(),
            counters: DeliveryCounters::default(),
            graded_by: std::sync::OnceLock::new(),
        }
    }

    /// Grades every attempt from now on in `conformance` (set once; later calls change
    /// nothing).
    pub(super) fn grade_into(&self, conformance: std::sync::Arc<crate::conformance::Conformance>) {
        let _ = self.graded_by.set(conformance);
    }

    /// Where attempts are graded, if anywhere.
    pub(super) fn graded_by(&self) -> Option<&crate::conformance::Conformance> {
        self.graded_by.get().map(|c| &**c)
    }

    pub(super) fn push(&self, record: DeliveryRecord) {
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

    pub(super) fn update(&self, id: u64, f: impl FnOnce(&mut DeliveryRecord)) {
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
