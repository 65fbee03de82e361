//! Conformance grading: for every check, a conforming and a violating request (or receiver),
//! asserting the exact check id; a well-behaved and a sloppy client; the JUnit report.

use std::sync::Arc;
use std::time::Duration;

use crate::common::receiver::{Behaviour, Receiver};
use crate::common::*;
use hyper::Method;
use serde_json::{json, Value};
use smdpp_mock::internal::conformance::catalog::CHECKS;

const JSON: (&str, &str) = ("content-type", "application/json");
const PROTOCOL: (&str, &str) = ("x-admin-protocol", "gsma/rsp/v2.5.0");

fn header(call: &str) -> Value {
    json!({ "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": call })
}

/// `(passed, failed)` of a check in the current report.
async fn counts(t: &TestServer, id: &str) -> (u64, u64) {
    let report = t.admin().get("/admin/conformance").await.body;
    let c = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} not in the report"))
        .clone();
    (c["passed"].as_u64().unwrap(), c["failed"].as_u64().unwrap())
}

async fn reset(t: &TestServer) {
    t.admin().post("/admin/conformance/reset", json!({})).await;
}

async fn post(c: &Es2Client, path: &str, headers: &[(&str, &str)], body: &str) {
    let _ = c
        .request(Method::POST, path, headers, body.as_bytes().to_vec())
        .await;
}

const DO: &str = "/gsma/rsp2/es2plus/downloadOrder";
const CO: &str = "/gsma/rsp2/es2plus/confirmOrder";
const CA: &str = "/gsma/rsp2/es2plus/cancelOrder";
const RP: &str = "/gsma/rsp2/es2plus/releaseProfile";

/// A fresh order on `iccid` in the state the case needs.
async fn linked(t: &TestServer, iccid: &str) {
    t.admin()
        .put(
            &format!("/admin/profiles/{iccid}"),
            json!({ "state": "Linked", "eid": EID1 }),
        )
        .await;
}

