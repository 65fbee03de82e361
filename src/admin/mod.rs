//! The admin / test-control API: plain HTTP, loopback by default. Health, readiness, metrics,
//! scenario load and reset, profile inspection and set-up, device events, the journal, the
//! notification log, the clock, long-polls so tests never sleep-and-poll, the conformance
//! report, the dashboard and the OpenAPI document of every API.
//!
//! One file per concern; [`routes`] is the table the router and the OpenAPI document are built
//! from.

// Helpers return the finished HTTP answer as their error, which handlers pass straight on; it
// is large, but it is also the last thing a request allocates.
#![allow(clippy::result_large_err)]

mod auth;
mod conformance;
pub(crate) mod dashboard;
mod journal;
mod metrics;
pub mod openapi;
mod probe;
mod profiles;
mod world;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::MethodRouter;
use axum::Router;
use serde_json::json;

use crate::api::{error, json_response};
use crate::app::App;
use crate::pki::PkiDir;
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

/// Every admin route: method, path (axum syntax), handler; one entry per method and path.
pub fn routes() -> Vec<(Method, &'static str, MethodRouter<AdminState>)> {
    vec![
        route(Method::GET, "/health", health),
        route(Method::GET, "/ready", ready),
        route(Method::GET, "/metrics", metrics::exposition),
        route(Method::GET, "/openapi.json", openapi),
        route(Method::POST, "/admin/reset", world::reset),
        route(Method::PUT, "/admin/scenario", world::load_scenario),
        route(Method::GET, "/admin/profiles", profiles::list),
        route(Method::GET, "/admin/profiles/{iccid}", profiles::one),
        route(Method::PUT, "/admin/profiles/{iccid}", profiles::force),
        route(
            Method::POST,
            "/admin/profiles/{iccid}/events",
            profiles::device_event,
        ),
        route(
            Method::POST,
            "/admin/devices/{matchingId}/events",
            profiles::device_event_by_matching_id,
        ),
        route(Method::GET, "/admin/journal", journal::journal),
        route(Method::GET, "/admin/notifications", journal::notifications),
        route(
            Method::PUT,
            "/admin/operators/{id}/callback",
            world::register_callback,
        ),
        route(Method::POST, "/admin/clock", world::clock),
        route(Method::GET, "/admin/wait", journal::wait),
        route(Method::GET, "/admin/conformance", conformance::report),
        route(Method::POST, "/admin/conformance/reset", conformance::reset),
        route(Method::POST, "/admin/conformance/probe", conformance::probe),
        route(Method::GET, "/admin/summary", dashboard::summary_handler),
        route(Method::GET, "/", dashboard::page),
        route(Method::GET, "/admin/dashboard", dashboard::page),
        route(Method::GET, "/admin/dashboard/app.js", dashboard::script),
        route(Method::GET, "/admin/dashboard/style.css", dashboard::style),
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
/// every route but the open ones (`auth.rs`) needs it.
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
        .layer(axum::middleware::from_fn_with_state(
            token,
            auth::require_token,
        ))
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

async fn openapi() -> Response {
    json_response(StatusCode::OK, &openapi::document())
}

/// A JSON request body, or the 400 that says what is wrong with it and shows `example`.
pub(super) fn parse_body<T: serde::de::DeserializeOwned>(
    body: &[u8],
    example: &str,
) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("body: {e}; e.g. {example}"),
        )
    })
}
