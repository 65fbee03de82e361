//! `GET /metrics`: the Prometheus text exposition of everything the mock counts.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::AdminState;
use crate::app::{App, World};
use crate::metrics::{counters, family, label, single, Counters};
use crate::profile::ProfileState;

pub(super) async fn exposition(State(s): State<AdminState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        render(&s.app),
    )
        .into_response()
}

/// The whole exposition.
pub(super) fn render(app: &App) -> String {
    let mut out = String::new();
    app.metrics.expose(&mut out);
    connection_counters(&mut out, &app.counters);
    let world = app.world();
    retired_event_ids(&mut out, &world);
    profiles(&mut out, &world);
    notifications(&mut out, app);
    single(
        &mut out,
        "smdpp_journal_entries",
        "gauge",
        "Entries in the request journal.",
        app.journal.len(),
    );
    out
}

/// The samples of a counter family whose samples differ in one label: the label's value, and
/// the counter.
type Samples<'a> = &'a [(&'a str, &'a AtomicU64)];

/// The families of the listeners' and sessions' refusals, closures and evictions, and the
/// simulated SM-DS operations: each a counter family whose samples differ in one label.
fn connection_counters(out: &mut String, c: &Counters) {
    let families: [(&str, &str, &str, Samples); 6] = [
        (
            "smdpp_source_ip_refusals_total",
            "Connections or requests refused by IP whitelisting.",
            "stage",
            &[
                ("connection", &c.connections_refused_source_ip),
                ("request", &c.requests_refused_source_ip),
            ],
        ),
        (
            "smdpp_connections_refused_total",
            "Connections closed on accept because a connection limit was reached (connection_limit: the listener's; per_address: the ES9+ listener's per client address).",
            "reason",
            &[
                ("connection_limit", &c.connections_refused_limit),
                ("per_address", &c.connections_refused_per_address),
            ],
        ),
        (
            "smdpp_connections_closed_total",
            "ES2+ connections closed by a time limit.",
            "reason",
            &[
                ("header_timeout", &c.connections_closed_header_timeout),
                ("idle_timeout", &c.connections_closed_idle_timeout),
            ],
        ),
        (
            "smdpp_es9_sessions_refused_total",
            "ES9+ InitiateAuthentication calls refused (HTTP 503) because the client address had its share of sessions in progress.",
            "reason",
            &[("per_address", &c.es9_sessions_refused_per_address)],
        ),
        (
            "smdpp_es9_sessions_evicted_total",
            "ES9+ sessions pushed out of a full table by newer ones (anonymous: after InitiateAuthentication; authenticated: after AuthenticateClient).",
            "table",
            &[
                ("anonymous", &c.es9_sessions_evicted_anonymous),
                ("authenticated", &c.es9_sessions_evicted_authenticated),
            ],
        ),
        (
            "smdpp_smds_events_total",
            "Event Registrations and Deletions the SM-DP+ performed (at the mock's SM-DS, an external one over ES12, or a simulated one), and the ES12 calls the mock's SM-DS carried out.",
            "operation",
            &[
                ("register", &c.smds_events_registered),
                ("delete", &c.smds_events_deleted),
            ],
        ),
    ];
    for (name, help, label_name, samples) in families {
        counters(out, name, help, label_name, samples);
    }
}

/// The SM-DS EventIDs remembered as used (SGP.22 §3.6.1.1) and those forgotten to bound the
/// memory.
fn retired_event_ids(out: &mut String, world: &World) {
    single(
        out,
        "smdpp_smds_event_records",
        "gauge",
        "Event Records the mock's SM-DS holds (SGP.22 §3.6; bounded, see docs/smds.md).",
        world.events.len() as u64,
    );
    let (remembered, forgotten) = world.store.retired_event_ids();
    single(
        out,
        "smdpp_retired_event_ids",
        "gauge",
        "SM-DS EventIDs remembered as used, never to be given again (SGP.22 §3.6.1.1).",
        remembered,
    );
    single(
        out,
        "smdpp_retired_event_ids_forgotten_total",
        "counter",
        "Retired EventIDs forgotten, oldest first, to keep the memory bounded.",
        forgotten,
    );
}

/// One gauge per operator, profile type and state, every state listed (zeros included).
fn profiles(out: &mut String, world: &World) {
    family(
        out,
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
}

/// The notifications' outcomes, attempts and queue.
fn notifications(out: &mut String, app: &App) {
    let d = &app.notifier.log().counters;
    counters(
        out,
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
        out,
        "smdpp_notification_attempts_total",
        "counter",
        "Delivery attempts.",
        d.attempts.load(Ordering::Relaxed),
    );
    single(
        out,
        "smdpp_notification_queue_depth",
        "gauge",
        "Notifications queued, waiting or being retried.",
        app.notifier.depth(),
    );
}
