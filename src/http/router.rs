//! HTTP routing for the ES2+ port: method, path, headers and size are checked here; anything
//! wrong at this level is an HTTP 4xx with a short JSON error (design.md §3), and everything
//! else goes to [`crate::es2::handle`] and is answered with HTTP 200.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use http_body_util::{BodyExt, Limited};
use serde_json::json;
use tower_service::Service;
use tracing::{debug, info, warn};

use super::{CloseConnection, ConnectionInfo, Limits};
use crate::app::App;
use crate::clock::es2_timestamp_shared;
use crate::conformance::{self, catalog::CheckId, grade::Grade};
use crate::es2::{self, wire::ADMIN_PROTOCOL_HEADER, Function};
use crate::journal::{BodyText, Disconnect, JournalEntry};
use crate::metrics::Counters;

/// Parsed once: a header looked up or set by a `&str` name is parsed on every use.
const ADMIN_PROTOCOL: HeaderName = HeaderName::from_static(ADMIN_PROTOCOL_HEADER);

#[derive(Clone)]
struct RouterState {
    app: App,
    limits: Limits,
}

/// The service of the ES2+ listener. ES2+ calls go straight to their handler: at tens of
/// thousands of calls a second, axum's routing, boxing and middleware cost about a tenth of the
/// mock's time. Everything else (the platform API, unknown paths and methods) goes through the
/// axum router, which routes ES2+ paths to the same handler.
#[derive(Clone)]
pub struct Es2Service {
    state: RouterState,
    router: Router,
}

impl Es2Service {
    /// The service for `app`, with the listener's `limits`.
    pub fn new(app: App, limits: Limits) -> Self {
        let state = RouterState {
            app: app.clone(),
            limits,
        };
        let platform = crate::platform::router().with_state(app);
        let router = Router::new()
            .route("/gsma/rsp2/es2plus/{function}", any(es2_endpoint))
            .fallback(not_found)
            .with_state(state.clone())
            .merge(platform)
            .method_not_allowed_fallback(|method: Method, uri: axum::http::Uri| async move {
                http_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    format!("{method} is not allowed on {}", uri.path()),
                )
            })
            .layer(axum::middleware::map_response_with_state(
                state.clone(),
                add_admin_protocol,
            ));
        Es2Service { state, router }
    }

    /// Answers one request that arrived on `conn`.
    pub async fn call<B>(
        &self,
        mut request: axum::http::Request<B>,
        conn: &ConnectionInfo,
    ) -> Response
    where
        B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        // Only POST: axum answers the other methods the same way, and also knows that a
        // HEAD answer has no body (which hyper's HTTP/2 server would otherwise send).
        let function = (request.method() == Method::POST)
            .then(|| function_of(request.uri()))
            .flatten();
        if let Some(function) = function {
            return es2_function(&self.state, conn, function, request).await;
        }
        request.extensions_mut().insert(conn.clone());
        match self.router.clone().call(request.map(Body::new)).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Every response, errors included, announces the SM-DP+'s protocol version (SGP.22 §6.2).
async fn add_admin_protocol(State(state): State<RouterState>, mut response: Response) -> Response {
    // ES2+ answers carry it already, set from the world their call ran in.
    if !response.headers().contains_key(&ADMIN_PROTOCOL) {
        announce_protocol(&mut response, &state.app.world().scenario);
    }
    response
}

fn announce_protocol(response: &mut Response, scenario: &crate::scenario::Scenario) {
    let announced = scenario.admin_protocol();
    // The usual value needs no validation or copy.
    let value = if announced == crate::sgp22::ADMIN_PROTOCOL {
        Ok(HeaderValue::from_static(crate::sgp22::ADMIN_PROTOCOL))
    } else {
        HeaderValue::from_str(announced)
    };
    if let Ok(value) = value {
        response.headers_mut().insert(ADMIN_PROTOCOL, value);
    }
}

