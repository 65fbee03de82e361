//! The request journal: the calls the mock received, for tests to inspect (`GET
//! /admin/journal`) and wait on (`GET /admin/wait`). One bounded ring per protocol, numbered in
//! one sequence: memory stays flat under any load (the oldest entries of a protocol go first),
//! and anonymous ES9+ traffic cannot push an operator's ES2+ calls out.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

/// Default number of entries kept per protocol.
pub const DEFAULT_JOURNAL_CAPACITY: usize = 10_000;

/// The interface a call came on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, schemars::JsonSchema,
)]
pub enum Protocol {
    /// ES2+, the operator's interface (mutual TLS).
    #[serde(rename = "ES2+")]
    Es2,
    /// ES9+, the LPA's interface (server-only TLS: anyone who reaches the port).
    #[serde(rename = "ES9+")]
    Es9,
    /// ES11, the LPA's interface to the SM-DS (server-only TLS; journaled with ES9+'s calls).
    #[serde(rename = "ES11")]
    Es11,
    /// ES12, the SM-DP+'s interface to the SM-DS (mutual TLS; journaled with ES2+'s calls).
    #[serde(rename = "ES12")]
    Es12,
}

/// One call.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Sequence number, from 1, never reused (one sequence for every protocol).
    pub seq: u64,
    /// The interface it came on.
    pub protocol: Protocol,
    /// When it arrived (UTC, `YYYY-MM-DDThh:mm:ssZ`; shared by the calls of one second).
    pub time: Arc<str>,
    /// The operator the client certificate maps to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operator: Option<Arc<str>>,
    /// The client certificate's subject (shared by every call on the connection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub certificate_subject: Option<Arc<str>>,
    /// The client's address (shared by every call on the connection).
    pub source_ip: Arc<str>,
    /// The function (`DownloadOrder`…).
    pub function: &'static str,
    /// `header.functionCallIdentifier`, when the header was well-formed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call_identifier: Option<String>,
    /// The ICCID the call named or got.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iccid: Option<String>,
    /// The HTTP status of the answer.
    pub http_status: u16,
    /// `Executed-Success` / `Failed`, for ES2+ answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// `subjectCode/reasonCode` of a `Failed` answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_code: Option<String>,
    /// The fault rule that fired, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The request body (shown as JSON when it is JSON).
    pub request: BodyText,
    /// The response body.
    pub response: BodyText,
    /// Time spent answering, in microseconds.
    pub elapsed_us: u64,
    /// Set when the client went away: before its request was complete (nothing was done) or
    /// after the call was carried out but before the answer was sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_disconnected: Option<Disconnect>,
}

/// When a client disconnected from an ES2+ call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Disconnect {
    /// While sending its request: the call was not carried out.
    RequestIncomplete,
    /// After the call was carried out, before the answer was sent (a fault delay was running):
    /// the state changed, the client never learnt it.
    AnswerNotSent,
}

/// Longest client-supplied identifier kept or logged whole (an ICCID has 20 characters, a
/// MatchingID at most 128; a `functionCallIdentifier` has no limit of its own).
pub(crate) const IDENTIFIER_LIMIT: usize = 160;

/// `text` cut to `max` characters, marked with `…` when it was longer: every client-supplied
/// string the mock keeps or logs goes through here, so memory is bounded by bytes.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((end, _)) => format!("{}… ({} bytes in all)", &text[..end], text.len()),
    }
}

/// Bodies are kept up to this size; a longer one is kept cut, as text.
pub(crate) const BODY_LIMIT: usize = 8 * 1024;

/// A body kept as text, so the journal's memory is bounded by bytes, not by what a parser
/// makes of them; it is shown as JSON when it is JSON. Always valid UTF-8.
#[derive(Debug, Clone, Default)]
pub struct BodyText(Bytes);

