//! Property tests over real mutual TLS: random bodies, random bytes and random field values for
//! every ES2+ function always get a well-formed answer, and an answer that is not
//! `Executed-Success` never changes state. (`fuzz/` runs the same property coverage-guided.)

use std::sync::OnceLock;

use crate::common::*;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use smdpp_mock::es2::Function;

struct Fixture {
    runtime: tokio::runtime::Runtime,
    server: TestServer,
    client: Es2Client,
}

/// One server for all cases (a handshake per case keeps them independent of each other).
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let server = runtime.block_on(TestServer::start());
        let client = server.client("test-mno");
        Fixture {
            runtime,
            server,
            client,
        }
    })
}

/// Sends `body` to `function` and checks the answer's shape and the state rule.
fn check(function: Function, body: Vec<u8>) -> Result<(), TestCaseError> {
    // The properties run on parallel test threads against one server: one case at a time, or
    // another case's success would show up as this one's state change.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let f = fixture();
    let before = f.server.snapshot();
    let reply = f
        .runtime
        .block_on(f.client.request(
            hyper::Method::POST,
            &function.path(),
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.5.0"),
            ],
            body.clone(),
        ))
        .map_err(|e| TestCaseError::fail(format!("transport error: {e}")))?;
    let text = String::from_utf8_lossy(&body).into_owned();
    prop_assert!(
        [200, 400, 413, 415].contains(&reply.status.as_u16()),
        "{} for {text}",
        reply.status
    );
    prop_assert!(reply.body.is_object(), "not a JSON object: {:?}", reply.raw);
    let executed = reply.status == 200
        && reply.body["header"]["functionExecutionStatus"]["status"] == "Executed-Success";
    if reply.status == 200 {
        let status = &reply.body["header"]["functionExecutionStatus"]["status"];
        prop_assert!(
            status == "Executed-Success" || status == "Failed",
            "{}",
            reply.body
        );
        if status == "Failed" {
            let data = &reply.body["header"]["functionExecutionStatus"]["statusCodeData"];
            prop_assert!(data["subjectCode"].is_string() && data["reasonCode"].is_string());
            prop_assert_eq!(reply.body.as_object().map(Map::len), Some(1));
        }
    } else {
        prop_assert!(reply.body["message"].is_string(), "{}", reply.body);
    }
    if !executed {
        prop_assert!(
            f.server.snapshot() == before,
            "{function} answered {} and changed state; body {text}",
            reply.body
        );
    }
    Ok(())
}

fn function() -> impl Strategy<Value = Function> {
    prop::sample::select(Function::ALL.to_vec())
}

/// Values of the kinds the fields take, and of the wrong kinds.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[0-9]{0,22}F?".prop_map(Value::from),
        "8944500100000000[0-9]{3}".prop_map(Value::from),
        "89049032[0-9]{24}".prop_map(Value::from),
        "[A-Z0-9]{5}(-[A-Z0-9]{5}){3}".prop_map(Value::from),
        prop::sample::select(vec![
            "STANDARD",
            "DATA-ONLY",
            "OTHER-STANDARD",
            "Available",
            "Unavailable",
            "test-mno",
            "other-mno",
            "smds.example.com",
        ])
        .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..3)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: [&str; 11] = [
    "iccid",
    "eid",
    "profileType",
    "matchingId",
    "releaseFlag",
    "confirmationCode",
    "smdsAddress",
    "rootSmdsAddress",
    "finalProfileStatusIndicator",
    "ccRequiredFlag",
    "smdpAddress",
];

/// A body with a well-formed or damaged header and random values for real field names.
fn body() -> impl Strategy<Value = Value> {
    let header = prop_oneof![
        3 => "TX-[0-9]{1,6}".prop_map(|id| json!({
            "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": id })),
        1 => value(),
    ];
    (
        prop::option::weighted(0.9, header),
        prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), value(), 0..5),
    )
        .prop_map(|(header, fields)| {
            let mut body: Map<String, Value> =
                fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            if let Some(h) = header {
                body.insert("header".into(), h);
            }
            Value::Object(body)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_get_a_well_formed_answer(function in function(), bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        check(function, bytes)?;
    }

    #[test]
    fn random_fields_get_a_well_formed_answer(function in function(), body in body()) {
        check(function, body.to_string().into_bytes())?;
    }
}