/// A short JSON error for HTTP-level problems.
fn http_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({
        "error": status.canonical_reason().unwrap_or("error"),
        "status": status.as_u16(),
        "message": message.into(),
    });
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response()
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    http_error(
        StatusCode::NOT_FOUND,
        format!(
            "no such endpoint: {method} {}; ES2+ functions are POST /gsma/rsp2/es2plus/{{downloadOrder,confirmOrder,cancelOrder,releaseProfile}}",
            uri.path()
        ),
    )
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
}

/// The ES2+ function a path names exactly (`/gsma/rsp2/es2plus/downloadOrder`).
fn function_of(uri: &axum::http::Uri) -> Option<Function> {
    uri.path()
        .strip_prefix(es2::PATH_PREFIX)
        .and_then(Function::from_path_segment)
}

/// The axum route of ES2+ paths (reached when [`Es2Service`] did not recognise the function).
async fn es2_endpoint(
    State(state): State<RouterState>,
    Extension(conn): Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    // Read the segment ourselves: axum's `Path` extractor would answer odd paths in plain text.
    match function_of(request.uri()) {
        Some(function) => es2_function(&state, &conn, function, request).await,
        None => not_found(request.method().clone(), request.uri().clone()).await,
    }
}

/// One ES2+ call: graded, carried out, journaled, answered.
async fn es2_function<B>(
    state: &RouterState,
    conn: &ConnectionInfo,
    function: Function,
    request: axum::http::Request<B>,
) -> Response
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let started = Instant::now();
    let mut grades = Vec::with_capacity(32);
    {
        let headers = request.headers();
        let value = |name: &HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
        conformance::grade::http(
            &mut grades,
            request.method().as_str(),
            value(&header::CONTENT_TYPE),
            value(&ADMIN_PROTOCOL),
        );
    }
    let mut trace = Trace {
        grades,
        ..Trace::default()
    };
    trace.grades.push(Grade {
        check: CheckId::Tls001,
        passed: true,
        message: String::new(),
    });
    let mut departure = Departure {
        app: &state.app,
        conn,
        function,
        started,
        seq: None,
        armed: true,
    };
    // One world for the whole call: a scenario loaded meanwhile applies from the next call on.
    let world = state.app.world();
    let mut response = es2_call(state, &world, conn, function, request, &mut trace).await;
    announce_protocol(&mut response, &world.scenario);
    drop(world);
    // Journal first: a fault's delay may outlast the client, and the call has happened anyway.
    let fault = trace.fault_action.take();
    departure.seq = Some(trace.record(&state.app, conn, function, response.status(), started));
    if let Some(fault) = fault {
        if let Some(delay) = fault.delay {
            tokio::time::sleep(delay).await;
        }
        if fault.close {
            let mut dropped = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            dropped.extensions_mut().insert(CloseConnection);
            departure.disarm();
            return dropped;
        }
    }
    departure.disarm();
    response
}

/// What the journal and the metrics learn about one ES2+ call while it is handled.
#[derive(Default)]
struct Trace {
    request: Option<Bytes>,
    response: Option<Bytes>,
    operator: Option<std::sync::Arc<str>>,
    call_id: Option<String>,
    /// The ICCID the call is about: named in the request or allocated by it.
    iccid: Option<String>,
    status: Option<&'static str>,
    code: Option<crate::sgp22::StatusCode>,
    fault: Option<String>,
    fault_action: Option<crate::fault::FaultAction>,
    grades: Vec<Grade>,
    /// The client went away before its request was complete.
    disconnected: bool,
}

/// nginx's "client closed request": journaled when no answer could be sent.
const CLIENT_CLOSED_REQUEST: StatusCode = match StatusCode::from_u16(499) {
    Ok(s) => s,
    Err(_) => StatusCode::BAD_REQUEST,
};

/// Whether a body error means the connection ended (rather than a malformed body).
fn client_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) {
                return true;
            }
        }
        cause = e.source();
    }
    false
}

impl Trace {
    fn http_error(&mut self, status: StatusCode, message: impl Into<String>) -> Response {
        let message = message.into();
        self.response = Some(
            json!({ "error": status.canonical_reason().unwrap_or("error"),
                    "status": status.as_u16(), "message": message })
            .to_string()
            .into(),
        );
        http_error(status, message)
    }

