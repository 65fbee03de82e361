//! Hostile and careless clients: what a client can make the mock keep is bounded (journal
//! identifiers, SM-DS EventIDs, HTTP/2 streams, callback answers, platform pages), web pages
//! cannot drive the admin API, and certificates mean what the README says (CSR policy, no
//! usage, two operators).

use std::sync::Arc;
use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use smdpp_mock::es2::Function::*;
use smdpp_mock::profile::DeviceEvent;
use smdpp_mock::Scenario;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---- what a client can make the mock keep ------------------------------------------------------

/// A client's `functionCallIdentifier` and `iccid` are kept (journal, log) cut to a bounded
/// length, however long they were: 10,000 journal entries cannot hold 800 MB.
#[tokio::test]
async fn the_journal_keeps_client_identifiers_cut() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let long_call = "c".repeat(40_000);
    let long_iccid = "8".repeat(20_000);
    let reply = c
        .call_raw(
            ConfirmOrder,
            json!({
                "header": { "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": long_call },
                "iccid": long_iccid,
                "releaseFlag": true,
            }),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.is_success());
    let journal = t.admin().get("/admin/journal?limit=1").await.body;
    let entry = &journal["entries"][0];
    for field in ["functionCallIdentifier", "iccid"] {
        let kept = entry[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {entry}"));
        assert!(kept.len() < 300, "{field} kept {} bytes", kept.len());
        assert!(kept.contains("bytes in all"), "{field}: {kept}");
    }
    let reply_len = entry["response"].to_string().len() + entry["request"].to_string().len();
    assert!(reply_len < 20_000, "bodies are cut too: {reply_len}");
}

/// The DownloadOrder → ConfirmOrder(smdsAddress) → CancelOrder loop retires one EventID per
/// cycle: each is refused for reuse (SGP.22 §3.6.1.1) and counted; the memory is bounded by
/// the capacity in `store/retired.rs` (tested there, with eviction).
#[tokio::test]
async fn retired_event_ids_are_refused_for_reuse_and_counted() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    for n in 0..5 {
        let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
        let id = format!("EVT-{n}-{}", "X".repeat(100));
        confirm(
            &c,
            &iccid,
            json!({ "eid": EID1, "matchingId": id, "smdsAddress": "smds.example.com", "releaseFlag": false }),
        )
        .await;
        c.call(
            CancelOrder,
            json!({ "iccid": iccid, "eid": EID1, "matchingId": id, "finalProfileStatusIndicator": "Available" }),
        )
        .await
        .assert_success();
    }
    t.wait_metric("smdpp_retired_event_ids", 5).await;
    assert_eq!(t.metric("smdpp_retired_event_ids_forgotten_total").await, 0);
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let reused = format!("EVT-3-{}", "X".repeat(100));
    let before = t.profile(&iccid);
    c.call(
        ConfirmOrder,
        json!({ "iccid": iccid, "eid": EID1, "matchingId": reused, "releaseFlag": true }),
    )
    .await
    .assert_failed("8.2.6", "3.3");
    assert_eq!(t.profile(&iccid), before);
}

/// The MAX_CONCURRENT_STREAMS value in the server's first HTTP/2 SETTINGS frame.
async fn announced_streams(t: &TestServer) -> Option<u32> {
    let mut tls = t.raw_tls_alpn("test-mno", b"h2").await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut head = [0u8; 9];
    tls.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 4, "the server's first frame is SETTINGS");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    tls.read_exact(&mut payload).await.unwrap();
    payload.chunks_exact(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == 3)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    })
}

/// One HTTP/2 connection may have few requests in flight (not hyper's 200), so the connection
/// limit × streams × body limit bounds what requests in flight can hold.
#[tokio::test]
async fn http2_connections_announce_a_small_stream_limit() {
    let t = TestServer::start().await;
    assert_eq!(announced_streams(&t).await, Some(8));
    let t = TestServer::configured(
        Scenario::default_scenario().unwrap(),
        TempDir::new("streams"),
        |c| c.limits.max_concurrent_streams = 3,
    )
    .await;
    assert_eq!(announced_streams(&t).await, Some(3));
}

