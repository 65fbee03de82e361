//! The admin / test-control API (design.md §9): plain HTTP, loopback by default. Health,
//! readiness, metrics, scenario load and reset, profile inspection and set-up, device events,
//! the journal, the notification log, the clock, and long-polls so tests never sleep-and-poll.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use axum::Router;
use serde::Deserialize;
use serde_json::json;

use super::platform::ProfileFilter;
use super::view::ProfileView;
use super::{bad_parameter, error, json_response, parse_limit, Segment};
use crate::app::{App, World};
use crate::clock::es2_timestamp;
use crate::device;
use crate::ids::{Eid, Iccid, MatchingId};
use crate::journal::JournalFilter;
use crate::notify::DeliveryState;
use crate::pki::PkiDir;
use crate::profile::machine::Step;
use crate::profile::{OrderMatchingId, ProfileState};
use crate::scenario::file::{DeviceEventName, HumanDuration};
use crate::scenario::{Callback, Scenario};

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The application.
    pub app: App,
    /// The PKI, for client certificates of operators a loaded scenario adds.
    pub pki: PkiDir,
    /// SANs of the server certificate.
    pub sans: Arc<Vec<String>>,
    /// When set, every route but the open ones needs `Authorization: Bearer <token>`.
    pub token: Option<Arc<str>>,
}

/// Routes that answer without the bearer token: liveness (container health checks) and the
/// dashboard's static files, which hold no data (the page asks for the token).
const OPEN_ROUTES: [&str; 5] = [
    "/health",
    "/",
    "/admin/dashboard",
    "/admin/dashboard/app.js",
    "/admin/dashboard/style.css",
];

/// Compares in time independent of where the strings differ, so the token cannot be guessed
/// byte by byte from answer times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn require_token(
    State(token): State<Option<Arc<str>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    if OPEN_ROUTES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if same_secret(p.trim().as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => {
            let mut refusal = error(
                StatusCode::UNAUTHORIZED,
                "this admin API needs Authorization: Bearer <token> (the --admin-token / SMDPP_ADMIN_TOKEN of the instance)",
            );
            refusal.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"smdpp-mock admin\""),
            );
            refusal
        }
    }
}

/// Every admin route: method, path (axum syntax), handler; one entry per method and path.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AdminState>)> {
    vec![
        route(Method::GET, "/health", health),
        route(Method::GET, "/ready", ready),
        route(Method::GET, "/metrics", metrics),
        route(Method::GET, "/openapi.json", openapi),
        route(Method::POST, "/admin/reset", reset),
        route(Method::PUT, "/admin/scenario", load_scenario),
        route(Method::GET, "/admin/profiles", list_profiles),
        route(Method::GET, "/admin/profiles/{iccid}", one_profile),
        route(Method::PUT, "/admin/profiles/{iccid}", force_profile),
        route(Method::POST, "/admin/profiles/{iccid}/events", device_event),
        route(
            Method::POST,
            "/admin/devices/{matchingId}/events",
            device_event_by_matching_id,
        ),
        route(Method::GET, "/admin/journal", journal),
        route(Method::GET, "/admin/notifications", notifications),
        route(
            Method::PUT,
            "/admin/operators/{id}/callback",
            register_callback,
        ),
        route(Method::POST, "/admin/clock", clock),
        route(Method::GET, "/admin/wait", wait),
        route(Method::GET, "/admin/conformance", conformance_report),
        route(Method::POST, "/admin/conformance/reset", conformance_reset),
        route(Method::POST, "/admin/conformance/probe", conformance_probe),
        route(
            Method::GET,
            "/admin/summary",
            super::dashboard::summary_handler,
        ),
        route(Method::GET, "/", super::dashboard::page),
        route(Method::GET, "/admin/dashboard", super::dashboard::page),
        route(
            Method::GET,
            "/admin/dashboard/app.js",
            super::dashboard::script,
        ),
        route(
            Method::GET,
            "/admin/dashboard/style.css",
            super::dashboard::style,
        ),
    ]
}

