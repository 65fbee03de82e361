//! Every ES2+ variant an operator uses (by profile type, with EID, by ICCID; generated or own
//! MatchingID; release now or later) and every function-specific status code of SGP.22
//! Tables 24, 27, 30 and 32, over real mutual-TLS connections.

use crate::common::*;
use serde_json::json;
use smdpp_mock::es2::Function::*;
use smdpp_mock::ids::Iccid;
use smdpp_mock::profile::machine::Step;
use smdpp_mock::profile::ProfileState;

/// The first ICCIDs of the default scenario's STANDARD and OTHER-STANDARD ranges.
const STANDARD_1: &str = "8944500100000000004";
const OTHER_1: &str = "8944700100000000002";

fn force_state(t: &TestServer, iccid: &str, state: ProfileState) {
    let key = iccid.parse::<Iccid>().unwrap().key();
    t.app()
        .world()
        .store
        .update::<()>(key, |p| {
            let mut next = p.clone();
            next.state = state;
            Ok(Step {
                next,
                effects: vec![],
            })
        })
        .unwrap();
}

// ---------------------------------------------------------------- DownloadOrder

#[tokio::test]
async fn download_order_variants() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");

    // By profile type: an Available ICCID of that type, now Allocated.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    assert_eq!(t.state(&iccid), ProfileState::Allocated);
    assert_eq!(&*t.profile(&iccid).profile_type, "STANDARD");

    // By profile type and EID: Linked to the EID.
    let iccid = download_by_type(&c, "DATA-ONLY", Some(EID1)).await;
    assert_eq!(t.state(&iccid), ProfileState::Linked);
    assert_eq!(t.profile(&iccid).eid.unwrap().to_string(), EID1);

    // By ICCID, given with the F pad: the answer echoes the caller's form.
    let padded = "8944500100000000012F";
    let r = c.call(DownloadOrder, json!({ "iccid": padded })).await;
    r.assert_success();
    assert_eq!(r.str("iccid"), padded);
    assert_eq!(t.state(padded), ProfileState::Allocated);

    // By ICCID and matching profile type.
    let r = c
        .call(
            DownloadOrder,
            json!({ "iccid": "8944500100000000020", "profileType": "STANDARD", "eid": EID2 }),
        )
        .await;
    r.assert_success();
    assert_eq!(r.str("iccid"), "8944500100000000020");
    assert_eq!(t.state("8944500100000000020"), ProfileState::Linked);
}

#[tokio::test]
async fn download_order_status_codes() {
    let t = TestServer::with_yaml(
        r#"
operators:
  - id: test-mno
  - id: other-mno
profileTypes:
  - id: TINY
    owner: test-mno
    profiles:
      - range: { start: "894450010000000000", count: 1 }
  - id: SECOND
    owner: test-mno
    profiles:
      - range: { start: "894450020000000000", count: 1 }
  - id: FOREIGN
    owner: other-mno
    profiles:
      - range: { start: "894470010000000000", count: 1 }
"#,
    )
    .await;
    let c = t.client("test-mno");
    let before = t.snapshot();

    // 8.2.1 / 3.9: unknown ICCID.
    let r = c
        .call(DownloadOrder, json!({ "iccid": "8944500999999999999" }))
        .await;
    r.assert_failed("8.2.1", "3.9");
    assert_eq!(r.subject_identifier(), Some("8944500999999999999"));
    // 8.2.1 / 1.2: another operator's ICCID.
    c.call(DownloadOrder, json!({ "iccid": OTHER_1 }))
        .await
        .assert_failed("8.2.1", "1.2");
    // 8.2.5 / 3.9: unknown profile type.
    c.call(DownloadOrder, json!({ "profileType": "NOPE" }))
        .await
        .assert_failed("8.2.5", "3.9");
    // 8.2.5 / 1.2: another operator's profile type.
    c.call(DownloadOrder, json!({ "profileType": "FOREIGN" }))
        .await
        .assert_failed("8.2.5", "1.2");
    // 8.2.5 / 3.8: profile type does not match the ICCID's.
    c.call(
        DownloadOrder,
        json!({ "iccid": STANDARD_1, "profileType": "SECOND" }),
    )
    .await
    .assert_failed("8.2.5", "3.8");
    // Neither iccid nor profileType: conditional element missing.
    c.call(DownloadOrder, json!({ "eid": EID1 }))
        .await
        .assert_failed("1.3.1", "2.3");
    assert_eq!(t.snapshot(), before, "refusals change nothing");

    // 8.2.1 / 3.3: the ICCID is no longer available.
    c.call(DownloadOrder, json!({ "iccid": STANDARD_1 }))
        .await
        .assert_success();
    c.call(DownloadOrder, json!({ "iccid": STANDARD_1 }))
        .await
        .assert_failed("8.2.1", "3.3");
    // 8.2.5 / 3.7: no profile of the type left.
    c.call(DownloadOrder, json!({ "profileType": "TINY" }))
        .await
        .assert_failed("8.2.5", "3.7");
}

