//! The conformance report as people and CI read it: text grouped by severity with the check,
//! what was wrong, the operator, the journal number and an excerpt; JUnit with totals and the
//! spec reference per check; a refused request graded in full; the notification endpoint graded
//! by ordinary deliveries, and what only the probe can check said so.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::{json, Value};

use crate::common::receiver::Receiver;
use crate::common::*;

const DO: &str = "/gsma/rsp2/es2plus/downloadOrder";

/// A request with two mistakes: a Content-Type that is not JSON (refused, 415) and a miscased
/// field (`profiletype`) in a body that is otherwise right.
async fn two_mistakes(t: &TestServer) -> Reply {
    let body = json!({
        "header": { "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": "two" },
        "profiletype": "STANDARD",
    });
    t.client("test-mno")
        .request(
            Method::POST,
            DO,
            &[
                ("content-type", "text/plain"),
                ("x-admin-protocol", "gsma/rsp/v2.5.0"),
            ],
            body.to_string().into_bytes(),
        )
        .await
        .unwrap()
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap()
}

/// SGP.22 §6.2 makes the Content-Type mistake a refusal; the body's own mistake (§6.5.2) is
/// reported in the same round, with the operator and an excerpt, and nothing changes.
#[tokio::test]
async fn a_refused_request_is_graded_in_full() {
    let t = TestServer::start().await;
    let before = t.snapshot();
    let reply = two_mistakes(&t).await;
    assert_eq!(reply.status, 415, "{}", reply.body);
    assert_eq!(t.snapshot(), before);
    let report = t.admin().get("/admin/conformance").await.body;
    for id in ["HTTP-002", "FLD-001"] {
        let c = check(&report, id);
        assert_eq!(c["result"], "failed", "{id}: {c}");
        let failure = &c["failures"][0];
        assert_eq!(failure["operator"], "test-mno", "{id}: {failure}");
        assert!(
            failure["excerpt"].as_str().unwrap().contains("profiletype"),
            "{id}: {failure}"
        );
        assert_eq!(failure["journalSeq"], 1, "{id}: {failure}");
    }
}

#[tokio::test]
async fn the_text_report_reads_as_sentences() {
    let t = TestServer::start().await;
    two_mistakes(&t).await;
    let text = String::from_utf8(
        t.admin()
            .get("/admin/conformance?format=text")
            .await
            .raw
            .to_vec(),
    )
    .unwrap();
    for needle in [
        "Errors (",
        "HTTP-002 Content-Type is application/json",
        "Content-Type is \"text/plain\", not application/json",
        "operator test-mno, journal #1",
        "\"profiletype\":\"STANDARD\"",
        "FLD-001",
        "Not exercised yet",
    ] {
        assert!(text.contains(needle), "{needle:?} in:\n{text}");
    }
    assert!(!text.contains("Some("), "Rust debug text in:\n{text}");
}

#[tokio::test]
async fn junit_carries_totals_and_the_reference_of_each_check() {
    let t = TestServer::start().await;
    two_mistakes(&t).await;
    let xml = String::from_utf8(
        t.admin()
            .get("/admin/conformance?format=junit")
            .await
            .raw
            .to_vec(),
    )
    .unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    let cases = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .count();
    assert_eq!(suite.attribute("tests"), Some(cases.to_string().as_str()));
    for attribute in ["failures", "errors", "skipped"] {
        assert!(suite.attribute(attribute).is_some(), "{attribute}");
    }
    let http002 = suite
        .children()
        .find(|n| {
            n.attribute("name")
                .is_some_and(|a| a.starts_with("HTTP-002"))
        })
        .unwrap();
    let reference = http002
        .descendants()
        .find(|n| n.attribute("name") == Some("reference"))
        .and_then(|n| n.attribute("value"));
    assert_eq!(reference, Some("SGP.22 §6.2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_deliveries_grade_the_notification_endpoint() {
    // A receiver that answers 200 with a body: SGP.22 §6.3 wants 204 and no body.
    let receiver = Receiver::plain_with(Arc::new(|_, _: &Value| (200, "ok", Duration::ZERO))).await;
    let t = TestServer::with_yaml(&format!(
        r#"
operators:
  - id: test-mno
    callback: {{ url: "{}" }}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450010000000000", count: 5 }} }}]
"#,
        receiver.http_url()
    ))
    .await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true, "eid": EID1 })).await;
    t.device(&iccid, smdpp_mock::profile::DeviceEvent::Download)
        .unwrap();
    receiver.wait_for(1).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let report = loop {
        let report = t.admin().get("/admin/conformance").await.body;
        if check(&report, "CB-001")["failed"].as_u64().unwrap_or(0) > 0
            || std::time::Instant::now() > deadline
        {
            break report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cb001 = check(&report, "CB-001");
    assert_eq!(cb001["result"], "failed", "{cb001}");
    assert_eq!(cb001["failures"][0]["message"], "answered 200");
    assert_eq!(cb001["failures"][0]["operator"], "test-mno");
    assert_eq!(check(&report, "CB-002")["result"], "failed");
    assert_eq!(check(&report, "CB-007")["result"], "passed");
    // What ordinary traffic cannot tell says how to find out.
    let cb003 = check(&report, "CB-003");
    assert_eq!(cb003["result"], "not-exercised");
    assert!(
        cb003["note"]
            .as_str()
            .unwrap()
            .contains("smdpp-mock conformance probe --operator"),
        "{cb003}"
    );
}