/// One table row: the handler serves exactly `method` on `path`.
fn route<H, T>(
    method: Method,
    path: &'static str,
    handler: H,
) -> (Method, &'static str, MethodRouter<AdminState>)
where
    H: axum::handler::Handler<T, AdminState>,
    T: 'static,
{
    use axum::routing::{on, MethodFilter};
    // The table only holds standard methods, which all have a filter.
    let filter = MethodFilter::try_from(method.clone()).unwrap_or(MethodFilter::GET);
    debug_assert_eq!(MethodFilter::try_from(method.clone()).ok(), Some(filter));
    (method, path, on(filter, handler))
}

/// The router built from [`routes`]; unknown paths and methods get JSON errors; with a token,
/// every route but [`OPEN_ROUTES`] needs it.
pub fn router(state: AdminState) -> Router {
    let token = state.token.clone();
    routes()
        .into_iter()
        .fold(Router::new(), |r, (_, path, handler)| {
            r.route(path, handler)
        })
        .fallback(|uri: axum::http::Uri| async move {
            error(
                StatusCode::NOT_FOUND,
                format!("no admin endpoint {}; see GET /openapi.json", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: axum::http::Uri| async move {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!(
                    "{method} is not allowed on {}; see GET /openapi.json",
                    uri.path()
                ),
            )
        })
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(token, require_token))
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

async fn ready(State(s): State<AdminState>) -> Response {
    let world = s.app.world();
    json_response(
        StatusCode::OK,
        &json!({
            "ready": true,
            "scenario": world.scenario.sources(),
            "profiles": world.store.len(),
        }),
    )
}

async fn metrics(State(s): State<AdminState>) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        crate::metrics::render(&s.app),
    )
        .into_response()
}

async fn openapi() -> Response {
    json_response(StatusCode::OK, &super::openapi::document())
}

async fn reset(State(s): State<AdminState>) -> Response {
    let scenario = s.app.world().scenario.clone();
    fresh_start(&s.app, World::new(scenario));
    json_response(StatusCode::OK, &json!({ "reset": true }))
}

/// A new world, with the clock, journal and delivery log as at start. Notifications already
/// queued for the old world are still delivered, unrecorded.
fn fresh_start(app: &App, world: World) {
    app.replace_world(world);
    app.clock.reset();
    app.journal.clear();
    app.notifier.log().clear();
}

async fn load_scenario(State(s): State<AdminState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the scenario must be UTF-8 YAML");
    };
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let scenario = match Scenario::from_yaml_named("<PUT /admin/scenario>", text, &base) {
        Ok(s) => s,
        Err(errors) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &json!({
                    "error": "Bad Request",
                    "status": 400,
                    "message": errors.0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"),
                    "diagnostics": errors.0,
                }),
            )
        }
    };
    let operators: Vec<&str> = scenario.operators().iter().map(|o| &*o.id).collect();
    if let Err(e) = s.pki.ensure(&s.sans, &operators) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"));
    }
    let summary = json!({
        "loaded": true,
        "operators": operators,
        "profiles": scenario.profile_count(),
    });
    fresh_start(&s.app, World::new(Arc::new(scenario)));
    json_response(StatusCode::OK, &summary)
}

async fn list_profiles(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    match ProfileFilter::parse(&q, true) {
        Ok(filter) => filter.page(&s.app, true),
        Err(r) => r,
    }
}

fn parse_iccid(text: &str) -> Result<Iccid, Response> {
    text.parse().map_err(|e| bad_parameter("iccid", e))
}

async fn one_profile(State(s): State<AdminState>, Segment(iccid): Segment) -> Response {
    let key = match parse_iccid(&iccid) {
        Ok(i) => i.key(),
        Err(r) => return r,
    };
    let world = s.app.world();
    match world.store.get(key) {
        Some(p) => json_response(
            StatusCode::OK,
            &ProfileView::of(&p, world.scenario.smdp_address(), true),
        ),
        None => error(StatusCode::NOT_FOUND, format!("no profile {iccid}")),
    }
}

/// Body of `PUT /admin/profiles/{iccid}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ForcedState {
    state: ProfileState,
    eid: Option<String>,
    matching_id: Option<String>,
}