// ---------------------------------------------------------------- ConfirmOrder

#[tokio::test]
async fn confirm_order_variants() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");

    // Generated MatchingID, releaseFlag false: Confirmed, CC stored as SHA-256 only.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    let r = c
        .call(
            ConfirmOrder,
            json!({ "iccid": iccid, "releaseFlag": false, "confirmationCode": "1234" }),
        )
        .await;
    r.assert_success();
    let generated = r.str("matchingId");
    assert!(
        generated.len() == 23
            && generated
                .chars()
                .all(|ch| ch.is_ascii_digit() || ch.is_ascii_uppercase() || ch == '-'),
        "{generated}"
    );
    assert!(r.body.get("eid").is_none(), "no EID is bound: {}", r.body);
    let p = t.profile(&iccid);
    assert_eq!(p.state, ProfileState::Confirmed);
    assert_eq!(p.matching_id.unwrap().as_str(), generated);
    let digest = ring::digest::digest(&ring::digest::SHA256, b"1234");
    assert_eq!(&p.confirmation_code_hash.unwrap()[..], digest.as_ref());

    // Caller-chosen MatchingID, releaseFlag true, EID given now: Released, EID returned.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    let r = c
        .call(
            ConfirmOrder,
            json!({ "iccid": iccid, "releaseFlag": true, "matchingId": "MY-ORDER-0001", "eid": EID1 }),
        )
        .await;
    r.assert_success();
    assert_eq!(r.str("matchingId"), "MY-ORDER-0001");
    assert_eq!(r.str("eid"), EID1);
    assert_eq!(t.state(&iccid), ProfileState::Released);

    // EID from DownloadOrder is returned; the Default SM-DP+ case takes an empty MatchingID.
    let iccid = download_by_type(&c, "STANDARD", Some(EID2)).await;
    let r = c
        .call(
            ConfirmOrder,
            json!({ "iccid": iccid, "releaseFlag": true, "matchingId": "" }),
        )
        .await;
    r.assert_success();
    assert_eq!(r.str("matchingId"), "");
    assert_eq!(r.str("eid"), EID2);

    // SM-DS use case: event registered at release.
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(&c, &iccid, json!({ "smdsAddress": "lpa.ds.gsma.com" })).await;
    assert!(!t.profile(&iccid).smds_event_registered);
    c.call(ReleaseProfile, json!({ "iccid": iccid }))
        .await
        .assert_success();
    let p = t.profile(&iccid);
    assert_eq!(p.state, ProfileState::Released);
    assert!(p.smds_event_registered);
}

