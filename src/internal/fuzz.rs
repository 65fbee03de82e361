//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), kept here so that a refactor that
//! breaks them fails to compile, and so that `cargo test` runs them on random input
//! (`tests/in_process/fuzz_bodies.rs`). `cargo +nightly fuzz run es2_request` drives the same
//! functions with coverage guidance.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

use crate::app::{App, World};
use crate::caller::{CertificateIdentity, Peer};
use crate::clock::Clock;
use crate::es2::Es2;
use crate::http::router::EngineService;
use crate::http::Limits;
use crate::notify::transport::HttpTransport;
use crate::notify::Notifier;
use crate::pki::PkiDir;
use crate::profile::Profile;
use crate::scenario::Scenario;

/// The ES2+ listener's request path without TLS: router, body limits, the engine, the
/// platform API. One per thread, so that the before/after comparison of one input never sees
/// another thread's calls (libtest runs property tests in parallel).
struct Harness {
    runtime: tokio::runtime::Runtime,
    app: App,
    router: EngineService<Es2>,
    scenario: Arc<Scenario>,
    calls: Cell<u32>,
}

thread_local! {
    static HARNESS: Harness = harness();
}

fn harness() -> Harness {
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("a runtime for the fuzz harness: {e}"));
        let scenario = Arc::new(
            Scenario::default_scenario().unwrap_or_else(|e| panic!("the default scenario: {e}")),
        );
        let app = runtime.block_on(async {
            let transport = Arc::new(HttpTransport::new(PkiDir::new(std::env::temp_dir())));
            let notifier = Notifier::start(transport, 1000, 1000);
            App::new(scenario.clone(), Clock::system(), notifier, 100)
        });
        // A small body limit, so the 413 path is within reach of fuzz-sized inputs.
        let limits = Limits {
            max_body_bytes: 512,
            ..Limits::default()
        };
        let router = EngineService::new(
            Arc::new(Es2::new(app.clone())),
            crate::server::es2_listener_fallback(app.clone()),
            limits,
        );
        Harness {
            runtime,
            app,
            router,
            scenario,
            calls: Cell::new(0),
        }
    }
}

/// The paths the first input byte picks from: the four functions, an unknown one, the platform
/// API.
const PATHS: [&str; 8] = [
    "/gsma/rsp2/es2plus/downloadOrder",
    "/gsma/rsp2/es2plus/confirmOrder",
    "/gsma/rsp2/es2plus/cancelOrder",
    "/gsma/rsp2/es2plus/releaseProfile",
    "/gsma/rsp2/es2plus/unknownFunction",
    "/profiles?state=Available&limit=3",
    "/profile_types",
    "/profiles/8944500100000000004",
];

fn snapshot(app: &App) -> Vec<Profile> {
    let mut all = app.world().store.snapshot();
    all.sort_by_key(|p| p.iccid.key());
    all
}

/// Any request on the ES2+ listener gets a well-formed JSON answer, never a panic; an ES2+
/// answer is `Executed-Success` or `Failed`; a request that is not `Executed-Success` changes
/// no profile.
///
/// Input: byte 0 picks the path, byte 1 the method, the headers and the client's identity; the
/// rest is the body.
///
/// # Panics
///
/// When one of those properties does not hold: that is the finding.
pub fn es2_request(data: &[u8]) {
    let [path, flags, body @ ..] = data else {
        return;
    };
    HARNESS.with(|h| request(h, *path, *flags, body));
}

fn request(h: &Harness, path: u8, flags: u8, body: &[u8]) {
    // A fresh inventory now and then, so that orders do not use it up over a long run.
    let calls = h.calls.get().wrapping_add(1);
    h.calls.set(calls);
    if calls.is_multiple_of(256) {
        h.app.replace_world(World::new(h.scenario.clone()));
    }
    let path = PATHS[usize::from(path) % PATHS.len()];
    let method = if flags & 1 == 0 { "POST" } else { "GET" };
    let mut request = hyper::Request::builder().method(method).uri(path);
    request = match (flags >> 1) & 3 {
        0 => request.header("content-type", "application/json"),
        1 => request.header("content-type", "application/json;charset=UTF-8"),
        2 => request.header("content-type", "text/plain"),
        _ => request,
    };
    if flags & 8 == 0 {
        request = request.header(
            crate::sgp22::ADMIN_PROTOCOL_HEADER,
            crate::sgp22::ADMIN_PROTOCOL,
        );
    }
    let operator = match (flags >> 4) & 3 {
        0 => Some("test-mno"),
        1 => Some(if flags & 64 == 0 {
            "test-mno"
        } else {
            "nobody"
        }),
        2 => Some("other-mno"),
        _ => None,
    };
    let peer = Arc::new(Peer::new(
        SocketAddr::from(([127, 0, 0, 1], 40000)),
        operator.map(|cn| {
            Arc::new(CertificateIdentity {
                common_name: Some(cn.to_owned()),
                alt_names: Vec::new(),
                subject: format!("CN={cn}").into(),
                serial: "01".into(),
            })
        }),
    ));
    let Ok(request) = request.body(Full::new(Bytes::copy_from_slice(body))) else {
        return;
    };
    let before = snapshot(&h.app);
    let (status, bytes) = h.runtime.block_on(async {
        let response = h.router.call(request, &peer).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (status, bytes)
    });
    // Every answer is JSON (an ES2+ envelope, platform data, or an HTTP error object).
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status} {path}: not JSON ({e}): {bytes:?}"));
    assert!(json.is_object(), "{status}: {json}");
    let es2 = path.starts_with("/gsma");
    let outcome = &json["header"]["functionExecutionStatus"]["status"];
    if es2 && status == 200 {
        assert!(
            outcome == "Executed-Success" || outcome == "Failed",
            "{json}"
        );
    }
    let executed = es2 && status == 200 && outcome == "Executed-Success";
    if !executed {
        assert!(
            snapshot(&h.app) == before,
            "a refused request changed state: {json}"
        );
    }
}

/// Scenario parsing and checking never panics, whatever the text: it loads, or gives errors
/// that render with a place.
///
/// # Panics
///
/// When an error renders empty.
pub fn scenario_yaml(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        match Scenario::from_yaml(text) {
            Ok(s) => {
                let _ = s.profile_count();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
}