#[tokio::test]
async fn every_request_check_passes_and_fails_on_the_right_request() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = "8944500100000000004";
    let ok_body = |call: &str| {
        json!({ "header": header(call), "iccid": iccid, "profileType": "STANDARD", "eid": EID1 })
            .to_string()
    };

    // (check, conforming, violating) as closures over the client.
    type Case = (
        &'static str,
        Box<dyn Fn(u32) -> (String, Vec<(&'static str, &'static str)>, String, Method)>,
    );
    let simple: Vec<Case> = vec![
        (
            "HTTP-001",
            Box::new(|_| (DO.into(), vec![JSON, PROTOCOL], String::new(), Method::GET)),
        ),
        (
            "HTTP-002",
            Box::new(|_| {
                (
                    DO.into(),
                    vec![("content-type", "text/plain"), PROTOCOL],
                    String::new(),
                    Method::POST,
                )
            }),
        ),
        (
            "HTTP-003",
            Box::new(|_| (DO.into(), vec![JSON], String::new(), Method::POST)),
        ),
        (
            "HTTP-004",
            Box::new(|_| {
                (
                    DO.into(),
                    vec![JSON, ("x-admin-protocol", "gsma/rsp/v3.1.0")],
                    String::new(),
                    Method::POST,
                )
            }),
        ),
        (
            "HTTP-005",
            Box::new(|_| {
                (
                    DO.into(),
                    vec![JSON, PROTOCOL],
                    "[1,2]".into(),
                    Method::POST,
                )
            }),
        ),
        (
            "ENV-001",
            Box::new(|_| {
                (
                    DO.into(),
                    vec![JSON, PROTOCOL],
                    json!({ "profileType": "STANDARD" }).to_string(),
                    Method::POST,
                )
            }),
        ),
        (
            "ENV-002",
            Box::new(|_| {
                (DO.into(), vec![JSON, PROTOCOL],
            json!({ "header": { "functionRequesterIdentifier": "other-mno", "functionCallIdentifier": "x" }, "profileType": "STANDARD" }).to_string(), Method::POST)
            }),
        ),
        (
            "ENV-003",
            Box::new(|_| {
                (DO.into(), vec![JSON, PROTOCOL],
            json!({ "header": { "functionRequesterIdentifier": "test-mno" }, "profileType": "STANDARD" }).to_string(), Method::POST)
            }),
        ),
        (
            "FLD-001",
            Box::new(|n| {
                (
                    DO.into(),
                    vec![JSON, PROTOCOL],
                    json!({ "header": header(&format!("f1-{n}")), "profiletype": "STANDARD" })
                        .to_string(),
                    Method::POST,
                )
            }),
        ),
        (
            "FLD-002",
            Box::new(|n| {
                (CO.into(), vec![JSON, PROTOCOL], json!({ "header": header(&format!("f2-{n}")), "iccid": "8944500100000000004", "releaseFlag": "true" }).to_string(), Method::POST)
            }),
        ),
        (
            "FLD-003",
            Box::new(|n| {
                (
                    DO.into(),
                    vec![JSON, PROTOCOL],
                    json!({ "header": header(&format!("f3-{n}")), "iccid": "123" }).to_string(),
                    Method::POST,
                )
            }),
        ),
        (
            "FLD-004",
            Box::new(|n| {
                (DO.into(), vec![JSON, PROTOCOL], json!({ "header": header(&format!("f4-{n}")), "profileType": "STANDARD", "eid": "123" }).to_string(), Method::POST)
            }),
        ),
        (
            "FLD-005",
            Box::new(|n| {
                (CO.into(), vec![JSON, PROTOCOL], json!({ "header": header(&format!("f5-{n}")), "iccid": "8944500100000000004", "releaseFlag": true, "matchingId": "abc" }).to_string(), Method::POST)
            }),
        ),
        (
            "FLD-006",
            Box::new(|n| {
                (
                    CO.into(),
                    vec![JSON, PROTOCOL],
                    json!({ "header": header(&format!("f6-{n}")), "iccid": "8944500100000000004" })
                        .to_string(),
                    Method::POST,
                )
            }),
        ),
        (
            "FLD-007",
            Box::new(|n| {
                (CA.into(), vec![JSON, PROTOCOL], json!({ "header": header(&format!("f7-{n}")), "iccid": "8944500100000000004", "finalProfileStatusIndicator": "available" }).to_string(), Method::POST)
            }),
        ),
        (
            "FLD-008",
            Box::new(|n| {
                (
                    DO.into(),
                    vec![JSON, PROTOCOL],
                    json!({ "header": header(&format!("f8-{n}")), "eid": EID1 }).to_string(),
                    Method::POST,
                )
            }),
        ),
    ];
    for (n, (id, bad)) in simple.iter().enumerate() {
        reset(&t).await;
        // The conforming request of each case: a correct DownloadOrder, ConfirmOrder on a
        // linked order, or CancelOrder, as the check needs.
        let (path, good) = match *id {
            "FLD-002" | "FLD-005" | "FLD-006" => {
                linked(&t, iccid).await;
                (CO, json!({ "header": header(&format!("g{n}")), "iccid": iccid, "eid": EID1, "releaseFlag": true, "matchingId": format!("OK-{n}") }).to_string())
            }
            "FLD-007" => {
                linked(&t, iccid).await;
                (CA, json!({ "header": header(&format!("g{n}")), "iccid": iccid, "eid": EID1, "finalProfileStatusIndicator": "Available" }).to_string())
            }
            _ => (DO, ok_body(&format!("g{n}"))),
        };
        post(&c, path, &[JSON, PROTOCOL], &good).await;
        let (passed, failed) = counts(&t, id).await;
        assert!(
            passed > 0 && failed == 0,
            "{id} conforming: passed {passed}, failed {failed}"
        );
        // Leave the profile free for the next case.
        t.admin()
            .put(
                &format!("/admin/profiles/{iccid}"),
                json!({ "state": "Available" }),
            )
            .await;

        reset(&t).await;
        let (path, headers, body, method) = bad(n as u32);
        let _ = c.request(method, &path, &headers, body.into_bytes()).await;
        let (_, failed) = counts(&t, id).await;
        assert!(failed > 0, "{id} violating request was not caught");
    }
}