#[tokio::test]
async fn confirm_order_status_codes() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");

    // 8.2.1 / 3.9 and 8.2.1 / 1.2.
    c.call(
        ConfirmOrder,
        json!({ "iccid": "8944500999999999999", "releaseFlag": true }),
    )
    .await
    .assert_failed("8.2.1", "3.9");
    let other = t.client("other-mno");
    let foreign = download_by_type(&other, "OTHER-STANDARD", None).await;
    c.call(
        ConfirmOrder,
        json!({ "iccid": foreign, "releaseFlag": true }),
    )
    .await
    .assert_failed("8.2.1", "1.2");

    // 8.2.6 / 3.3: the operator's MatchingID is already bound to another order.
    let first = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &first, json!({ "matchingId": "DUP-1" })).await;
    let second = download_by_type(&c, "STANDARD", None).await;
    let before = t.snapshot();
    c.call(
        ConfirmOrder,
        json!({ "iccid": second, "releaseFlag": false, "matchingId": "DUP-1" }),
    )
    .await
    .assert_failed("8.2.6", "3.3");

    // 8.1.1 / 2.2: SM-DS address but no EID known; and empty MatchingID without EID.
    c.call(
        ConfirmOrder,
        json!({ "iccid": second, "releaseFlag": true, "smdsAddress": "lpa.ds.gsma.com" }),
    )
    .await
    .assert_failed("8.1.1", "2.2");
    c.call(
        ConfirmOrder,
        json!({ "iccid": second, "releaseFlag": true, "matchingId": "" }),
    )
    .await
    .assert_failed("8.1.1", "2.2");

    // 8.9 / 5.1: invalid or unreachable SM-DS; 8.9 / 4.2: the SM-DS refuses the registration.
    for address in ["not a host!", "unreachable.smds.example"] {
        c.call(
            ConfirmOrder,
            json!({ "iccid": second, "releaseFlag": true, "eid": EID1, "smdsAddress": address }),
        )
        .await
        .assert_failed("8.9", "5.1");
    }
    c.call(
        ConfirmOrder,
        json!({ "iccid": second, "releaseFlag": true, "eid": EID1, "smdsAddress": "failing.smds.example" }),
    )
    .await
    .assert_failed("8.9", "4.2");
    assert_eq!(t.snapshot(), before, "refusals change nothing");

    // A deferred registration that fails at ReleaseProfile refuses the release instead.
    confirm(
        &c,
        &second,
        json!({ "eid": EID1, "smdsAddress": "failing.smds.example" }),
    )
    .await;
    c.call(ReleaseProfile, json!({ "iccid": second }))
        .await
        .assert_failed("8.9", "4.2");
    assert_eq!(t.state(&second), ProfileState::Confirmed);

    // An SM-DS EventID is never reused (SGP.22 §3.6.1.1), even after its order is cancelled.
    let evt = download_by_type(&c, "STANDARD", Some(EID1)).await;
    confirm(
        &c,
        &evt,
        json!({ "releaseFlag": true, "matchingId": "EVT-ONCE", "smdsAddress": "lpa.ds.gsma.com" }),
    )
    .await;
    c.call(
        CancelOrder,
        json!({ "iccid": evt, "eid": EID1, "matchingId": "EVT-ONCE", "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    let again = download_by_type(&c, "STANDARD", Some(EID1)).await;
    c.call(
        ConfirmOrder,
        json!({ "iccid": again, "releaseFlag": false, "matchingId": "EVT-ONCE" }),
    )
    .await
    .assert_failed("8.2.6", "3.3");

    // Existence and ownership come before the SM-DS address check.
    c.call(
        ConfirmOrder,
        json!({ "iccid": "8944500999999999999", "releaseFlag": true, "smdsAddress": "bad address" }),
    )
    .await
    .assert_failed("8.2.1", "3.9");

    // 8.1.1 / 3.10: EID differs from the one given in DownloadOrder.
    let linked = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let r = c
        .call(
            ConfirmOrder,
            json!({ "iccid": linked, "releaseFlag": true, "eid": EID2 }),
        )
        .await;
    r.assert_failed("8.1.1", "3.10");
    assert_eq!(t.state(&linked), ProfileState::Linked);

    // Confirming twice is an invalid transition.
    confirm(&c, &linked, json!({})).await;
    c.call(
        ConfirmOrder,
        json!({ "iccid": linked, "releaseFlag": false }),
    )
    .await
    .assert_failed("8.2.1", "3.5");
    // Confirming a profile that was never ordered too.
    c.call(
        ConfirmOrder,
        json!({ "iccid": STANDARD_1_UNUSED, "releaseFlag": false }),
    )
    .await
    .assert_failed("8.2.1", "3.5");
}

// ---------------------------------------------------------------- CancelOrder

#[tokio::test]
async fn cancel_order_variants() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");

    // Allocated → Available: back in the pool, order data gone.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    assert_eq!(t.state(&iccid), ProfileState::Available);
    c.call(DownloadOrder, json!({ "iccid": iccid }))
        .await
        .assert_success();

    // Released (with EID and MatchingID) → Unavailable; the MatchingID is free again.
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let mid = confirm(
        &c,
        &iccid,
        json!({ "releaseFlag": true, "matchingId": "REUSE-ME" }),
    )
    .await;
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "eid": EID1, "matchingId": mid, "finalProfileStatusIndicator": "Unavailable" }),
    )
    .await
    .assert_success();
    assert_eq!(t.state(&iccid), ProfileState::Unavailable);
    assert!(t.profile(&iccid).matching_id.is_none());
    let other = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &other, json!({ "matchingId": "REUSE-ME" })).await;

    // Unavailable is final.
    c.call(DownloadOrder, json!({ "iccid": iccid }))
        .await
        .assert_failed("8.2.1", "3.3");

    // Error → Available.
    let failed = download_by_type(&c, "STANDARD", None).await;
    let mid = confirm(&c, &failed, json!({ "releaseFlag": true })).await;
    force_state(&t, &failed, ProfileState::Error);
    c.call(
        CancelOrder,
        json!({ "iccid": failed, "matchingId": mid, "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_success();
    assert_eq!(t.state(&failed), ProfileState::Available);
}

#[tokio::test]
async fn cancel_order_status_codes() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let cancel =
        |iccid: &str| json!({ "iccid": iccid, "finalProfileStatusIndicator": "Available" });

    c.call(CancelOrder, cancel("8944500999999999999"))
        .await
        .assert_failed("8.2.1", "3.9");
    let other = t.client("other-mno");
    let foreign = download_by_type(&other, "OTHER-STANDARD", None).await;
    c.call(CancelOrder, cancel(&foreign))
        .await
        .assert_failed("8.2.1", "1.2");

    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let mid = confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    let before = t.snapshot();
    // 8.2.1 / 3.10: a different EID.
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "eid": EID2, "matchingId": mid, "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_failed("8.2.1", "3.10");
    // 8.2.6 / 3.10: a different MatchingID.
    c.call(
        CancelOrder,
        json!({ "iccid": iccid, "eid": EID1, "matchingId": "NOT-IT", "finalProfileStatusIndicator": "Available" }),
    )
    .await
    .assert_failed("8.2.6", "3.10");
    // The EID and MatchingID of the order must be given (SGP.22 §5.3.3 "SHALL").
    let r = c
        .call(
            CancelOrder,
            json!({ "iccid": iccid, "matchingId": mid, "finalProfileStatusIndicator": "Available" }),
        )
        .await;
    r.assert_failed("1.3.1", "2.3");
    assert_eq!(r.subject_identifier(), Some("eid"));
    assert_eq!(t.snapshot(), before, "refusals change nothing");

    // 8.2.1 / 3.3: already downloaded or installed.
    for state in [ProfileState::Downloaded, ProfileState::Installed] {
        force_state(&t, &iccid, state);
        c.call(
            CancelOrder,
            json!({ "iccid": iccid, "eid": EID1, "matchingId": mid, "finalProfileStatusIndicator": "Unavailable" }),
        )
        .await
        .assert_failed("8.2.1", "3.3");
        assert_eq!(t.state(&iccid), state);
    }

    // Nothing to cancel on an Available profile.
    c.call(CancelOrder, cancel(STANDARD_1_UNUSED))
        .await
        .assert_failed("8.2.1", "3.5");
}

/// A STANDARD ICCID that no test in this file orders (the range holds 200).
const STANDARD_1_UNUSED: &str = "8944500100000001994";

// ---------------------------------------------------------------- ReleaseProfile

#[tokio::test]
async fn release_profile_and_status_codes() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");

    c.call(ReleaseProfile, json!({ "iccid": "8944500999999999999" }))
        .await
        .assert_failed("8.2.1", "3.9");
    let other = t.client("other-mno");
    let foreign = download_by_type(&other, "OTHER-STANDARD", None).await;
    confirm(&other, &foreign, json!({})).await;
    c.call(ReleaseProfile, json!({ "iccid": foreign }))
        .await
        .assert_failed("8.2.1", "1.2");

    // 8.2.1 / 3.5: not yet confirmed.
    let iccid = download_by_type(&c, "STANDARD", None).await;
    c.call(ReleaseProfile, json!({ "iccid": iccid }))
        .await
        .assert_failed("8.2.1", "3.5");
    assert_eq!(t.state(&iccid), ProfileState::Allocated);

    confirm(&c, &iccid, json!({})).await;
    c.call(ReleaseProfile, json!({ "iccid": iccid }))
        .await
        .assert_success();
    assert_eq!(t.state(&iccid), ProfileState::Released);
    // Releasing again succeeds and does nothing (SGP.22 §5.3.4 NOTE).
    let before = t.profile(&iccid);
    c.call(ReleaseProfile, json!({ "iccid": iccid }))
        .await
        .assert_success();
    assert_eq!(t.profile(&iccid), before);
}

