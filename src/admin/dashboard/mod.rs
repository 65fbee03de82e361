//! The dashboard on the admin port: three static files embedded in the binary (no Node build),
//! which poll the admin API, plus the one summary endpoint they need that no other route gives.

use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AdminState;
use crate::api::json_response;
use crate::app::App;
use crate::conformance::Summary as ConformanceSummary;
use crate::profile::ProfileState;

const INDEX_HTML: &str = include_str!("index.html");
const APP_JS: &str = include_str!("app.js");
const STYLE_CSS: &str = include_str!("style.css");

/// The page only loads its own files and talks to its own origin; journal entries carry
/// client-supplied text, so scripts from anywhere else must never run.
const CSP: &str = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

/// The page, with the numbers of this moment already in it, so it is complete before its script
/// has fetched anything. With an admin token the page is open to anyone, so it carries no data
/// then: the script fills it in with the token.
pub(super) async fn page(State(s): State<AdminState>) -> Response {
    let summary = s.token.is_none().then(|| summary(&s.app));
    let html = render(
        summary.as_ref(),
        &crate::clock::es2_timestamp(s.app.clock.now()),
    );
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        html,
    )
        .into_response()
}

/// `index.html` with its `{{…}}` places filled from `summary` (dashes without one).
fn render(summary: Option<&Summary>, now: &str) -> String {
    let mut html = INDEX_HTML.to_owned();
    let mut put = |place: &str, value: String| {
        html = html.replace(&format!("{{{{{place}}}}}"), &value);
    };
    let Some(s) = summary else {
        for place in [
            "journal-last-seq",
            "notif-queued",
            "notif-delivered",
            "notif-failed",
            "notif-dropped",
            "queue-depth",
            "conformance-checks",
            "conformance-passed",
            "conformance-failed",
            "conformance-notExercised",
            "conformance-failedErrors",
        ] {
            put(place, "–".into());
        }
        put("loaded-at", "never".into());
        put("profile-rows", String::new());
        put("profile-total", String::new());
        return html;
    };
    let n = &s.notifications;
    put("journal-last-seq", s.journal.last_seq.to_string());
    put("notif-queued", n.queued.to_string());
    put("notif-delivered", n.delivered.to_string());
    put("notif-failed", n.failed.to_string());
    put(
        "notif-dropped",
        (n.dropped_queue_full + n.dropped_by_fault).to_string(),
    );
    put("queue-depth", n.queue_depth.to_string());
    let c = &s.conformance;
    put("conformance-checks", c.checks.to_string());
    put("conformance-passed", c.passed.to_string());
    put("conformance-failed", c.failed.to_string());
    put("conformance-notExercised", c.not_exercised.to_string());
    put("conformance-failedErrors", c.failed_errors.to_string());
    put("loaded-at", now.get(11..19).unwrap_or(now).to_owned());
    // The same rows the script builds (sorted by operator and type, a totals row when more than
    // one), so its first refresh changes nothing.
    let mut rows: Vec<&ProfileCounts> = s.profiles.iter().collect();
    rows.sort_by(|a, b| (&a.operator, &a.profile_type).cmp(&(&b.operator, &b.profile_type)));
    let mut sums = [0u64; 9];
    let cell = |n: u64, state: &str| {
        let class = if n == 0 { "num zero" } else { "num" };
        format!("<td class=\"{class}\" data-state=\"{state}\">{n}</td>")
    };
    let mut body = String::new();
    for p in &rows {
        body.push_str(&format!(
            "<tr data-operator=\"{op}\" data-profile-type=\"{ty}\"><td class=\"operator\">{op}</td><td class=\"profile-type\">{ty}</td>",
            op = escape(&p.operator),
            ty = escape(&p.profile_type)
        ));
        for (i, state) in ProfileState::ALL.iter().enumerate() {
            let count = p
                .states
                .get(state.as_str())
                .and_then(|v| v.as_u64())
                .unwrap_or(0);
            sums[i] += count;
            body.push_str(&cell(count, state.as_str()));
        }
        body.push_str(&format!(
            "<td class=\"num total\" data-state=\"Total\">{}</td></tr>",
            p.total
        ));
    }
    put("profile-rows", body);
    let total = if rows.len() > 1 {
        let mut foot = String::from("<tr><td colspan=\"2\">All</td>");
        for (i, state) in ProfileState::ALL.iter().enumerate() {
            foot.push_str(&cell(sums[i], state.as_str()));
        }
        foot.push_str(&format!(
            "<td class=\"num total\" data-state=\"Total\">{}</td></tr>",
            sums.iter().sum::<u64>()
        ));
        foot
    } else {
        String::new()
    };
    put("profile-total", total);
    html
}

