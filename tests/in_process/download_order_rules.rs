//! Where SGP.22 decides and the mock now follows it (each test cites its section): CancelOrder
//! when the order has no EID or MatchingID, SM-DS Event Deletion when a download order ends,
//! the EID bound only when the BPP is.

use serde_json::json;
use smdpp_mock::es2::Function::*;
use smdpp_mock::profile::{CancelSessionReason, DeviceEvent, InstallResult, ProfileState};

use crate::common::*;

/// §5.3.3: the SM-DP+ checks the EID and MatchingID "if there is" one already associated with
/// the ICCID; otherwise it "SHALL" cancel the order.
#[tokio::test]
async fn cancel_order_naming_ids_the_order_does_not_have_is_executed() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "eid": EID1, "matchingId": "ABC-123",
                "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    assert_eq!(t.state(&iccid), ProfileState::Available);
}

const SMDS: &str = "lpa.ds.example.com";

async fn registered(t: &TestServer) -> String {
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(
        &c,
        &iccid,
        json!({ "releaseFlag": true, "smdsAddress": SMDS, "matchingId": format!("EVT-{}", &iccid[14..]) }),
    )
    .await;
    let view = t
        .admin()
        .get(&format!("/admin/profiles/{iccid}"))
        .await
        .body;
    assert_eq!(view["smdsEventRegistered"], true, "{view}");
    iccid
}

async fn deleted_events(t: &TestServer) -> u64 {
    t.metric("smdpp_smds_events_total{operation=\"delete\"}")
        .await
}

/// §3.1.3.3 step 10: after the Profile Installation Result, the SM-DP+ deletes the SM-DS event;
/// §3.1.3.1 step 6 and §5.6.5 step 10: after a terminal CancelSession too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smds_event_is_deleted_when_the_download_order_ends() {
    let t = TestServer::start().await;
    let installed = registered(&t).await;
    t.device(&installed, DeviceEvent::Download).unwrap();
    assert_eq!(
        deleted_events(&t).await,
        0,
        "still pending after the download"
    );
    t.device(
        &installed,
        DeviceEvent::InstallResult(InstallResult::Success),
    )
    .unwrap();
    assert_eq!(deleted_events(&t).await, 1);
    let view = t
        .admin()
        .get(&format!("/admin/profiles/{installed}"))
        .await
        .body;
    assert_eq!(view["smdsEventRegistered"], false, "{view}");

    let rejected = registered(&t).await;
    t.device(
        &rejected,
        DeviceEvent::CancelSession(CancelSessionReason::EndUserRejection),
    )
    .unwrap();
    assert_eq!(t.state(&rejected), ProfileState::Error);
    assert_eq!(deleted_events(&t).await, 2);
    // A postponed session is not the end of the order: the event stays.
    let postponed = registered(&t).await;
    t.device(
        &postponed,
        DeviceEvent::CancelSession(CancelSessionReason::Postponed),
    )
    .unwrap();
    assert_eq!(deleted_events(&t).await, 2);
    // And a later CancelOrder of an ended order deletes nothing twice.
    t.client("test-mno")
        .call(
            CancelOrder,
            json!({ "iccid": rejected, "eid": EID1, "matchingId": format!("EVT-{}", &rejected[14..]),
                    "finalProfileStatusIndicator": "Unavailable" }),
        )
        .await
        .assert_success();
    assert_eq!(deleted_events(&t).await, 2);
    assert_eq!(
        t.metric("smdpp_smds_events_total{operation=\"register\"}")
            .await,
        3
    );
}

/// §3.1.3.2 step 9: the order is linked to the EID when the Bound Profile Package is. A device
/// that postponed, or typed a wrong code, leaves an order the operator never gave an EID
/// without one, so a CancelOrder without an EID still works.
#[tokio::test]
async fn the_eid_is_bound_at_the_bound_profile_package() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    let mid = confirm(
        &c,
        &iccid,
        json!({ "releaseFlag": true, "confirmationCode": "1234" }),
    )
    .await;
    t.device(
        &iccid,
        DeviceEvent::CancelSession(CancelSessionReason::Postponed),
    )
    .unwrap();
    t.device(&iccid, DeviceEvent::WrongConfirmationCode)
        .unwrap();
    assert_eq!(t.profile(&iccid).eid, None);
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "matchingId": mid, "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();

    // After the download the EID is the order's.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    t.device(&iccid, DeviceEvent::Download).unwrap();
    assert!(t.profile(&iccid).eid.is_some());
}
