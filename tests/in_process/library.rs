//! The embeddable library: `MockSmdp` on free ports, its client, accessors,
//! device simulation, and expectations checked on drop with a diagnostic.

use std::sync::Arc;
use std::time::Duration;

use crate::common::receiver::Receiver;
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::profile::ProfileState;
use smdpp_mock::profile::{DeviceEvent, InstallResult};
use smdpp_mock::MockSmdp;

/// The panic message of a task that panicked.
async fn panic_message(task: tokio::task::JoinHandle<()>) -> String {
    let err = task.await.expect_err("the task should have panicked");
    let payload = err.into_panic();
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast::<&str>()
            .map(|s| s.to_string())
            .unwrap_or_default(),
    }
}

#[tokio::test]
async fn default_mock_serves_es2_and_met_expectations_pass_on_drop() {
    let mock = MockSmdp::start().await;
    mock.expect_call(Function::DownloadOrder)
        .operator("test-mno")
        .succeeded()
        .times(2);
    mock.expect_call(Function::ConfirmOrder).times(1);
    mock.expect_call(Function::CancelOrder).never();

    assert!(mock.es2_url().starts_with("https://localhost:"));
    assert!(mock.admin_url().starts_with("http://127.0.0.1:"));
    assert!(mock
        .ca_pem()
        .unwrap()
        .starts_with("-----BEGIN CERTIFICATE-----"));

    let client = mock.client("test-mno").unwrap();
    let first = client
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await
        .unwrap();
    assert!(first.is_success(), "{:?}", first.body);
    let iccid = first.body["iccid"].as_str().unwrap().to_owned();
    let second = client
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await
        .unwrap();
    assert!(second.is_success());
    assert_ne!(second.body["iccid"], first.body["iccid"]);

    let confirm = client
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": iccid, "releaseFlag": true }),
        )
        .await
        .unwrap();
    assert!(confirm.is_success(), "{:?}", confirm.body);
    assert_eq!(mock.profile(&iccid).unwrap().state, ProfileState::Released);

    // The platform API over the same client.
    let listed = client.get(&format!("/profiles/{iccid}")).await.unwrap();
    assert_eq!(listed.status, 200, "{:?}", listed.body);

    assert_eq!(mock.journal().len(), 3);
    mock.verify().await;
}

#[tokio::test]
async fn unmet_expectation_panics_on_drop_listing_what_was_received() {
    let task = tokio::spawn(async {
        let mock = MockSmdp::start().await;
        mock.expect_call(Function::ConfirmOrder).times(1);
        mock.expect_call(Function::DownloadOrder).at_most(0); // shown as "exactly 0"
        let client = mock.client("test-mno").unwrap();
        client
            .call(
                Function::DownloadOrder,
                json!({ "profileType": "STANDARD" }),
            )
            .await
            .unwrap();
        client
            .call(Function::CancelOrder, json!({ "iccid": "8944500100000009998", "finalProfileStatusIndicator": "Available" }))
            .await
            .unwrap();
    });
    let message = panic_message(task).await;
    assert!(
        message.contains("expected exactly 1 ConfirmOrder calls, got 0"),
        "{message}"
    );
    assert!(
        message.contains("expected exactly 0 DownloadOrder calls, got 1"),
        "{message}"
    );
    assert!(
        message
            .contains("#1 DownloadOrder by test-mno iccid=8944500100000000004 -> Executed-Success"),
        "{message}"
    );
    assert!(
        message
            .contains("#2 CancelOrder by test-mno iccid=8944500100000009998 -> Failed 8.2.1/3.9"),
        "{message}"
    );
}

#[tokio::test]
async fn failed_with_counts_only_that_status_code() {
    let task = tokio::spawn(async {
        let mock = MockSmdp::start().await;
        mock.expect_call(Function::ConfirmOrder)
            .failed_with("8.2.1", "3.9")
            .times(1);
        let client = mock.client("test-mno").unwrap();
        // A Failed answer with another code does not count.
        let reply = client
            .call(Function::ConfirmOrder, json!({ "releaseFlag": true }))
            .await
            .unwrap();
        assert_eq!(
            reply.status_code(),
            Some(("1.3.1".to_owned(), "2.2".to_owned())),
            "{:?}",
            reply.body
        );
    });
    let message = panic_message(task).await;
    assert!(
        message.contains("expected exactly 1 ConfirmOrder calls answered Failed 8.2.1/3.9, got 0"),
        "{message}"
    );
}

