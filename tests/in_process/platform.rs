//! The platform management API on the ES2+ port: owner-scoped, paginated, with clear errors.

use std::collections::HashSet;

use crate::common::*;
use hyper::StatusCode;
use serde_json::json;
use smdpp_mock::es2::Function::*;

#[tokio::test]
async fn profile_types_with_counts_and_isolation() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;

    let r = c.get("/profile_types").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let types = r.body["profileTypes"].as_array().unwrap();
    let ids: Vec<&str> = types.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        vec!["STANDARD", "DATA-ONLY"],
        "only test-mno's own types"
    );
    assert_eq!(types[0]["total"], 200);
    assert_eq!(types[0]["counts"]["Available"], 199);
    assert_eq!(types[0]["counts"]["Released"], 1);
    assert_eq!(types[0]["counts"]["Unavailable"], 0);
    assert!(types[0].get("operator").is_none());

    let one = c.get("/profile_types/DATA-ONLY").await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["total"], 201);
    for path in ["/profile_types/OTHER-STANDARD", "/profile_types/NOPE"] {
        let r = c.get(path).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.body["message"].as_str().is_some());
    }
    let other = t.client("other-mno").get("/profile_types").await;
    let ids: Vec<&str> = other.body["profileTypes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["OTHER-STANDARD"]);
}

#[tokio::test]
async fn one_profile_with_activation_code() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let mid = confirm(
        &c,
        &iccid,
        json!({ "releaseFlag": true, "confirmationCode": "12" }),
    )
    .await;
    for form in [iccid.clone(), format!("{iccid}F")] {
        let r = c.get(&format!("/profiles/{form}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["iccid"], iccid.as_str());
        assert_eq!(r.body["state"], "Released");
        assert_eq!(r.body["eid"], EID1);
        assert_eq!(r.body["matchingId"], mid.as_str());
        assert_eq!(
            r.body["activationCode"],
            format!("1${}${mid}$$1", t.mock.smdp_address())
        );
        assert_eq!(r.body["confirmationCodeRequired"], true);
        for s in ["Linked", "Released"] {
            assert!(
                r.body["stateTimes"][s].as_str().unwrap().ends_with('Z'),
                "{}",
                r.body
            );
        }
        let history: Vec<&str> = r.body["transitions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["state"].as_str().unwrap())
            .collect();
        assert_eq!(history, vec!["Linked", "Released"]);
    }
    // Another operator's profile is not visible: 404, like a missing one.
    let theirs = t.client("other-mno");
    assert_eq!(
        theirs.get(&format!("/profiles/{iccid}")).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        c.get("/profiles/8944500999999999999").await.status,
        StatusCode::NOT_FOUND
    );
    let bad = c.get("/profiles/12345").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["parameter"], "iccid");
}

#[tokio::test]
async fn pagination_is_stable_while_profiles_change_state() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => "/profiles?profileType=STANDARD&limit=30".to_string(),
            Some(cur) => format!("/profiles?profileType=STANDARD&limit=30&cursor={cur}"),
        };
        let r = c.get(&path).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let page = r.body["profiles"].as_array().unwrap();
        assert!(page.len() <= 30);
        seen.extend(
            page.iter()
                .map(|p| p["iccid"].as_str().unwrap().to_string()),
        );
        pages += 1;
        // Meanwhile, orders change states of profiles on earlier and later pages.
        let changed = download_by_type(&c, "STANDARD", Some(EID1)).await;
        c.call(
            CancelOrder,
            json!({ "iccid": changed, "eid": EID1, "finalProfileStatusIndicator": "Available" }),
        )
        .await
        .assert_success();
        match r.body["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(pages, 7);
    assert_eq!(seen.len(), 200, "every profile exactly once");
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 200);
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, seen, "inventory order");
}

#[tokio::test]
async fn filters_and_bad_parameters() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let linked = download_by_type(&c, "DATA-ONLY", Some(EID2)).await;
    let r = c.get("/profiles?state=Linked").await;
    let list = r.body["profiles"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["iccid"], linked.as_str());
    let r = c.get(&format!("/profiles?eid={EID2}")).await;
    assert_eq!(r.body["profiles"].as_array().unwrap().len(), 1);
    let r = c.get("/profiles?limit=1000").await;
    assert_eq!(
        r.body["profiles"].as_array().unwrap().len(),
        401,
        "all of test-mno's, none of other-mno's"
    );
    assert!(r.body.get("nextCursor").is_none());
    for (query, parameter) in [
        ("state=Ready", "state"),
        ("eid=123", "eid"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("cursor=zzz", "cursor"),
        ("colour=blue", "colour"),
        ("operator=other-mno", "operator"),
    ] {
        let r = c.get(&format!("/profiles?{query}")).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{query}: {}", r.body);
        assert_eq!(r.body["parameter"], parameter, "{query}");
    }
}

#[tokio::test]
async fn a_certificate_without_operator_sees_nothing() {
    let t = TestServer::start().await;
    let c = t.unmapped_client();
    assert_eq!(c.get("/profiles").await.status, StatusCode::FORBIDDEN);
    assert_eq!(c.get("/profile_types").await.status, StatusCode::FORBIDDEN);
}
