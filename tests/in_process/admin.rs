//! The admin / test-control API, endpoint by endpoint.

use std::time::Duration;

use crate::common::receiver::Receiver;
use crate::common::*;
use hyper::{Method, StatusCode};
use serde_json::json;
use smdpp_mock::es2::Function::*;
use smdpp_mock::profile::ProfileState;

#[tokio::test]
async fn health_ready_and_metrics() {
    let t = TestServer::start().await;
    let a = t.admin();
    let h = a.get("/health").await;
    assert_eq!(
        (h.status, h.body["status"].as_str()),
        (StatusCode::OK, Some("ok"))
    );
    let r = a.get("/ready").await;
    assert_eq!(r.body["ready"], true);
    assert_eq!(r.body["profiles"], 451);

    // Some traffic and one refused handshake, then the counters.
    let c = t.client("test-mno");
    download_by_type(&c, "STANDARD", None).await;
    c.call(DownloadOrder, json!({ "profileType": "NOPE" }))
        .await
        .assert_failed("8.2.5", "3.9");
    let _ = t
        .anonymous_client()
        .call_raw_result(DownloadOrder, json!({}))
        .await;
    // The handshake failure is counted on the server's side of the connection, which may
    // finish after the client has seen it fail.
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"no_certificate\"}",
        1,
    )
    .await;
    let m = a.get("/metrics").await;
    assert_eq!(m.status, StatusCode::OK);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = String::from_utf8(m.raw.to_vec()).unwrap();
    for line in [
        "smdpp_es2_requests_total{function=\"DownloadOrder\",status=\"Executed-Success\",subject=\"\",reason=\"\"} 1",
        "smdpp_es2_requests_total{function=\"DownloadOrder\",status=\"Failed\",subject=\"8.2.5\",reason=\"3.9\"} 1",
        "smdpp_tls_handshake_failures_total{reason=\"no_certificate\"} 1",
        "smdpp_profiles{operator=\"test-mno\",profile_type=\"STANDARD\",state=\"Allocated\"} 1",
        "smdpp_profiles{operator=\"test-mno\",profile_type=\"STANDARD\",state=\"Available\"} 199",
        "smdpp_notification_queue_depth 0",
        "smdpp_source_ip_refusals_total{stage=\"connection\"} 0",
    ] {
        assert!(text.contains(line), "missing {line} in\n{text}");
    }
}