#[tokio::test]
async fn identity_call_identifier_and_sequence_checks() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = "8944500100000000004";

    // TLS-001: a certificate (passes) / none (the refused handshake fails it).
    reset(&t).await;
    download_by_type(&c, "STANDARD", None).await;
    assert_eq!(counts(&t, "TLS-001").await.1, 0);
    let _ = t
        .anonymous_client()
        .call_raw_result(smdpp_mock::es2::Function::DownloadOrder, json!({}))
        .await;
    let mut failed = 0;
    for _ in 0..100 {
        failed = counts(&t, "TLS-001").await.1;
        if failed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed > 0, "TLS-001");

    // TLS-002: a CA certificate that maps to no operator.
    reset(&t).await;
    download_by_type(&c, "STANDARD", None).await;
    assert_eq!(counts(&t, "TLS-002").await, (1, 0));
    let stranger = t.unmapped_client();
    stranger
        .call(
            smdpp_mock::es2::Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await;
    assert_eq!(counts(&t, "TLS-002").await.1, 1);

    // ENV-004: a retry with the same identifier and content passes; a different request fails.
    reset(&t).await;
    let same = json!({ "header": header("SAME-1"), "profileType": "STANDARD" }).to_string();
    post(&c, DO, &[JSON, PROTOCOL], &same).await;
    post(&c, DO, &[JSON, PROTOCOL], &same).await;
    assert_eq!(counts(&t, "ENV-004").await, (2, 0));
    let other = json!({ "header": header("SAME-1"), "profileType": "DATA-ONLY" }).to_string();
    post(&c, DO, &[JSON, PROTOCOL], &other).await;
    assert_eq!(counts(&t, "ENV-004").await.1, 1);

    // FLD-009: CancelOrder must repeat the order's EID.
    reset(&t).await;
    linked(&t, iccid).await;
    post(&c, CA, &[JSON, PROTOCOL], &json!({ "header": header("c1"), "iccid": iccid, "finalProfileStatusIndicator": "Available" }).to_string()).await;
    assert_eq!(counts(&t, "FLD-009").await, (0, 1));
    post(&c, CA, &[JSON, PROTOCOL], &json!({ "header": header("c2"), "iccid": iccid, "eid": EID1, "finalProfileStatusIndicator": "Available" }).to_string()).await;
    assert_eq!(counts(&t, "FLD-009").await, (1, 1));
    // The MatchingID half: a confirmed order cancelled without its MatchingID.
    reset(&t).await;
    t.admin()
        .put(
            &format!("/admin/profiles/{iccid}"),
            json!({ "state": "Confirmed", "eid": EID1, "matchingId": "M-9" }),
        )
        .await;
    post(&c, CA, &[JSON, PROTOCOL], &json!({ "header": header("c3"), "iccid": iccid, "eid": EID1, "finalProfileStatusIndicator": "Available" }).to_string()).await;
    assert_eq!(counts(&t, "FLD-009").await, (0, 1));

    // SEQ-001: ConfirmOrder without DownloadOrder / after it.
    reset(&t).await;
    post(
        &c,
        CO,
        &[JSON, PROTOCOL],
        &json!({ "header": header("s1"), "iccid": iccid, "releaseFlag": false }).to_string(),
    )
    .await;
    assert_eq!(counts(&t, "SEQ-001").await, (0, 1));
    linked(&t, iccid).await;
    post(
        &c,
        CO,
        &[JSON, PROTOCOL],
        &json!({ "header": header("s2"), "iccid": iccid, "releaseFlag": false }).to_string(),
    )
    .await;
    assert_eq!(counts(&t, "SEQ-001").await, (1, 1));

    // SEQ-002: ReleaseProfile after ConfirmOrder(false) passes; on a released one fails.
    reset(&t).await;
    post(
        &c,
        RP,
        &[JSON, PROTOCOL],
        &json!({ "header": header("r1"), "iccid": iccid }).to_string(),
    )
    .await;
    post(
        &c,
        RP,
        &[JSON, PROTOCOL],
        &json!({ "header": header("r2"), "iccid": iccid }).to_string(),
    )
    .await;
    assert_eq!(counts(&t, "SEQ-002").await, (1, 1));

    // SEQ-003: a call on a profile that is not installed passes; on an installed one fails.
    reset(&t).await;
    t.admin()
        .put(
            &format!("/admin/profiles/{iccid}"),
            json!({ "state": "Confirmed", "eid": EID1 }),
        )
        .await;
    post(
        &c,
        RP,
        &[JSON, PROTOCOL],
        &json!({ "header": header("i0"), "iccid": iccid }).to_string(),
    )
    .await;
    assert_eq!(counts(&t, "SEQ-003").await, (1, 0));
    t.admin()
        .put(
            &format!("/admin/profiles/{iccid}"),
            json!({ "state": "Installed", "eid": EID1 }),
        )
        .await;
    post(
        &c,
        RP,
        &[JSON, PROTOCOL],
        &json!({ "header": header("i1"), "iccid": iccid }).to_string(),
    )
    .await;
    assert_eq!(counts(&t, "SEQ-003").await, (1, 1));

    // TLS-002 also fails for a certificate refused at the handshake (another CA).
    reset(&t).await;
    let stranger_ca = smdpp_mock::pki::CertificateAuthority::generate("stranger").unwrap();
    let foreign = stranger_ca
        .issue(&smdpp_mock::pki::LeafSpec::new(
            "test-mno",
            smdpp_mock::pki::Usage::Client,
        ))
        .unwrap();
    let _ = t
        .client_for(&foreign, "test-mno")
        .call_raw_result(smdpp_mock::es2::Function::DownloadOrder, json!({}))
        .await;
    let mut failed = 0;
    for _ in 0..100 {
        failed = counts(&t, "TLS-002").await.1;
        if failed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(failed, 1, "TLS-002 for a foreign certificate");
}

fn behaving() -> Behaviour {
    Arc::new(|_, _: &Value| (204, "", Duration::ZERO))
}

async fn probe(t: &TestServer, url: &str, client_certificate: bool) -> Value {
    let a = t.admin();
    let r = a
        .put(
            "/admin/operators/test-mno/callback",
            json!({ "url": url, "clientCertificate": client_certificate }),
        )
        .await;
    assert_eq!(r.status, hyper::StatusCode::OK, "{}", r.body);
    reset(t).await;
    let r = a
        .post(
            "/admin/conformance/probe",
            json!({ "operator": "test-mno" }),
        )
        .await;
    assert_eq!(r.status, hyper::StatusCode::OK, "{}", r.body);
    r.body
}

fn failed_checks(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["result"] == "failed")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_checks_by_probe() {
    let t = TestServer::start().await;
    let good = Receiver::plain_with(behaving()).await;
    let report = probe(&t, &good.http_url(), false).await["report"].clone();
    assert!(failed_checks(&report).is_empty(), "{report}");
    for id in [
        "CB-001", "CB-002", "CB-003", "CB-004", "CB-005", "CB-006", "CB-007",
    ] {
        assert_eq!(counts(&t, id).await.1, 0, "{id}");
        assert!(counts(&t, id).await.0 > 0, "{id}");
    }

    // One receiver per violation.
    let cases: Vec<(&str, Behaviour)> = vec![
        ("CB-001", Arc::new(|_, _: &Value| (200, "", Duration::ZERO))),
        // hyper never sends a body with 204, so the talkative receiver answers 202.
        (
            "CB-002",
            Arc::new(|_, _: &Value| (202, "ok", Duration::ZERO)),
        ),
        (
            "CB-003",
            Arc::new(|_, b: &Value| {
                (
                    if b.get("tac").is_some() { 400 } else { 204 },
                    "",
                    Duration::ZERO,
                )
            }),
        ),
        (
            "CB-004",
            Arc::new(|_, b: &Value| {
                (
                    if b.get("timeStamp").is_some() {
                        400
                    } else {
                        204
                    },
                    "",
                    Duration::ZERO,
                )
            }),
        ),
        (
            "CB-005",
            Arc::new(|_, b: &Value| {
                (
                    if b["iccid"].as_str().is_some_and(|i| i.ends_with('F')) {
                        400
                    } else {
                        204
                    },
                    "",
                    Duration::ZERO,
                )
            }),
        ),
        (
            "CB-006",
            Arc::new(|n, _: &Value| (if n == 4 { 409 } else { 204 }, "", Duration::ZERO)),
        ),
        (
            "CB-007",
            Arc::new(|_, _: &Value| (204, "", Duration::from_millis(2200))),
        ),
    ];
    for (id, behaviour) in cases {
        let bad = Receiver::plain_with(behaviour).await;
        let report = probe(&t, &bad.http_url(), false).await["report"].clone();
        assert!(
            failed_checks(&report).contains(&id.to_string()),
            "{id}: {:?}",
            failed_checks(&report)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_must_require_the_client_certificate_when_configured() {
    let dir = TempDir::new("cb-mtls");
    smdpp_mock::pki::PkiDir::new(dir.path().join("certs"))
        .ensure(
            &["localhost".into(), "127.0.0.1".into()],
            &["test-mno", "other-mno"],
        )
        .unwrap();
    let strict = Receiver::tls(&dir.path().join("certs"), true, Arc::new(|_| 204)).await;
    let lax = Receiver::tls(&dir.path().join("certs"), false, Arc::new(|_| 204)).await;
    let t = TestServer::with_yaml_in(dir, "operators:\n  - id: test-mno\n  - id: other-mno\nprofileTypes:\n  - id: STANDARD\n    owner: test-mno\n    profiles: [ { range: { start: \"894450010000000000\", count: 3 } } ]\n").await;
    probe(&t, &strict.https_url(), true).await;
    assert_eq!(counts(&t, "CB-008").await, (1, 0));
    probe(&t, &lax.https_url(), true).await;
    assert_eq!(counts(&t, "CB-008").await, (0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_well_behaved_client_has_no_failures_and_a_sloppy_one_exactly_its_own() {
    let t = TestServer::start().await;
    let receiver = Receiver::plain_with(behaving()).await;
    let c = t.client("test-mno");
    // Well behaved: order, confirm (no release), release, the device downloads and installs
    // (real notifications to the callback), and a second order cancelled properly.
    reset(&t).await;
    t.admin()
        .put(
            "/admin/operators/test-mno/callback",
            json!({ "url": receiver.http_url() }),
        )
        .await;
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": false })).await;
    c.call(
        smdpp_mock::es2::Function::ReleaseProfile,
        json!({ "iccid": iccid }),
    )
    .await
    .assert_success();
    for event in ["download", "install-success"] {
        let r = t
            .admin()
            .post(
                &format!("/admin/profiles/{iccid}/events"),
                json!({ "event": event }),
            )
            .await;
        assert_eq!(r.status, hyper::StatusCode::OK, "{}", r.body);
    }
    receiver.wait_for(2).await;
    let other = download_by_type(&c, "DATA-ONLY", None).await;
    let mid = confirm(&c, &other, json!({ "releaseFlag": true, "eid": EID2 })).await;
    c.call(
        smdpp_mock::es2::Function::CancelOrder,
        json!({ "iccid": other, "eid": EID2, "matchingId": mid, "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    t.admin()
        .put(
            "/admin/operators/test-mno/callback",
            json!({ "url": receiver.http_url() }),
        )
        .await;
    t.admin()
        .post(
            "/admin/conformance/probe",
            json!({ "operator": "test-mno" }),
        )
        .await;
    let report = t.admin().get("/admin/conformance").await.body;
    assert!(failed_checks(&report).is_empty(), "{report}");
    assert_eq!(report["summary"]["failed"], 0);

    // Sloppy: wrong casing, a reused call identifier, no X-Admin-Protocol, and a callback
    // that answers 200 with a body.
    reset(&t).await;
    post(
        &c,
        DO,
        &[JSON, PROTOCOL],
        &json!({ "header": header("SLOPPY-1"), "profiletype": "STANDARD" }).to_string(),
    )
    .await;
    post(
        &c,
        DO,
        &[JSON, PROTOCOL],
        &json!({ "header": header("SLOPPY-1"), "profileType": "STANDARD" }).to_string(),
    )
    .await;
    post(
        &c,
        DO,
        &[JSON],
        &json!({ "header": header("SLOPPY-2"), "profileType": "STANDARD" }).to_string(),
    )
    .await;
    let sloppy_receiver = Receiver::plain_with(Arc::new(|_, _: &Value| {
        (200, "{\"header\":{}}", Duration::ZERO)
    }))
    .await;
    t.admin()
        .put(
            "/admin/operators/test-mno/callback",
            json!({ "url": sloppy_receiver.http_url() }),
        )
        .await;
    t.admin()
        .post(
            "/admin/conformance/probe",
            json!({ "operator": "test-mno" }),
        )
        .await;
    let report = t.admin().get("/admin/conformance").await.body;
    let mut failed = failed_checks(&report);
    failed.sort();
    assert_eq!(
        failed,
        vec!["CB-001", "CB-002", "ENV-004", "FLD-001", "HTTP-003"],
        "{report}"
    );
    let fld = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "FLD-001")
        .unwrap();
    let failure = &fld["failures"][0];
    assert!(failure["message"]
        .as_str()
        .unwrap()
        .contains("profiletype (should be profileType)"));
    assert!(failure["excerpt"].as_str().unwrap().contains("profiletype"));
    assert!(failure["journalSeq"].as_u64().is_some());
}

#[tokio::test]
async fn junit_report_parses_with_one_testcase_per_check() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    post(
        &c,
        DO,
        &[JSON],
        &json!({ "header": header("J-1"), "profileType": "STANDARD" }).to_string(),
    )
    .await;
    download_by_type(&c, "STANDARD", None).await;
    let r = t
        .admin()
        .send(
            Method::GET,
            "/admin/conformance?format=junit",
            None,
            "application/json",
        )
        .await;
    assert!(r.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/xml"));
    let text = String::from_utf8(r.raw.to_vec()).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), CHECKS.len());
    let failed: Vec<&str> = cases
        .iter()
        .filter(|c| c.children().any(|n| n.has_tag_name("failure")))
        .map(|c| c.attribute("name").unwrap())
        .collect();
    assert!(
        failed.iter().any(|n| n.starts_with("HTTP-003")),
        "{failed:?}"
    );
    let passed = cases
        .iter()
        .filter(|c| c.attribute("name").unwrap().starts_with("FLD-008"))
        .all(|c| {
            c.children()
                .all(|n| !n.has_tag_name("failure") && !n.has_tag_name("skipped"))
        });
    assert!(passed);
    let suites = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(
        suites.attribute("tests"),
        Some(CHECKS.len().to_string().as_str())
    );
}

#[tokio::test]
async fn strict_mode_refuses_what_lenient_mode_only_grades() {
    let yaml = std::fs::read_to_string("scenarios/default.yaml")
        .unwrap()
        .replace("smdp:\n", "smdp:\n  conformance: strict\n");
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");
    // A misspelt extra field that normal processing ignores.
    let body = json!({ "header": header("ST-1"), "profileType": "STANDARD", "eId": EID1 });
    let r = c
        .call_raw(smdpp_mock::es2::Function::DownloadOrder, body.clone())
        .await;
    r.assert_failed("1.3.1", "2.1");
    assert_eq!(r.subject_identifier(), Some("FLD-001"));
    assert_eq!(
        t.app().world().store.available_count("STANDARD"),
        200,
        "nothing happened"
    );

    // HTTP-004: a v3 protocol header is refused in strict mode only.
    let v3 = c
        .request(
            Method::POST,
            DO,
            &[JSON, ("x-admin-protocol", "gsma/rsp/v3.1.0")],
            json!({ "header": header("ST-2"), "profileType": "STANDARD" })
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(v3.status, hyper::StatusCode::BAD_REQUEST);

    // The same request in lenient mode (the default) is answered as usual.
    let lenient = TestServer::start().await;
    lenient
        .client("test-mno")
        .call_raw(smdpp_mock::es2::Function::DownloadOrder, body)
        .await
        .assert_success();
}
