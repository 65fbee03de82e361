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
                registered_id: None,
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
    let euicc_info1 = smdpp_rsp::es10b::EuiccInfo1::encode(smdpp_rsp::es10b::SVN, &[&ci], &[&ci]);
    let matching_id = release_order(&runtime, &app);
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

/// One Released order in the current world, as ES2+ DownloadOrder and ConfirmOrder
/// (releaseFlag) leave it: its MatchingID.
fn release_order(runtime: &tokio::runtime::Runtime, app: &App) -> String {
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
    matching_id
}

/// The SM-DP+'s credentials, made once per process (threads share the PKI directory).
fn es9_credentials() -> Arc<smdpp_rsp::pki::ServerCredentials> {
    es9_pki().0.clone()
}

/// The test eUICC of the harness's PKI, as bytes: a fresh card for every input.
struct CardMaterial {
    certificate: Vec<u8>,
    key_pem: String,
    eum: Vec<u8>,
    ci: Vec<u8>,
}

/// A new card with the harness PKI's sample eUICC.
fn es9_card() -> smdpp_rsp::euicc::Euicc {
    let m = &es9_pki().1;
    let credentials = smdpp_rsp::pki::EuiccCredentials {
        certificate: m.certificate.clone(),
        key: smdpp_rsp::crypto::SigningKey::from_pem(&m.key_pem)
            .unwrap_or_else(|e| panic!("the harness eUICC's key: {e}")),
        eum: m.eum.clone(),
        ci: m.ci.clone(),
    };
    smdpp_rsp::euicc::Euicc::new(credentials).unwrap_or_else(|e| panic!("the harness eUICC: {e}"))
}

/// The SM-DP+'s credentials and its sample eUICC, made once per process.
fn es9_pki() -> &'static (Arc<smdpp_rsp::pki::ServerCredentials>, CardMaterial) {
    static PKI: std::sync::OnceLock<(Arc<smdpp_rsp::pki::ServerCredentials>, CardMaterial)> =
        std::sync::OnceLock::new();
    PKI.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("smdpp-mock-fuzz-es9-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let pki = smdpp_rsp::pki::GsmaPki::new(&dir);
        pki.ensure(&["localhost".into()], smdpp_rsp::pki::SAMPLE_EID)
            .unwrap_or_else(|e| panic!("the fuzz harness's PKI: {e:#}"));
        let credentials = pki
            .server_credentials()
            .unwrap_or_else(|e| panic!("the fuzz harness's credentials: {e:#}"));
        let card = pki
            .sample_euicc()
            .unwrap_or_else(|e| panic!("the fuzz harness's eUICC: {e:#}"));
        let material = CardMaterial {
            certificate: card.certificate,
            key_pem: card.key.to_pem(),
            eum: card.eum,
            ci: card.ci,
        };
        let _ = std::fs::remove_dir_all(&dir);
        (Arc::new(credentials), material)
    })
}

