//! Control of the test world: reset, scenario load, callback registration, the clock.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::{parse_body, AdminState};
use crate::api::{error, json_response, JsonBody, Segment};
use crate::app::{App, World};
use crate::clock::es2_timestamp;
use crate::exchange::error_body_with;
use crate::scenario::file::HumanDuration;
use crate::scenario::{Callback, Scenario};

pub(super) async fn reset(State(s): State<AdminState>) -> Response {
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

pub(super) async fn load_scenario(State(s): State<AdminState>, body: Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the scenario must be UTF-8 YAML");
    };
    let base = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let scenario = match Scenario::from_yaml_named("<PUT /admin/scenario>", text, &base) {
        Ok(s) => s,
        Err(errors) => {
            return json_response(
                StatusCode::BAD_REQUEST,
                &error_body_with(
                    400,
                    &errors
                        .0
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n"),
                    "diagnostics",
                    serde_json::to_value(&errors.0).unwrap_or_default(),
                ),
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

/// Body of `PUT /admin/operators/{id}/callback`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct CallbackBody {
    url: String,
    timeout: Option<HumanDuration>,
    max_attempts: Option<u32>,
    initial_backoff: Option<HumanDuration>,
    max_backoff: Option<HumanDuration>,
    client_certificate: Option<bool>,
}

pub(super) async fn register_callback(
    State(s): State<AdminState>,
    Segment(id): Segment,
    JsonBody(b): JsonBody<CallbackBody>,
) -> Response {
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

/// Body of `POST /admin/clock`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ClockBody {
    advance: HumanDuration,
}

pub(super) async fn clock(State(s): State<AdminState>, body: Bytes) -> Response {
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
