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

/// Sends `request` from `peer` through `router` on `runtime`: the answer's status and body.
fn send<E: crate::exchange::Engine>(
    runtime: &tokio::runtime::Runtime,
    router: &EngineService<E>,
    request: hyper::Request<Full<Bytes>>,
    peer: &Arc<Peer>,
) -> (hyper::StatusCode, Bytes) {
    runtime.block_on(async {
        let response = router.call(request, peer).await;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (status, bytes)
    })
}

/// A runtime for one thread and an application running the default scenario in it.
fn runtime_and_app() -> (tokio::runtime::Runtime, Arc<Scenario>, App) {
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
        App::new(
            scenario.clone(),
            Clock::system(),
            notifier,
            crate::journal::Capacity { es2: 100, es9: 100 },
        )
    });
    (runtime, scenario, app)
}

fn harness() -> Harness {
    {
        let (runtime, scenario, app) = runtime_and_app();
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
    let (status, bytes) = send(&h.runtime, &h.router, request, &peer);
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

/// The ES9+ listener's request path without TLS: router, body limits, the engine with the
/// SM-DP+'s credentials of a GSMA-style PKI made once in the temp dir. One per thread, as
/// for ES2+.
struct Es9Harness {
    runtime: tokio::runtime::Runtime,
    app: App,
    router: EngineService<crate::es9::Es9>,
    /// A Released order's MatchingID, so AuthenticateClient has something to find.
    matching_id: String,
    /// The `euiccInfo1` of an eUICC that trusts the harness's CI.
    euicc_info1: Vec<u8>,
}

thread_local! {
    static ES9_HARNESS: Es9Harness = es9_harness();
}

fn es9_harness() -> Es9Harness {
    let (runtime, _, app) = runtime_and_app();
    let credentials = es9_credentials();
    let ci = credentials
        .cis
        .first()
        .and_then(|c| c.subject_key_id.clone())
        .unwrap_or_default();
    let euicc_info1 =
        crate::rsp::message::EuiccInfo1::encode(crate::rsp::message::SVN, &[&ci], &[&ci]);
    // One Released order, as ES2+ DownloadOrder and ConfirmOrder(releaseFlag) leave it.
    let world = app.world();
    let matching_id = "FUZZ-ORDER-1".to_string();
    let mid: crate::ids::MatchingId = matching_id
        .parse()
        .unwrap_or_else(|e| panic!("a MatchingID: {e}"));
    let available = world
        .store
        .snapshot()
        .into_iter()
        .find(|p| p.state == crate::profile::ProfileState::Available)
        .unwrap_or_else(|| panic!("the default scenario has Available profiles"));
    let rules = world.scenario.rules();
    let events = [
        crate::profile::machine::Event::DownloadOrder { eid: None },
        crate::profile::machine::Event::ConfirmOrder(crate::profile::machine::Confirmation {
            eid: None,
            matching_id: crate::profile::OrderMatchingId::Id(mid),
            confirmation_code_hash: None,
            smds_address: None,
            release: true,
        }),
    ];
    runtime.block_on(async {
        for event in &events {
            app.commit(&world, available.iccid.key(), |p| {
                crate::profile::machine::transition(p, event, rules, app.clock.now())
            })
            .unwrap_or_else(|e| panic!("ordering the fuzz harness's profile: {e}"));
        }
    });
    let router = EngineService::new(
        Arc::new(crate::es9::Es9::new(
            app.clone(),
            credentials,
            crate::es9::Es9Config {
                address: "localhost:6444".into(),
                accepted_addresses: vec!["localhost:6444".into()],
                check_validity: true,
                sessions: crate::es9::session::Limits::default(),
            },
        )),
        crate::server::es9_listener_fallback(),
        Limits {
            max_body_bytes: 4096,
            ..Limits::default()
        },
    );
    Es9Harness {
        runtime,
        app,
        router,
        matching_id,
        euicc_info1,
    }
}

/// The SM-DP+'s credentials, made once per process (threads share the PKI directory).
fn es9_credentials() -> Arc<crate::pki::gsma::ServerCredentials> {
    static CREDENTIALS: std::sync::OnceLock<Arc<crate::pki::gsma::ServerCredentials>> =
        std::sync::OnceLock::new();
    CREDENTIALS
        .get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("smdpp-mock-fuzz-es9-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let pki = crate::pki::gsma::GsmaPki::new(&dir);
            pki.ensure(&["localhost".into()], crate::pki::gsma::SAMPLE_EID)
                .unwrap_or_else(|e| panic!("the fuzz harness's PKI: {e:#}"));
            let credentials = pki
                .server_credentials()
                .unwrap_or_else(|e| panic!("the fuzz harness's credentials: {e:#}"));
            let _ = std::fs::remove_dir_all(&dir);
            Arc::new(credentials)
        })
        .clone()
}

/// A new session's transactionId, from a valid InitiateAuthentication.
fn es9_session(h: &Es9Harness) -> String {
    let body = serde_json::json!({
        "smdpAddress": "localhost:6444",
        "euiccChallenge": crate::rsp::crypto::base64_encode(&[7; 16]),
        "euiccInfo1": crate::rsp::crypto::base64_encode(&h.euicc_info1),
    });
    let request = hyper::Request::builder()
        .method("POST")
        .uri(ES9_PATHS[0])
        .header("content-type", "application/json")
        .header(crate::sgp22::ADMIN_PROTOCOL_HEADER, "gsma/rsp/v2.2.0")
        .body(Full::new(Bytes::from(body.to_string())));
    let Ok(request) = request else {
        return String::new();
    };
    let peer = Arc::new(Peer::new(SocketAddr::from(([127, 0, 0, 1], 40001)), None));
    let (_, bytes) = send(&h.runtime, &h.router, request, &peer);
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let tid = json["transactionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        !tid.is_empty(),
        "a valid InitiateAuthentication failed: {json}"
    );
    tid
}

/// The ES9+ functions the first input byte picks from, and a path that is none.
const ES9_PATHS: [&str; 6] = [
    "/gsma/rsp2/es9plus/initiateAuthentication",
    "/gsma/rsp2/es9plus/authenticateClient",
    "/gsma/rsp2/es9plus/getBoundProfilePackage",
    "/gsma/rsp2/es9plus/handleNotification",
    "/gsma/rsp2/es9plus/cancelSession",
    "/gsma/rsp2/es9plus/nothing",
];

/// The MatchingID of the harness's Released order, for inputs that want to reach it.
pub fn es9_matching_id() -> String {
    ES9_HARNESS.with(|h| h.matching_id.clone())
}

/// Any request into the ES9+ listener's request path (JSON, base64, BER-TLV, certificates,
/// signatures, the five functions) gets a well-formed answer, never a panic: `Executed-Success`
/// or `Failed` over HTTP 200, 204 for a notification, or a JSON HTTP error; and a request that
/// is not `Executed-Success` changes no profile.
///
/// Input: byte 0 picks the path, byte 1 the method and headers; the rest is the body.
///
/// # Panics
///
/// When one of those properties does not hold: that is the finding.
pub fn es9_request(data: &[u8]) {
    let [path, flags, body @ ..] = data else {
        return;
    };
    ES9_HARNESS.with(|h| es9_call(h, *path, *flags, body));
}

/// The `transactionId` input may name "SESSION": a session the harness starts with a valid
/// InitiateAuthentication, so the later functions get past the session lookup.
const SESSION_PLACEHOLDER: &[u8] = b"\"SESSION\"";

fn es9_call(h: &Es9Harness, path: u8, flags: u8, body: &[u8]) {
    let path = ES9_PATHS[usize::from(path) % ES9_PATHS.len()];
    let body = match body
        .windows(SESSION_PLACEHOLDER.len())
        .position(|w| w == SESSION_PLACEHOLDER)
    {
        Some(at) => {
            let tid = es9_session(h);
            [
                &body[..at],
                format!("\"{tid}\"").as_bytes(),
                &body[at + SESSION_PLACEHOLDER.len()..],
            ]
            .concat()
        }
        None => body.to_vec(),
    };
    let method = if flags & 1 == 0 { "POST" } else { "PUT" };
    let mut request = hyper::Request::builder().method(method).uri(path);
    if flags & 2 == 0 {
        request = request.header("content-type", "application/json");
    }
    if flags & 4 == 0 {
        request = request.header(crate::sgp22::ADMIN_PROTOCOL_HEADER, "gsma/rsp/v2.2.0");
    }
    let peer = Arc::new(Peer::new(SocketAddr::from(([127, 0, 0, 1], 40001)), None));
    let Ok(request) = request.body(Full::new(Bytes::from(body))) else {
        return;
    };
    let before = snapshot(&h.app);
    let (status, bytes) = send(&h.runtime, &h.router, request, &peer);
    if status == 204 {
        assert!(bytes.is_empty(), "204 with a body: {bytes:?}");
        assert!(
            snapshot(&h.app) == before,
            "a notification that cannot verify changed state"
        );
        return;
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status} {path}: not JSON ({e}): {bytes:?}"));
    assert!(json.is_object(), "{status}: {json}");
    let outcome = &json["header"]["functionExecutionStatus"]["status"];
    if status == 200 {
        assert!(
            outcome == "Executed-Success" || outcome == "Failed",
            "{json}"
        );
    }
    if !(status == 200 && outcome == "Executed-Success") {
        assert!(
            snapshot(&h.app) == before,
            "a refused request changed state: {json}"
        );
    }
}