impl BodyText {
    /// A copy of the body, cut at 8 KiB.
    pub fn new(bytes: &[u8]) -> Self {
        if bytes.len() <= BODY_LIMIT {
            // Checked first the fast way: bodies are almost always valid UTF-8, and the lossy
            // path walks them chunk by chunk.
            return BodyText(match std::str::from_utf8(bytes) {
                Ok(_) => arena_copy(bytes),
                Err(_) => arena_copy(String::from_utf8_lossy(bytes).as_bytes()),
            });
        }
        let cut = String::from_utf8_lossy(&bytes[..BODY_LIMIT]);
        BodyText(arena_copy(
            format!("{cut}… ({} bytes in all)", bytes.len()).as_bytes(),
        ))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        // Every constructor keeps it UTF-8; an empty text is the fallback that cannot happen.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The first `n` characters, for excerpts.
    pub fn to_string_lossy_prefix(&self, n: usize) -> String {
        self.as_str().chars().take(n).collect()
    }

    /// The body as JSON, if it is.
    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.0).ok()
    }
}

impl Serialize for BodyText {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.json() {
            Some(v) => v.serialize(s),
            None => s.serialize_str(self.as_str()),
        }
    }
}

impl schemars::JsonSchema for BodyText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Body".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "description": "The body: its JSON, or its text when it is not JSON." })
    }
}

/// Size of the chunks journaled bodies are copied into.
const ARENA_CHUNK: usize = 256 * 1024;

/// Copies `bytes` into the calling thread's current chunk. Journaled bodies live for the next
/// ten thousand calls, interleaved with the short-lived allocations of those calls; as small
/// allocations of their own they would pin allocator pages long after and let the resident
/// size creep up. In chunks they are freed a chunk at a time, as the oldest entries go.
fn arena_copy(bytes: &[u8]) -> Bytes {
    if bytes.is_empty() {
        return Bytes::new();
    }
    thread_local! {
        static ARENA: std::cell::RefCell<bytes::BytesMut> =
            std::cell::RefCell::new(bytes::BytesMut::new());
    }
    ARENA.with(|arena| {
        let mut arena = arena.borrow_mut();
        if arena.capacity() < bytes.len() {
            *arena = bytes::BytesMut::with_capacity(ARENA_CHUNK.max(bytes.len()));
        }
        arena.extend_from_slice(bytes);
        arena.split().freeze()
    })
}

/// What to look for in the journal.
#[derive(Debug, Clone, Default)]
pub struct JournalFilter {
    /// Only this function (case-insensitive, `downloadOrder` or `DownloadOrder`).
    pub function: Option<String>,
    /// Only calls about this ICCID (pad-insensitive).
    pub iccid: Option<String>,
    /// Only entries with a larger sequence number.
    pub since: Option<u64>,
    /// Only this operator.
    pub operator: Option<String>,
    /// Only answers with this status (`Executed-Success`, `Failed`).
    pub status: Option<String>,
}

impl JournalFilter {
    /// Whether `e` passes.
    pub fn matches(&self, e: &JournalEntry) -> bool {
        let digits = |s: &str| s.trim_end_matches('F').to_owned();
        self.function
            .as_ref()
            .is_none_or(|f| f.eq_ignore_ascii_case(e.function))
            && self
                .iccid
                .as_ref()
                .is_none_or(|i| e.iccid.as_deref().map(digits) == Some(digits(i)))
            && self.since.is_none_or(|s| e.seq > s)
            && self
                .operator
                .as_ref()
                .is_none_or(|o| e.operator.as_deref() == Some(o.as_str()))
            && self
                .status
                .as_ref()
                .is_none_or(|s| e.status == Some(s.as_str()))
    }
}

/// The bounded journal.
#[derive(Debug)]
pub struct Journal {
    rings: Mutex<Rings>,
    capacity: Capacity,
    next_seq: AtomicU64,
    changed: crate::change_signal::ChangeSignal,
}

/// How many entries each protocol keeps at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    /// ES2+ calls (and ES12 calls: callers with a certificate).
    pub es2: usize,
    /// ES9+ calls (and ES11 calls: anonymous LPAs).
    pub es9: usize,
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity {
            es2: DEFAULT_JOURNAL_CAPACITY,
            es9: DEFAULT_JOURNAL_CAPACITY,
        }
    }
}