async fn force_profile(
    State(s): State<AdminState>,
    Segment(iccid): Segment,
    body: Bytes,
) -> Response {
    let key = match parse_iccid(&iccid) {
        Ok(i) => i.key(),
        Err(r) => return r,
    };
    let wanted: ForcedState = match serde_json::from_slice(&body) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let eid = match wanted.eid.as_deref().map(str::parse::<Eid>).transpose() {
        Ok(e) => e,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("eid: {e}")),
    };
    let matching_id = match wanted.matching_id.as_deref() {
        None => None,
        Some("") => Some(OrderMatchingId::Empty),
        Some(m) => match m.parse::<MatchingId>() {
            Ok(id) => Some(OrderMatchingId::Id(id)),
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("matchingId: {e}")),
        },
    };
    use ProfileState::*;
    let state = wanted.state;
    if matches!(state, Linked | Downloaded | Installed) && eid.is_none() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("state {state} needs an eid"),
        );
    }
    if matches!(state, Available | Allocated | Unavailable)
        && (eid.is_some() || matching_id.is_some())
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("state {state} has no order: no eid or matchingId"),
        );
    }
    if !state.has_matching_id() && matching_id.is_some() {
        return error(
            StatusCode::BAD_REQUEST,
            format!("state {state} cannot have a matchingId"),
        );
    }
    let world = s.app.world();
    let now = s.app.clock.now();
    let result = world.store.update::<()>(key, |p| {
        let mut next =
            crate::profile::Profile::available(p.iccid, p.owner.clone(), p.profile_type.clone());
        next.order_seq = p.order_seq.wrapping_add(1);
        next.entered = p.entered;
        next.history = p.history.clone();
        next.state = state;
        next.eid = eid;
        if state.has_matching_id() {
            next.matching_id = Some(
                matching_id
                    .clone()
                    .unwrap_or_else(|| OrderMatchingId::Id(world.matching_ids.next_id())),
            );
        }
        if state == Installed {
            next.on_device = Some(crate::profile::OnDevice::Enabled);
        }
        next.record_transition(state, now);
        Ok(Step {
            next,
            effects: Vec::new(),
        })
    });
    match result {
        Ok(updated) => json_response(
            StatusCode::OK,
            &ProfileView::of(&updated.profile, world.scenario.smdp_address(), true),
        ),
        Err(crate::store::UpdateError::UnknownIccid) => {
            error(StatusCode::NOT_FOUND, format!("no profile {iccid}"))
        }
        Err(crate::store::UpdateError::MatchingIdInUse(id)) => error(
            StatusCode::CONFLICT,
            format!("MatchingID {id} is bound to another order"),
        ),
        Err(crate::store::UpdateError::Refused(())) => error(StatusCode::CONFLICT, "refused"),
    }
}

/// Body of the device event endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeviceEventBody {
    event: DeviceEventName,
    eid: Option<String>,
    error_reason: Option<u8>,
    bpp_command_id: Option<u8>,
}

fn parse_event(
    body: &Bytes,
) -> Result<(crate::profile::machine::DeviceEvent, Option<Eid>), Response> {
    let b: DeviceEventBody = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("body: {e}; events: download, wrong-confirmation-code, eligibility-failure, rebind-failure, end-user-rejection, postponed, timeout, ppr-not-allowed, metadata-mismatch, load-bpp-execution-error, undefined-reason, install-success, install-failure, enable, disable, delete"),
        )
    })?;
    let eid = b
        .eid
        .as_deref()
        .map(str::parse::<Eid>)
        .transpose()
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("eid: {e}")))?;
    Ok((b.event.event(b.error_reason, b.bpp_command_id), eid))
}

fn event_answer(
    app: &App,
    result: Result<crate::profile::Profile, device::SimulateError>,
) -> Response {
    match result {
        Ok(p) => json_response(
            StatusCode::OK,
            &ProfileView::of(&p, app.world().scenario.smdp_address(), true),
        ),
        Err(e) => {
            let code = device::es9_code(&e);
            let status = if matches!(e, crate::store::UpdateError::UnknownIccid) {
                StatusCode::NOT_FOUND
            } else {
                StatusCode::CONFLICT
            };
            json_response(
                status,
                &json!({
                    "error": status.canonical_reason(),
                    "status": status.as_u16(),
                    "message": match &e {
                        crate::store::UpdateError::Refused(r) => r.to_string(),
                        crate::store::UpdateError::UnknownIccid => "no such order".into(),
                        crate::store::UpdateError::MatchingIdInUse(id) => format!("MatchingID {id} in use"),
                    },
                    "es9StatusCode": { "subjectCode": code.subject, "reasonCode": code.reason },
                }),
            )
        }
    }
}

async fn device_event(
    State(s): State<AdminState>,
    Segment(iccid): Segment,
    body: Bytes,
) -> Response {
    let key = match parse_iccid(&iccid) {
        Ok(i) => i.key(),
        Err(r) => return r,
    };
    let (event, eid) = match parse_event(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    event_answer(&s.app, device::simulate(&s.app, key, eid, event))
}

async fn device_event_by_matching_id(
    State(s): State<AdminState>,
    Segment(matching_id): Segment,
    body: Bytes,
) -> Response {
    let id: MatchingId = match matching_id.parse() {
        Ok(id) => id,
        Err(e) => return bad_parameter("matchingId", e),
    };
    let (event, eid) = match parse_event(&body) {
        Ok(x) => x,
        Err(r) => return r,
    };
    event_answer(
        &s.app,
        device::simulate_by_matching_id(&s.app, &id, eid, event),
    )
}

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

fn check_known(q: &HashMap<String, String>, known: &[&str]) -> Result<(), Response> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad_parameter(
            k,
            format!("unknown parameter; known: {}", known.join(", ")),
        )),
        None => Ok(()),
    }
}