/// A receiver that answers a notification with 8 MiB is read no further than the answer limit:
/// the delivery counts, the body is graded (CB-002) by what was read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_callback_answer_is_read_only_up_to_the_limit() {
    let huge: &'static str = Box::leak("x".repeat(8 << 20).into_boxed_str());
    let receiver =
        Receiver::plain_with(Arc::new(move |_, _: &Value| (200, huge, Duration::ZERO))).await;
    let yaml = format!(
        r#"
operators:
  - id: test-mno
    callback: {{ url: "{}", maxAttempts: 1 }}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450010000000000", count: 5 }} }}]
"#,
        receiver.http_url()
    );
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    receiver.wait_for(1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let message = loop {
        let report = t.admin().get("/admin/conformance").await.body;
        let check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "CB-002")
            .unwrap()
            .clone();
        if let Some(m) = check["failures"][0]["message"].as_str() {
            break m.to_string();
        }
        assert!(std::time::Instant::now() < deadline, "{check}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let bytes: usize = message
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("{message}"));
    assert!(
        (64 * 1024..1024 * 1024).contains(&bytes),
        "read {bytes} bytes of an 8 MiB answer: {message}"
    );
}

/// A filter that matches little gives short pages with a cursor instead of one request that
/// scans the whole inventory; following the cursors still visits every profile once.
#[tokio::test]
async fn a_sparse_platform_query_scans_a_bounded_part_per_page() {
    let yaml = r#"
operators: [{ id: test-mno }]
profileTypes:
  - id: BULK
    owner: test-mno
    profiles: [{ range: { start: "894450100000000000", count: 45000 } }]
"#;
    let t = TestServer::with_yaml(yaml).await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "BULK", Some(EID1)).await;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    let mut found = Vec::new();
    loop {
        let path = match &cursor {
            None => "/profiles?state=Linked".to_string(),
            Some(cur) => format!("/profiles?state=Linked&cursor={cur}"),
        };
        let r = c.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        found.extend(
            r.body["profiles"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["iccid"].as_str().unwrap().to_string()),
        );
        pages += 1;
        match r.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(found, vec![iccid]);
    assert_eq!(pages, 3, "20,000 profiles looked at per page");

    // Counts are kept as commits happen, and start over with a reset.
    let types = c.get("/profile_types").await.body;
    let bulk = &types["profileTypes"][0];
    assert_eq!(bulk["counts"]["Linked"], 1, "{bulk}");
    assert_eq!(bulk["counts"]["Available"], 44999, "{bulk}");
    t.admin().post("/admin/reset", json!({})).await;
    let types = c.get("/profile_types").await.body;
    assert_eq!(types["profileTypes"][0]["counts"]["Available"], 45000);
    let linked = &types["profileTypes"][0]["counts"]["Linked"];
    assert!(linked.is_null() || *linked == 0, "{types}");
}

// ---- the admin API and web pages ---------------------------------------------------------------