impl Capacity {
    /// The capacity of `protocol`.
    pub fn of(&self, protocol: Protocol) -> usize {
        match protocol {
            Protocol::Es2 | Protocol::Es12 => self.es2,
            Protocol::Es9 | Protocol::Es11 => self.es9,
        }
    }
}

/// The entries of each protocol, each ring in sequence order.
#[derive(Debug, Default)]
struct Rings {
    es2: VecDeque<JournalEntry>,
    es9: VecDeque<JournalEntry>,
}

impl Rings {
    fn of(&mut self, protocol: Protocol) -> &mut VecDeque<JournalEntry> {
        // Callers that authenticate (ES2+, ES12) apart from anonymous ones (ES9+, ES11): an
        // LPA cannot push an operator's or an SM-DP+'s calls out.
        match protocol {
            Protocol::Es2 | Protocol::Es12 => &mut self.es2,
            Protocol::Es9 | Protocol::Es11 => &mut self.es9,
        }
    }

    fn both(&self) -> [&VecDeque<JournalEntry>; 2] {
        [&self.es2, &self.es9]
    }
}

impl Journal {
    /// A journal keeping at most `capacity` entries of each protocol.
    pub fn new(capacity: Capacity) -> Self {
        let capacity = Capacity {
            es2: capacity.es2.max(1),
            es9: capacity.es9.max(1),
        };
        Journal {
            rings: Mutex::new(Rings {
                es2: VecDeque::with_capacity(capacity.es2.min(1024)),
                es9: VecDeque::with_capacity(capacity.es9.min(1024)),
            }),
            capacity,
            next_seq: AtomicU64::new(1),
            changed: crate::change_signal::ChangeSignal::new(),
        }
    }

    fn rings(&self) -> std::sync::MutexGuard<'_, Rings> {
        self.rings.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many entries it keeps at most, per protocol.
    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    /// Adds an entry (its `seq` is assigned here) and wakes waiters; past its protocol's
    /// capacity, that protocol's oldest entry goes.
    pub fn record(&self, mut entry: JournalEntry) -> u64 {
        let mut rings = self.rings();
        // Taken under the lock, so each ring stays in sequence order.
        entry.seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let seq = entry.seq;
        let capacity = self.capacity.of(entry.protocol);
        let ring = rings.of(entry.protocol);
        let evicted = if ring.len() >= capacity {
            ring.pop_front()
        } else {
            None
        };
        ring.push_back(entry);
        drop(rings);
        // Freed after the lock: the other worker may be waiting for it.
        drop(evicted);
        self.changed.notify();
        seq
    }

    /// Continues numbering after `last_seq` (a restart from a state file), never going back.
    pub fn continue_after(&self, last_seq: u64) {
        self.next_seq
            .fetch_max(last_seq.saturating_add(1), Ordering::Relaxed);
    }

    /// Changes the entry `seq`, if the journal still holds it.
    pub fn annotate(&self, seq: u64, f: impl FnOnce(&mut JournalEntry)) {
        let mut rings = self.rings();
        for protocol in [Protocol::Es2, Protocol::Es9] {
            let ring = rings.of(protocol);
            let i = ring.partition_point(|e| e.seq < seq);
            if let Some(entry) = ring.get_mut(i).filter(|e| e.seq == seq) {
                f(entry);
                break;
            }
        }
        drop(rings);
        self.changed.notify();
    }

