//! HTTP routing for the ES2+ port: method, path, headers and size are checked here; anything
//! wrong at this level is an HTTP 4xx with a short JSON error (design.md §3), and everything
//! else goes to [`crate::es2::handle`] and is answered with HTTP 200.

use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use http_body_util::{BodyExt, Limited};
use serde_json::json;
use tracing::{info, warn};

use super::{CloseConnection, ConnectionInfo, Limits};
use crate::app::{App, Counters};
use crate::es2::{self, wire::ADMIN_PROTOCOL_HEADER, Function};

#[derive(Clone)]
struct RouterState {
    app: App,
    limits: Limits,
}

/// The router of the ES2+ listener.
pub fn es2_router(app: App, limits: Limits) -> Router {
    let state = RouterState { app, limits };
    Router::new()
        .route("/gsma/rsp2/es2plus/{function}", any(es2_endpoint))
        .fallback(not_found)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            add_admin_protocol,
        ))
        .with_state(state)
}

/// Every response, errors included, announces the SM-DP+'s protocol version (SGP.22 §6.2).
async fn add_admin_protocol(State(state): State<RouterState>, mut response: Response) -> Response {
    let world = state.app.world();
    if let Ok(value) = HeaderValue::from_str(world.scenario.admin_protocol()) {
        response.headers_mut().insert(ADMIN_PROTOCOL_HEADER, value);
    }
    response
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

async fn es2_endpoint(
    State(state): State<RouterState>,
    Extension(conn): Extension<ConnectionInfo>,
    request: Request,
) -> Response {
    let started = Instant::now();
    // Read the segment ourselves: axum's `Path` extractor would answer odd paths in plain text.
    let function = request
        .uri()
        .path()
        .strip_prefix(es2::PATH_PREFIX)
        .and_then(Function::from_path_segment);
    let Some(function) = function else {
        return not_found(request.method().clone(), request.uri().clone()).await;
    };
    if request.method() != Method::POST {
        let mut response = http_error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{function} is called with POST (SGP.22 §6.2)"),
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let world = state.app.world();
    let headers = request.headers();
    if world.scenario.settings().require_json_content_type && !is_json(headers) {
        return http_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Content-Type must be application/json (SGP.22 §6.2)",
        );
    }
    if world.scenario.require_admin_protocol_header() {
        let announced = headers
            .get(ADMIN_PROTOCOL_HEADER)
            .and_then(|v| v.to_str().ok());
        match announced {
            Some(v) if v.starts_with("gsma/rsp/v") => {}
            Some(v) => {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    format!("X-Admin-Protocol {v:?} does not have the form gsma/rsp/vX.Y.Z (SGP.22 §6.2)"),
                )
            }
            None => {
                return http_error(
                    StatusCode::BAD_REQUEST,
                    "the X-Admin-Protocol header is missing (SGP.22 §6.2), e.g. X-Admin-Protocol: gsma/rsp/v2.5.0",
                )
            }
        }
    }
    let limit = state.limits.max_body_bytes;
    let too_large = || {
        http_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body: Bytes = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return too_large(),
        Err(e) => {
            return http_error(
                StatusCode::BAD_REQUEST,
                format!("the request body could not be read: {e}"),
            )
        }
    };

    let operator = conn
        .peer
        .as_ref()
        .and_then(|p| world.scenario.operator_for_certificate(p.names()));
    if let Some(op) = operator.filter(|op| !op.allows_source(conn.remote.ip())) {
        Counters::bump(&state.app.counters.requests_refused_source_ip);
        warn!(operator = %op.id, remote = %conn.remote, "source address not allowed for the operator");
        return http_error(
            StatusCode::FORBIDDEN,
            format!(
                "operator {} may not connect from {} (allowedSourceIps)",
                op.id,
                conn.remote.ip()
            ),
        );
    }
    let ctx = es2::Context {
        scenario: &world.scenario,
        store: &world.store,
        matching_ids: &world.matching_ids,
        operator,
        faults: &world.faults,
        now: state.app.clock.now(),
    };
    match es2::handle(function, &body, &ctx) {
        Ok(mut answer) => {
            if let Some(profile) = answer.profile.take() {
                state
                    .app
                    .carry_out(&world, &profile, std::mem::take(&mut answer.effects));
            }
            if let Some(fault) = &answer.fault {
                info!(%function, fault = %fault.name, "fault rule fired");
                if let Some(delay) = fault.delay {
                    tokio::time::sleep(delay).await;
                }
                if fault.close {
                    let mut response = StatusCode::INTERNAL_SERVER_ERROR.into_response();
                    response.extensions_mut().insert(CloseConnection);
                    return response;
                }
            }
            let call_id = answer
                .request_header
                .as_ref()
                .map_or("", |h| h.function_call_identifier.as_str());
            match &answer.error {
                None => info!(
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
                Body::from(answer.body),
            )
                .into_response()
        }
        Err(e) => {
            warn!(%function, remote = %conn.remote, error = %e, "malformed ES2+ body");
            http_error(StatusCode::BAD_REQUEST, e.to_string())
        }
    }
}
