//! Counters for `GET /metrics`, in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::app::App;
use crate::profile::ProfileState;

/// How an ES2+ request ended, for the `status` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StatusLabel {
    /// An ES2+ answer: `Executed-Success`, `Failed`, …
    Es2(&'static str),
    /// An HTTP-level answer (4xx), or 499 when the client went away: `http_<code>`.
    Http(u16),
}

/// `(function, outcome, subject, reason)`: every part static or a number, so counting a request
/// allocates nothing.
type RequestKey = (&'static str, StatusLabel, &'static str, &'static str);

/// Counters that need labels. Plain totals live where they are counted (`Counters`,
/// `DeliveryCounters`).
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests counted by [`RequestKey`].
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    /// TLS handshake failures by reason.
    handshakes: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    /// Counts one ES2+ request outcome.
    pub fn request(
        &self,
        function: crate::sgp22::Function,
        outcome: StatusLabel,
        code: Option<crate::sgp22::StatusCode>,
    ) {
        let (subject, reason) = code.map_or(("", ""), |c| (c.subject, c.reason));
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        *map.entry((function.name(), outcome, subject, reason))
            .or_default() += 1;
    }

    /// Counts one failed TLS handshake.
    pub fn handshake_failure(&self, reason: &'static str) {
        *self
            .handshakes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(reason)
            .or_default() += 1;
    }

    /// TLS handshake failures so far with this reason.
    pub fn handshake_failures(&self, reason: &str) -> u64 {
        self.handshakes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(reason)
            .copied()
            .unwrap_or(0)
    }
}

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `# HELP` and `# TYPE` lines that open a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family whose samples differ in one label, each read from an atomic.
fn counters(
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
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    family(out, name, kind, help);
    let _ = writeln!(out, "{name} {value}");
}

/// The whole exposition.
pub fn render(app: &App) -> String {
    let mut out = String::new();
    let metrics = &app.metrics;
    family(
        &mut out,
        "smdpp_es2_requests_total",
        "counter",
        "ES2+ requests by function and outcome (status, subject and reason codes).",
    );
    for ((function, outcome, subject, reason), n) in metrics
        .requests
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let status = match outcome {
            StatusLabel::Es2(s) => (*s).to_owned(),
            StatusLabel::Http(code) => format!("http_{code}"),
        };
        let _ = writeln!(
            out,
            "smdpp_es2_requests_total{{function=\"{}\",status=\"{}\",subject=\"{}\",reason=\"{}\"}} {n}",
            label(function),
            label(&status),
            label(subject),
            label(reason)
        );
    }
    family(
        &mut out,
        "smdpp_tls_handshake_failures_total",
        "counter",
        "Refused or failed TLS handshakes by reason.",
    );
    for (reason, n) in metrics
        .handshakes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
    {
        let _ = writeln!(
            out,
            "smdpp_tls_handshake_failures_total{{reason=\"{reason}\"}} {n}"
        );
    }
    let c = &app.counters;
    counters(
        &mut out,
        "smdpp_source_ip_refusals_total",
        "Connections or requests refused by IP whitelisting.",
        "stage",
        &[
            ("connection", &c.connections_refused_source_ip),
            ("request", &c.requests_refused_source_ip),
        ],
    );
    counters(
        &mut out,
        "smdpp_connections_refused_total",
        "ES2+ connections closed on accept because the connection limit was reached.",
        "reason",
        &[("connection_limit", &c.connections_refused_limit)],
    );
    counters(
        &mut out,
        "smdpp_connections_closed_total",
        "ES2+ connections closed by a time limit.",
        "reason",
        &[
            ("header_timeout", &c.connections_closed_header_timeout),
            ("idle_timeout", &c.connections_closed_idle_timeout),
        ],
    );

    let world = app.world();
    family(
        &mut out,
        "smdpp_profiles",
        "gauge",
        "Profiles by operator, profile type and state.",
    );
    let counts = world.store.counts_by_type();
    for ty in world.scenario.profile_types() {
        let per_state = counts.get(&ty.id).copied().unwrap_or_default();
        for state in ProfileState::ALL {
            let _ = writeln!(
                out,
                "smdpp_profiles{{operator=\"{}\",profile_type=\"{}\",state=\"{state}\"}} {}",
                label(&ty.owner),
                label(&ty.id),
                per_state[state.index()]
            );
        }
    }

    let d = &app.notifier.log().counters;
    counters(
        &mut out,
        "smdpp_notifications_total",
        "HandleDownloadProgressInfo notifications by outcome.",
        "outcome",
        &[
            ("queued", &d.queued),
            ("delivered", &d.delivered),
            ("failed", &d.failed),
            ("dropped_queue_full", &d.dropped_queue_full),
            ("dropped_by_fault", &d.dropped_by_fault),
        ],
    );
    single(
        &mut out,
        "smdpp_notification_attempts_total",
        "counter",
        "Delivery attempts.",
        d.attempts.load(Ordering::Relaxed),
    );
    single(
        &mut out,
        "smdpp_notification_queue_depth",
        "gauge",
        "Notifications queued, waiting or being retried.",
        app.notifier.depth(),
    );
    single(
        &mut out,
        "smdpp_journal_entries",
        "gauge",
        "Entries in the request journal.",
        app.journal.len(),
    );
    out
}
