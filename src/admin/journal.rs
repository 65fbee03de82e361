//! What happened: the journal of ES2+ and ES9+ calls, the notification delivery log, and long-polls on
//! them and on profile states.

use std::collections::HashMap;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::profiles::parse_iccid;
use super::AdminState;
use crate::api::{bad_parameter, error, json_response, parse_limit};
use crate::journal::JournalFilter;
use crate::notify::DeliveryState;
use crate::platform::view::ProfileView;
use crate::profile::ProfileState;
use crate::scenario::file::HumanDuration;

fn journal_filter(q: &HashMap<String, String>) -> Result<JournalFilter, Response> {
    let since = match q.get("since") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| bad_parameter("since", format!("{v:?} is not a sequence number")))?,
        ),
    };
    Ok(JournalFilter {
        function: q.get("function").cloned(),
        iccid: q.get("iccid").cloned(),
        since,
        operator: q.get("operator").cloned(),
        status: q.get("status").cloned(),
    })
}

pub(super) fn check_known(q: &HashMap<String, String>, known: &[&str]) -> Result<(), Response> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad_parameter(
            k,
            format!("unknown parameter; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

/// `order`: `oldest` (first; the default) or `newest` first.
fn newest_first(q: &HashMap<String, String>) -> Result<bool, Response> {
    q.get("order").map_or(Ok(false), |v| {
        one_of("order", v, &[("oldest", false), ("newest", true)])
    })
}

/// The value `choices` names `v`, or a 400 naming `parameter` and listing the choices.
fn one_of<T: Copy>(parameter: &str, v: &str, choices: &[(&str, T)]) -> Result<T, Response> {
    match choices.iter().find(|(name, _)| *name == v) {
        Some((_, value)) => Ok(*value),
        None => {
            let names: Vec<&str> = choices.iter().map(|(name, _)| *name).collect();
            Err(bad_parameter(
                parameter,
                format!("{v:?} is not one of {}", names.join(", ")),
            ))
        }
    }
}

pub(super) async fn journal(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = check_known(
        &q,
        &[
            "function", "iccid", "since", "operator", "status", "limit", "order",
        ],
    )
    .and_then(|()| {
        Ok((
            journal_filter(&q)?,
            parse_limit(q.get("limit").map(String::as_str))?,
            newest_first(&q)?,
        ))
    });
    match result {
        Ok((filter, limit, newest_first)) => {
            // The newest `limit` entries (or the `limit` after `since`), in the order asked for.
            let mut entries = s.app.journal.query(&filter, limit);
            if newest_first {
                entries.reverse();
            }
            json_response(
                StatusCode::OK,
                &json!({
                    "entries": entries,
                    "capacity": s.app.journal.capacity().es2,
                    "es9Capacity": s.app.journal.capacity().es9,
                    "lastSeq": s.app.journal.last_seq(),
                }),
            )
        }
        Err(r) => r,
    }
}

fn delivery_state(v: &str) -> Result<DeliveryState, Response> {
    one_of(
        "state",
        v,
        &[
            ("pending", DeliveryState::Pending),
            ("delivered", DeliveryState::Delivered),
            ("failed", DeliveryState::Failed),
            ("dropped", DeliveryState::Dropped),
        ],
    )
}

pub(super) async fn notifications(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_known(&q, &["iccid", "state", "since", "limit", "order"]) {
        return r;
    }
    let since = match q.get("since").map(|v| v.parse::<u64>()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return bad_parameter("since", "must be a delivery id"),
    };
    let newest_first = match newest_first(&q) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let state = match q.get("state").map(|v| delivery_state(v)).transpose() {
        Ok(s) => s,
        Err(r) => return r,
    };
    let limit = match parse_limit(q.get("limit").map(String::as_str)) {
        Ok(l) => l,
        Err(r) => return r,
    };
    let digits = |s: &str| s.trim_end_matches('F').to_owned();
    let matching = s
        .app
        .notifier
        .log()
        .records()
        .into_iter()
        .filter(|r| since.is_none_or(|since| r.id > since))
        .filter(|r| q.get("iccid").is_none_or(|i| digits(i) == digits(&r.iccid)))
        .filter(|r| state.is_none_or(|st| st == r.state));
    // As for the journal: the `limit` after `since`, otherwise the newest `limit`.
    let mut records: Vec<_> = match since {
        Some(_) => matching.take(limit).collect(),
        None => {
            let all: Vec<_> = matching.collect();
            let skip = all.len().saturating_sub(limit);
            all.into_iter().skip(skip).collect()
        }
    };
    if newest_first {
        records.reverse();
    }
    json_response(StatusCode::OK, &json!({ "notifications": records }))
}

/// Longest a long-poll may wait.
const MAX_WAIT: Duration = Duration::from_secs(120);

pub(super) async fn wait(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let timeout = match q.get("timeout").map(|t| t.parse::<HumanDuration>()) {
        None => Duration::from_secs(10),
        Some(Ok(d)) if d.0 <= MAX_WAIT => d.0,
        Some(_) => {
            return bad_parameter(
                "timeout",
                format!("must be a duration up to {}s, e.g. 5s", MAX_WAIT.as_secs()),
            )
        }
    };
    let answer = match q.get("for").map(String::as_str) {
        Some("journal") => wait_for_journal(&s, &q, timeout).await,
        Some("profile") => wait_for_profile(&s, &q, timeout).await,
        Some("notification") => wait_for_notification(&s, &q, timeout).await,
        Some(other) => Err(bad_parameter(
            "for",
            format!("{other:?}: use journal, profile or notification"),
        )),
        None => Err(bad_parameter(
            "for",
            "required: journal, profile or notification",
        )),
    };
    answer.unwrap_or_else(|r| r)
}

/// The answer of a long-poll that saw nothing match.
fn timed_out(timeout: Duration) -> Response {
    error(
        StatusCode::REQUEST_TIMEOUT,
        format!("nothing matched within {timeout:?}"),
    )
}

/// `for=journal`: the first journal entry matching the filter.
async fn wait_for_journal(
    s: &AdminState,
    q: &HashMap<String, String>,
    timeout: Duration,
) -> Result<Response, Response> {
    check_known(
        q,
        &[
            "for", "timeout", "function", "iccid", "since", "operator", "status",
        ],
    )?;
    let filter = journal_filter(q)?;
    Ok(match s.app.journal.wait_for(&filter, timeout).await {
        Some(entry) => json_response(StatusCode::OK, &entry),
        None => timed_out(timeout),
    })
}

/// `for=profile`: the profile of `iccid` once it is in `state`.
async fn wait_for_profile(
    s: &AdminState,
    q: &HashMap<String, String>,
    timeout: Duration,
) -> Result<Response, Response> {
    check_known(q, &["for", "timeout", "iccid", "state"])?;
    let Some(iccid) = q.get("iccid") else {
        return Err(bad_parameter("iccid", "required with for=profile"));
    };
    let key = parse_iccid(iccid)?.key();
    let state = match q.get("state").map(|v| v.parse::<ProfileState>()) {
        None => return Err(bad_parameter("state", "required with for=profile")),
        Some(Ok(s)) => s,
        Some(Err(e)) => return Err(bad_parameter("state", e)),
    };
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        // A reset or scenario load replaces the store: follow it to the new one.
        let replaced = s.app.world_changed();
        tokio::pin!(replaced);
        replaced.as_mut().enable();
        let world = s.app.world();
        if world.store.get(key).is_none() {
            return Err(error(StatusCode::NOT_FOUND, format!("no profile {iccid}")));
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::select! {
            found = world.store.wait_for(key, left, |p| p.state == state) => {
                return Ok(match found {
                    Some(p) => json_response(
                        StatusCode::OK,
                        &ProfileView::of(&p, &s.app.activation_address(&world), true),
                    ),
                    None => timed_out(timeout),
                });
            }
            () = &mut replaced => continue,
        }
    }
}

/// `for=notification`: the first delivery after `since` in `state` (default delivered),
/// of the notification point and ICCID when given.
async fn wait_for_notification(
    s: &AdminState,
    q: &HashMap<String, String>,
    timeout: Duration,
) -> Result<Response, Response> {
    check_known(q, &["for", "timeout", "iccid", "point", "state", "since"])?;
    let since = match q.get("since").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) => return Err(bad_parameter("since", "must be a delivery id")),
    };
    let point = match q.get("point").map(|p| p.parse::<u32>()) {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(_)) => {
            return Err(bad_parameter(
                "point",
                "must be a notificationPointId number",
            ))
        }
    };
    let state = q
        .get("state")
        .map(|v| delivery_state(v))
        .transpose()?
        .unwrap_or(DeliveryState::Delivered);
    let digits = |s: &str| s.trim_end_matches('F').to_owned();
    let iccid = q.get("iccid").map(|i| digits(i));
    let matches = |r: &crate::notify::DeliveryRecord| {
        r.id > since
            && r.state == state
            && point.is_none_or(|p| p == r.notification_point_id)
            && iccid.as_deref().is_none_or(|i| i == digits(&r.iccid))
    };
    let log = s.app.notifier.log().clone();
    if !log
        .wait_until(timeout, |records| records.iter().any(matches))
        .await
    {
        return Ok(timed_out(timeout));
    }
    let found = log.records().into_iter().find(|r| matches(r));
    Ok(json_response(StatusCode::OK, &found))
}
