//! Whole orders through their lifecycle, and many callers at once.

use std::collections::HashSet;
use std::sync::Arc;

use crate::common::*;
use serde_json::json;
use smdpp_mock::es2::Function::*;
use smdpp_mock::profile::ProfileState;

#[tokio::test]
async fn happy_path_available_to_released() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");

    // Allocated path: DownloadOrder without EID, EID given at ConfirmOrder.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    assert_eq!(t.state(&iccid), ProfileState::Allocated);
    let mid = confirm(&c, &iccid, json!({ "eid": EID1 })).await;
    assert_eq!(t.state(&iccid), ProfileState::Confirmed);
    c.call(ReleaseProfile, json!({ "iccid": iccid }))
        .await
        .assert_success();
    let p = t.profile(&iccid);
    assert_eq!(p.state, ProfileState::Released);
    assert_eq!(p.eid.unwrap().to_string(), EID1);
    assert_eq!(p.matching_id.unwrap().as_str(), mid);
    for s in [
        ProfileState::Allocated,
        ProfileState::Confirmed,
        ProfileState::Released,
    ] {
        assert!(p.entered.get(s).is_some(), "{s} has a timestamp");
    }

    // Linked path with immediate release.
    let iccid = download_by_type(&c, "DATA-ONLY", Some(EID2)).await;
    assert_eq!(t.state(&iccid), ProfileState::Linked);
    let r = c
        .call(ConfirmOrder, json!({ "iccid": iccid, "releaseFlag": true }))
        .await;
    r.assert_success();
    assert_eq!(r.str("eid"), EID2);
    assert_eq!(t.state(&iccid), ProfileState::Released);

    // Cancelled back to Available, the ICCID can be ordered again with another EID.
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "eid": EID2, "matchingId": r.str("matchingId"), "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    assert_eq!(t.state(&iccid), ProfileState::Available);
    c.call(DownloadOrder, json!({ "iccid": iccid, "eid": EID1 }))
        .await
        .assert_success();
    assert_eq!(t.profile(&iccid).eid.unwrap().to_string(), EID1);
}

/// 64 concurrent DownloadOrders by profileType against a pool of 50: exactly 50 distinct
/// ICCIDs, 14 × `8.2.5 / 3.7`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_download_orders_never_share_a_profile() {
    let t = Arc::new(
        TestServer::with_yaml(
            r#"
operators:
  - id: test-mno
profileTypes:
  - id: POOL
    owner: test-mno
    profiles:
      - range: { start: "894450010000000000", count: 50 }
"#,
        )
        .await,
    );
    let client = Arc::new(t.client("test-mno"));
    let tasks: Vec<_> = (0..64)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .call(DownloadOrder, json!({ "profileType": "POOL" }))
                    .await
            })
        })
        .collect();
    let mut iccids = Vec::new();
    let mut unavailable = 0;
    for task in tasks {
        let r = task.await.unwrap();
        match r.execution_status() {
            Some("Executed-Success") => iccids.push(r.str("iccid").to_string()),
            _ => {
                r.assert_failed("8.2.5", "3.7");
                unavailable += 1;
            }
        }
    }
    let distinct: HashSet<_> = iccids.iter().collect();
    assert_eq!(iccids.len(), 50);
    assert_eq!(distinct.len(), 50, "no ICCID handed out twice");
    assert_eq!(unavailable, 14);
    assert!(t
        .snapshot()
        .iter()
        .all(|p| p.state == ProfileState::Allocated));
}