/// A new session's transactionId, from a valid InitiateAuthentication.
fn es9_start_session(h: &Es9Harness) -> String {
    let body = serde_json::json!({
        "smdpAddress": "localhost:6444",
        "euiccChallenge": smdpp_rsp::crypto::base64_encode(&[7; 16]),
        "euiccInfo1": smdpp_rsp::crypto::base64_encode(&h.euicc_info1),
    });
    es9_valid(h, "initiateAuthentication", &body)["transactionId"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The ES9+ functions the first input byte picks from, a path that is none, and the ASN.1
/// binding's one path (SGP.22 §6.6), whose body is DER.
const ES9_PATHS: [&str; 7] = [
    "/gsma/rsp2/es9plus/initiateAuthentication",
    "/gsma/rsp2/es9plus/authenticateClient",
    "/gsma/rsp2/es9plus/getBoundProfilePackage",
    "/gsma/rsp2/es9plus/handleNotification",
    "/gsma/rsp2/es9plus/cancelSession",
    "/gsma/rsp2/es9plus/nothing",
    smdpp_rsp::es9::PATH,
];

/// The MatchingID of the harness's Released order, for inputs that want to reach it.
pub fn es9_matching_id() -> String {
    ES9_HARNESS.with(|h| h.matching_id.clone())
}

/// Any request into the ES9+ listener's request path (JSON, base64, BER-TLV, certificates,
/// signatures, the five functions) gets a well-formed answer, never a panic: `Executed-Success`
/// or `Failed` over HTTP 200 (on the ASN.1 path, a DER `RemoteProfileProvisioningResponse`: its
/// `…Ok` or its error INTEGER), 204 for a notification, or a JSON HTTP error; and a request that
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
            let tid = es9_start_session(h);
            [
                &body[..at],
                format!("\"{tid}\"").as_bytes(),
                &body[at + SESSION_PLACEHOLDER.len()..],
            ]
            .concat()
        }
        None => body.to_vec(),
    };
    let asn1 = path == smdpp_rsp::es9::PATH;
    let method = if flags & 1 == 0 { "POST" } else { "PUT" };
    let mut request = hyper::Request::builder().method(method).uri(path);
    if flags & 2 == 0 {
        let media = if asn1 {
            smdpp_rsp::es9::CONTENT_TYPE
        } else {
            "application/json"
        };
        request = request.header("content-type", media);
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
    if asn1 && status == 200 {
        if !asn1_succeeded(&bytes) {
            assert!(
                snapshot(&h.app) == before,
                "a refused request changed state"
            );
        }
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

/// Whether a DER answer of the ASN.1 binding is a function's `…Ok` (`A2 { tag { A0 … } }`)
/// rather than its error INTEGER (`81`); anything else is the finding.
fn asn1_succeeded(der: &[u8]) -> bool {
    let alternative = smdpp_rsp::tlv::read_tagged(der, 0xA2)
        .and_then(|envelope| smdpp_rsp::tlv::read_exact(envelope.value))
        .and_then(|response| smdpp_rsp::tlv::read_exact(response.value))
        .unwrap_or_else(|e| panic!("not a RemoteProfileProvisioningResponse ({e}): {der:02X?}"));
    assert!(
        [0xA0, 0x81].contains(&alternative.tag),
        "neither …Ok nor an error: {der:02X?}"
    );
    alternative.tag == 0xA0
}

// ---- ES9+ with a real session: the message under test is the only thing changed ----------

/// The message of a download the structure-aware target changes, by the input's first byte:
/// the eUICC's, on its way to the SM-DP+ (ES9+), or the SM-DP+'s, on its way to the eUICC
/// (ES10b).
pub const ES9_STEPS: [&str; 7] = [
    "authenticateClient",
    "getBoundProfilePackage",
    "handleNotification",
    "cancelSession",
    "ES10b.AuthenticateServer",
    "ES10b.PrepareDownload",
    "ES10b.LoadBoundProfilePackage",
];

/// What one structure-aware input got: the function, and its answer in short
/// (`Executed-Success`, `Failed 8.1 / 6.1`, `HTTP 400`, `204`), for reports of which checks
/// the inputs reach.
pub type Reached = (&'static str, String);

/// A download driven for real up to one function — a fresh Released order, a new session with
/// the harness's test eUICC, every earlier message valid and signed — whose message is then
/// changed by the input and sent: the eUICC's `authenticateServerResponse`,
/// `prepareDownloadResponse`, installation result or `cancelSessionResponse` to the SM-DP+, or
/// the SM-DP+'s AuthenticateServer, PrepareDownload or one piece of the Bound Profile Package
/// to the eUICC. So every ES9+ and ES10b parser and check gets input, past the signatures that
/// random bytes never carry. The SM-DP+'s answer must be well-formed, and a request that is
/// not `Executed-Success` must change no profile (for the 204 of HandleNotification: a changed
/// installation result must never be applied); the eUICC must answer, and never install a
/// changed package.
///
/// Input: byte 0 picks the function ([`ES9_STEPS`]), byte 1 a CancelSession's reason and
/// whether it comes before or after GetBoundProfilePackage; the rest, in threes, the changes:
/// `(kind, a, b)` flips a bit of the byte at `a·256+b` (modulo the length), sets it to a
/// different value, truncates there, or inserts `b` there.
///
/// # Panics
///
/// When one of those properties does not hold: that is the finding.
pub fn es9_session(data: &[u8]) -> Option<Reached> {
    let [step, options, changes @ ..] = data else {
        return None;
    };
    ES9_HARNESS
        .with(|h| es9_session_step(h, usize::from(*step) % ES9_STEPS.len(), *options, changes))
}

/// POSTs `body` to the ES9+ `function` of the harness: the status and the body.
fn es9_post(
    h: &Es9Harness,
    function: &str,
    body: &serde_json::Value,
) -> (hyper::StatusCode, Bytes) {
    let request = hyper::Request::builder()
        .method("POST")
        .uri(format!("/gsma/rsp2/es9plus/{function}"))
        .header("content-type", "application/json")
        .header(crate::sgp22::ADMIN_PROTOCOL_HEADER, "gsma/rsp/v2.2.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_else(|e| panic!("a request: {e}"));
    let peer = Arc::new(Peer::new(SocketAddr::from(([127, 0, 0, 1], 40002)), None));
    send(&h.runtime, &h.router, request, &peer)
}

/// A valid call's JSON answer, which must be `Executed-Success`.
fn es9_valid(h: &Es9Harness, function: &str, body: &serde_json::Value) -> serde_json::Value {
    let (status, bytes) = es9_post(h, function, body);
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    assert!(
        status == 200 && json["header"]["functionExecutionStatus"]["status"] == "Executed-Success",
        "the valid {function} of the structure-aware harness failed: {status} {json}"
    );
    json
}

fn b64_field(json: &serde_json::Value, name: &str) -> Vec<u8> {
    smdpp_rsp::crypto::base64_decode(json[name].as_str().unwrap_or_default()).unwrap_or_default()
}

/// `valid` changed as the input says; never equal to it. Half the changes flip one bit (what
/// keeps a message's structure and so reaches the checks behind it), the others set a byte,
/// truncate or insert.
fn changed(valid: &[u8], changes: &[u8]) -> Vec<u8> {
    let mut out = valid.to_vec();
    for op in changes.chunks_exact(3).take(8) {
        let at = (usize::from(op[1]) << 8 | usize::from(op[2])) % out.len().max(1);
        match op[0] % 6 {
            0..=2 if !out.is_empty() => out[at] ^= 1 << (op[0] % 8),
            3 if !out.is_empty() => {
                let value = op[2] ^ op[1];
                out[at] = if value == out[at] {
                    value ^ 0x01
                } else {
                    value
                };
            }
            4 if at > 0 => out.truncate(at),
            _ => out.insert(at.min(out.len()), op[2]),
        }
    }
    if out == valid {
        match out.last_mut() {
            Some(last) => *last ^= 0x01,
            None => out.push(0),
        }
    }
    out
}

/// One input of [`es9_session`]: the download driven with valid messages up to `step`, whose
/// message is then changed and sent (the order of the steps is the order of the download).
fn es9_session_step(h: &Es9Harness, step: usize, options: u8, changes: &[u8]) -> Option<Reached> {
    use serde_json::json;
    let b64 = smdpp_rsp::crypto::base64_encode;
    let mut session = Es9Session::begin(h)?;
    let tid = session.tid.clone();
    if step == 0 {
        return Some(send_changed(
            h,
            "authenticateClient",
            "authenticateServerResponse",
            &session.authenticated,
            changes,
            Some(&tid),
        ));
    }
    if step == 4 {
        let answer = session
            .card
            .transmit(&changed(&session.authenticate, changes));
        return Some((ES9_STEPS[4], authenticate_server_outcome(&answer)));
    }
    let prepare = session.prepare_download_request(h)?;
    if step == 5 {
        let answer = session.card.transmit(&changed(&prepare, changes));
        return Some((ES9_STEPS[5], prepare_download_outcome(&answer)));
    }
    let prepared = session.card.transmit(&prepare);
    if step == 1 {
        return Some(send_changed(
            h,
            "getBoundProfilePackage",
            "prepareDownloadResponse",
            &prepared,
            changes,
            Some(&tid),
        ));
    }
    // CancelSession before GetBoundProfilePackage (bit 7 of `options` clear) or after it.
    if step == 3 && options & 0x80 == 0 {
        return Some(session.send_changed_cancel(h, options, changes));
    }
    let bound = es9_valid(
        h,
        "getBoundProfilePackage",
        &json!({ "transactionId": tid, "prepareDownloadResponse": b64(&prepared) }),
    );
    if step == 3 {
        return Some(session.send_changed_cancel(h, options, changes));
    }
    let commands = smdpp_rsp::bpp::es10_commands(&b64_field(&bound, "boundProfilePackage")).ok()?;
    if step == 6 {
        let outcome = changed_package_outcome(&mut session.card, commands, options, changes);
        return Some((ES9_STEPS[6], outcome));
    }
    let result = commands
        .iter()
        .map(|c| session.card.transmit(c))
        .find(|answer| !answer.is_empty())?;
    Some(send_changed(
        h,
        "handleNotification",
        "pendingNotification",
        &result,
        changes,
        None,
    ))
}

/// A download session of [`es9_session`], driven with valid messages so far.
struct Es9Session {
    /// The harness's test eUICC.
    card: smdpp_rsp::euicc::Euicc,
    /// The session's transactionId, as InitiateAuthentication gave it.
    tid: String,
    /// The ES10b.AuthenticateServer request built from InitiateAuthentication's answer.
    authenticate: Vec<u8>,
    /// The eUICC's answer to it.
    authenticated: Vec<u8>,
}

impl Es9Session {
    /// A fresh world with one Released order (every input starts from the same state), a new
    /// session opened with InitiateAuthentication, and the eUICC's AuthenticateServer.
    fn begin(h: &Es9Harness) -> Option<Es9Session> {
        use smdpp_rsp::es10b::{AuthenticateServerRequest, CtxParams1};
        use smdpp_rsp::tlv;
        let b64 = smdpp_rsp::crypto::base64_encode;
        h.app
            .replace_world(World::new(h.app.world().scenario.clone()));
        let matching_id = release_order(&h.runtime, &h.app);
        let mut card = es9_card();
        let challenge = card.transmit(&[0xBF, 0x2E, 0x00]);
        let info1 = card.transmit(&[0xBF, 0x20, 0x00]);
        let initiated = es9_valid(
            h,
            "initiateAuthentication",
            &serde_json::json!({ "smdpAddress": "localhost:6444",
                     "euiccChallenge": b64(challenge.get(5..21)?),
                     "euiccInfo1": b64(&info1) }),
        );
        let tid = initiated["transactionId"].as_str()?.to_owned();
        let signature1 = b64_field(&initiated, "serverSignature1");
        let authenticate = AuthenticateServerRequest::encode(
            &b64_field(&initiated, "serverSigned1"),
            tlv::read_tagged(&signature1, 0x5F37).ok()?.value,
            &b64_field(&initiated, "euiccCiPKIdToBeUsed"),
            &b64_field(&initiated, "serverCertificate"),
            &CtxParams1::encode(Some(&matching_id), [0x35, 0x29, 0x06, 0x11]),
        );
        let authenticated = card.transmit(&authenticate);
        Some(Es9Session {
            card,
            tid,
            authenticate,
            authenticated,
        })
    }

    /// AuthenticateClient with the eUICC's valid answer, and the ES10b.PrepareDownload request
    /// built from what the SM-DP+ answers.
    fn prepare_download_request(&self, h: &Es9Harness) -> Option<Vec<u8>> {
        use smdpp_rsp::es10b::PrepareDownloadRequest;
        use smdpp_rsp::tlv;
        let b64 = smdpp_rsp::crypto::base64_encode;
        let client = es9_valid(
            h,
            "authenticateClient",
            &serde_json::json!({ "transactionId": self.tid,
                                 "authenticateServerResponse": b64(&self.authenticated) }),
        );
        let signature2 = b64_field(&client, "smdpSignature2");
        Some(PrepareDownloadRequest::encode(
            &b64_field(&client, "smdpSigned2"),
            tlv::read_tagged(&signature2, 0x5F37).ok()?.value,
            None,
            &b64_field(&client, "smdpCertificate"),
        ))
    }

    /// The eUICC's ES10b.CancelSession answer, with the reason `options` picks, changed and
    /// sent to ES9+ CancelSession.
    fn send_changed_cancel(&mut self, h: &Es9Harness, options: u8, changes: &[u8]) -> Reached {
        use smdpp_rsp::tlv;
        let tid_bytes = smdpp_rsp::crypto::hex_decode(&self.tid).unwrap_or_default();
        let cancelled = self.card.transmit(&tlv::constructed(
            0xBF41,
            &[
                &tlv::encode(0x80, &tid_bytes),
                &tlv::encode(0x81, &[options % 6]),
            ],
        ));
        send_changed(
            h,
            "cancelSession",
            "cancelSessionResponse",
            &cancelled,
            changes,
            Some(&self.tid),
        )
    }
}

/// Sends `valid` changed by `changes` as `field` of the ES9+ `function` (with the session's
/// transactionId when given), and checks the answer: a 204 has no body and applied nothing,
/// anything else is JSON, and a call that is not `Executed-Success` changed no profile.
fn send_changed(
    h: &Es9Harness,
    function: &'static str,
    field: &str,
    valid: &[u8],
    changes: &[u8],
    tid: Option<&str>,
) -> Reached {
    let mut body = serde_json::Map::new();
    if let Some(tid) = tid {
        body.insert("transactionId".into(), serde_json::json!(tid));
    }
    let b64 = smdpp_rsp::crypto::base64_encode;
    body.insert(
        field.into(),
        serde_json::json!(b64(&changed(valid, changes))),
    );
    let before = snapshot(&h.app);
    let (status, bytes) = es9_post(h, function, &serde_json::Value::Object(body));
    if status == 204 {
        assert!(bytes.is_empty(), "204 with a body: {bytes:?}");
        assert!(
            snapshot(&h.app) == before,
            "a changed installation result was applied"
        );
        return (function, "204".to_owned());
    }
    let json: serde_json::Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{status} {function}: not JSON ({e}): {bytes:?}"));
    let outcome = es9_outcome(status, &json);
    if outcome != "Executed-Success" {
        assert!(
            snapshot(&h.app) == before,
            "a refused {function} changed state: {json}"
        );
    }
    (function, outcome)
}

/// An ES9+ JSON answer in short: `Executed-Success`, `Failed <subject> / <reason>`, or the
/// HTTP status of an answer without an execution status (which must not be 200).
fn es9_outcome(status: hyper::StatusCode, json: &serde_json::Value) -> String {
    let execution = &json["header"]["functionExecutionStatus"];
    match execution["status"].as_str() {
        Some("Executed-Success") if status == 200 => "Executed-Success".to_owned(),
        Some("Failed") if status == 200 => format!(
            "Failed {} / {}",
            execution["statusCodeData"]["subjectCode"]
                .as_str()
                .unwrap_or_default(),
            execution["statusCodeData"]["reasonCode"]
                .as_str()
                .unwrap_or_default()
        ),
        _ => {
            assert!(status != 200, "200 without an execution status: {json}");
            format!("HTTP {}", status.as_u16())
        }
    }
}

/// The eUICC's answer to a changed ES10b.AuthenticateServer, in short.
fn authenticate_server_outcome(answer: &[u8]) -> String {
    use smdpp_rsp::es10b::AuthenticateServerResponse as R;
    let parsed = R::parse(answer).ok().map(|r| match r {
        R::Ok { .. } => "authenticateResponseOk".to_owned(),
        R::Error { code, .. } => format!("authenticateErrorCode {code}"),
    });
    es10_outcome(ES9_STEPS[4], 0xBF38, answer, parsed)
}

/// The eUICC's answer to a changed ES10b.PrepareDownload, in short.
fn prepare_download_outcome(answer: &[u8]) -> String {
    use smdpp_rsp::es10b::PrepareDownloadResponse as R;
    let parsed = R::parse(answer).ok().map(|r| match r {
        R::Ok { .. } => "downloadResponseOk".to_owned(),
        R::Error { code, .. } => format!("downloadErrorCode {code}"),
    });
    es10_outcome(ES9_STEPS[5], 0xBF21, answer, parsed)
}

/// The answer to a changed ES10b request of `function`, whose own answer has `tag`: `parsed`
/// when it is that answer; otherwise the change made it another function, or none (the APDU
/// layer then answers a status word alone). Anything else is a finding.
fn es10_outcome(function: &str, tag: u32, answer: &[u8], parsed: Option<String>) -> String {
    if let Some(outcome) = parsed {
        return outcome;
    }
    if answer.is_empty() {
        return "no ES10 answer (no such function)".to_owned();
    }
    match smdpp_rsp::tlv::read_header(answer) {
        Ok((other, _, _)) if other != tag => "another function's answer".to_owned(),
        _ => panic!("{function} answered what it cannot: {answer:02X?}"),
    }
}

/// The Bound Profile Package with one piece (`options` picks which) changed on its way to the
/// card: never installed. The eUICC's installation result, in short.
fn changed_package_outcome(
    card: &mut smdpp_rsp::euicc::Euicc,
    mut commands: Vec<Vec<u8>>,
    options: u8,
    changes: &[u8],
) -> String {
    use smdpp_rsp::es10b::{FinalResult, PendingNotification as P};
    let at = usize::from(options) % commands.len();
    commands[at] = changed(&commands[at], changes);
    let result = commands
        .iter()
        .map(|c| card.transmit(c))
        .find(|answer| !answer.is_empty());
    match result.as_deref().map(P::parse) {
        None => "no result (the card waits for more)".to_owned(),
        Some(Ok(P::InstallationResult(pir))) => match pir.result {
            FinalResult::Success { .. } => {
                panic!("a package changed at piece {at} was installed")
            }
            FinalResult::Error {
                bpp_command_id,
                error_reason,
            } => format!("errorResult {bpp_command_id}/{error_reason}"),
        },
        Some(_) => panic!("not an installation result: {result:02X?}"),
    }
}

// ---- The software eUICC: APDUs and its state file ------------------------------------------

/// Any sequence of APDUs gets a status word back from the software eUICC, never a panic.
///
/// Input, repeated: a length byte `n`, then `n` bytes of APDU. Before them the card's ISD-R is
/// opened on channel 1, and an APDU whose first byte is `0xE2` is sent as a STORE DATA on that
/// channel with the rest as its data, so ES10 commands reach the card's parsers.
///
/// # Panics
///
/// When an answer has no status word: that is the finding.
pub fn euicc_apdu(data: &[u8]) {
    let mut card = smdpp_rsp::euicc::apdu::ApduCard::new(es9_card());
    let channel = card
        .open_channel(&smdpp_rsp::euicc::apdu::ISD_R_AID)
        .unwrap_or(1);
    let mut rest = data;
    while let [n, tail @ ..] = rest {
        let n = usize::from(*n).min(tail.len());
        let (apdu, next) = tail.split_at(n);
        rest = next;
        let apdu = match apdu {
            [0xE2, body @ ..] => {
                let len = body.len().min(255);
                [
                    &[0x80 | channel, 0xE2, 0x91, 0x00, len as u8][..],
                    &body[..len],
                ]
                .concat()
            }
            other => other.to_vec(),
        };
        let answer = card.transmit(&apdu);
        assert!(
            answer.len() >= 2,
            "no status word for {apdu:02X?}: {answer:02X?}"
        );
    }
}

/// Any state file is refused with a reason or loaded, never a panic; one that loads is saved
/// and loads again as the same state.
///
/// # Panics
///
/// When one of those properties does not hold: that is the finding.
pub fn euicc_state(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut card = es9_card();
    if card.restore_state(&text).is_ok() {
        let saved = card.save_state();
        let mut again = es9_card();
        again
            .restore_state(&saved)
            .unwrap_or_else(|e| panic!("a saved state does not load: {e}"));
        assert_eq!(
            again.save_state(),
            saved,
            "a state changed on its way through the file"
        );
    }
}
