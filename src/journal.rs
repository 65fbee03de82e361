//! The request journal: a bounded ring of the ES2+ calls the mock received, for tests to
//! inspect (`GET /admin/journal`) and wait on (`GET /admin/wait`). Memory stays flat under any
//! load: the oldest entries go first.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

/// Default number of entries kept.
pub const DEFAULT_JOURNAL_CAPACITY: usize = 10_000;

/// One ES2+ call.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Sequence number, from 1, never reused.
    pub seq: u64,
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
    entries: Mutex<VecDeque<JournalEntry>>,
    capacity: usize,
    next_seq: AtomicU64,
    changed: crate::change_signal::ChangeSignal,
}

impl Journal {
    /// A journal keeping at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Journal {
            entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity: capacity.max(1),
            next_seq: AtomicU64::new(1),
            changed: crate::change_signal::ChangeSignal::new(),
        }
    }

    /// How many entries it keeps at most.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Adds an entry (its `seq` is assigned here) and wakes waiters.
    pub fn record(&self, mut entry: JournalEntry) -> u64 {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Taken under the lock, so the ring stays in sequence order.
        entry.seq = self.next_seq.fetch_add(1, Ordering::Relaxed);
        let seq = entry.seq;
        let evicted = if entries.len() >= self.capacity {
            entries.pop_front()
        } else {
            None
        };
        entries.push_back(entry);
        drop(entries);
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
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let i = entries.partition_point(|e| e.seq < seq);
        if let Some(entry) = entries.get_mut(i).filter(|e| e.seq == seq) {
            f(entry);
        }
        drop(entries);
        self.changed.notify();
    }

    /// How many entries it holds now.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The newest sequence number handed out (0 before any call).
    pub fn last_seq(&self) -> u64 {
        self.next_seq.load(Ordering::Relaxed) - 1
    }

    /// Up to `limit` matching entries in sequence order: the ones right after `since` when it
    /// is given (to page forward), otherwise the newest.
    pub fn query(&self, filter: &JournalFilter, limit: usize) -> Vec<JournalEntry> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match filter.since {
            Some(since) => {
                // The ring is in sequence order: start right after `since`.
                let start = entries.partition_point(|e| e.seq <= since);
                entries
                    .range(start..)
                    .filter(|e| filter.matches(e))
                    .take(limit)
                    .cloned()
                    .collect()
            }
            None => {
                let mut newest: Vec<JournalEntry> = entries
                    .iter()
                    .rev()
                    .filter(|e| filter.matches(e))
                    .take(limit)
                    .cloned()
                    .collect();
                newest.reverse();
                newest
            }
        }
    }

    /// Empties the journal (sequence numbers go on).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
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
        let j = Journal::new(10);
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
}
