//! Simulated device events that the SM-DP+ refuses get the ES9+ status codes of SGP.22 §5.6.

use crate::common::*;
use serde_json::json;
use smdpp_mock::ids::{Eid, Iccid};
use smdpp_mock::internal::app::simulator::{es9_code, simulate, simulate_by_matching_id};
use smdpp_mock::profile::ProfileState;
use smdpp_mock::profile::{DeviceEvent, InstallResult};

fn code(e: &smdpp_mock::internal::app::simulator::SimulateError) -> String {
    es9_code(e).to_string()
}

#[tokio::test]
async fn refused_device_events_have_es9_codes() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let app = t.app();
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let key = iccid.parse::<Iccid>().unwrap().key();

    // Download before release: 8.2 / 1.2 "Profile has not yet been released".
    let e = simulate(app, key, None, DeviceEvent::Download).unwrap_err();
    assert_eq!(code(&e), "8.2/1.2");
    assert_eq!(t.state(&iccid), ProfileState::Linked);

    let mid = confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    // Another eUICC: 8.1.1 / 3.8.
    let other: Eid = EID2.parse().unwrap();
    let e = simulate(app, key, Some(other), DeviceEvent::Download).unwrap_err();
    assert_eq!(code(&e), "8.1.1/3.8");
    // An unknown MatchingID: 8.2.6 / 3.8.
    let e = simulate_by_matching_id(
        app,
        &"NO-SUCH-ID".parse().unwrap(),
        None,
        DeviceEvent::Download,
    )
    .unwrap_err();
    assert_eq!(code(&e), "8.2.6/3.8");
    // A wrong Confirmation Code for an order without one: 8.2.7 / 3.8.
    let e = simulate(app, key, None, DeviceEvent::WrongConfirmationCode).unwrap_err();
    assert_eq!(code(&e), "8.2.7/3.8");

    // By MatchingID, the device downloads and installs.
    let mid = mid.parse().unwrap();
    simulate_by_matching_id(app, &mid, None, DeviceEvent::Download).unwrap();
    let p = simulate_by_matching_id(
        app,
        &mid,
        None,
        DeviceEvent::InstallResult(InstallResult::Success),
    )
    .unwrap();
    assert_eq!(p.state, ProfileState::Installed);
    // The order is over: a further download is refused.
    let e = simulate(app, key, None, DeviceEvent::Download).unwrap_err();
    assert_eq!(code(&e), "8.2.6/3.8");
}