async fn journal(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let result = check_known(
        &q,
        &["function", "iccid", "since", "operator", "status", "limit"],
    )
    .and_then(|()| {
        Ok((
            journal_filter(&q)?,
            parse_limit(q.get("limit").map(String::as_str))?,
        ))
    });
    match result {
        Ok((filter, limit)) => json_response(
            StatusCode::OK,
            &json!({
                "entries": s.app.journal.query(&filter, limit),
                "capacity": s.app.journal.capacity(),
                "lastSeq": s.app.journal.last_seq(),
            }),
        ),
        Err(r) => r,
    }
}

fn delivery_state(v: &str) -> Result<DeliveryState, Response> {
    match v {
        "pending" => Ok(DeliveryState::Pending),
        "delivered" => Ok(DeliveryState::Delivered),
        "failed" => Ok(DeliveryState::Failed),
        "dropped" => Ok(DeliveryState::Dropped),
        _ => Err(bad_parameter(
            "state",
            format!("{v:?} is not pending, delivered, failed or dropped"),
        )),
    }
}

async fn notifications(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_known(&q, &["iccid", "state", "since", "limit"]) {
        return r;
    }
    let since = match q.get("since").map(|v| v.parse::<u64>()) {
        None => 0,
        Some(Ok(v)) => v,
        Some(Err(_)) => return bad_parameter("since", "must be a delivery id"),
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
    let records: Vec<_> = s
        .app
        .notifier
        .log()
        .records()
        .into_iter()
        .filter(|r| r.id > since)
        .filter(|r| q.get("iccid").is_none_or(|i| digits(i) == digits(&r.iccid)))
        .filter(|r| state.is_none_or(|st| st == r.state))
        .take(limit)
        .collect();
    json_response(StatusCode::OK, &json!({ "notifications": records }))
}

/// Body of `PUT /admin/operators/{id}/callback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CallbackBody {
    url: String,
    timeout: Option<HumanDuration>,
    max_attempts: Option<u32>,
    initial_backoff: Option<HumanDuration>,
    max_backoff: Option<HumanDuration>,
    client_certificate: Option<bool>,
}

async fn register_callback(
    State(s): State<AdminState>,
    Segment(id): Segment,
    body: Bytes,
) -> Response {
    let b: CallbackBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("body: {e}")),
    };
    let mut cb = match Callback::with_defaults(&b.url) {
        Ok(cb) => cb,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("url: {e}")),
    };
    if let Some(d) = b.timeout {
        cb.timeout = d.0;
    }
    if let Some(d) = b.initial_backoff {
        cb.initial_backoff = d.0;
    }
    if let Some(d) = b.max_backoff {
        cb.max_backoff = d.0;
    }
    match b.max_attempts {
        Some(0) => return error(StatusCode::BAD_REQUEST, "maxAttempts must be at least 1"),
        Some(n) => cb.max_attempts = n,
        None => {}
    }
    if let Some(v) = b.client_certificate {
        cb.client_certificate = v;
    }
    let url = cb.url.clone();
    match s.app.world().register_callback(&id, cb) {
        Ok(()) => json_response(StatusCode::OK, &json!({ "operator": id, "url": url })),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}

/// A JSON request body, or the 400 that says what is wrong with it and shows `example`.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("body: {e}; e.g. {example}"),
        )
    })
}

/// Body of `POST /admin/clock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClockBody {
    advance: HumanDuration,
}