/// What a page of another site can make a browser send: a foreign `Host` (DNS rebinding), a
/// foreign `Origin`, a form or text body. None of it reads the journal or changes state; the
/// admin API's own page (same origin) and tools without `Origin` still work.
#[tokio::test]
async fn a_web_page_of_another_origin_cannot_drive_the_admin_api() {
    let t = TestServer::configured(
        Scenario::default_scenario().unwrap(),
        TempDir::new("origin"),
        |c| c.admin_allowed_hosts = vec!["smdpp".into()],
    )
    .await;
    let admin = t.admin();
    let port = t.admin_addr().port();
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    let before = t.snapshot();

    // DNS rebinding: the page's own name resolves to 127.0.0.1; the browser sends that name.
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
    ] {
        let r = admin
            .send_with(Method::GET, "/admin/journal", None, &[("host", host)])
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{host}");
        assert!(r.raw.len() < 400 && !String::from_utf8_lossy(&r.raw).contains(&iccid));
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("smdpp:{port}"),
        format!("[::1]:{port}"),
    ] {
        let r = admin
            .send_with(Method::GET, "/admin/journal", None, &[("host", &host)])
            .await;
        assert_eq!(r.status, StatusCode::OK, "{host}");
    }

    // Cross-site writes: a foreign Origin, or a body type a page sends without asking first.
    type Attempt<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let attempts: [Attempt; 5] = [
        (
            "/admin/reset",
            "{}",
            &[
                ("origin", "http://evil.example"),
                ("content-type", "application/json"),
            ],
        ),
        (
            "/admin/reset",
            "{}",
            &[("origin", "null"), ("content-type", "application/json")],
        ),
        ("/admin/reset", "{}", &[("content-type", "text/plain")]),
        (
            "/admin/clock",
            "advance=1h",
            &[("content-type", "application/x-www-form-urlencoded")],
        ),
        (
            "/admin/reset",
            "--x--",
            &[("content-type", "multipart/form-data; boundary=x")],
        ),
    ];
    for (path, body, headers) in attempts {
        let r = admin
            .send_with(Method::POST, path, Some(body), headers)
            .await;
        assert!(
            r.status == StatusCode::FORBIDDEN || r.status == StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{path} {headers:?}: {}",
            r.status
        );
    }
    let r = admin
        .send_with(
            Method::PUT,
            "/admin/scenario",
            Some("operators: []"),
            &[
                ("origin", "https://evil.example"),
                ("content-type", "application/yaml"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.snapshot(), before, "nothing changed");

    // The dashboard's own requests (same origin) and tools (no Origin) are served.
    let own = format!("http://localhost:{port}");
    let r = admin
        .send_with(
            Method::POST,
            "/admin/reset",
            Some("{}"),
            &[
                ("host", &format!("localhost:{port}")),
                ("origin", &own),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        t.state(&iccid),
        smdpp_mock::profile::ProfileState::Available
    );
    assert_eq!(admin.get("/admin/dashboard").await.status, StatusCode::OK);
}

// ---- certificates ------------------------------------------------------------------------------

/// A CSR asking for serverAuth, a CA, IP and e-mail SANs and `localhost` gets a client
/// certificate: clientAuth alone, not a CA, DNS and URI SANs only; a server would refuse it
/// as a server certificate, and the mock takes it as a client one.
#[tokio::test]
async fn a_signed_csr_is_a_client_certificate_whatever_it_asks_for() {
    use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType};
    use x509_parser::prelude::*;
    let t = TestServer::start().await;
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "test-mno".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    params
        .subject_alt_names
        .push(SanType::Rfc822Name("a@b.example".try_into().unwrap()));
    params
        .subject_alt_names
        .push(SanType::URI("urn:mno:test".try_into().unwrap()));
    params.is_ca = IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test-mno");
    let csr = params.serialize_request(&key).unwrap().pem().unwrap();
    let pem = t.ca().sign_csr(&csr, 30).unwrap();

    let der = rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, cert) = X509Certificate::from_der(der.as_ref()).unwrap();
    let eku = cert.extended_key_usage().unwrap().unwrap().value;
    assert!(
        eku.client_auth && !eku.server_auth && !eku.any && eku.other.is_empty(),
        "{eku:?}"
    );
    assert!(!cert.is_ca());
    let sans: Vec<String> = cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| format!("{n}"))
        .collect();
    assert_eq!(
        sans,
        [
            "DNSName(localhost)",
            "DNSName(test-mno)",
            "URI(urn:mno:test)"
        ]
    );
    // As a server certificate for localhost it is refused by a verifier that trusts the CA.
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_file(t.certs().join("ca.pem")).unwrap())
        .unwrap();
    let verifier = rustls::client::WebPkiServerVerifier::builder(Arc::new(roots))
        .build()
        .unwrap();
    let as_server = verifier.verify_server_cert(
        &der,
        &[],
        &rustls::pki_types::ServerName::try_from("localhost").unwrap(),
        &[],
        rustls::pki_types::UnixTime::now(),
    );
    assert!(as_server.is_err(), "{as_server:?}");
    // As the operator's client certificate it works.
    t.client_with(pem.as_bytes(), key.serialize_pem().as_bytes(), "test-mno")
        .call(DownloadOrder, json!({ "profileType": "STANDARD" }))
        .await
        .assert_success();
    // Validity out of range is an error, not a panic.
    for days in [0, 36_526, 4_000_000, u32::MAX] {
        let e = t.ca().sign_csr(&csr, days).unwrap_err().to_string();
        assert!(e.contains("--days must be from 1 to 36525"), "{e}");
    }
}

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;

/// rustls-webpki lets a client certificate without any extended key usage through; the mock
/// refuses it, as the README says (counted as `wrong_usage`).
#[tokio::test]
async fn a_client_certificate_without_extended_key_usage_is_refused() {
    let t = TestServer::start().await;
    let ca_cert = std::fs::read_to_string(t.certs().join("ca.pem")).unwrap();
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(t.certs().join("ca.key")).unwrap())
            .unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["test-mno".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test-mno");
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    assert!(params.extended_key_usages.is_empty());
    let cert = params.signed_by(&key, &issuer).unwrap();
    let before = t.snapshot();
    let result = t
        .client_with(
            cert.pem().as_bytes(),
            key.serialize_pem().as_bytes(),
            "test-mno",
        )
        .call_raw_result(DownloadOrder, json!({ "profileType": "STANDARD" }))
        .await;
    assert!(result.is_err(), "let in: {result:?}");
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"wrong_usage\"}",
        1,
    )
    .await;
    assert_eq!(t.snapshot(), before);
}

