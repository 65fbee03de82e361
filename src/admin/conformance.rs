//! The conformance report of operator clients, and the probe of an operator's notification
//! endpoint.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::journal::check_known;
use super::{parse_body, AdminState};
use crate::api::{bad_parameter, error, json_response};

pub(super) async fn report(
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
        Some("text") => text(report.text()),
        Some(other) => bad_parameter("format", format!("{other:?}: use json, junit or text")),
    }
}

fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

pub(super) async fn reset(State(s): State<AdminState>) -> Response {
    s.app.conformance.reset();
    json_response(StatusCode::OK, &json!({ "reset": true }))
}

/// Body of `POST /admin/conformance/probe`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProbeBody {
    operator: String,
}

pub(super) async fn probe(
    State(s): State<AdminState>,
    Query(q): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_known(&q, &["format"]) {
        return r;
    }
    let as_text = match q.get("format").map(String::as_str) {
        None | Some("json") => false,
        Some("text") => true,
        Some(other) => return bad_parameter("format", format!("{other:?}: use json or text")),
    };
    let b: ProbeBody = match parse_body(&body, r#"{"operator": "test-mno"}"#) {
        Ok(b) => b,
        Err(refusal) => return refusal,
    };
    let transport = crate::notify::transport::HttpTransport::new(s.pki.clone());
    match super::probe::run(&s.app, &transport, &b.operator).await {
        Ok(steps) if as_text => {
            use std::fmt::Write;
            let mut out = format!(
                "Probe of operator {}'s notification endpoint:\n",
                b.operator
            );
            for step in &steps {
                let answer = match (step.status, &step.error) {
                    (Some(status), _) => format!("{status}, {} body bytes", step.body_bytes),
                    (None, Some(e)) => format!("no answer: {e}"),
                    (None, None) => "no answer".into(),
                };
                let _ = writeln!(out, "  {} -> {answer} in {} ms", step.step, step.latency_ms);
            }
            out.push('\n');
            out.push_str(&s.app.conformance.report().text());
            text(out)
        }
        Ok(steps) => json_response(
            StatusCode::OK,
            &json!({ "operator": b.operator, "steps": steps, "report": s.app.conformance.report() }),
        ),
        Err(e) => error(StatusCode::NOT_FOUND, e),
    }
}