async fn clock(State(s): State<AdminState>, body: Bytes) -> Response {
    let b: ClockBody = match parse_body(&body, r#"{"advance": "1h"}"#) {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    s.app.clock.advance(b.advance.0);
    json_response(
        StatusCode::OK,
        &json!({ "now": es2_timestamp(s.app.clock.now()) }),
    )
}

/// Longest a long-poll may wait.
const MAX_WAIT: Duration = Duration::from_secs(120);

async fn wait(State(s): State<AdminState>, Query(q): Query<HashMap<String, String>>) -> Response {
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
    let timed_out = || {
        error(
            StatusCode::REQUEST_TIMEOUT,
            format!("nothing matched within {timeout:?}"),
        )
    };
    match q.get("for").map(String::as_str) {
        Some("journal") => {
            if let Err(r) = check_known(
                &q,
                &[
                    "for", "timeout", "function", "iccid", "since", "operator", "status",
                ],
            ) {
                return r;
            }
            let filter = match journal_filter(&q) {
                Ok(f) => f,
                Err(r) => return r,
            };
            match s.app.journal.wait_for(&filter, timeout).await {
                Some(entry) => json_response(StatusCode::OK, &entry),
                None => timed_out(),
            }
        }
        Some("profile") => {
            if let Err(r) = check_known(&q, &["for", "timeout", "iccid", "state"]) {
                return r;
            }
            let Some(iccid) = q.get("iccid") else {
                return bad_parameter("iccid", "required with for=profile");
            };
            let key = match parse_iccid(iccid) {
                Ok(i) => i.key(),
                Err(r) => return r,
            };
            let state = match q.get("state").map(|v| v.parse::<ProfileState>()) {
                None => return bad_parameter("state", "required with for=profile"),
                Some(Ok(s)) => s,
                Some(Err(e)) => return bad_parameter("state", e),
            };
            let deadline = tokio::time::Instant::now() + timeout;
            loop {
                // A reset or scenario load replaces the store: follow it to the new one.
                let replaced = s.app.world_changed();
                tokio::pin!(replaced);
                replaced.as_mut().enable();
                let world = s.app.world();
                if world.store.get(key).is_none() {
                    return error(StatusCode::NOT_FOUND, format!("no profile {iccid}"));
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                tokio::select! {
                    found = world.store.wait_for(key, left, |p| p.state == state) => {
                        return match found {
                            Some(p) => json_response(
                                StatusCode::OK,
                                &ProfileView::of(&p, world.scenario.smdp_address(), true),
                            ),
                            None => timed_out(),
                        };
                    }
                    () = &mut replaced => continue,
                }
            }
        }
        Some("notification") => {
            if let Err(r) = check_known(&q, &["for", "timeout", "iccid", "point", "state", "since"])
            {
                return r;
            }
            let since = match q.get("since").map(|v| v.parse::<u64>()) {
                None => 0,
                Some(Ok(v)) => v,
                Some(Err(_)) => return bad_parameter("since", "must be a delivery id"),
            };
            let point = match q.get("point").map(|p| p.parse::<u32>()) {
                None => None,
                Some(Ok(p)) => Some(p),
                Some(Err(_)) => {
                    return bad_parameter("point", "must be a notificationPointId number")
                }
            };
            let state = match q.get("state").map(|v| delivery_state(v)).transpose() {
                Ok(st) => st.unwrap_or(DeliveryState::Delivered),
                Err(r) => return r,
            };
            let digits = |s: &str| s.trim_end_matches('F').to_owned();
            let iccid = q.get("iccid").map(|i| digits(i));
            let matches = |r: &crate::notify::DeliveryRecord| {
                r.id > since
                    && r.state == state
                    && point.is_none_or(|p| p == r.notification_point_id)
                    && iccid.as_deref().is_none_or(|i| i == digits(&r.iccid))
            };
            let log = s.app.notifier.log().clone();
            if log
                .wait_until(timeout, |records| records.iter().any(matches))
                .await
            {
                let found = log.records().into_iter().find(|r| matches(r));
                json_response(StatusCode::OK, &found)
            } else {
                timed_out()
            }
        }
        Some(other) => bad_parameter(
            "for",
            format!("{other:?}: use journal, profile or notification"),
        ),
        None => bad_parameter("for", "required: journal, profile or notification"),
    }
}

async fn conformance_report(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Err(r) = check_known(&q, &["format"]) {
        return r;
    }
    let report = s.app.conformance.report();
    match q.get("format").map(String::as_str) {
        None | Some("json") => json_response(StatusCode::OK, &report),
        Some("junit") => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/xml; charset=utf-8"),
            )],
            report.junit(),
        )
            .into_response(),
        Some(other) => bad_parameter("format", format!("{other:?}: use json or junit")),
    }
}

async fn conformance_reset(State(s): State<AdminState>) -> Response {
    s.app.conformance.reset();
    json_response(StatusCode::OK, &json!({ "reset": true }))
}

/// Body of `POST /admin/conformance/probe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProbeBody {
    operator: String,
}

async fn conformance_probe(State(s): State<AdminState>, body: Bytes) -> Response {
    let b: ProbeBody = match parse_body(&body, r#"{"operator": "test-mno"}"#) {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let transport = crate::notify::transport::HttpTransport::new(s.pki.clone());
    match crate::conformance::probe::run(&s.app, &transport, &b.operator).await {
        Ok(steps) => json_response(
            StatusCode::OK,
            &json!({ "operator": b.operator, "steps": steps, "report": s.app.conformance.report() }),
        ),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}
