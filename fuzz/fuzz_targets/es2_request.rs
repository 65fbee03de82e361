//! Any request into the ES2+ router (the code behind the TLS listener: envelope and field
//! parsing, the four functions, grading, journal, the platform API) gets a well-formed answer,
//! never a panic, and a request that is not `Executed-Success` changes no profile.
//!
//! Input: byte 0 picks the path, byte 1 the method, headers and client identity, the rest is
//! the body.
#![no_main]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use smdpp_mock::app::App;
use smdpp_mock::clock::Clock;
use smdpp_mock::http::tls::PeerIdentity;
use smdpp_mock::http::{router::es2_router, ConnectionInfo, Limits};
use smdpp_mock::notify::transport::HttpTransport;
use smdpp_mock::notify::Notifier;
use smdpp_mock::pki::PkiDir;
use smdpp_mock::scenario::Scenario;
use tower_service::Service;

struct Harness {
    runtime: tokio::runtime::Runtime,
    app: App,
    router: axum::Router,
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let app = runtime.block_on(async {
            let scenario = Arc::new(Scenario::default_scenario().unwrap());
            let transport = Arc::new(HttpTransport::new(PkiDir::new(std::env::temp_dir())));
            let notifier = Notifier::start_dedicated(transport, 1000, 1000).unwrap();
            App::new(scenario, Clock::system(), notifier, 100)
        });
        // A small body limit, so the 413 path is within reach of fuzz-sized inputs.
        let limits = Limits {
            max_body_bytes: 512,
            ..Limits::default()
        };
        let router = es2_router(app.clone(), limits);
        Harness { runtime, app, router }
    })
}

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

fn snapshot(app: &App) -> Vec<smdpp_mock::profile::Profile> {
    let mut all = app.world().store.snapshot();
    all.sort_by_key(|p| p.iccid.key());
    all
}

fuzz_target!(|data: &[u8]| {
    let [path, flags, body @ ..] = data else {
        return;
    };
    let h = harness();
    let path = PATHS[usize::from(*path) % PATHS.len()];
    let method = if flags & 1 == 0 { "POST" } else { "GET" };
    let mut request = hyper::Request::builder().method(method).uri(path);
    request = match (flags >> 1) & 3 {
        0 => request.header("content-type", "application/json"),
        1 => request.header("content-type", "application/json;charset=UTF-8"),
        2 => request.header("content-type", "text/plain"),
        _ => request,
    };
    if flags & 8 == 0 {
        request = request.header("x-admin-protocol", "gsma/rsp/v2.5.0");
    }
    let operator = match (flags >> 4) & 3 {
        0 | 1 => Some("test-mno"),
        2 => Some("other-mno"),
        _ => None,
    };
    let peer = operator.map(|cn| {
        Arc::new(PeerIdentity {
            common_name: Some(cn.to_owned()),
            alt_names: Vec::new(),
            subject: format!("CN={cn}"),
            serial: "01".into(),
        })
    });
    let mut request = request
        .body(axum::body::Body::from(body.to_vec()))
        .unwrap();
    request.extensions_mut().insert(ConnectionInfo {
        remote: SocketAddr::from(([127, 0, 0, 1], 40000)),
        source_ip: Arc::from("127.0.0.1"),
        peer,
    });
    let before = snapshot(&h.app);
    let (status, bytes) = h.runtime.block_on(async {
        let response = h.router.clone().call(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (status, bytes)
    });
    // Every answer is JSON (ES2+ envelope, platform data, or an HTTP error object).
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status} {path}: not JSON ({e}): {bytes:?}"));
    assert!(json.is_object(), "{status}: {json}");
    let executed = status == 200
        && path.starts_with("/gsma")
        && json["header"]["functionExecutionStatus"]["status"] == "Executed-Success";
    if path.starts_with("/gsma") && status == 200 {
        let s = &json["header"]["functionExecutionStatus"]["status"];
        assert!(s == "Executed-Success" || s == "Failed", "{json}");
    }
    if !executed {
        assert!(snapshot(&h.app) == before, "a refused request changed state: {json}");
    }
});