/// Operator `test-mno` notifying `receiver`, five STANDARD profiles, then `more` YAML.
fn with_callback(receiver: &Receiver, more: &str) -> String {
    format!(
        r#"
operators:
  - id: test-mno
    callback:
      url: {}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles:
      - range: {{ start: "894450010000000000", count: 5 }}
{more}"#,
        receiver.http_url()
    )
}

#[tokio::test]
async fn notification_expectations_and_device_simulation() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = with_callback(&receiver, "");
    let mock = MockSmdp::builder()
        .scenario_yaml(yaml)
        .start()
        .await
        .unwrap();
    let client = mock.client("test-mno").unwrap();
    let iccid = client
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await
        .unwrap()
        .body["iccid"]
        .as_str()
        .unwrap()
        .to_owned();
    mock.expect_notification(3).iccid(&iccid).times(1);
    mock.expect_notification(4).operator("test-mno").times(1);
    mock.expect_notification(100).never();
    let confirm = client
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": iccid, "eid": crate::common::EID1, "releaseFlag": true }),
        )
        .await
        .unwrap();
    assert!(confirm.is_success(), "{:?}", confirm.body);

    mock.device(&iccid, DeviceEvent::Download).unwrap();
    let installed = mock
        .device(&iccid, DeviceEvent::InstallResult(InstallResult::Success))
        .unwrap();
    assert_eq!(installed.state, ProfileState::Installed);
    // A refused event is an error, and changes nothing.
    assert!(mock.device(&iccid, DeviceEvent::Download).is_err());
    assert_eq!(mock.profile(&iccid).unwrap().state, ProfileState::Installed);

    // verify() waits for the deliveries in flight.
    mock.verify().await;
    let points: Vec<u64> = receiver
        .wait_for(2)
        .await
        .iter()
        .map(|r| r.body["notificationPointId"].as_u64().unwrap())
        .collect();
    assert_eq!(points, [3, 4]);
}

#[tokio::test]
async fn builder_errors_and_certificate_directory() {
    // A broken scenario is an error naming line and column, not a panic.
    let err = MockSmdp::builder()
        .scenario_yaml("operators:\n  - id: test-mno\n    bogus: 1\n")
        .start()
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("3:5"), "{err:#}");

    // A file from the repository, with certificates kept in a directory of ours.
    let dir = crate::common::TempDir::new("library");
    let certs = dir.path().join("pki");
    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/acceptance.yaml");
    let mock = MockSmdp::builder()
        .scenario_file(scenario)
        .certs_dir(&certs)
        .san("smdp.internal.example")
        .start()
        .await
        .unwrap();
    assert_eq!(mock.certs_dir(), certs);
    assert!(certs.join("ca.pem").exists());
    let err = mock.operator_tls_config("nobody").unwrap_err();
    assert!(
        err.to_string()
            .contains("no certificate for operator \"nobody\""),
        "{err}"
    );
    drop(mock);
    // Our directory stays; a temporary one goes.
    assert!(certs.join("ca.pem").exists());
    let mock = MockSmdp::start().await;
    let temp = mock.certs_dir().to_owned();
    assert!(temp.join("ca.pem").exists());
    drop(mock);
    assert!(!temp.exists(), "{} should be removed", temp.display());
}

#[tokio::test]
async fn verify_waits_for_timeline_notifications_and_counts_from_registration() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = with_callback(
        &receiver,
        r#"
devices:
  - match: { profileType: STANDARD }
    timeline:
      - { after: 1h, event: download }
"#,
    );
    let mock = MockSmdp::builder()
        .scenario_yaml(yaml)
        .start()
        .await
        .unwrap();
    let client = mock.client("test-mno").unwrap();
    let order = |c: &smdpp_mock::OperatorClient| {
        let c = c.clone();
        async move {
            c.call(
                Function::DownloadOrder,
                json!({ "profileType": "STANDARD" }),
            )
            .await
            .unwrap()
            .body["iccid"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    // A call before the expectation does not count.
    order(&client).await;
    mock.expect_call(Function::DownloadOrder).times(1);
    let iccid = order(&client).await;
    mock.expect_notification(3).iccid(&iccid).times(1);
    let confirm = client
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": iccid, "releaseFlag": true }),
        )
        .await
        .unwrap();
    assert!(confirm.is_success(), "{:?}", confirm.body);
    // Nothing is queued yet (the timeline waits an hour on the mock's clock); then the clock
    // moves, and verify waits for the notification that follows.
    assert_eq!(mock.pending_notifications(), 0);
    mock.advance_clock(Duration::from_secs(3600));
    mock.verify().await;
    assert_eq!(
        mock.profile(&iccid).unwrap().state,
        ProfileState::Downloaded
    );
}
