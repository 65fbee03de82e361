//! What the mock counts for `GET /metrics`, and the pieces of the Prometheus text format; the
//! admin API's `/metrics` handler writes the whole exposition.

use crate::journal::Protocol;
use crate::striped::Striped;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// How an ES2+ request ended, for the `status` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusLabel {
    /// A function's `functionExecutionStatus`: `Executed-Success`, `Failed`, …
    Execution(&'static str),
    /// An HTTP-level answer (4xx), or 499 when the client went away: `http_<code>`.
    Http(u16),
}

/// Counters of refusals that happen before a request reaches ES2+.
#[derive(Debug, Default)]
pub struct Counters {
    /// Connections closed before the TLS handshake: source address not whitelisted.
    pub connections_refused_source_ip: AtomicU64,
    /// Requests refused after the handshake: source address not allowed for that operator.
    pub requests_refused_source_ip: AtomicU64,
    /// Connections closed on accept: the connection limit was reached.
    pub connections_refused_limit: AtomicU64,
    /// ES9+ connections closed on accept: the client address had its share open.
    pub connections_refused_per_address: AtomicU64,
    /// Connections closed because a request head took longer than the header-read timeout.
    pub connections_closed_header_timeout: AtomicU64,
    /// Connections closed after the idle timeout.
    pub connections_closed_idle_timeout: AtomicU64,
    /// SM-DS Event Registrations performed (simulated ES12.RegisterEvent, SGP.22 §3.6.1).
    pub smds_events_registered: AtomicU64,
    /// SM-DS Event Deletions performed (simulated ES12.DeleteEvent, SGP.22 §3.6.3).
    pub smds_events_deleted: AtomicU64,
    /// ES9+ InitiateAuthentication refused: the client address had its share of anonymous
    /// sessions in progress.
    pub es9_sessions_refused_per_address: AtomicU64,
    /// ES9+ anonymous sessions pushed out by newer ones (the table was full).
    pub es9_sessions_evicted_anonymous: AtomicU64,
    /// ES9+ authenticated sessions pushed out by newer authenticated ones.
    pub es9_sessions_evicted_authenticated: AtomicU64,
}

impl Counters {
    /// Adds one to `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// `(protocol, function, outcome, subject, reason)`: every part static or a number, so counting
/// a request allocates nothing.
type RequestKey = (
    Protocol,
    &'static str,
    StatusLabel,
    &'static str,
    &'static str,
);

/// Counters that need labels. Plain totals live where they are counted (`Counters`,
/// `DeliveryCounters`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests of every protocol, counted by [`RequestKey`].
    requests: Striped<BTreeMap<RequestKey, u64>>,
    /// TLS handshake failures by listener (its protocol) and reason.
    handshakes: Striped<BTreeMap<(Protocol, &'static str), u64>>,
}

impl Metrics {
    /// Counts one request outcome of `function` of `protocol`.
    pub fn request(
        &self,
        protocol: Protocol,
        function: &'static str,
        outcome: StatusLabel,
        code: Option<crate::sgp22::StatusCode>,
    ) {
        let (subject, reason) = code.map_or(("", ""), |c| (c.subject, c.reason));
        let mut map = self.requests.mine();
        *map.entry((protocol, function, outcome, subject, reason))
            .or_default() += 1;
    }

    /// Counts one failed TLS handshake on the listener of `protocol`.
    pub fn handshake_failure(&self, protocol: Protocol, reason: &'static str) {
        *self
            .handshakes
            .mine()
            .entry((protocol, reason))
            .or_default() += 1;
    }