// ---------------------------------------------------------------- identity

#[tokio::test]
async fn requester_identifier_is_bound_to_the_certificate() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let before = t.snapshot();
    let r = c
        .call_raw(
            DownloadOrder,
            json!({
                "header": { "functionRequesterIdentifier": "other-mno", "functionCallIdentifier": "x" },
                "profileType": "STANDARD"
            }),
        )
        .await;
    r.assert_failed("1.1", "1.2");
    assert_eq!(t.snapshot(), before);
}

#[tokio::test]
async fn http2_and_http1_give_the_same_answers() {
    let t = TestServer::start().await;
    let h2 = t.client("test-mno").http2();
    let r = h2
        .call(DownloadOrder, json!({ "profileType": "STANDARD" }))
        .await;
    r.assert_success();
    assert_eq!(r.headers["x-admin-protocol"], "gsma/rsp/v2.5.0");
    assert_eq!(r.headers["content-type"], "application/json");
}

/// Methods other than POST on a function's path: 405 with `Allow: POST` and the protocol
/// header, and for HEAD no body, also over HTTP/2 (where a body would reset the stream).
#[tokio::test]
async fn other_methods_on_a_function_path_get_405_over_both_protocols() {
    let t = TestServer::start().await;
    for client in [t.client("test-mno"), t.client("test-mno").http2()] {
        for method in [axum::http::Method::HEAD, axum::http::Method::GET] {
            let r = client
                .request(
                    method.clone(),
                    "/gsma/rsp2/es2plus/downloadOrder",
                    &[("x-admin-protocol", "gsma/rsp/v2.5.0")],
                    Vec::new(),
                )
                .await
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            assert_eq!(
                r.status,
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                "{method}"
            );
            assert_eq!(r.headers["allow"], "POST", "{method}");
            assert_eq!(r.headers["x-admin-protocol"], "gsma/rsp/v2.5.0", "{method}");
            assert_eq!(
                r.raw.is_empty(),
                method == axum::http::Method::HEAD,
                "{method}"
            );
        }
    }
}