    fn record(
        self,
        app: &App,
        conn: &ConnectionInfo,
        function: Function,
        http_status: StatusCode,
        started: Instant,
    ) -> u64 {
        let request = BodyText::new(self.request.as_deref().unwrap_or_default());
        let response = BodyText::new(self.response.as_deref().unwrap_or_default());
        let outcome = match self.status {
            Some(status) => crate::metrics::StatusLabel::Es2(status),
            None => crate::metrics::StatusLabel::Http(http_status.as_u16()),
        };
        app.metrics.request(function, outcome, self.code);
        // Conformance keeps an excerpt only with a failure; don't build one for every call.
        let excerpt = if self.grades.iter().any(|o| !o.passed) {
            request.to_string_lossy_prefix(300)
        } else {
            String::new()
        };
        let time = es2_timestamp_shared(app.clock.now());
        let seq = app.journal.record(JournalEntry {
            seq: 0,
            time: time.clone(),
            operator: self.operator.clone(),
            certificate_subject: conn.peer.as_ref().map(|p| p.subject.clone()),
            source_ip: conn.source_ip.clone(),
            function: function.name(),
            function_call_identifier: self.call_id,
            iccid: self.iccid,
            http_status: http_status.as_u16(),
            status: self.status,
            status_code: self.code.map(|c| format!("{}/{}", c.subject, c.reason)),
            fault: self.fault,
            request,
            response,
            elapsed_us: started.elapsed().as_micros() as u64,
            client_disconnected: self.disconnected.then_some(Disconnect::RequestIncomplete),
        });
        app.conformance.record(
            &self.grades,
            &conformance::Context {
                time,
                operator: self.operator,
                excerpt,
                journal_seq: Some(seq),
            },
        );
        seq
    }
}

impl Departure<'_> {
    fn disarm(mut self) {
        self.armed = false;
    }
}

/// Journals what became of a call whose client went away: hyper drops the request's future when
/// the connection closes, and this guard's drop is the only sign of it.
struct Departure<'a> {
    app: &'a App,
    conn: &'a ConnectionInfo,
    function: Function,
    started: Instant,
    /// `None` until the call is journaled; then the entry to mark.
    seq: Option<u64>,
    armed: bool,
}

impl Drop for Departure<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        match self.seq {
            // Carried out and journaled; the answer (held back by a fault delay) never left.
            Some(seq) => self.app.journal.annotate(seq, |e| {
                e.client_disconnected = Some(Disconnect::AnswerNotSent);
            }),
            // Dropped while the body was still arriving: everything before the body is read
            // is free of side effects, so nothing happened.
            None => {
                self.app.metrics.request(
                    self.function,
                    crate::metrics::StatusLabel::Http(CLIENT_CLOSED_REQUEST.as_u16()),
                    None,
                );
                self.app.journal.record(JournalEntry {
                    seq: 0,
                    time: es2_timestamp_shared(self.app.clock.now()),
                    operator: None,
                    certificate_subject: self.conn.peer.as_ref().map(|p| p.subject.clone()),
                    source_ip: self.conn.source_ip.clone(),
                    function: self.function.name(),
                    function_call_identifier: None,
                    iccid: None,
                    // nginx's "client closed request": no answer was sent.
                    http_status: 499,
                    status: None,
                    status_code: None,
                    fault: None,
                    request: BodyText::new(b""),
                    response: BodyText::new(b""),
                    elapsed_us: self.started.elapsed().as_micros() as u64,
                    client_disconnected: Some(Disconnect::RequestIncomplete),
                });
            }
        }
    }
}

