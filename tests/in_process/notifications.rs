//! HandleDownloadProgressInfo to real receivers (plain HTTP and mutual TLS): exact bodies, order,
//! retries, failures, and the notifications the attempt limits produce.

use std::collections::HashSet;
use std::sync::Arc;

use crate::common::receiver::{Receiver, Script};
use crate::common::*;
use serde_json::{json, Value};
use smdpp_mock::pki::PkiDir;
use smdpp_mock::profile::ProfileState;
use smdpp_mock::profile::{DeviceEvent, InstallResult, LocalOperation};
use smdpp_mock::DeliveryState;

fn always(status: u16) -> Script {
    Arc::new(move |_| status)
}

fn scenario(callback: &str, extra_callback: &str, limits: &str) -> String {
    format!(
        r#"
smdp:
  address: smdp.test.example
{limits}
operators:
  - id: test-mno
    callback:
      url: {callback}
      initialBackoff: 10ms
      maxBackoff: 50ms
{extra_callback}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles:
      - range: {{ start: "894450010000000000", count: 20 }}
"#
    )
}

/// A certs directory with the PKI made up front, so a TLS receiver can use the CA before the
/// mock starts.
fn prepared_dir() -> TempDir {
    let dir = TempDir::new("notify");
    PkiDir::new(dir.path().join("certs"))
        .ensure(&["localhost".into(), "127.0.0.1".into()], &["test-mno"])
        .unwrap();
    dir
}

/// Everything but the per-notification values.
fn stable(body: &Value) -> Value {
    let mut b = body.clone();
    let ts = b["timestamp"].take();
    assert!(
        ts.as_str()
            .is_some_and(|t| t.len() == 20 && t.ends_with('Z') && &t[10..11] == "T"),
        "timestamp {ts}"
    );
    let call = b["header"]["functionCallIdentifier"].take();
    assert!(
        call.as_str().is_some_and(|c| c.starts_with("HDPI-")),
        "{call}"
    );
    b.as_object_mut().unwrap().remove("timestamp");
    b["header"]
        .as_object_mut()
        .unwrap()
        .remove("functionCallIdentifier");
    b
}