#[tokio::test]
async fn reset_returns_to_the_initial_state() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    assert_eq!(t.state(&iccid), ProfileState::Allocated);
    let r = t.admin().post("/admin/reset", json!({})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.state(&iccid), ProfileState::Available);
    assert!(t.admin().get("/admin/journal").await.body["entries"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn load_scenario_valid_and_invalid() {
    let t = TestServer::start().await;
    let a = t.admin();
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;

    // Invalid: 400 with the same line:column diagnostics as `scenario check`; nothing changes.
    let bad = "operators:\n  - id: test-mno\nprofileTypes:\n  - id: X\n    owner: nobody\n";
    let r = a
        .send(
            Method::PUT,
            "/admin/scenario",
            Some(bad),
            "application/yaml",
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let d = &r.body["diagnostics"][0];
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(5), Some(12))
    );
    assert!(d["message"].as_str().unwrap().contains("\"nobody\""));
    assert_eq!(
        t.state(&iccid),
        ProfileState::Allocated,
        "the running scenario is untouched"
    );

    // Valid: a new world, with a client certificate for the new operator.
    let good = "operators:\n  - id: new-mno\nprofileTypes:\n  - id: NEW\n    owner: new-mno\n    profiles:\n      - range: { start: \"894450080000000000\", count: 3 }\n";
    let r = a
        .send(
            Method::PUT,
            "/admin/scenario",
            Some(good),
            "application/yaml",
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["profiles"], 3);
    let new = t.client("new-mno");
    download_by_type(&new, "NEW", None).await;
    c.call(DownloadOrder, json!({ "profileType": "STANDARD" }))
        .await
        .assert_failed("1.1", "1.1");
}

#[tokio::test]
async fn profiles_inspect_and_force() {
    let t = TestServer::start().await;
    let a = t.admin();
    let r = a.get("/admin/profiles?operator=other-mno&limit=5").await;
    let list = r.body["profiles"].as_array().unwrap();
    assert_eq!(list.len(), 5);
    assert!(list.iter().all(|p| p["operator"] == "other-mno"));
    assert!(r.body["nextCursor"].is_string());

    let iccid = "8944500100000000004";
    let r = a
        .put(
            &format!("/admin/profiles/{iccid}"),
            json!({ "state": "Released", "eid": EID1, "matchingId": "SETUP-1" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let one = a.get(&format!("/admin/profiles/{iccid}F")).await;
    assert_eq!(one.body["state"], "Released");
    assert_eq!(one.body["operator"], "test-mno");
    // The address of the Activation Code is where ES9+ listens (SGP.22 §4.1).
    assert_eq!(
        one.body["activationCode"],
        format!("1$localhost:{}$SETUP-1", t.mock.es9_addr().unwrap().port())
    );
    // The forced order works for ES2+ right away.
    t.client("test-mno")
        .call(
            CancelOrder,
            json!({ "iccid": iccid, "eid": EID1, "matchingId": "SETUP-1", "finalProfileStatusIndicator": "Available" }),
        )
        .await
        .assert_success();

    for (body, status) in [
        (json!({ "state": "Linked" }), StatusCode::BAD_REQUEST),
        (
            json!({ "state": "Available", "eid": EID1 }),
            StatusCode::BAD_REQUEST,
        ),
        (json!({ "state": "Ready" }), StatusCode::BAD_REQUEST),
    ] {
        assert_eq!(
            a.put(&format!("/admin/profiles/{iccid}"), body.clone())
                .await
                .status,
            status,
            "{body}"
        );
    }
    assert_eq!(
        a.get("/admin/profiles/8944500999999999999").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        a.get("/admin/profiles/123").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(a.get("/admin/nothing").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_events_notifications_and_callbacks() {
    let receiver = Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let t = TestServer::start().await;
    let a = t.admin();
    let r = a
        .put(
            "/admin/operators/test-mno/callback",
            json!({ "url": receiver.http_url(), "initialBackoff": "10ms" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        a.put(
            "/admin/operators/nobody/callback",
            json!({ "url": "http://x" })
        )
        .await
        .status,
        StatusCode::NOT_FOUND
    );

    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    // Before release: refused with the ES9+ code.
    let r = a
        .post(
            &format!("/admin/profiles/{iccid}/events"),
            json!({ "event": "download" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["es9StatusCode"],
        json!({ "subjectCode": "8.2", "reasonCode": "1.2" })
    );
    let mid = confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    let r = a
        .post(
            &format!("/admin/devices/{mid}/events"),
            json!({ "event": "download" }),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "Downloaded");
    let r = a
        .post(
            &format!("/admin/profiles/{iccid}/events"),
            json!({ "event": "install-failure", "errorReason": 10 }),
        )
        .await;
    assert_eq!(r.body["state"], "Error");
    assert_eq!(
        a.post(
            &format!("/admin/profiles/{iccid}/events"),
            json!({ "event": "explode" })
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );

    // Wait for the failed installation notice, then read the delivery log.
    let w = a
        .get(&format!(
            "/admin/wait?for=notification&iccid={iccid}&point=4&timeout=10s"
        ))
        .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    assert_eq!(
        w.body["body"]["notificationPointStatus"]["status"],
        "Failed"
    );
    let log = a.get(&format!("/admin/notifications?iccid={iccid}")).await;
    let points: Vec<u64> = log.body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["notificationPointId"].as_u64().unwrap())
        .collect();
    assert_eq!(points, vec![3, 4]);
    assert_eq!(
        a.get("/admin/notifications?state=lost").await.body["parameter"],
        "state"
    );
}

#[tokio::test]
async fn journal_records_calls_and_stays_bounded() {
    let scenario = smdpp_mock::Scenario::default_scenario().unwrap();
    let t = TestServer::configured(scenario, TempDir::new("journal"), |c| {
        c.journal_capacity = 20
    })
    .await;
    let c = t.client("test-mno");
    for _ in 0..30 {
        let iccid = download_by_type(&c, "STANDARD", None).await;
        c.call(
            CancelOrder,
            json!({ "iccid": iccid, "finalProfileStatusIndicator": "Available" }),
        )
        .await
        .assert_success();
    }
    c.call(
        ConfirmOrder,
        json!({ "iccid": "8944500999999999999", "releaseFlag": true }),
    )
    .await
    .assert_failed("8.2.1", "3.9");
    let a = t.admin();
    let j = a.get("/admin/journal?limit=1000").await;
    let entries = j.body["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 20, "the journal keeps its bound");
    assert_eq!(j.body["lastSeq"], 61);
    let last = entries.last().unwrap();
    assert_eq!(last["function"], "ConfirmOrder");
    assert_eq!(last["operator"], "test-mno");
    assert_eq!(last["statusCode"], "8.2.1/3.9");
    assert_eq!(last["httpStatus"], 200);
    assert_eq!(last["sourceIp"], "127.0.0.1");
    assert!(last["certificateSubject"]
        .as_str()
        .unwrap()
        .contains("CN=test-mno"));
    assert_eq!(last["request"]["iccid"], "8944500999999999999");
    assert_eq!(
        last["response"]["header"]["functionExecutionStatus"]["status"],
        "Failed"
    );
    let filtered = a
        .get("/admin/journal?function=confirmOrder&status=Failed")
        .await;
    assert_eq!(filtered.body["entries"].as_array().unwrap().len(), 1);
    let since = a.get("/admin/journal?since=59").await;
    assert_eq!(since.body["entries"].as_array().unwrap().len(), 2);
    assert_eq!(
        a.get("/admin/journal?since=x").await.body["parameter"],
        "since"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_returns_when_the_timeline_gets_there() {
    let t = TestServer::with_yaml(
        r#"
operators:
  - id: test-mno
profileTypes:
  - id: T
    owner: test-mno
    profiles: [ { range: { start: "894450010000000000", count: 3 } } ]
devices:
  - timeline:
      - { after: 300ms, event: download }
      - { after: 300ms, event: install-success }
"#,
    )
    .await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "T", Some(EID1)).await;
    let a = t.admin();
    let waiter = {
        let path = format!("/admin/wait?for=profile&iccid={iccid}&state=Installed&timeout=20s");
        let a = t.admin();
        tokio::spawn(async move { a.get(&path).await })
    };
    // The call the test waits for happens after the wait started.
    let journal_wait = {
        let a = t.admin();
        tokio::spawn(async move {
            a.get("/admin/wait?for=journal&function=ConfirmOrder&timeout=20s")
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    let j = journal_wait.await.unwrap();
    assert_eq!(j.status, StatusCode::OK, "{}", j.body);
    assert_eq!(j.body["function"], "ConfirmOrder");
    let w = waiter.await.unwrap();
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    assert_eq!(w.body["state"], "Installed");

    let timeout = a
        .get(&format!(
            "/admin/wait?for=profile&iccid={iccid}&state=Error&timeout=100ms"
        ))
        .await;
    assert_eq!(timeout.status, StatusCode::REQUEST_TIMEOUT);
    assert_eq!(
        a.get("/admin/wait?for=stars").await.body["parameter"],
        "for"
    );
}

#[tokio::test]
async fn the_clock_moves_order_expiry() {
    let t = TestServer::with_yaml(
        "smdp:\n  orderExpiry: 1h\noperators:\n  - id: test-mno\nprofileTypes:\n  - id: T\n    owner: test-mno\n    profiles: [ { range: { start: \"894450010000000000\", count: 3 } } ]\n",
    )
    .await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "T", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    let a = t.admin();
    let r = a.post("/admin/clock", json!({ "advance": "2h" })).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["now"].as_str().unwrap().ends_with('Z'));
    let r = a
        .post(
            &format!("/admin/profiles/{iccid}/events"),
            json!({ "event": "download" }),
        )
        .await;
    assert_eq!(r.body["state"], "Error", "{}", r.body);
    assert_eq!(
        a.post("/admin/clock", json!({ "advance": "soon" }))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advancing_the_clock_moves_device_timelines() {
    let t = TestServer::with_yaml(
        r#"
operators:
  - id: test-mno
profileTypes:
  - id: T
    owner: test-mno
    profiles: [ { range: { start: "894450010000000000", count: 3 } } ]
devices:
  - timeline:
      - { after: 1h, event: download }
      - { after: 1d, event: install-success }
"#,
    )
    .await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "T", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    let a = t.admin();
    a.post("/admin/clock", json!({ "advance": "1h" })).await;
    let w = a
        .get(&format!(
            "/admin/wait?for=profile&iccid={iccid}&state=Downloaded&timeout=20s"
        ))
        .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    a.post("/admin/clock", json!({ "advance": "1d" })).await;
    let w = a
        .get(&format!(
            "/admin/wait?for=profile&iccid={iccid}&state=Installed&timeout=20s"
        ))
        .await;
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
    // Reset puts the clock back as well.
    let before = a
        .post("/admin/clock", json!({ "advance": "0ms" }))
        .await
        .body["now"]
        .clone();
    a.post("/admin/reset", json!({})).await;
    let after = a
        .post("/admin/clock", json!({ "advance": "0ms" }))
        .await
        .body["now"]
        .clone();
    assert!(after.as_str().unwrap() < before.as_str().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_wait_follows_a_reset() {
    let t = TestServer::start().await;
    let a = t.admin();
    let iccid = "8944500100000000004";
    let waiter = {
        let a = t.admin();
        let path = format!("/admin/wait?for=profile&iccid={iccid}&state=Released&timeout=20s");
        tokio::spawn(async move { a.get(&path).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.post("/admin/reset", json!({})).await;
    a.put(
        &format!("/admin/profiles/{iccid}"),
        json!({ "state": "Released", "eid": EID1 }),
    )
    .await;
    let w = waiter.await.unwrap();
    assert_eq!(w.status, StatusCode::OK, "{}", w.body);
}

#[tokio::test]
async fn json_errors_for_wrong_methods_and_paths() {
    let t = TestServer::start().await;
    let a = t.admin();
    let r = a
        .send(Method::DELETE, "/admin/journal", None, "application/json")
        .await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        r.body["message"].is_string(),
        "{}",
        String::from_utf8_lossy(&r.raw)
    );
    let r = a.get("/admin/profiles/%FF").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["parameter"], "path");
    let c = t.client("test-mno");
    let r = c
        .request(Method::POST, "/profiles", &[], Vec::new())
        .await
        .unwrap();
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(r.body["message"].is_string());
    let r = c.get("/profiles/%FF").await;
    assert_eq!(
        (r.status, r.body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("path"))
    );
    let r = c.get("/profiles?profileType=OTHER-STANDARD").await;
    assert_eq!(
        (r.status, r.body["parameter"].as_str()),
        (StatusCode::BAD_REQUEST, Some("profileType"))
    );
    // A wrong method on ES2+ is journaled with its answer.
    c.request(
        Method::GET,
        "/gsma/rsp2/es2plus/downloadOrder",
        &[],
        Vec::new(),
    )
    .await
    .unwrap();
    let j = a.get("/admin/journal").await;
    let last = j.body["entries"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["httpStatus"], 405);
    assert!(last["response"]["message"].is_string(), "{last}");
}

#[tokio::test]
async fn journal_bodies_are_capped() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let big = format!("{{\"header\": {{}}, \"pad\": \"{}\"}}", "x".repeat(20_000));
    c.request(
        Method::POST,
        "/gsma/rsp2/es2plus/downloadOrder",
        &[
            ("content-type", "application/json"),
            ("x-admin-protocol", "gsma/rsp/v2.5.0"),
        ],
        big.into_bytes(),
    )
    .await
    .unwrap();
    let j = t.admin().get("/admin/journal").await;
    let request = j.body["entries"][0]["request"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        request.len() < 9_000 && request.ends_with("bytes in all)"),
        "{}",
        request.len()
    );
}
