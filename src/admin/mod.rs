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
    /// Host names the admin API may be called by besides IP addresses and `localhost`.
    pub allowed_hosts: Arc<Vec<String>>,
    /// Where the server is in its life, for `/ready`.
    pub readiness: Readiness,
}

/// Where a server is in its life: `/ready` answers 200 only while it is [`Stage::Ready`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The scenario is loaded; the state file is being restored and the ES2+ listener started.
    Starting,
    /// The scenario is loaded, the state file restored and the ES2+ listener accepting.
    Ready,
    /// Shutdown has begun: no new connections; in-flight requests finish.
    Stopping,
}

impl Stage {
    fn describe(self) -> &'static str {
        match self {
            Stage::Starting => "starting: restoring the state file and starting the ES2+ listener",
            Stage::Ready => "ready",
            Stage::Stopping => "stopping: no new connections are accepted",
        }
    }
}

/// The shared [`Stage`] of one server.
#[derive(Clone, Debug)]
pub struct Readiness(Arc<std::sync::Mutex<Stage>>);

impl Default for Readiness {
    fn default() -> Self {
        Readiness(Arc::new(std::sync::Mutex::new(Stage::Starting)))
    }
}

impl Readiness {
    /// Moves to `stage`; a stopping server never becomes ready again.
    pub fn set(&self, stage: Stage) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if *now != Stage::Stopping {
            *now = stage;
        }
    }

    /// The stage now.
    pub fn stage(&self) -> Stage {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Every admin route: method, path (axum syntax), handler; one entry per method and path.
pub fn routes() -> Vec<Row> {
    vec![
        get("/health", health),
        get("/ready", ready),
        get("/metrics", metrics::exposition),
        get("/openapi.json", openapi),
        post("/admin/reset", world::reset),
        put("/admin/scenario", world::load_scenario),
        get("/admin/profiles", profiles::list),
        get("/admin/profiles/{iccid}", profiles::one),
        put("/admin/profiles/{iccid}", profiles::force),
        post("/admin/profiles/{iccid}/events", profiles::device_event),
        post(
            "/admin/devices/{matchingId}/events",
            profiles::device_event_by_matching_id,
        ),
        get("/admin/journal", journal::journal),
        get("/admin/notifications", journal::notifications),
        put("/admin/operators/{id}/callback", world::register_callback),
        post("/admin/clock", world::clock),
        get("/admin/wait", journal::wait),
        get("/admin/conformance", conformance::report),
        post("/admin/conformance/reset", conformance::reset),
        post("/admin/conformance/probe", conformance::probe),
        get("/admin/summary", dashboard::summary_handler),
        get("/", dashboard::page),
        get("/admin/dashboard", dashboard::page),
        get("/admin/dashboard/app.js", dashboard::script),
        get("/admin/dashboard/style.css", dashboard::style),
    ]
}

/// A `GET` row of the table.
fn get<H: axum::handler::Handler<T, AdminState>, T: 'static>(
    path: &'static str,
    handler: H,
) -> Row {
    route(Method::GET, path, handler)
}

/// A `PUT` row of the table.
fn put<H: axum::handler::Handler<T, AdminState>, T: 'static>(
    path: &'static str,
    handler: H,
) -> Row {
    route(Method::PUT, path, handler)
}

/// A `POST` row of the table.
fn post<H: axum::handler::Handler<T, AdminState>, T: 'static>(
    path: &'static str,
    handler: H,
) -> Row {
    route(Method::POST, path, handler)
}

/// One route: method, path (axum syntax), handler.
type Row = (Method, &'static str, MethodRouter<AdminState>);

/// One table row: the handler serves exactly `method` on `path`.
fn route<H, T>(method: Method, path: &'static str, handler: H) -> Row
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
    let policy = auth::BrowserPolicy {
        allowed_hosts: state.allowed_hosts.clone(),
    };
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
        // Outermost: a foreign page is refused before anything else looks at its request.
        .layer(axum::middleware::from_fn_with_state(
            policy,
            auth::browser_guard,
        ))
}

async fn health() -> Response {
    json_response(StatusCode::OK, &json!({ "status": "ok" }))
}

/// 200 once the scenario is loaded, the state file restored and the ES2+ listener accepting;
/// 503 (with what it waits for) before that and once shutdown has begun.
async fn ready(State(s): State<AdminState>) -> Response {
    let stage = s.readiness.stage();
    if stage != Stage::Ready {
        return json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({ "ready": false, "stage": stage.describe() }),
        );
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::notify::transport::HttpTransport;
    use crate::notify::Notifier;
    use crate::scenario::Scenario;
    use http_body_util::BodyExt;
    use tower_service::Service;

    async fn get(router: &mut Router, path: &str) -> (StatusCode, serde_json::Value) {
        let request = axum::http::Request::get(path)
            .header("host", "127.0.0.1:8080")
            .body(axum::body::Body::empty())
            .unwrap();
        let response = router.call(request).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    /// `/ready` is 503 while starting and once stopping, 200 only in between; `/health` is 200
    /// throughout.
    #[tokio::test]
    async fn ready_follows_the_stage() {
        let scenario = Arc::new(Scenario::default_scenario().unwrap());
        let dir = std::env::temp_dir();
        let transport = Arc::new(HttpTransport::new(PkiDir::new(&dir)));
        let app = App::new(
            scenario,
            Clock::system(),
            Notifier::start(transport, 10, 10),
            crate::journal::Capacity { es2: 10, es9: 10 },
        );
        let readiness = Readiness::default();
        let mut router = router(AdminState {
            app,
            pki: PkiDir::new(&dir),
            sans: Arc::default(),
            token: None,
            allowed_hosts: Arc::default(),
            readiness: readiness.clone(),
        });
        let (status, body) = get(&mut router, "/ready").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body["ready"], false);
        assert!(
            body["stage"].as_str().unwrap().contains("state file"),
            "{body}"
        );
        assert_eq!(get(&mut router, "/health").await.0, StatusCode::OK);

        readiness.set(Stage::Ready);
        let (status, body) = get(&mut router, "/ready").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["ready"], true);

        readiness.set(Stage::Stopping);
        readiness.set(Stage::Ready);
        let (status, body) = get(&mut router, "/ready").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(body["stage"].as_str().unwrap().starts_with("stopping"));
    }
}
