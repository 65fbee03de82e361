//! Every file in `scenarios/` is valid and does what it says: each test loads one and checks
//! that something it specifies actually happens.

use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;
use smdpp_mock::es2::Function::*;
use smdpp_mock::profile::{OnDevice, ProfileState};
use smdpp_mock::Scenario;

#[test]
fn every_example_is_valid_and_tested_here() {
    let tested = [
        "acceptance.yaml",
        "default.yaml",
        "device-timeline.yaml",
        "faults.yaml",
        "flaky-callback.yaml",
        "ip-whitelist.yaml",
        "million.yaml",
    ];
    let mut found: Vec<String> = std::fs::read_dir("scenarios")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    found.sort();
    assert_eq!(found, tested, "a new example needs a test in this file");
    for name in tested {
        Scenario::load(&std::path::Path::new("scenarios").join(name))
            .unwrap_or_else(|e| panic!("{name}:\n{e}"));
    }
}

#[test]
fn the_built_in_default_is_scenarios_default_yaml() {
    let file = std::fs::read_to_string("scenarios/default.yaml").unwrap();
    assert_eq!(file, smdpp_mock::internal::scenario::DEFAULT_SCENARIO_YAML);
}

#[test]
fn committed_schema_is_current() {
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("docs/scenario.schema.json").unwrap())
            .unwrap();
    assert!(
        committed == smdpp_mock::internal::scenario::json_schema(),
        "docs/scenario.schema.json is stale: run cargo run -- scenario schema > docs/scenario.schema.json"
    );
    let props = committed["properties"].as_object().unwrap();
    for key in [
        "include",
        "smdp",
        "smds",
        "operators",
        "profileTypes",
        "devices",
        "faults",
    ] {
        assert!(props.contains_key(key), "{key}");
    }
    assert_eq!(committed["additionalProperties"], json!(false));
}

