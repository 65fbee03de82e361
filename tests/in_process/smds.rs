//! The mock's SM-DS (SGP.22 §3.6, §5.8, §5.9): ConfirmOrder with its address registers the
//! order's Event (EventID = MatchingID), an LPA discovers it over ES11 and downloads it, and
//! the order's end deletes it; ES12 for other callers; every status code of Tables 48a, 52, 54
//! and 56 from the situation the spec gives it.

use serde_json::json;
use smdpp_mock::profile::ProfileState;
use smdpp_rsp::lpa::EventEntry;

use crate::common::receiver::points;
use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_for_the_mocks_smds_is_discovered_downloaded_and_its_event_deleted() {
    let (t, receiver) = es9_started("").await;
    let smds = t.mock.smds_address().expect("the SM-DS runs");
    let (iccid, mid) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let events = lpa.discover(&smds, None).await.unwrap();
    assert_eq!(
        events,
        [EventEntry {
            event_id: mid.clone(),
            rsp_server_address: t.mock.smdp_address(),
        }]
    );
    // Another eUICC has none.
    let mut other = t.mock.lpa(EID2).unwrap();
    assert!(other.discover(&smds, None).await.unwrap().is_empty());
    let downloaded = lpa.download_event(&events[0], None).await.unwrap();
    assert!(downloaded.installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
    // The installation result ended the order: its event is gone (§3.1.3.3 step 10).
    assert!(lpa.discover(&smds, None).await.unwrap().is_empty());
    let register = last_call(&t, "RegisterEvent");
    assert_eq!(register.status, Some("Executed-Success"));
    let delete = last_call(&t, "DeleteEvent");
    assert_eq!(delete.status, Some("Executed-Success"));
}