async fn released(t: &TestServer, eid: &str, extra: Value) -> String {
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(eid)).await;
    let mut body = json!({ "releaseFlag": true });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    confirm(&c, &iccid, body).await;
    iccid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_sends_each_point_in_order_with_the_exact_body() {
    let receiver = Receiver::plain(always(204)).await;
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), "", "")).await;
    let iccid = released(&t, EID1, json!({})).await;
    for event in [
        DeviceEvent::Download,
        DeviceEvent::InstallResult(InstallResult::Success),
        DeviceEvent::Local(LocalOperation::Enable),
        DeviceEvent::Local(LocalOperation::Disable),
        DeviceEvent::Local(LocalOperation::Delete),
    ] {
        t.device(&iccid, event).unwrap();
    }
    let got = receiver.wait_for(5).await;
    let base = |point: u32| {
        json!({
            "header": { "functionRequesterIdentifier": "smdp.test.example" },
            "eid": EID1, "iccid": iccid, "profileType": "STANDARD",
            "notificationPointId": point,
            "notificationPointStatus": { "status": "Executed-Success" },
        })
    };
    let mut install = base(4);
    // finalResult [2] { successResult [0] { aid [APPLICATION 15], simaResponse } } in DER,
    // base64 (computed independently with Python's base64 module).
    install["resultData"] = json!("oh+gHU8QoAAABVkQEP////+JAAAQAAQJMAegBTADgAEA");
    let bodies: Vec<Value> = got.iter().map(|r| stable(&r.body)).collect();
    assert_eq!(bodies[0], base(3));
    assert_eq!(bodies[1], install);
    assert_eq!(bodies[2], base(100));
    assert_eq!(bodies[3], base(101));
    assert_eq!(bodies[4], base(102));
    for r in &got {
        assert_eq!(r.headers["content-type"], "application/json");
        assert_eq!(r.headers["x-admin-protocol"], "gsma/rsp/v2.5.0");
        assert_eq!(
            r.headers
                .get("host")
                .map(|h| h.to_str().unwrap().to_string()),
            Some(receiver.addr.to_string())
        );
    }
    let ids: HashSet<_> = got
        .iter()
        .map(|r| r.body["header"]["functionCallIdentifier"].clone())
        .collect();
    assert_eq!(
        ids.len(),
        5,
        "every notification has its own call identifier"
    );
    // The path is appended to the callback base URL.
    let log = t.app().notifier.log().records();
    assert!(log.iter().all(|r| r
        .url
        .ends_with("/gsma/rsp2/es2plus/handleDownloadProgressInfo")));
    assert!(log.iter().all(|r| r.state == DeliveryState::Delivered));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn install_failure_reports_error_result() {
    let receiver = Receiver::plain(always(204)).await;
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), "", "")).await;
    let iccid = released(&t, EID1, json!({})).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    t.device(
        &iccid,
        DeviceEvent::InstallResult(InstallResult::Failure {
            bpp_command_id: 5,
            error_reason: 10,
        }),
    )
    .unwrap();
    let got = receiver.wait_for(2).await;
    let b = &got[1].body;
    assert_eq!(b["notificationPointId"], 4);
    assert_eq!(b["notificationPointStatus"]["status"], "Failed");
    assert_eq!(
        b["notificationPointStatus"]["statusCodeData"]["subjectCode"],
        "8.2.10"
    );
    assert_eq!(
        b["notificationPointStatus"]["statusCodeData"]["reasonCode"],
        "4.2"
    );
    // finalResult [2] { errorResult [1] { bppCommandId 5, errorReason 10 } }
    assert_eq!(b["resultData"], "ogihBoABBYEBCg==");
    assert_eq!(t.state(&iccid), ProfileState::Error);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_code_and_download_limits_notify_failed() {
    let receiver = Receiver::plain(always(204)).await;
    let limits = "  limits:\n    downloadAttempts: 2\n    confirmationCodeAttempts: 1";
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), "", limits)).await;

    // Wrong Confirmation Codes: one tolerated (no notification: SGP.22 §3.1.3.2 step 8 notifies
    // when the retries are exhausted), the next exceeds (8.2.7/6.4).
    let cc = released(&t, EID1, json!({ "confirmationCode": "1234" })).await;
    t.device(&cc, DeviceEvent::WrongConfirmationCode).unwrap();
    t.device(&cc, DeviceEvent::WrongConfirmationCode).unwrap();
    assert_eq!(t.state(&cc), ProfileState::Error);

    // Download attempts: two allowed, the third is refused and ends the order (8.8.5/6.4).
    let dl = released(&t, EID2, json!({})).await;
    let postponed =
        DeviceEvent::CancelSession(smdpp_mock::profile::machine::CancelSessionReason::Postponed);
    t.device(&dl, postponed).unwrap();
    t.device(&dl, postponed).unwrap();
    t.device(&dl, DeviceEvent::Download).unwrap();
    assert_eq!(t.state(&dl), ProfileState::Error);

    let got = receiver.wait_for(2).await;
    let status = |r: &crate::common::receiver::Received| {
        let s = &r.body["notificationPointStatus"];
        (
            r.body["iccid"].as_str().unwrap().to_string(),
            r.body["notificationPointId"].as_u64().unwrap(),
            s["status"].as_str().unwrap().to_string(),
            s["statusCodeData"]["subjectCode"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            s["statusCodeData"]["reasonCode"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        )
    };
    let mut seen: Vec<_> = got.iter().map(status).collect();
    seen.sort();
    let f = |i: &str, p, s: &str, r: &str| {
        (
            i.to_string(),
            p,
            "Failed".to_string(),
            s.to_string(),
            r.to_string(),
        )
    };
    let mut want = vec![f(&cc, 2, "8.2.7", "6.4"), f(&dl, 1, "8.8.5", "6.4")];
    want.sort();
    assert_eq!(seen, want);
    // Nothing more arrives: the tolerated wrong code sent nothing.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(receiver.requests.lock().unwrap().len(), 2);
}

/// SGP.22 §3.1.3.2 steps 7-8: a wrong Confirmation Code is counted; point 2 is sent when the
/// retries are exhausted and the order goes to Error. Per-attempt point 2 notifications are a
/// switch (`format.confirmationFailureEachAttempt`), off by default.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confirmation_code_failures_notify_per_attempt_only_when_asked() {
    let receiver = Receiver::plain(always(204)).await;
    let limits = "  limits:\n    confirmationCodeAttempts: 1";
    let each = "      format: { confirmationFailureEachAttempt: true }";
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), each, limits)).await;
    let cc = released(&t, EID1, json!({ "confirmationCode": "1234" })).await;
    t.device(&cc, DeviceEvent::WrongConfirmationCode).unwrap();
    t.device(&cc, DeviceEvent::WrongConfirmationCode).unwrap();
    let codes: Vec<String> = receiver
        .wait_for(2)
        .await
        .iter()
        .map(|r| {
            r.body["notificationPointStatus"]["statusCodeData"]["reasonCode"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(codes, ["3.8", "6.4"]);
}

/// SGP.22 Table 32a: point 1 reports the eligibility and retry limit check; its success is
/// optional and off by default, sent with `format.eligibilitySuccess`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eligibility_success_is_sent_only_when_asked() {
    for (format, want) in [
        ("", vec![3]),
        ("      format: { eligibilitySuccess: true }", vec![1, 3]),
    ] {
        let receiver = Receiver::plain(always(204)).await;
        let t = TestServer::with_yaml(&scenario(&receiver.http_url(), format, "")).await;
        let iccid = released(&t, EID1, json!({})).await;
        t.device(&iccid, DeviceEvent::Download).unwrap();
        let points: Vec<u64> = receiver
            .wait_for(want.len())
            .await
            .iter()
            .map(|r| r.body["notificationPointId"].as_u64().unwrap())
            .collect();
        assert_eq!(points, want, "{format:?}");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            receiver.requests.lock().unwrap().len(),
            want.len(),
            "{format:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_then_back_misses_nothing() {
    // The first three requests get 503, the rest 204.
    let receiver = Receiver::plain(Arc::new(|n| if n < 3 { 503 } else { 204 })).await;
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), "", "")).await;
    let iccid = released(&t, EID1, json!({})).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    t.device(&iccid, DeviceEvent::InstallResult(InstallResult::Success))
        .unwrap();
    t.device(&iccid, DeviceEvent::Local(LocalOperation::Enable))
        .unwrap();
    let log = t.app().notifier.log().clone();
    assert!(
        log.wait_until(std::time::Duration::from_secs(20), |r| r.len() == 3
            && r.iter().all(|r| r.state == DeliveryState::Delivered))
            .await
    );
    let got = receiver.requests.lock().unwrap().clone();
    // At least once, in order: dropping the repeats leaves 3, 4, 100.
    let mut points: Vec<u64> = got
        .iter()
        .map(|r| r.body["notificationPointId"].as_u64().unwrap())
        .collect();
    points.dedup();
    assert_eq!(points, vec![3, 4, 100]);
    assert_eq!(log.records()[0].attempts.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_receiver_marks_failed_and_other_operators_continue() {
    let down = Receiver::plain(always(500)).await;
    let up = Receiver::plain(always(204)).await;
    let yaml = format!(
        r#"
operators:
  - id: test-mno
    callback: {{ url: "{}", maxAttempts: 3, initialBackoff: 10ms }}
  - id: other-mno
    callback: {{ url: "{}" }}
profileTypes:
  - id: A
    owner: test-mno
    profiles: [ {{ range: {{ start: "894450010000000000", count: 5 }} }} ]
  - id: B
    owner: other-mno
    profiles: [ {{ range: {{ start: "894450020000000000", count: 5 }} }} ]
"#,
        down.http_url(),
        up.http_url()
    );
    let t = TestServer::with_yaml(&yaml).await;
    let a = download_by_type(&t.client("test-mno"), "A", Some(EID1)).await;
    confirm(&t.client("test-mno"), &a, json!({ "releaseFlag": true })).await;
    let b = download_by_type(&t.client("other-mno"), "B", Some(EID2)).await;
    confirm(&t.client("other-mno"), &b, json!({ "releaseFlag": true })).await;
    t.device(&a, DeviceEvent::Download).unwrap();
    t.device(&b, DeviceEvent::Download).unwrap();
    up.wait_for(1).await;
    let log = t.app().notifier.log().clone();
    assert!(
        log.wait_until(std::time::Duration::from_secs(20), |r| r
            .iter()
            .any(|r| r.state == DeliveryState::Failed))
            .await
    );
    let records = log.records();
    let failed = records.iter().find(|r| r.iccid == a).unwrap();
    assert_eq!(failed.state, DeliveryState::Failed);
    assert_eq!(failed.attempts.len(), 3);
    assert!(failed.attempts.iter().all(|x| x.status == Some(500)));
    assert_eq!(down.requests.lock().unwrap().len(), 3);
    let ok = records.iter().find(|r| r.iccid == b).unwrap();
    assert_eq!(ok.state, DeliveryState::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_receiver_gets_the_smdp_client_certificate() {
    let dir = prepared_dir();
    let receiver = Receiver::tls(&dir.path().join("certs"), true, always(204)).await;
    let yaml = scenario(&receiver.https_url(), "      clientCertificate: true", "");
    let t = TestServer::with_yaml_in(dir, &yaml).await;
    let iccid = released(&t, EID1, json!({})).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].client_cn.as_deref(), Some("smdpp-client"));
    assert_eq!(got[0].body["notificationPointId"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_requiring_mtls_refuses_a_callback_without_certificate() {
    let dir = prepared_dir();
    let receiver = Receiver::tls(&dir.path().join("certs"), true, always(204)).await;
    let yaml = scenario(&receiver.https_url(), "      maxAttempts: 2", "");
    let t = TestServer::with_yaml_in(dir, &yaml).await;
    let iccid = released(&t, EID1, json!({})).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    let log = t.app().notifier.log().clone();
    assert!(
        log.wait_until(std::time::Duration::from_secs(20), |r| r
            .first()
            .is_some_and(|r| r.state == DeliveryState::Failed))
            .await
    );
    let record = &log.records()[0];
    assert_eq!(record.attempts.len(), 2);
    assert!(receiver.requests.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compatibility_formats() {
    let receiver = Receiver::plain(always(200)).await;
    let format = r#"      format:
        timestampKey: timeStamp
        pointIdType: string
        padIccid: true
        resultData: full-pir
        localPoints: { enable: 6, disable: 7, delete: 8 }"#;
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), format, "")).await;
    let iccid = released(&t, EID1, json!({})).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    t.device(&iccid, DeviceEvent::InstallResult(InstallResult::Success))
        .unwrap();
    t.device(&iccid, DeviceEvent::Local(LocalOperation::Enable))
        .unwrap();
    let got = receiver.wait_for(3).await;
    let b = &got[0].body;
    assert!(b.get("timestamp").is_none() && b["timeStamp"].is_string());
    assert_eq!(b["notificationPointId"], "3");
    assert_eq!(b["iccid"], format!("{iccid}F"));
    // The whole ProfileInstallationResult: tag BF37 with a two-byte length, base64 "vzeB…".
    assert!(
        got[1].body["resultData"]
            .as_str()
            .unwrap()
            .starts_with("vzeB"),
        "{}",
        got[1].body
    );
    assert_eq!(got[2].body["notificationPointId"], "6");
    // 200 instead of 204 is accepted and noted.
    let log = t.app().notifier.log().records();
    assert!(log.iter().all(|r| r.state == DeliveryState::Delivered));
    assert!(log[0].attempts[0]
        .error
        .as_deref()
        .unwrap()
        .contains("expects 204"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_drains_queued_notifications() {
    let receiver = Receiver::plain(Arc::new(|n| if n < 2 { 503 } else { 204 })).await;
    let t = TestServer::with_yaml(&scenario(&receiver.http_url(), "", "")).await;
    let iccid = released(&t, EID1, json!({})).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    let log = t.app().notifier.log().clone();
    t.shutdown().await;
    assert_eq!(log.records()[0].state, DeliveryState::Delivered);
    assert_eq!(receiver.requests.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_registered_at_run_time_is_used() {
    let receiver = Receiver::plain(always(204)).await;
    // The default scenario has no callbacks.
    let t = TestServer::start().await;
    let world = t.app().world();
    let mut callback =
        smdpp_mock::internal::scenario::Callback::with_defaults(&receiver.http_url()).unwrap();
    callback.initial_backoff = std::time::Duration::from_millis(10);
    world.register_callback("test-mno", callback).unwrap();
    assert!(world
        .register_callback(
            "nobody",
            smdpp_mock::internal::scenario::Callback::with_defaults("http://x").unwrap()
        )
        .is_err());
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    let got = receiver.wait_for(1).await;
    assert_eq!(got[0].body["iccid"], iccid.as_str());
    assert!(smdpp_mock::internal::scenario::Callback::with_defaults("ftp://x").is_err());
}
