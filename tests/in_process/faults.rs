//! Faults around a call: the client disconnecting mid-request (the call happens fully or not at
//! all, and the journal says which). SIGTERM under load is in `tests/process/shutdown.rs`.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::{json, Value};
use smdpp_mock::es2::Function;
use smdpp_mock::profile::ProfileState;
use tokio::io::AsyncWriteExt;

/// Polls the journal until an entry has `clientDisconnected`; returns it.
async fn disconnected_entry(t: &TestServer) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let journal = t.admin().get("/admin/journal").await.body;
        if let Some(e) = journal["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e.get("clientDisconnected").is_some())
        {
            return e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no disconnect journaled: {journal}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_gone_before_its_body_was_complete_changed_nothing() {
    let t = TestServer::with_yaml(&delayed_scenario(Function::ConfirmOrder, "1500ms")).await;
    let before = t.snapshot();
    let mut tls = t.raw_tls("test-mno").await;
    tls.write_all(
        b"POST /gsma/rsp2/es2plus/downloadOrder HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-admin-protocol: gsma/rsp/v2.5.0\r\ncontent-length: 200\r\n\r\n{\"profileType\":",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(tls);
    let entry = disconnected_entry(&t).await;
    assert_eq!(entry["clientDisconnected"], "requestIncomplete", "{entry}");
    assert_eq!(entry["function"], "DownloadOrder");
    assert_eq!(entry["httpStatus"], 499);
    assert_eq!(t.snapshot(), before);
}

#[tokio::test]
async fn a_client_gone_while_its_answer_was_held_back_finds_the_call_done() {
    // Held far longer than the test takes: the client leaves once the call is carried out,
    // which the test sees happen, never after a guess at how long that takes.
    let t = TestServer::with_yaml(&delayed_scenario(Function::ConfirmOrder, "1h")).await;
    let client = t.client("test-mno");
    let iccid = download_by_type(&client, "STANDARD", None).await;
    let body =
        json!({ "header": client.header(), "iccid": iccid, "releaseFlag": true }).to_string();
    let mut tls = t.raw_tls("test-mno").await;
    tls.write_all(raw_es2_request(Function::ConfirmOrder, &body).as_bytes())
        .await
        .unwrap();
    tls.flush().await.unwrap();
    t.wait_for(&iccid, |p| p.state == ProfileState::Released)
        .await;
    drop(tls);
    let entry = disconnected_entry(&t).await;
    assert_eq!(entry["clientDisconnected"], "answerNotSent", "{entry}");
    assert_eq!(entry["function"], "ConfirmOrder");
    assert_eq!(entry["status"], "Executed-Success");
    // Carried out in full: released, with its MatchingID.
    let p = t.profile(&iccid);
    assert_eq!(p.state, ProfileState::Released);
    assert!(p.matching_id.is_some());
}