/// Text for HTML: scenario names are the user's, so nothing in them may become markup.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

pub(super) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE_CSS)
}

/// Body of `GET /admin/summary`: everything the dashboard shows as numbers, in one read.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Summary {
    /// Profile counts per operator and profile type, in scenario order.
    pub profiles: Vec<ProfileCounts>,
    /// The journal's extent.
    pub journal: JournalSummary,
    /// Notification totals since start.
    pub notifications: NotificationSummary,
    /// The conformance summary (as in `GET /admin/conformance`).
    pub conformance: ConformanceSummary,
}

/// Profiles of one type, by state.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileCounts {
    /// The owning operator.
    pub operator: String,
    /// The profile type.
    pub profile_type: String,
    /// All profiles of the type.
    pub total: usize,
    /// Count per state (all nine states, SGP.22 §3.1.6), zeros included.
    pub states: serde_json::Map<String, serde_json::Value>,
}

/// The journal's extent: entries `lastSeq - entries + 1 ..= lastSeq` are held.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct JournalSummary {
    /// The newest sequence number (0 before any call).
    pub last_seq: u64,
    /// Entries held now.
    pub entries: usize,
    /// Entries it can hold.
    pub capacity: usize,
}

/// Notification totals since start.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotificationSummary {
    /// Queued for delivery.
    pub queued: u64,
    /// Delivered.
    pub delivered: u64,
    /// Failed after every attempt.
    pub failed: u64,
    /// Dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Dropped by a fault rule.
    pub dropped_by_fault: u64,
    /// Waiting or being retried now.
    pub queue_depth: usize,
    /// The id of the newest delivery record (0 when the log is empty).
    pub last_id: u64,
}

/// The summary of `app` now.
pub(crate) fn summary(app: &App) -> Summary {
    let world = app.world();
    let counts = world.store.counts_by_type();
    let profiles = world
        .scenario
        .profile_types()
        .map(|ty| {
            let per_state = counts.get(&ty.id).copied().unwrap_or_default();
            ProfileCounts {
                operator: ty.owner.to_string(),
                profile_type: ty.id.to_string(),
                total: per_state.iter().sum(),
                states: ProfileState::ALL
                    .iter()
                    .map(|s| (s.to_string(), per_state[s.index()].into()))
                    .collect(),
            }
        })
        .collect();
    let d = &app.notifier.log().counters;
    Summary {
        profiles,
        journal: JournalSummary {
            last_seq: app.journal.last_seq(),
            entries: app.journal.len(),
            capacity: app.journal.capacity().es2 + app.journal.capacity().es9,
        },
        notifications: NotificationSummary {
            queued: d.queued.load(Ordering::Relaxed),
            delivered: d.delivered.load(Ordering::Relaxed),
            failed: d.failed.load(Ordering::Relaxed),
            dropped_queue_full: d.dropped_queue_full.load(Ordering::Relaxed),
            dropped_by_fault: d.dropped_by_fault.load(Ordering::Relaxed),
            queue_depth: app.notifier.depth(),
            last_id: app.notifier.log().last_id(),
        },
        conformance: app.conformance.report().summary,
    }
}

pub(super) async fn summary_handler(State(s): State<AdminState>) -> Response {
    json_response(StatusCode::OK, &summary(&s.app))
}
