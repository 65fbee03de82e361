//! The admin API and dashboard as a person reads them: a page with its numbers already in it,
//! local notification points by name, the newest journal entries for a `limit`, counts in
//! English, and error messages that say a thing once.

use hyper::Method;
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::profile::{DeviceEvent, InstallResult, LocalOperation};

use crate::common::receiver::Receiver;
use crate::common::*;

#[tokio::test]
async fn the_dashboard_page_carries_its_first_numbers() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    download_by_type(&c, "STANDARD", None).await;
    let page = t.admin().get("/admin/dashboard").await;
    let html = String::from_utf8(page.raw.to_vec()).unwrap();
    assert!(html.contains(r#"id="journal-last-seq">1</dd>"#), "{html}");
    assert!(
        html.contains(r#"<td class="num" data-state="Allocated">1</td>"#),
        "{html}"
    );
    assert!(html.contains(r#"data-profile-type="STANDARD""#), "{html}");
    assert!(!html.contains("{{"), "an unfilled place: {html}");
    assert!(!html.contains("connecting"), "{html}");
}

#[tokio::test]
async fn with_a_token_the_open_page_carries_no_data() {
    let t = TestServer::configured(
        smdpp_mock::Scenario::default_scenario().unwrap(),
        TempDir::new("page-token"),
        |c| c.admin_token = Some("s3cret".into()),
    )
    .await;
    let page = t.admin().get("/admin/dashboard").await;
    let html = String::from_utf8(page.raw.to_vec()).unwrap();
    assert_eq!(page.status, 200);
    assert!(html.contains(r#"id="journal-last-seq">–</dd>"#), "{html}");
    assert!(!html.contains("STANDARD"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_points_have_names() {
    let receiver = Receiver::plain(std::sync::Arc::new(|_| 204)).await;
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
    t.device(&iccid, DeviceEvent::Download).unwrap();
    t.device(&iccid, DeviceEvent::InstallResult(InstallResult::Success))
        .unwrap();
    t.device(&iccid, DeviceEvent::Local(LocalOperation::Enable))
        .unwrap();
    receiver.wait_for(3).await;
    let log = t
        .admin()
        .get("/admin/notifications?order=newest&limit=3")
        .await
        .body;
    let points: Vec<(u64, &str)> = log["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["notificationPointId"].as_u64().unwrap(),
                r["point"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            (100, "local enable"),
            (4, "BPP installation"),
            (3, "BPP download")
        ]
    );
}

#[tokio::test]
async fn a_journal_limit_gives_the_newest_calls() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    for _ in 0..5 {
        download_by_type(&c, "STANDARD", None).await;
    }
    let seqs = |body: &serde_json::Value| -> Vec<u64> {
        body["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["seq"].as_u64().unwrap())
            .collect()
    };
    let a = t.admin();
    assert_eq!(seqs(&a.get("/admin/journal?limit=2").await.body), [4, 5]);
    assert_eq!(
        seqs(&a.get("/admin/journal?limit=2&order=newest").await.body),
        [5, 4]
    );
    // Paging forward from a seq still takes the ones right after it.
    assert_eq!(
        seqs(&a.get("/admin/journal?since=1&limit=2").await.body),
        [2, 3]
    );
    assert_eq!(
        a.get("/admin/journal?order=sideways").await.body["parameter"],
        "order"
    );
}

#[tokio::test]
async fn an_unknown_device_event_lists_the_events_once() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    let reply = t
        .admin()
        .send(
            Method::POST,
            &format!("/admin/profiles/{iccid}/events"),
            Some(r#"{"event": "explode"}"#),
            "application/json",
        )
        .await;
    assert_eq!(reply.status, 400);
    let message = reply.body["message"].as_str().unwrap();
    assert_eq!(message.matches("install-success").count(), 1, "{message}");
    let _ = Function::DownloadOrder;
}