#[tokio::test]
async fn acceptance_inventory_starts_each_case_in_its_state() {
    let t = TestServer::with_file("scenarios/acceptance.yaml").await;
    let c = t.client("test-mno");
    // Requester identifiers agreed out of band: the name and an OID.
    let r = c
        .call_raw(
            DownloadOrder,
            json!({ "header": { "functionRequesterIdentifier": "1.3.6.1.4.1.99999.1", "functionCallIdentifier": "x" },
                    "iccid": "8944500400000000008" }),
        )
        .await;
    r.assert_success();
    // TC-12: Linked, so ConfirmOrder returns the EID given in the scenario.
    let r = c
        .call(
            ConfirmOrder,
            json!({ "iccid": "8944500400000000016", "releaseFlag": true }),
        )
        .await;
    r.assert_success();
    assert_eq!(r.str("eid"), "89049032123451234512345678901235");
    // TC-13: Confirmed with a Confirmation Code, waiting for release.
    let p = t.profile("8944500400000000024");
    assert_eq!(p.state, ProfileState::Confirmed);
    assert!(p.confirmation_code_hash.is_some());
    c.call(ReleaseProfile, json!({ "iccid": "8944500400000000024" }))
        .await
        .assert_success();
    assert_eq!(t.state("8944500400000000024"), ProfileState::Released);
    // TC-14: a released order is cancelled with its EID and MatchingID.
    c.call(
        CancelOrder,
        json!({ "iccid": "8944500400000000032", "eid": "89049032123451234512345678901236",
                "matchingId": "ACC-TC14-0001", "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    // TC-15: an installed profile cannot be cancelled.
    c.call(
        CancelOrder,
        json!({ "iccid": "8944500400000000040", "eid": "89049032123451234512345678901237",
                "matchingId": "ACC-TC15-0001", "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_failed("8.2.1", "3.3");
    assert_eq!(
        t.profile("8944500400000000040").on_device,
        Some(OnDevice::Enabled)
    );
    // TC-16: an order in Error goes back to the inventory and can be ordered again.
    c.call(
        CancelOrder,
        json!({ "iccid": "8944500400000000057", "matchingId": "ACC-TC16-0001",
                "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    c.call(DownloadOrder, json!({ "iccid": "8944500400000000057" }))
        .await
        .assert_success();
    // TC-17: retired.
    c.call(DownloadOrder, json!({ "iccid": "8944500400000000065" }))
        .await
        .assert_failed("8.2.1", "3.3");
}

#[tokio::test]
async fn acceptance_matching_ids_are_reproducible() {
    let mut runs = Vec::new();
    for _ in 0..2 {
        let t = TestServer::with_file("scenarios/acceptance.yaml").await;
        let c = t.client("test-mno");
        let iccid = download_by_type(&c, "ACC-STANDARD", None).await;
        runs.push(confirm(&c, &iccid, json!({})).await);
    }
    assert_eq!(
        runs[0], runs[1],
        "smdp.matchingIdSeed fixes generated MatchingIDs"
    );
}

#[tokio::test]
async fn fault_rules_fire_their_exact_codes() {
    let t = TestServer::with_file("scenarios/faults.yaml").await;
    let c = t.client("test-mno");

    // DownloadOrder: two times 8.2.5/3.7, then normal again.
    for _ in 0..2 {
        c.call(DownloadOrder, json!({ "profileType": "DATA-ONLY" }))
            .await
            .assert_failed("8.2.5", "3.7");
    }
    download_by_type(&c, "DATA-ONLY", None).await;

    // ConfirmOrder on one ICCID: 8.2.6/3.3, and the order is untouched.
    c.call(DownloadOrder, json!({ "iccid": "8944500100000000103" }))
        .await
        .assert_success();
    c.call(
        ConfirmOrder,
        json!({ "iccid": "8944500100000000103", "releaseFlag": true }),
    )
    .await
    .assert_failed("8.2.6", "3.3");
    assert_eq!(t.state("8944500100000000103"), ProfileState::Allocated);

    // CancelOrder with raw codes and the rule's message.
    c.call(DownloadOrder, json!({ "iccid": "8944500100000000111" }))
        .await
        .assert_success();
    let r = c
        .call(
            CancelOrder,
            json!({ "iccid": "8944500100000000111", "finalProfileStatusIndicator": "Available" }),
        )
        .await;
    r.assert_failed("8.2.1", "3.3");
    assert_eq!(
        r.body["header"]["functionExecutionStatus"]["statusCodeData"]["message"],
        "the profile is already downloaded (injected)"
    );

    // ReleaseProfile answers at least 300 ms late; the release itself is done.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &iccid, json!({})).await;
    let started = Instant::now();
    c.call(ReleaseProfile, json!({ "iccid": iccid }))
        .await
        .assert_success();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(t.state(&iccid), ProfileState::Released);

    // A dropped connection: no answer, and nothing happened.
    let path = DownloadOrder.path();
    let body = json!({ "header": c.header(), "iccid": "8944500100000000129" });
    let r = c
        .request(
            hyper::Method::POST,
            &path,
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.5.0"),
            ],
            body.to_string().into_bytes(),
        )
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(t.state("8944500100000000129"), ProfileState::Available);
}

#[tokio::test]
async fn seeded_probability_faults_repeat_exactly() {
    let mut outcomes = Vec::new();
    for _ in 0..2 {
        let t = TestServer::with_file("scenarios/faults.yaml").await;
        let c = t.client("other-mno");
        let mut run = Vec::new();
        for _ in 0..24 {
            let r = c
                .call(DownloadOrder, json!({ "profileType": "OTHER-STANDARD" }))
                .await;
            run.push(r.execution_status() == Some("Failed"));
            if r.execution_status() == Some("Failed") {
                r.assert_failed("1.2", "4.2");
            }
        }
        outcomes.push(run);
    }
    assert_eq!(outcomes[0], outcomes[1]);
    let failed = outcomes[0].iter().filter(|f| **f).count();
    assert!(
        (1..24).contains(&failed),
        "p = 0.25 over 24 calls gave {failed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_timelines_run_after_release_and_notify() {
    use crate::common::receiver::Receiver;
    let receiver = Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let yaml = std::fs::read_to_string("scenarios/device-timeline.yaml")
        .unwrap()
        .replace("http://127.0.0.1:9090", &receiver.http_url());
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");

    // STANDARD: download, install, enable.
    let happy = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(&c, &happy, json!({ "releaseFlag": true })).await;

    // The failing eUICC.
    let failing_eid = "89049032123451234512345678909999";
    let broken = download_by_type(&c, "STANDARD", Some(failing_eid)).await;
    confirm(&c, &broken, json!({ "releaseFlag": true })).await;

    // DATA-ONLY: two wrong codes (three are tolerated), then success.
    let coded = download_by_type(&c, "DATA-ONLY", None).await;
    confirm(
        &c,
        &coded,
        json!({ "releaseFlag": true, "confirmationCode": "1234" }),
    )
    .await;

    let p = t
        .wait_for(&happy, |p| p.on_device == Some(OnDevice::Enabled))
        .await;
    assert_eq!(p.state, ProfileState::Installed);
    let p = t
        .wait_for(&broken, |p| p.state == ProfileState::Error)
        .await;
    assert_eq!(p.download_attempts, 1);
    let p = t
        .wait_for(&coded, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(p.confirmation_code_attempts, 2);
    assert_eq!(
        p.eid,
        Some(smdpp_mock::internal::scenario::DEFAULT_DEVICE_EID)
    );

    // And the operator heard about every step, in order per ICCID.
    let got = receiver.wait_for(3 + 2 + 2).await;
    let points = |iccid: &str| -> Vec<(u64, String)> {
        got.iter()
            .filter(|r| r.body["iccid"] == iccid)
            .map(|r| {
                (
                    r.body["notificationPointId"].as_u64().unwrap(),
                    r.body["notificationPointStatus"]["status"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                )
            })
            .collect()
    };
    let ok = |p: u64| (p, "Executed-Success".to_string());
    let failed = |p: u64| (p, "Failed".to_string());
    assert_eq!(points(&happy), vec![ok(3), ok(4), ok(100)]);
    assert_eq!(points(&broken), vec![ok(3), failed(4)]);
    // The two tolerated wrong codes send nothing (SGP.22 §3.1.3.2 step 8).
    assert_eq!(points(&coded), vec![ok(3), ok(4)]);
}

#[tokio::test]
async fn ip_whitelist_refuses_other_networks() {
    let t = TestServer::with_file("scenarios/ip-whitelist.yaml").await;
    // lab-mno may connect from loopback.
    let lab = t.client("lab-mno");
    download_by_type(&lab, "LAB-STANDARD", None).await;
    // test-mno may not: its certificate is good, its network is not.
    let r = t
        .client("test-mno")
        .request(
            hyper::Method::POST,
            &DownloadOrder.path(),
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.5.0"),
            ],
            json!({ "header": { "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": "1" },
                    "profileType": "WL-STANDARD" })
            .to_string()
            .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(r.status, hyper::StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(t.app().world().store.available_count("WL-STANDARD"), 20);
    let counters = &t.app().counters;
    assert_eq!(
        counters
            .requests_refused_source_ip
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn connections_from_unlisted_networks_are_closed_before_tls() {
    let t = TestServer::with_yaml(
        "operators:\n  - id: test-mno\n    allowedSourceIps: [\"192.0.2.0/24\"]\n",
    )
    .await;
    let before = t.snapshot();
    let r = t
        .client("test-mno")
        .call_raw_result(DownloadOrder, json!({ "profileType": "X" }))
        .await;
    assert!(r.is_err(), "{r:?}");
    assert_eq!(t.snapshot(), before);
    let refused = t
        .app()
        .counters
        .connections_refused_source_ip
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(refused, 1);
}

#[tokio::test]
async fn a_million_profiles_load_and_serve() {
    let t = TestServer::with_file("scenarios/million.yaml").await;
    assert_eq!(t.app().world().store.len(), 1_000_000);
    let c = t.client("test-mno");
    // The first profile of the second range, in scenario order.
    let iccid = download_by_type(&c, "BULK-B", None).await;
    assert_eq!(iccid, "8944502000000000004");
    c.call(DownloadOrder, json!({ "iccid": "8944501000004999996" }))
        .await
        .assert_success();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flaky_callback_delivers_late_twice_and_not_at_all() {
    use crate::common::receiver::Receiver;
    use smdpp_mock::DeliveryState;
    // The receiver itself is flaky too: its first answer is 503.
    let receiver = Receiver::plain(std::sync::Arc::new(|n| if n == 0 { 503 } else { 204 })).await;
    let yaml = std::fs::read_to_string("scenarios/flaky-callback.yaml")
        .unwrap()
        .replace("http://127.0.0.1:9090", &receiver.http_url())
        // No attempt may time out on a slow machine: the lateness here is the fault rule's.
        .replace("timeout: 2s", "timeout: 60s");
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "FLAKY", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;

    let log = t.app().notifier.log().clone();
    assert!(
        log.wait_until(Duration::from_secs(20), |r| r.len() == 3
            && r.iter().all(|r| r.state != DeliveryState::Pending))
            .await
    );
    // The duplicate copy goes out after the record is already marked delivered.
    let got = receiver.wait_for(4).await;
    let points: Vec<u64> = got
        .iter()
        .map(|r| r.body["notificationPointId"].as_u64().unwrap())
        .collect();
    // Point 3 is held back a second, then the receiver's 503 makes it go twice; point 4 waits
    // behind it (order per ICCID) and is duplicated by the fault rule.
    assert_eq!(points, vec![3, 3, 4, 4]);
    assert!(!points.contains(&100), "the enable notice was dropped");
    let records = log.records();
    let dropped = records
        .iter()
        .find(|r| r.notification_point_id == 100)
        .unwrap();
    assert_eq!(dropped.state, DeliveryState::Dropped);
    assert_eq!(dropped.reason.as_deref(), Some("dropped by a fault rule"));
    assert_eq!(t.state(&iccid), ProfileState::Installed);
}

/// MatchingIDs are the one secret of an Activation Code: two instances of one scenario draw
/// different ones (for the inventory and for ConfirmOrder), unless the scenario asks for the
/// reproducible sequence with `matchingIdSeed`, which gives the same ones.
#[tokio::test]
async fn matching_ids_differ_between_instances_unless_seeded() {
    const YAML: &str = r#"
smdp: {SEED}
operators: [{ id: test-mno }]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles:
      - { range: { start: "894450010000000000", count: 5 } }
      - { iccid: "8944500400000000024", state: Released }
"#;
    async fn ids(yaml: &str) -> (String, String) {
        let t = TestServer::with_yaml(yaml).await;
        let parked = t
            .profile("8944500400000000024")
            .matching_id
            .and_then(|m| m.id().map(|id| id.as_str().to_owned()))
            .unwrap();
        let c = t.client("test-mno");
        let iccid = download_by_type(&c, "STANDARD", None).await;
        (parked, confirm(&c, &iccid, json!({})).await)
    }
    let random = YAML.replace("{SEED}", "{}");
    let (a, b) = (ids(&random).await, ids(&random).await);
    assert_ne!(a.0, b.0, "inventory MatchingIDs");
    assert_ne!(a.1, b.1, "ConfirmOrder MatchingIDs");
    let seeded = YAML.replace("{SEED}", "{ matchingIdSeed: 42 }");
    assert_eq!(ids(&seeded).await, ids(&seeded).await);
}
