//! Bad input gets a clear, spec-shaped answer and never changes state: HTTP-level problems are
//! 4xx with a JSON error, envelope and field problems are ES2+ `Failed` answers.

use crate::common::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use smdpp_mock::es2::Function::*;

const JSON: (&str, &str) = ("content-type", "application/json");
const PROTOCOL: (&str, &str) = ("x-admin-protocol", "gsma/rsp/v2.5.0");

/// Name, method, path, headers, body, expected status.
type Case<'a> = (
    &'a str,
    Method,
    &'a str,
    Vec<(&'a str, &'a str)>,
    Vec<u8>,
    StatusCode,
);

fn header() -> Value {
    json!({ "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": "TX-1" })
}

#[tokio::test]
async fn http_level_errors() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    let before = t.snapshot();
    let order = json!({ "header": header(), "profileType": "STANDARD" })
        .to_string()
        .into_bytes();
    let path = "/gsma/rsp2/es2plus/downloadOrder";

    let cases: Vec<Case<'_>> = vec![
        (
            "malformed JSON",
            Method::POST,
            path,
            vec![JSON, PROTOCOL],
            b"{\"header\": ".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "JSON but not an object",
            Method::POST,
            path,
            vec![JSON, PROTOCOL],
            b"[1,2]".to_vec(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "empty body",
            Method::POST,
            path,
            vec![JSON, PROTOCOL],
            Vec::new(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "no Content-Type",
            Method::POST,
            path,
            vec![PROTOCOL],
            order.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "wrong Content-Type",
            Method::POST,
            path,
            vec![("content-type", "text/plain"), PROTOCOL],
            order.clone(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "no X-Admin-Protocol",
            Method::POST,
            path,
            vec![JSON],
            order.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "malformed X-Admin-Protocol",
            Method::POST,
            path,
            vec![JSON, ("x-admin-protocol", "2.2")],
            order.clone(),
            StatusCode::BAD_REQUEST,
        ),
        (
            "oversize body",
            Method::POST,
            path,
            vec![JSON, PROTOCOL],
            vec![b' '; 64 * 1024 + 1],
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "GET",
            Method::GET,
            path,
            vec![JSON, PROTOCOL],
            Vec::new(),
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        (
            "unknown function",
            Method::POST,
            "/gsma/rsp2/es2plus/getProfileStatus",
            vec![JSON, PROTOCOL],
            order.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "unknown path",
            Method::POST,
            "/",
            vec![JSON, PROTOCOL],
            order.clone(),
            StatusCode::NOT_FOUND,
        ),
        (
            "undecodable path",
            Method::POST,
            "/gsma/rsp2/es2plus/%FF",
            vec![JSON, PROTOCOL],
            order.clone(),
            StatusCode::NOT_FOUND,
        ),
    ];
    for (name, method, path, headers, body, want) in cases {
        let r = c.request(method, path, &headers, body).await.unwrap();
        assert_eq!(
            r.status,
            want,
            "{name}: {}",
            String::from_utf8_lossy(&r.raw)
        );
        assert_eq!(r.headers["content-type"], "application/json", "{name}");
        assert_eq!(r.headers["x-admin-protocol"], "gsma/rsp/v2.5.0", "{name}");
        assert!(
            r.body["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{name}: {}",
            r.body
        );
        if want == StatusCode::METHOD_NOT_ALLOWED {
            assert_eq!(r.headers["allow"], "POST");
        }
        assert_eq!(t.snapshot(), before, "{name} changed state");
    }

    // A charset parameter is fine.
    let r = c
        .request(
            Method::POST,
            path,
            &[
                ("content-type", "application/json; charset=UTF-8"),
                PROTOCOL,
            ],
            order,
        )
        .await
        .unwrap();
    r.assert_success();
}

#[tokio::test]
async fn envelope_and_field_errors() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    // An order to confirm and cancel, so the field errors reach a real profile.
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let before = t.snapshot();

    let cases = vec![
        // (function, body, subject, reason, subjectIdentifier)
        (
            DownloadOrder,
            json!({ "profileType": "STANDARD" }),
            "1.3.1",
            "2.2",
            "header",
        ),
        (
            DownloadOrder,
            json!({ "header": "x", "profileType": "STANDARD" }),
            "1.3.1",
            "2.1",
            "header",
        ),
        (
            DownloadOrder,
            json!({ "header": { "functionRequesterIdentifier": "test-mno" }, "profileType": "STANDARD" }),
            "1.3.1",
            "2.2",
            "header.functionCallIdentifier",
        ),
        (
            DownloadOrder,
            json!({ "header": { "functionCallIdentifier": "x" }, "profileType": "STANDARD" }),
            "1.3.1",
            "2.2",
            "header.functionRequesterIdentifier",
        ),
        (
            DownloadOrder,
            json!({ "header": header(), "profileType": "STANDARD", "eid": "8904903212345123451234567890123" }),
            "1.3.1",
            "2.1",
            "eid",
        ),
        (
            DownloadOrder,
            json!({ "header": header(), "profileType": "STANDARD", "eid": "8904903212345123451234567890123A" }),
            "1.3.1",
            "2.1",
            "eid",
        ),
        (
            DownloadOrder,
            json!({ "header": header(), "iccid": "894450010000000000" }),
            "1.3.1",
            "2.1",
            "iccid",
        ),
        (
            DownloadOrder,
            json!({ "header": header(), "iccid": "89445001000000000AB" }),
            "1.3.1",
            "2.1",
            "iccid",
        ),
        (
            DownloadOrder,
            json!({ "header": header(), "iccid": 8944500100000000004u64 }),
            "1.3.1",
            "2.1",
            "iccid",
        ),
        (
            DownloadOrder,
            json!({ "header": header(), "profileType": 7 }),
            "1.3.1",
            "2.1",
            "profileType",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "releaseFlag": true }),
            "1.3.1",
            "2.2",
            "iccid",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "iccid": iccid }),
            "1.3.1",
            "2.2",
            "releaseFlag",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "iccid": iccid, "releaseFlag": "true" }),
            "1.3.1",
            "2.1",
            "releaseFlag",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "iccid": iccid, "releaseFlag": true, "matchingId": "abc-def" }),
            "1.3.1",
            "2.1",
            "matchingId",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "iccid": iccid, "releaseFlag": true, "matchingId": "A B" }),
            "1.3.1",
            "2.1",
            "matchingId",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "iccid": iccid, "releaseFlag": true, "confirmationCode": "" }),
            "1.3.1",
            "2.1",
            "confirmationCode",
        ),
        (
            ConfirmOrder,
            json!({ "header": header(), "iccid": iccid, "releaseFlag": true, "smdsAddress": "lpa.ds.gsma.com", "matchingId": "" }),
            "1.3.1",
            "2.1",
            "matchingId",
        ),
        (
            CancelOrder,
            json!({ "header": header(), "iccid": iccid, "eid": EID1 }),
            "1.3.1",
            "2.2",
            "finalProfileStatusIndicator",
        ),
        (
            CancelOrder,
            json!({ "header": header(), "iccid": iccid, "eid": EID1, "finalProfileStatusIndicator": "available" }),
            "1.3.1",
            "2.1",
            "finalProfileStatusIndicator",
        ),
        (
            CancelOrder,
            json!({ "header": header(), "finalProfileStatusIndicator": "Available" }),
            "1.3.1",
            "2.2",
            "iccid",
        ),
        (
            ReleaseProfile,
            json!({ "header": header() }),
            "1.3.1",
            "2.2",
            "iccid",
        ),
        (
            ReleaseProfile,
            json!({ "header": header(), "iccid": null }),
            "1.3.1",
            "2.2",
            "iccid",
        ),
    ];
    for (function, body, subject, reason, field) in cases {
        let r = c.call_raw(function, body.clone()).await;
        r.assert_failed(subject, reason);
        assert_eq!(r.subject_identifier(), Some(field), "{function} {body}");
        let message = r.body["header"]["functionExecutionStatus"]["statusCodeData"]["message"]
            .as_str()
            .unwrap();
        assert!(
            message.contains(field.trim_start_matches("header.")),
            "{message}"
        );
        assert_eq!(t.snapshot(), before, "{function} {body} changed state");
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored_but_misspelt_conditionals_are_not_guessed() {
    let t = TestServer::start().await;
    let c = t.client("test-mno");
    // `profiletype` (wrong case) is not `profileType`: neither conditional field is present.
    c.call(DownloadOrder, json!({ "profiletype": "STANDARD" }))
        .await
        .assert_failed("1.3.1", "2.3");
    c.call(
        DownloadOrder,
        json!({ "profileType": "STANDARD", "vendorExtra": 1 }),
    )
    .await
    .assert_success();
}