async fn es2_call<B>(
    state: &RouterState,
    world: &std::sync::Arc<crate::app::World>,
    conn: &ConnectionInfo,
    function: Function,
    request: axum::http::Request<B>,
    trace: &mut Trace,
) -> Response
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let started = Instant::now();
    if request.method() != Method::POST {
        let mut response = trace.http_error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{function} is called with POST (SGP.22 §6.2)"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let headers = request.headers();
    if world.scenario.settings().conformance_strict {
        // Strict conformance: the HTTP checks refuse even where the strictness switches don't.
        let failed = |id: CheckId| trace.grades.iter().any(|o| o.check == id && !o.passed);
        if failed(CheckId::Http002) {
            return trace.http_error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type must be application/json (SGP.22 §6.2; conformance HTTP-002)",
            );
        }
        if failed(CheckId::Http003) || failed(CheckId::Http004) {
            return trace.http_error(
                StatusCode::BAD_REQUEST,
                "X-Admin-Protocol must be gsma/rsp/v2.x.y (SGP.22 §6.2; conformance HTTP-003/004)",
            );
        }
    }
    if world.scenario.settings().require_json_content_type && !is_json(headers) {
        return trace.http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json (SGP.22 §6.2)",
        );
    }
    if world.scenario.require_admin_protocol_header() {
        let announced = headers.get(&ADMIN_PROTOCOL).and_then(|v| v.to_str().ok());
        match announced {
            Some(v) if v.starts_with("gsma/rsp/v") => {}
            Some(v) => {
                return trace.http_error(
                    StatusCode::BAD_REQUEST,
                    format!("X-Admin-Protocol {v:?} does not have the form gsma/rsp/vX.Y.Z (SGP.22 §6.2)"),
                )
            }
            None => {
                return trace.http_error(
                    StatusCode::BAD_REQUEST,
                    "the X-Admin-Protocol header is missing (SGP.22 §6.2), e.g. X-Admin-Protocol: gsma/rsp/v2.5.0",
                )
            }
        }
    }
    let limit = state.limits.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return trace.http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        );
    }
    // The body gets the header-read deadline again: a client that sends a head and then stalls
    // must not hold its connection (and its connection slot) for ever.
    let reading = Limited::new(request.into_body(), limit).collect();
    let Ok(read) = tokio::time::timeout(state.limits.header_read_timeout, reading).await else {
        let mut refusal = trace.http_error(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the request body did not arrive within {:?}",
                state.limits.header_read_timeout
            ),
        );
        refusal
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return refusal;
    };
    let body: Bytes = match read {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return trace.http_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the request body is larger than {limit} bytes"),
            )
        }
        Err(e) if client_went_away(e.as_ref()) => {
            // The connection ended mid-body: nothing was done, and no answer can be sent.
            trace.disconnected = true;
            return trace.http_error(
                CLIENT_CLOSED_REQUEST,
                "the client disconnected before its request was complete",
            );
        }
        Err(e) => {
            return trace.http_error(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            )
        }
    };

    trace.request = Some(body.clone());
    let operator = conn
        .peer
        .as_ref()
        .and_then(|p| world.scenario.operator_for_certificate(p.names()));
    trace.operator = operator.map(|o| o.id.clone());
    trace.grades.push(Grade {
        check: CheckId::Tls002,
        passed: operator.is_some(),
        message: if operator.is_some() {
            String::new()
        } else {
            "the client certificate identifies no operator".into()
        },
    });
    // Parsed once, for grading, the journal and the function.
    let parsed_result = crate::json::parse(&body);
    let parsed = parsed_result.as_ref().ok();
    let named_iccid = parsed.and_then(|v| v.get("iccid")?.as_str());
    trace.iccid = named_iccid.map(str::to_owned);
    let before = named_iccid
        .and_then(|i| i.parse::<crate::ids::Iccid>().ok())
        .and_then(|i| world.store.get(i.key()));
    let call_id = parsed.and_then(|v| v.get("header")?.get("functionCallIdentifier")?.as_str());
    if let (Some(op), Some(call_id), Some(fp)) = (
        operator,
        call_id,
        parsed.and_then(|v| conformance::grade::fingerprint(function, v)),
    ) {
        trace
            .grades
            .push(state.app.conformance.call_identifier(&op.id, call_id, fp));
    }
    conformance::grade::parsed_body_into(
        &mut trace.grades,
        function,
        parsed,
        operator,
        before.as_ref(),
    );
    if let Some(op) = operator.filter(|op| !op.allows_source(conn.remote.ip())) {
        Counters::bump(&state.app.counters.requests_refused_source_ip);
        warn!(operator = %op.id, remote = %conn.remote, "source address not allowed for the operator");
        return trace.http_error(
            StatusCode::FORBIDDEN,
            format!(
                "operator {} may not connect from {} (allowedSourceIps)",
                op.id,
                conn.remote.ip()
            ),
        );
    }
    if world.scenario.settings().conformance_strict && operator.is_some() {
        // Strict conformance: an error-severity check the normal processing would let through
        // is refused, with the check id, before anything changes. Identity problems are left to
        // the normal answers (1.1 / 1.x), which say more.
        let refused = trace.grades.iter().find(|o| {
            !o.passed
                && !matches!(o.check, CheckId::Env002 | CheckId::Tls001 | CheckId::Tls002)
                && o.check.check().severity == conformance::catalog::Severity::Error
        });
        if let Some(f) = refused {
            let error = es2::status::Es2Error::invalid(f.check.as_str(), &f.message);
            let answer = es2::refusal_answer(error);
            trace.status = Some("Failed");
            trace.code = Some(crate::sgp22::FORMAT_INVALID);
            let answer = Bytes::from(answer);
            trace.response = Some(answer.clone());
            return (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Body::from(answer),
            )
                .into_response();
        }
    }
    let ctx = es2::Context {
        scenario: &world.scenario,
        store: &world.store,
        matching_ids: &world.matching_ids,
        operator,
        faults: &world.faults,
        now: state.app.clock.now(),
    };
    match es2::handle_parsed(function, parsed_result.as_ref(), &ctx) {
        Ok(mut answer) => {
            if let Some(profile) = answer.profile.take() {
                // DownloadOrder by profile type: the answer names the ICCID the request did not.
                trace.iccid.get_or_insert_with(|| profile.iccid.to_string());
                state
                    .app
                    .carry_out(world, &profile, std::mem::take(&mut answer.effects));
            }
            trace.call_id = answer
                .request_header
                .take()
                .map(|h| h.function_call_identifier);
            trace.status = Some(match answer.status {
                es2::wire::ExecutionStatus::ExecutedSuccess => "Executed-Success",
                es2::wire::ExecutionStatus::ExecutedWithWarning => "Executed-WithWarning",
                es2::wire::ExecutionStatus::Failed => "Failed",
                es2::wire::ExecutionStatus::Expired => "Expired",
            });
            trace.code = answer.error.as_ref().map(|e| e.code);
            // Shared with the HTTP answer below, not copied.
            let body = Bytes::from(std::mem::take(&mut answer.body));
            trace.response = Some(body.clone());
            if let Some(fault) = answer.fault.take() {
                info!(%function, fault = %fault.name, "fault rule fired");
                trace.fault = Some(fault.name.clone());
                if fault.close {
                    // No answer reaches the client: journal the call as unanswered.
                    trace.status = None;
                    trace.code = None;
                    trace.response = None;
                }
                trace.fault_action = Some(fault);
            }
            let call_id = trace.call_id.as_deref().unwrap_or("");
            match &answer.error {
                // Successes at debug: a log line per call is the largest cost under load, and the
                // journal (admin API) records every call anyway. Failures stay at info.
                None => debug!(
                    %function, operator = operator.map(|o| &*o.id), call_id,
                    elapsed_us = started.elapsed().as_micros() as u64, "Executed-Success"
                ),
                Some(e) => info!(
                    %function, operator = operator.map(|o| &*o.id), call_id,
                    code = %e.code, message = %e.message, "Failed"
                ),
            }
            (
                StatusCode::OK,
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                Body::from(body),
            )
                .into_response()
        }
        Err(e) => {
            warn!(%function, remote = %conn.remote, error = %e, "malformed ES2+ body");
            trace.http_error(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}