    /// How many entries it holds now.
    pub fn len(&self) -> usize {
        let rings = self.rings();
        rings.es2.len() + rings.es9.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest sequence number handed out (0 before any call).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed) - 1
    }

    /// Up to `limit` matching entries in sequence order, of every protocol: the ones right
    /// after `since` when it is given (to page forward), otherwise the newest.
    pub fn query(&self, filter: &JournalFilter, limit: usize) -> Vec<JournalEntry> {
        let rings = self.rings();
        let mut found: Vec<JournalEntry> = Vec::new();
        // At most `limit` from each ring, then the `limit` wanted of the two together.
        for ring in rings.both() {
            match filter.since {
                Some(since) => {
                    let start = ring.partition_point(|e| e.seq <= since);
                    found.extend(
                        ring.range(start..)
                            .filter(|e| filter.matches(e))
                            .take(limit)
                            .cloned(),
                    );
                }
                None => found.extend(
                    ring.iter()
                        .rev()
                        .filter(|e| filter.matches(e))
                        .take(limit)
                        .cloned(),
                ),
            }
        }
        drop(rings);
        found.sort_unstable_by_key(|e| e.seq);
        if filter.since.is_some() {
            found.truncate(limit);
        } else if found.len() > limit {
            found.drain(..found.len() - limit);
        }
        found
    }

    /// Empties the journal (sequence numbers go on).
    pub fn clear(&self) {
        let mut rings = self.rings();
        rings.es2.clear();
        rings.es9.clear();
    }

    /// Waits until an entry matches `filter`, for at most `timeout`; returns it.
    pub async fn wait_for(
        &self,
        filter: &JournalFilter,
        timeout: Duration,
    ) -> Option<JournalEntry> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.changed
            .wait_until(deadline, || self.query(filter, 1).into_iter().next())
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: &'static str) -> JournalEntry {
        JournalEntry {
            seq: 0,
            protocol: if function.starts_with("Initiate") {
                Protocol::Es9
            } else {
                Protocol::Es2
            },
            time: Arc::from(""),
            operator: None,
            certificate_subject: None,
            source_ip: std::sync::Arc::from("127.0.0.1"),
            function,
            function_call_identifier: None,
            iccid: Some("8944500100000000004F".into()),
            http_status: 200,
            status: None,
            status_code: None,
            fault: None,
            request: BodyText::default(),
            response: BodyText::default(),
            elapsed_us: 0,
            client_disconnected: None,
        }
    }

    #[test]
    fn stays_bounded_and_filters() {
        let j = Journal::new(Capacity { es2: 10, es9: 10 });
        for i in 0..25 {
            j.record(entry(if i % 2 == 0 {
                "DownloadOrder"
            } else {
                "ConfirmOrder"
            }));
        }
        assert_eq!(j.len(), 10);
        assert_eq!(j.last_seq(), 25);
        let all = j.query(&JournalFilter::default(), 100);
        assert_eq!(all.first().unwrap().seq, 16);
        let filter = JournalFilter {
            function: Some("downloadorder".into()),
            iccid: Some("8944500100000000004".into()),
            since: Some(20),
            ..JournalFilter::default()
        };
        let found: Vec<u64> = j.query(&filter, 100).iter().map(|e| e.seq).collect();
        assert_eq!(found, vec![21, 23, 25]);
    }

    /// Each protocol keeps its own share: a flood of ES9+ calls leaves the ES2+ calls alone,
    /// and queries see both in one sequence.
    #[test]
    fn each_protocol_keeps_its_own_entries() {
        let j = Journal::new(Capacity { es2: 3, es9: 5 });
        j.record(entry("DownloadOrder"));
        j.record(entry("ConfirmOrder"));
        for _ in 0..100 {
            j.record(entry("InitiateAuthentication"));
        }
        j.record(entry("ReleaseProfile"));
        assert_eq!(j.len(), 8);
        let all = j.query(&JournalFilter::default(), 100);
        let seqs: Vec<u64> = all.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [1, 2, 98, 99, 100, 101, 102, 103]);
        let newest: Vec<u64> = j
            .query(&JournalFilter::default(), 3)
            .iter()
            .map(|e| e.seq)
            .collect();
        assert_eq!(newest, [101, 102, 103]);
        let since = JournalFilter {
            since: Some(1),
            ..JournalFilter::default()
        };
        let paged: Vec<u64> = j.query(&since, 3).iter().map(|e| e.seq).collect();
        assert_eq!(paged, [2, 98, 99]);
        j.annotate(2, |e| e.http_status = 499);
        j.annotate(99, |e| e.http_status = 498);
        let all = j.query(&JournalFilter::default(), 100);
        assert_eq!(all[1].http_status, 499);
        assert_eq!(all[3].http_status, 498);
    }
}
