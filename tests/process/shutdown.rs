//! The binary under SIGTERM with load in flight: in-flight calls are answered, queued
//! notifications delivered before exit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use smdpp_mock::es2::Function;

use crate::common::receiver::Receiver;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_answers_in_flight_calls_and_drains_notifications() {
    // A receiver that holds its answers until SIGTERM is sent: the notifications are still
    // outstanding when serving stops however slowly this machine runs, and only draining gets
    // them out. The callback's timeout is long, so a held attempt is never retried.
    let receiver = Receiver::held().await;
    let dir = TempDir::new("sigterm");
    let scenario = dir.path().join("scenario.yaml");
    std::fs::write(
        &scenario,
        format!(
            r#"
operators:
  - id: test-mno
    callback: {{ url: "{}", timeout: 60s }}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450010000000000", count: 40 }} }}]
faults:
  - match: {{ function: DownloadOrder }}
    delay: 800ms
"#,
            receiver.http_url()
        ),
    )
    .unwrap();
    let certs = dir.path().join("certs");
    let mut process = crate::common::process::serve(&[
        "--certs-dir".as_ref(),
        certs.as_os_str(),
        "--scenario".as_ref(),
        scenario.as_os_str(),
    ]);
    let client = Arc::new(Es2Client::from_dir(
        process.es2_loopback(),
        &dir.path().join("certs"),
        "test-mno",
    ));
    let admin = AdminClient::at(process.admin_loopback());

    // Five released profiles whose devices download now: five notifications queued.
    let mut released = Vec::new();
    for _ in 0..5 {
        let reply = client
            .call(
                Function::DownloadOrder,
                json!({ "profileType": "STANDARD" }),
            )
            .await;
        reply.assert_success();
        let iccid = reply.str("iccid").to_owned();
        confirm(&client, &iccid, json!({ "releaseFlag": true, "eid": EID1 })).await;
        released.push(iccid);
    }
    for iccid in &released {
        let r = admin
            .post(
                &format!("/admin/profiles/{iccid}/events"),
                json!({ "event": "download" }),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
    }

    // Eight DownloadOrders in flight (each held 800 ms by the fault), then SIGTERM.
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call_raw_result(
                        Function::DownloadOrder,
                        json!({
                            "header": { "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": "load" },
                            "profileType": "STANDARD"
                        }),
                    )
                    .await
            })
        })
        .collect();
    // Every call has arrived (each is journaled before its fault delay), then SIGTERM.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let journal = admin
            .get("/admin/journal?function=DownloadOrder")
            .await
            .body;
        if journal["entries"].as_array().map_or(0, Vec::len) >= 5 + 8 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the calls never arrived: {journal}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pending = admin.get("/admin/notifications?state=pending").await.body;
    assert_eq!(
        pending["notifications"].as_array().map(Vec::len),
        Some(released.len()),
        "all still pending at SIGTERM: {pending}"
    );
    process.sigterm();
    receiver.release();

    for call in calls {
        let reply = call
            .await
            .unwrap()
            .expect("an in-flight call is answered, not cut");
        reply.assert_success();
    }
    // Waited for off the runtime: the receiver, on this runtime, still has to answer.
    let (status, process) = tokio::task::spawn_blocking(move || (process.wait_exit(), process))
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    // Every queued notification reached the receiver before the process ended.
    let got: Vec<String> = receiver
        .requests
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.body["iccid"].as_str().unwrap().to_owned())
        .collect();
    let mut expected = released.clone();
    expected.sort();
    let mut got_sorted = got.clone();
    got_sorted.sort();
    assert_eq!(got_sorted, expected, "notifications at exit: {got:?}");
    let log = process.log_lines().join("\n");
    assert!(log.contains("notifications drained"), "{log}");
}