    /// TLS handshake failures so far on the ES2+ listener with this reason.
    pub fn handshake_failures(&self, reason: &'static str) -> u64 {
        merged(&self.handshakes)
            .get(&(Protocol::Es2, reason))
            .copied()
            .unwrap_or(0)
    }
}

/// The family of request counters of `protocol`, by function, outcome and status code.
fn requests_family(
    out: &mut String,
    protocol: Protocol,
    name: &str,
    help: &str,
    counts: &BTreeMap<RequestKey, u64>,
) {
    family(out, name, "counter", help);
    let of_protocol = counts.iter().filter(|(key, _)| key.0 == protocol);
    for ((_, function, outcome, subject, reason), n) in of_protocol {
        let status = match outcome {
            StatusLabel::Execution(s) => (*s).to_owned(),
            StatusLabel::Http(code) => format!("http_{code}"),
        };
        let _ = writeln!(
            out,
            "{name}{{function=\"{}\",status=\"{}\",subject=\"{}\",reason=\"{}\"}} {n}",
            label(function),
            label(&status),
            label(subject),
            label(reason)
        );
    }
}

/// The stripes of a counter map added up, in key order.
fn merged<K: Ord + Clone>(striped: &Striped<BTreeMap<K, u64>>) -> BTreeMap<K, u64> {
    let mut all = BTreeMap::new();
    striped.each(|stripe| {
        for (k, n) in stripe.iter() {
            *all.entry(k.clone()).or_default() += n;
        }
    });
    all
}

/// A label value escaped for the text format.
pub(crate) fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family whose samples differ in one label, each read from an atomic.
pub(crate) fn counters(
    out: &mut String,
    name: &str,
    help: &str,
    label_name: &str,
    samples: &[(&str, &AtomicU64)],
) {
    family(out, name, "counter", help);
    for (value, n) in samples {
        let _ = writeln!(
            out,
            "{name}{{{label_name}=\"{value}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
}

/// A family of one unlabelled sample.
pub(crate) fn single(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    value: impl std::fmt::Display,
) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The request counter family of each protocol: its name and help text.
const REQUEST_FAMILIES: [(Protocol, &str, &str); 4] = [
    (
        Protocol::Es2,
        "smdpp_es2_requests_total",
        "ES2+ requests by function and outcome (status, subject and reason codes).",
    ),
    (
        Protocol::Es9,
        "smdpp_es9_requests_total",
        "ES9+ requests by function and outcome (status, subject and reason codes; 204 for notifications).",
    ),
    (
        Protocol::Es11,
        "smdpp_es11_requests_total",
        "ES11 requests to the SM-DS by function and outcome (status, subject and reason codes).",
    ),
    (
        Protocol::Es12,
        "smdpp_es12_requests_total",
        "ES12 calls by function and outcome (status, subject and reason codes): those the mock's SM-DS answered, and the mock's own, to its SM-DS (in-process) or another (outbound; the journal's sourceIp tells them apart).",
    ),
];

/// The TLS handshake failure family of each listener: its name and help text.
const HANDSHAKE_FAMILIES: [(Protocol, &str, &str); 3] = [
    (
        Protocol::Es9,
        "smdpp_es9_tls_handshake_failures_total",
        "Failed TLS handshakes on the ES9+ listener by reason.",
    ),
    (
        Protocol::Es2,
        "smdpp_tls_handshake_failures_total",
        "Refused or failed TLS handshakes by reason.",
    ),
    (
        Protocol::Es11,
        "smdpp_smds_tls_handshake_failures_total",
        "Failed TLS handshakes on the SM-DS listener (ES11 and ES12) by reason.",
    ),
];

impl Metrics {
    /// Writes the request and handshake families.
    pub(crate) fn expose(&self, out: &mut String) {
        let requests = merged(&self.requests);
        for (protocol, name, help) in REQUEST_FAMILIES {
            requests_family(out, protocol, name, help, &requests);
        }
        let handshakes = merged(&self.handshakes);
        for (protocol, name, help) in HANDSHAKE_FAMILIES {
            family(out, name, "counter", help);
            let of_protocol = handshakes.iter().filter(|((p, _), _)| *p == protocol);
            for ((_, reason), n) in of_protocol {
                let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {n}");
            }
        }
    }
}