/// A certificate whose names map to two operators is refused as ambiguous (Failed 1.1 with
/// both named), not given to whichever the scenario lists first.
#[tokio::test]
async fn a_certificate_naming_two_operators_is_refused_as_ambiguous() {
    let yaml = r#"
operators:
  - id: mno-a
  - id: mno-b
profileTypes:
  - id: A
    owner: mno-a
    profiles: [{ range: { start: "894450010000000000", count: 3 } }]
"#;
    let t = TestServer::with_yaml(yaml).await;
    // CN one operator's name, a SAN the other's: e.g. a gateway certificate made for both.
    let mut spec = smdpp_mock::pki::LeafSpec::new("mno-a", smdpp_mock::pki::Usage::Client);
    spec.sans = vec!["mno-b".into()];
    let shared = t.ca().issue(&spec).unwrap();
    let before = t.snapshot();
    let reply = t
        .client_for(&shared, "mno-a")
        .call(DownloadOrder, json!({ "profileType": "A" }))
        .await;
    reply.assert_failed("1.1", "1.1");
    let message = reply.body["header"]["functionExecutionStatus"]["statusCodeData"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.contains("mno-a") && message.contains("mno-b"),
        "{}",
        reply.body
    );
    assert_eq!(t.snapshot(), before);
    // Each operator's own certificate still works.
    t.client("mno-a")
        .call(DownloadOrder, json!({ "profileType": "A" }))
        .await
        .assert_success();
}

/// ES9+ calls have a journal share of their own: a flood of anonymous InitiateAuthentication
/// calls, past the ES9+ capacity, leaves the operator's ES2+ calls in the journal, and the
/// journal still numbers them all in one sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es9_calls_cannot_push_es2_calls_out_of_the_journal() {
    let (t, _receiver) = es9_configured(|c| {
        c.journal_capacity = 10;
        c.es9_journal_capacity = 5;
    })
    .await;
    let (_iccid, _mid) = release_standard(&t, None, json!({})).await;
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let address = t.mock.smdp_address();
    for _ in 0..20 {
        initiate_authentication(&mut lpa, &address, &address)
            .await
            .unwrap();
    }
    let journal = t.admin().get("/admin/journal?limit=100").await.body;
    assert_eq!(journal["capacity"], 10);
    assert_eq!(journal["es9Capacity"], 5);
    let entries = journal["entries"].as_array().unwrap();
    let functions: Vec<&str> = entries
        .iter()
        .map(|e| e["function"].as_str().unwrap())
        .collect();
    assert_eq!(
        functions,
        ["DownloadOrder", "ConfirmOrder"]
            .into_iter()
            .chain(std::iter::repeat_n("InitiateAuthentication", 5))
            .collect::<Vec<_>>()
    );
    assert_eq!(entries[0]["protocol"], "ES2+");
    assert_eq!(entries[6]["protocol"], "ES9+");
    assert_eq!(entries[6]["seq"], 22);
}

/// ES9+ connections are bounded per client address: past `es9_connections_per_address` a new
/// connection is closed on accept, before any TLS work, and counted; when one closes, the
/// address may connect again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es9_connections_are_bounded_per_address() {
    let (t, _receiver) = es9_configured(|c| c.es9_connections_per_address = 2).await;
    let es9 = t.mock.es9_addr().unwrap();
    let first = tokio::net::TcpStream::connect(es9).await.unwrap();
    let _second = tokio::net::TcpStream::connect(es9).await.unwrap();
    // The listener accepts in order: both hold their places before the third arrives.
    let mut third = tokio::net::TcpStream::connect(es9).await.unwrap();
    let mut buf = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(30), third.read(&mut buf))
        .await
        .expect("closed on accept");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let text = String::from_utf8(t.admin().get("/metrics").await.raw.to_vec()).unwrap();
    assert!(
        text.contains("smdpp_connections_refused_total{reason=\"per_address\"} 1"),
        "{text}"
    );
    drop(first);
    // The address has a place again: a whole ES9+ call goes through.
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let address = t.mock.smdp_address();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match initiate_authentication(&mut lpa, &address, &address).await {
            Ok(_) => break,
            // The server may not have seen the close yet.
            Err(_) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
}
