//! The mock's SM-DS (SGP.22 §3.6, §5.8, §5.9): ConfirmOrder with its address registers the
//! order's Event (EventID = MatchingID), an LPA discovers it over ES11 and downloads it, and
//! the order's end deletes it; ES12 for other callers; every status code of Tables 48a, 52, 54
//! and 56 from the situation the spec gives it.

use hyper::Method;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};
use smdpp_mock::profile::ProfileState;
use smdpp_mock::Reply;
use smdpp_rsp::crypto;
use smdpp_rsp::es10b::EuiccInfo1;
use smdpp_rsp::lpa::EventEntry;
use smdpp_rsp::pki::{GsmaPki, CI_CERT};
use std::sync::Arc;
use std::time::Duration;

use crate::common::receiver::Receiver;

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

/// An ES12 caller: a client certificate of the mock's CI naming `oid` (its identity at the
/// SM-DS, §5.9.1), over mutual TLS to the SM-DS listener.
fn es12_caller(t: &TestServer, name: &str, oid: &[u64]) -> Es2Client {
    let pki = t.mock.gsma_pki();
    let issued = pki.issue_es12_caller(name, oid).unwrap();
    let ci = std::fs::read(pki.dir().join(CI_CERT)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ci.clone())).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(smdpp_mock::pki::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![
                CertificateDer::from(issued.der.clone()),
                CertificateDer::from(ci),
            ],
            PrivateKeyDer::Pkcs8(issued.key.pkcs8_der().to_vec().into()),
        )
        .unwrap();
    Es2Client::with_config(t.mock.smds_addr().unwrap(), config, name)
}

/// An ES12 call (§6.5.2.13-14) with the request header.
async fn es12(caller: &Es2Client, function: &str, mut body: Value) -> Reply {
    body["header"] = caller.header();
    caller
        .request(
            Method::POST,
            &format!("/gsma/rsp2/es12/{function}"),
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.2.0"),
            ],
            body.to_string().into_bytes(),
        )
        .await
        .unwrap()
}

fn register_body(eid: &str, event_id: &str, address: &str) -> Value {
    json!({ "eid": eid, "rspServerAddress": address, "eventId": event_id, "forwardingIndicator": true })
}

fn code(reply: &Reply) -> String {
    let (subject, reason) = reply
        .status_code()
        .unwrap_or_else(|| panic!("{:?}", reply.body));
    format!("{subject} / {reason}")
}

/// ES12 with callers that are not the mock: a test client certificate registers and deletes
/// events; EventIDs are unique per caller (`8.9.5 / 3.3` for a duplicate), and a second caller
/// cannot delete the first one's (`8.9.5 / 3.9`, Table 56). Discovery shows the events of an
/// EID in the order they were registered, and one by its EventID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_callers_register_and_delete_only_their_own_events() {
    let (t, _receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let first = es12_caller(&t, "smdp-one.example", &[2, 999, 71]);
    let second = es12_caller(&t, "smdp-two.example", &[2, 999, 72]);
    for (caller, id, address) in [
        (&first, "EVENT-1", "smdp-one.example"),
        (&second, "EVENT-1", "smdp-two.example:8443"),
        (&first, "EVENT-2", "smdp-one.example"),
    ] {
        let reply = es12(caller, "registerEvent", register_body(EID1, id, address)).await;
        assert!(reply.is_success(), "{:?}", reply.body);
    }
    let duplicate = es12(
        &first,
        "registerEvent",
        register_body(EID2, "EVENT-1", "x.example"),
    )
    .await;
    assert_eq!(code(&duplicate), "8.9.5 / 3.3");
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let entries = |events: Vec<EventEntry>| {
        events
            .into_iter()
            .map(|e| (e.event_id, e.rsp_server_address))
            .collect::<Vec<_>>()
    };
    let all = entries(lpa.discover(&smds, None).await.unwrap());
    assert_eq!(
        all,
        [
            ("EVENT-1".into(), "smdp-one.example".into()),
            ("EVENT-1".into(), "smdp-two.example:8443".into()),
            ("EVENT-2".into(), "smdp-one.example".into()),
        ]
    );
    let one = entries(lpa.discover(&smds, Some("EVENT-2")).await.unwrap());
    assert_eq!(one, [("EVENT-2".into(), "smdp-one.example".into())]);
    // The second caller cannot delete the first one's EVENT-2, nor an EID's event it never
    // registered; its own goes.
    let body = |eid: &str, id: &str| json!({ "eid": eid, "eventId": id });
    let refused = es12(&second, "deleteEvent", body(EID1, "EVENT-2")).await;
    assert_eq!(code(&refused), "8.9.5 / 3.9");
    let wrong_eid = es12(&second, "deleteEvent", body(EID2, "EVENT-1")).await;
    assert_eq!(code(&wrong_eid), "8.9.5 / 3.9");
    assert!(es12(&second, "deleteEvent", body(EID1, "EVENT-1"))
        .await
        .is_success());
    assert!(es12(&first, "deleteEvent", body(EID1, "EVENT-2"))
        .await
        .is_success());
    let left = entries(lpa.discover(&smds, None).await.unwrap());
    assert_eq!(left, [("EVENT-1".into(), "smdp-one.example".into())]);
    // The journal and the metrics name the calls ES12, with the caller's certificate.
    let deleted = last_call(&t, "DeleteEvent");
    assert_eq!(serde_json::to_value(&deleted).unwrap()["protocol"], "ES12");
    assert!(deleted
        .certificate_subject
        .as_deref()
        .unwrap()
        .contains("smdp-one.example"));
    let metrics = t.admin().get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.raw);
    assert!(
        text.contains("smdpp_es12_requests_total{function=\"RegisterEvent\""),
        "{text}"
    );
    assert!(text.contains("smdpp_smds_event_records 1"), "{text}");
}

/// Bad ES12 requests get a spec-shaped answer and change nothing: no client certificate, no
/// request header, a malformed EID, an EventID or address beyond its bound, a missing
/// forwardingIndicator; a body that is not JSON gets HTTP 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_es12_requests_are_refused_and_change_nothing() {
    let (t, _receiver) = es9_started("").await;
    let caller = es12_caller(&t, "smdp.example", &[2, 999, 71]);
    let long_id = "E".repeat(256);
    // Valid labels, 257 characters: past the 255 of an FQDN (and so of every address bound).
    let long_address = ["a", "b", "c", "d"].map(|c| c.repeat(63)).join(".") + ".e";
    let cases = [
        (
            json!({ "eid": "123", "rspServerAddress": "a.example", "eventId": "E", "forwardingIndicator": true }),
            "1.3.1 / 2.1",
        ),
        (register_body(EID1, &long_id, "a.example"), "1.3.1 / 2.1"),
        (register_body(EID1, "", "a.example"), "1.3.1 / 2.1"),
        (register_body(EID1, "E", &long_address), "1.3.1 / 2.1"),
        (register_body(EID1, "E", "not an address"), "1.3.1 / 2.1"),
        (
            json!({ "eid": EID1, "rspServerAddress": "a.example", "eventId": "E" }),
            "1.3.1 / 2.2",
        ),
        (
            json!({ "eid": EID1, "rspServerAddress": "a.example", "eventId": "E", "forwardingIndicator": "yes" }),
            "1.3.1 / 2.1",
        ),
    ];
    for (body, expected) in cases {
        let reply = es12(&caller, "registerEvent", body.clone()).await;
        assert_eq!(reply.status, 200);
        assert_eq!(code(&reply), expected, "{body}");
    }
    // No header.
    let headless = caller
        .request(
            Method::POST,
            "/gsma/rsp2/es12/registerEvent",
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.2.0"),
            ],
            register_body(EID1, "E", "a.example")
                .to_string()
                .into_bytes(),
        )
        .await
        .unwrap();
    assert_eq!(code(&headless), "1.3.1 / 2.2");
    let not_json = caller
        .request(
            Method::POST,
            "/gsma/rsp2/es12/registerEvent",
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.2.0"),
            ],
            b"{not json".to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(not_json.status, 400);
    // No client certificate (an LPA's connection: server-only TLS) cannot call ES12.
    let ci = std::fs::read(t.mock.gsma_pki().dir().join(CI_CERT)).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ci)).unwrap();
    let anonymous = Es2Client::with_config(
        t.mock.smds_addr().unwrap(),
        rustls::ClientConfig::builder_with_provider(smdpp_mock::pki::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        "anonymous",
    );
    let reply = es12(
        &anonymous,
        "registerEvent",
        register_body(EID1, "E", "a.example"),
    )
    .await;
    assert_eq!(code(&reply), "1.1 / 1.1");
    let smds = t.mock.smds_address().unwrap();
    let mut probe = t.mock.lpa(EID1).unwrap();
    assert!(probe.discover(&smds, None).await.unwrap().is_empty());
}

/// The key identifier of the mock's NIST CI, as EUICCInfo1 names it.
fn ci_id(t: &TestServer) -> Vec<u8> {
    let der = std::fs::read(t.mock.gsma_pki().dir().join(CI_CERT)).unwrap();
    smdpp_rsp::cert::Certificate::parse(&der)
        .unwrap()
        .subject_key_id
        .unwrap()
}

/// Table 48a, each code from its situation (§5.8.1, as §5.6.1 with the SM-DS's codes): an
/// address that is not the SM-DS's, no CI of the eUICC's signing list trusted, an SVN of
/// another major version, no CERT.DSauth under a CI of the eUICC's verification list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es11_initiate_authentication_refusals_are_table_48a() {
    let (t, _receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let ours = ci_id(&t);
    let unknown = [0x55u8; 20];
    let svn = [2, 2, 2];
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "elsewhere.example:6445",
            EuiccInfo1::encode(svn, &[&ours], &[&ours]),
            "8.9.1 / 3.8",
        ),
        (
            &smds,
            EuiccInfo1::encode(svn, &[&ours], &[&unknown]),
            "8.9.2 / 3.1",
        ),
        (
            &smds,
            EuiccInfo1::encode([3, 0, 0], &[&ours], &[&ours]),
            "8.9.3 / 3.1",
        ),
        (
            &smds,
            EuiccInfo1::encode(svn, &[&unknown], &[&ours]),
            "8.9.4 / 3.7",
        ),
    ];
    for (address, info1, expected) in cases {
        let refused = lpa
            .call(
                &smds,
                "initiateAuthentication",
                json!({
                    "smdpAddress": address,
                    "euiccChallenge": crypto::base64_encode(&[7u8; 16]),
                    "euiccInfo1": crypto::base64_encode(&info1),
                }),
            )
            .await
            .unwrap_err();
        assert_eq!(
            refused.status_code().as_deref(),
            Some(expected),
            "{refused}"
        );
    }
    let journaled = last_call(&t, "InitiateAuthentication");
    assert_eq!(
        serde_json::to_value(&journaled).unwrap()["protocol"],
        "ES11"
    );
    // The SM-DS answers ES11 only: ES9+'s other functions are not its.
    let (status, _) = lpa
        .post(&smds, "getBoundProfilePackage", json!({}))
        .await
        .unwrap();
    assert_eq!(status, 404);
}

/// Table 52, each code from its situation (§5.8.2): the eUICC's signature, an unknown
/// transactionId, a chain under a CI the SM-DS does not trust, an eUICC certificate its EUM did
/// not issue for that EID, an EUM certificate that is not one, and no event for the EventID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es11_authenticate_client_refusals_are_table_52() {
    use smdpp_rsp::euicc::Euicc;
    use smdpp_rsp::lpa::Lpa;
    use smdpp_rsp::pki::{EuiccCredentials, DPAUTH_CERT};

    let (t, _receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let (_, event_id) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;
    let refused = |r: Result<Vec<EventEntry>, smdpp_rsp::LpaError>| {
        r.unwrap_err().status_code().unwrap_or_default()
    };
    let mut bad_signature = t.mock.lpa(EID1).unwrap();
    bad_signature.euicc_mut().faults.bad_signature1 = true;
    assert_eq!(
        refused(bad_signature.discover(&smds, None).await),
        "8.1 / 6.1"
    );
    let mut lpa = t.mock.lpa(EID1).unwrap();
    assert_eq!(
        refused(lpa.discover(&smds, Some("NO-SUCH-EVENT")).await),
        "8.9.5 / 3.9"
    );
    let unknown_session = lpa
        .call(
            &smds,
            "authenticateClient",
            json!({ "transactionId": "0102030405060708", "authenticateServerResponse": "MAA=" }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        unknown_session.status_code().as_deref(),
        Some("8.10.1 / 3.9")
    );

    let pki = t.mock.gsma_pki();
    let ours = pki.issue_euicc(EID1).unwrap();
    let ci = ours.ci.clone();
    let with = |credentials: EuiccCredentials| {
        Lpa::new(Euicc::new(credentials).unwrap(), std::slice::from_ref(&ci)).unwrap()
    };
    let foreign_dir = TempDir::new("smds-foreign-gsma");
    let foreign = GsmaPki::new(foreign_dir.path());
    foreign.ensure(&[], EID1).unwrap();
    // A whole chain of another CI, offered as if the eUICC trusted the mock's.
    let mut other_ci = with(EuiccCredentials {
        ci: ci.clone(),
        ..foreign.issue_euicc(EID1).unwrap()
    });
    assert_eq!(
        refused(other_ci.discover(&smds, None).await),
        "8.11.1 / 3.9"
    );
    // An EID outside the EUM's range.
    let mut outside = with(
        pki.issue_euicc_outside_constraints("89049033000000000000000000000001")
            .unwrap(),
    );
    assert_eq!(refused(outside.discover(&smds, None).await), "8.1.3 / 6.1");
    // A certificate of the CI that is no EUM's (the SM-DP+'s DPauth) in the EUM's place.
    let mut not_an_eum = with(EuiccCredentials {
        eum: std::fs::read(pki.dir().join(DPAUTH_CERT)).unwrap(),
        ..pki.issue_euicc(EID1).unwrap()
    });
    assert_eq!(
        refused(not_an_eum.discover(&smds, None).await),
        "8.1.2 / 6.1"
    );
    // And the eUICC whose event it is still finds it, by its EventID too.
    let found = lpa.discover(&smds, Some(&event_id)).await.unwrap();
    assert_eq!(found.len(), 1);
}

/// Table 52's expired certificates, by the mock's clock: an eUICC certificate that expired
/// while its EUM's did not (`8.1.3 / 6.3`), then the EUM's too (`8.1.2 / 6.3`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn es11_refuses_expired_certificates() {
    use smdpp_rsp::euicc::Euicc;
    use smdpp_rsp::lpa::Lpa;

    let (t, _receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let pki = t.mock.gsma_pki();
    let expiring = pki.issue_euicc_expiring_now(EID1).unwrap();
    let ci = expiring.ci.clone();
    let mut card = Lpa::new(Euicc::new(expiring).unwrap(), &[ci]).unwrap();
    t.mock.advance_clock(Duration::from_secs(2 * 86_400));
    let refused = card.discover(&smds, None).await.unwrap_err();
    assert_eq!(refused.status_code().as_deref(), Some("8.1.3 / 6.3"));
    // The mock's EUM is valid for 25 years, its eUICCs for 30.
    t.mock.advance_clock(Duration::from_secs(26 * 365 * 86_400));
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let refused = lpa.discover(&smds, None).await.unwrap_err();
    assert_eq!(refused.status_code().as_deref(), Some("8.1.2 / 6.3"));
}

const SUCCESS: &str = r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}}}"#;
const ROOT_ERROR: &str = r#"{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":{"subjectCode":"1.2","reasonCode":"4.2","message":"the root is unwell"}}}}"#;
const ROOT_UNKNOWN: &str = r#"{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":{"subjectCode":"8.9.5","reasonCode":"3.9"}}}}"#;

/// EIDs whose registrations the fake root answers differently (see [`fake_root`]).
const CASCADED: &str = "89049032000000000000000000000001";
const ROOT_REFUSES_REGISTRATION: &str = "89049032000000000000000000000002";
const ROOT_DOWN_AT_REGISTRATION: &str = "89049032000000000000000000000003";
const ROOT_REFUSES_DELETION: &str = "89049032000000000000000000000004";
const ROOT_DOWN_AT_DELETION: &str = "89049032000000000000000000000005";
const ROOT_FORGOT: &str = "89049032000000000000000000000006";

/// A root SM-DS written for the test: HTTPS with a certificate of the mock's CI naming
/// localhost, answering by the EID: success, `Failed 1.2 / 4.2`, HTTP 503 (unavailable), or
/// `8.9.5 / 3.9` for a deletion.
async fn fake_root(pki: &GsmaPki) -> Receiver {
    let issued = pki.issue_es12_caller("localhost", &[2, 999, 90]).unwrap();
    let ci = std::fs::read(pki.dir().join(CI_CERT)).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(smdpp_mock::pki::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(issued.der), CertificateDer::from(ci)],
            PrivateKeyDer::Pkcs8(issued.key.pkcs8_der().to_vec().into()),
        )
        .unwrap();
    Receiver::tls_with(
        Arc::new(config),
        Arc::new(|_, body: &Value| {
            let registration = body.get("rspServerAddress").is_some();
            let answer = match (body["eid"].as_str().unwrap_or_default(), registration) {
                (ROOT_REFUSES_REGISTRATION, true) | (ROOT_REFUSES_DELETION, false) => {
                    (200, ROOT_ERROR)
                }
                (ROOT_DOWN_AT_REGISTRATION, true) | (ROOT_DOWN_AT_DELETION, false) => (503, ""),
                (ROOT_FORGOT, false) => (200, ROOT_UNKNOWN),
                _ => (200, SUCCESS),
            };
            (answer.0, answer.1, Duration::ZERO)
        }),
    )
    .await
}

/// The mock (its notifications to `callback`) whose SM-DS is an Alternative SM-DS under a
/// [`fake_root`]. The root's certificate is of the mock's CI: the PKI is made first, then the
/// root, then the mock (its scenario names the root's port).
async fn under_fake_root(tag: &str, callback: &Receiver) -> (TestServer, Receiver) {
    let dir = TempDir::new(tag);
    let pki = GsmaPki::new(&dir.path().join("certs"));
    pki.ensure(&["localhost".into()], smdpp_rsp::pki::SAMPLE_EID)
        .unwrap();
    let root = fake_root(&pki).await;
    let yaml = es9_scenario(&callback.http_url(), "")
        + &format!("smds:\n  root: \"localhost:{}\"\n", root.addr.port());
    (TestServer::with_yaml_in(dir, &yaml).await, root)
}

/// The mock's SM-DS as an Alternative SM-DS (`smds.root`, §3.6.1.2, §5.9): a registration
/// with `forwardingIndicator: true` is registered at the root under an EventID of its own,
/// naming this SM-DS; a device holding that EventID gets the SM-DP+'s pair here; the deletion
/// goes to the root too. Tables 54 and 56's cascade codes come from the root's failures, and a
/// failed cascade leaves the SM-DS as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alternative_smds_cascades_to_its_root_with_the_codes_of_tables_54_and_56() {
    let callback = Receiver::plain(Arc::new(|_| 204)).await;
    let (t, root) = under_fake_root("alternative-smds", &callback).await;
    let smds = t.mock.smds_address().unwrap();
    let caller = es12_caller(&t, "smdp-one.example", &[2, 999, 71]);

    let reply = es12(
        &caller,
        "registerEvent",
        register_body(CASCADED, "EVENT-1", "smdp-one.example"),
    )
    .await;
    assert!(reply.is_success(), "{:?}", reply.body);
    let cascaded = root.wait_for(1).await[0].body.clone();
    assert_eq!(cascaded["eid"], CASCADED);
    assert_eq!(cascaded["rspServerAddress"], json!(smds));
    assert_eq!(cascaded["forwardingIndicator"], false);
    assert_eq!(
        cascaded["header"]["functionRequesterIdentifier"],
        "2.999.13"
    );
    let event_id2 = cascaded["eventId"].as_str().unwrap().to_owned();
    assert_ne!(event_id2, "EVENT-1");
    // Not forwarded: stored here only.
    let mut local = register_body(CASCADED, "EVENT-2", "smdp-one.example");
    local["forwardingIndicator"] = json!(false);
    assert!(es12(&caller, "registerEvent", local).await.is_success());
    assert_eq!(root.requests.lock().unwrap().len(), 1);
    // The device the root sent here with EventID2 gets the SM-DP+'s address and EventID.
    let mut lpa = t.mock.lpa(CASCADED).unwrap();
    let found = lpa.discover(&smds, Some(&event_id2)).await.unwrap();
    assert_eq!(
        found,
        [EventEntry {
            event_id: "EVENT-1".into(),
            rsp_server_address: "smdp-one.example".into()
        }]
    );
    let delete = |eid: &str, id: &str| json!({ "eid": eid, "eventId": id });
    assert!(es12(&caller, "deleteEvent", delete(CASCADED, "EVENT-1"))
        .await
        .is_success());
    let deleted = root.wait_for(2).await[1].body.clone();
    assert_eq!(deleted["eventId"], json!(event_id2));

    // Table 54: the root refuses, or cannot be reached: nothing is stored.
    for (eid, expected) in [
        (ROOT_REFUSES_REGISTRATION, "8.9 / 4.2"),
        (ROOT_DOWN_AT_REGISTRATION, "8.9 / 5.1"),
    ] {
        let reply = es12(
            &caller,
            "registerEvent",
            register_body(eid, "EVENT-X", "smdp-one.example"),
        )
        .await;
        assert_eq!(code(&reply), expected, "{eid}");
        let again = es12(&caller, "deleteEvent", delete(eid, "EVENT-X")).await;
        assert_eq!(code(&again), "8.9.5 / 3.9", "nothing was stored for {eid}");
    }
    // Table 56: the root refuses, or cannot be reached: the record stays; a root that no
    // longer has it is no failure (§5.9.2).
    for (eid, expected) in [
        (ROOT_REFUSES_DELETION, Some("8.9 / 4.2")),
        (ROOT_DOWN_AT_DELETION, Some("8.9 / 5.1")),
        (ROOT_FORGOT, None),
    ] {
        // EventIDs are unique per caller: one for each EID.
        let id = format!("EVENT-{eid}");
        let reply = es12(
            &caller,
            "registerEvent",
            register_body(eid, &id, "smdp-one.example"),
        )
        .await;
        assert!(reply.is_success(), "{eid}: {:?}", reply.body);
        let deletion = es12(&caller, "deleteEvent", delete(eid, &id)).await;
        match expected {
            Some(expected) => {
                assert_eq!(code(&deletion), expected, "{eid}");
                let kept = es12(
                    &caller,
                    "registerEvent",
                    register_body(eid, &id, "smdp-one.example"),
                )
                .await;
                assert_eq!(code(&kept), "8.9.5 / 3.3", "the record of {eid} stays");
            }
            None => {
                assert!(deletion.is_success(), "{eid}: {:?}", deletion.body);
                // Deleted here too: the same EventID registers again.
                let again = es12(
                    &caller,
                    "registerEvent",
                    register_body(eid, &id, "smdp-one.example"),
                )
                .await;
                assert!(again.is_success(), "{eid}: {:?}", again.body);
            }
        }
    }

    // A root that does not listen at all.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let yaml =
        es9_scenario(&callback.http_url(), "") + &format!("smds:\n  root: \"localhost:{port}\"\n");
    let nowhere = TestServer::with_yaml(&yaml).await;
    let caller = es12_caller(&nowhere, "smdp-one.example", &[2, 999, 71]);
    let reply = es12(
        &caller,
        "registerEvent",
        register_body(CASCADED, "EVENT-1", "smdp-one.example"),
    )
    .await;
    assert_eq!(code(&reply), "8.9 / 5.1");
}

/// A scenario device over ES9+ whose timeline says `discover`: it finds its order's event at
/// the mock's SM-DS (ES11) and downloads with the EventID, then installs; the journal shows
/// ES11 before ES9+. `discover` needs `protocol: es9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_device_discovers_its_order_at_the_mocks_smds() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let devices = format!(
        "devices:\n  - match: {{ profileType: STANDARD }}\n    protocol: es9\n    deviceEid: \"{EID1}\"\n    timeline:\n      - {{ event: discover }}\n      - {{ after: 10ms, event: install-success }}\n"
    );
    let yaml = es9_scenario(&receiver.http_url(), "") + &devices;
    let t = TestServer::with_yaml(&yaml).await;
    let smds = t.mock.smds_address().unwrap();
    let (iccid, _) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
    let journal = t.mock.journal();
    let protocols: Vec<String> = journal
        .iter()
        .filter(|e| e.function == "AuthenticateClient")
        .map(|e| {
            serde_json::to_value(e).unwrap()["protocol"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(protocols, ["ES11", "ES9+"]);
    let simulated = yaml.replace("    protocol: es9\n", "");
    let err = smdpp_mock::Scenario::from_yaml(&simulated)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`discover` finds the order's event"), "{err}");
}

/// ConfirmOrder with the address of an SM-DS that is not the mock's own (behaviour `es12`):
/// the SM-DP+ registers the event there over real ES12 (mutual TLS, its DPtls the client
/// certificate), a device discovers it there and downloads from this SM-DP+, and the order's
/// end deletes it there. An SM-DS that cannot be reached fails ConfirmOrder with `8.9 / 5.1`,
/// one that refuses with `8.9 / 4.2` (Table 27); the order stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smdp_registers_and_deletes_at_an_external_smds_over_es12() {
    use smdpp_mock::es2::Function;

    // The other SM-DS: another mock (its SM-DP+ unused but for one order), sharing the CI.
    let (other, _) = es9_started("").await;
    let other_smds = other.mock.smds_address().unwrap();
    let dir = TempDir::new("smdp-with-an-external-smds");
    let gsma = dir.path().join("certs").join(smdpp_rsp::pki::GSMA_DIR);
    std::fs::create_dir_all(&gsma).unwrap();
    for file in [CI_CERT, smdpp_rsp::pki::CI_KEY] {
        std::fs::copy(other.mock.gsma_pki().dir().join(file), gsma.join(file)).unwrap();
    }
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nowhere = format!("localhost:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "")
        + &format!("smds:\n  addresses:\n    \"{other_smds}\": es12\n    \"{nowhere}\": es12\n");
    let t = TestServer::with_yaml_in(dir, &yaml).await;

    let (iccid, event_id) =
        release_standard(&t, Some(EID1), json!({ "smdsAddress": other_smds })).await;
    let registered = last_call(&other, "RegisterEvent");
    assert_eq!(registered.status, Some("Executed-Success"));
    let outbound = last_call(&t, "RegisterEvent");
    assert_eq!(&*outbound.source_ip, "outbound");
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let events = lpa.discover(&other_smds, None).await.unwrap();
    assert_eq!(
        events,
        [EventEntry {
            event_id,
            rsp_server_address: t.mock.smdp_address()
        }]
    );
    assert!(
        lpa.download_event(&events[0], None)
            .await
            .unwrap()
            .installed
    );
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    // The deletion is sent once the order ends, without waiting for the answer.
    journaled(
        &other,
        |e| e.function == "DeleteEvent" && e.status == Some("Executed-Success"),
        "no DeleteEvent at the other SM-DS",
    )
    .await;
    assert!(lpa.discover(&other_smds, None).await.unwrap().is_empty());

    // Unreachable: 8.9 / 5.1, the order not released.
    let c = t.client("test-mno");
    let linked = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let reply = c
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": linked, "releaseFlag": true, "smdsAddress": nowhere }),
        )
        .await;
    assert_eq!(reply.status_code(), Some(("8.9".into(), "5.1".into())));
    assert_eq!(t.state(&linked), ProfileState::Linked);
    // Refused (the other SM-DS has the EventID from this caller already): 8.9 / 4.2.
    let theirs = other.client("test-mno");
    let their_order = download_by_type(&theirs, "STANDARD", Some(EID2)).await;
    confirm(
        &theirs,
        &their_order,
        json!({ "releaseFlag": true, "matchingId": "SAME-EVENT", "smdsAddress": other_smds }),
    )
    .await;
    let reply = c
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": linked, "releaseFlag": true, "matchingId": "SAME-EVENT", "smdsAddress": other_smds }),
        )
        .await;
    assert_eq!(
        reply.status_code(),
        Some(("8.9".into(), "4.2".into())),
        "{:?}",
        reply.body
    );
    assert_eq!(t.state(&linked), ProfileState::Linked);
    // Registered there, then the commit fails (the MatchingID is another order's): ConfirmOrder
    // answers the MatchingID's code, and the registration is deleted again at the other SM-DS.
    let taken = confirm(
        &c,
        &download_by_type(&c, "STANDARD", Some(EID2)).await,
        json!({ "releaseFlag": false, "matchingId": "TAKEN-1" }),
    )
    .await;
    let reply = c
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": linked, "releaseFlag": true, "matchingId": taken, "smdsAddress": other_smds }),
        )
        .await;
    assert_eq!(
        reply.status_code(),
        Some(("8.2.6".into(), "3.3".into())),
        "{:?}",
        reply.body
    );
    assert_eq!(t.state(&linked), ProfileState::Linked);
    let undone = |e: &smdpp_mock::JournalEntry| {
        e.function == "DeleteEvent"
            && e.status == Some("Executed-Success")
            && e.request.as_str().contains("TAKEN-1")
    };
    journaled(&other, undone, "the registration was not undone").await;
}

/// The SM-DS listener never panics on random bodies, over real mutual TLS, to each of its four
/// functions, their members of any type and of values that pass the format checks (the
/// request header, an EID, addresses): every request is answered (a JSON function execution
/// status, or a JSON HTTP 400), and EID1's Event Records stay as they were (random ES12 calls
/// can register and delete only EID2's).
#[test]
fn random_bodies_to_the_smds_are_answered_and_change_nothing() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (t, _receiver) = runtime.block_on(es9_started(""));
    let smds = t.mock.smds_address().unwrap();
    runtime.block_on(release_standard(
        &t,
        Some(EID1),
        json!({ "smdsAddress": smds }),
    ));
    let caller = es12_caller(&t, "smdp.example", &[2, 999, 71]);
    let events = || {
        let mut lpa = t.mock.lpa(EID1).unwrap();
        runtime.block_on(lpa.discover(&smds, None)).unwrap()
    };
    let before = events();
    let functions = [
        "es9plus/initiateAuthentication",
        "es9plus/authenticateClient",
        "es12/registerEvent",
        "es12/deleteEvent",
    ];
    let field = prop::sample::select(vec![
        "eid",
        "eventId",
        "rspServerAddress",
        "forwardingIndicator",
        "transactionId",
        "euiccChallenge",
        "euiccInfo1",
        "smdpAddress",
        "authenticateServerResponse",
        "header",
    ]);
    // The value of a member: a string of any characters, a base64 one, a number, a boolean,
    // an object, or one of the values that pass its format check.
    let value = prop_oneof![
        ".{0,300}".prop_map(Value::from),
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| json!(crypto::base64_encode(&b))),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(json!({ "functionRequesterIdentifier": "x", "functionCallIdentifier": "y" })),
        Just(json!(EID2)),
        "[A-Z0-9-]{1,40}(\\.[a-z]{1,10}){0,3}(:[0-9]{1,6})?".prop_map(Value::from),
    ];
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        proptest::collection::vec((field, value), 0..8).prop_map(|members| {
            let mut object = serde_json::Map::new();
            for (name, value) in members {
                object.insert(name.into(), value);
            }
            Value::Object(object).to_string().into_bytes()
        }),
    ];
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..functions.len(), body), |(function, body)| {
            let reply = runtime
                .block_on(caller.request(
                    Method::POST,
                    &format!("/gsma/rsp2/{}", functions[function]),
                    &[
                        ("content-type", "application/json"),
                        ("x-admin-protocol", "gsma/rsp/v2.2.0"),
                    ],
                    body,
                ))
                .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
            // A random registration of EID2 may be stored; nothing else can pass.
            let answered = match reply.status.as_u16() {
                200 => {
                    reply.execution_status() == Some("Failed")
                        || (reply.is_success() && function >= 2)
                }
                400 => reply.body["status"] == 400,
                _ => false,
            };
            prop_assert!(answered, "{} {:?}", reply.status, reply.body);
            Ok(())
        })
        .unwrap();
    assert_eq!(events(), before);
}

/// Two SM-DSs end to end (§3.6.1.2, §3.6.2 case b): the mock's SM-DS as an Alternative SM-DS
/// under another mock's as root. A registration at the Alternative SM-DS is cascaded to the
/// root; the device, polling the root, gets the Alternative SM-DS's address and EventID2, the
/// LPA follows it there (ES11 with EventID2 in ctxParams1) to the SM-DP+'s pair, and downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_polling_the_root_follows_the_alternative_smds_to_its_order() {
    use smdpp_mock::es2::Function;

    let (root, _) = es9_started("").await;
    let root_smds = root.mock.smds_address().unwrap();
    let dir = TempDir::new("alternative-under-a-root");
    let gsma = dir.path().join("certs").join(smdpp_rsp::pki::GSMA_DIR);
    std::fs::create_dir_all(&gsma).unwrap();
    for file in [CI_CERT, smdpp_rsp::pki::CI_KEY] {
        std::fs::copy(root.mock.gsma_pki().dir().join(file), gsma.join(file)).unwrap();
    }
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml =
        es9_scenario(&receiver.http_url(), "") + &format!("smds:\n  root: \"{root_smds}\"\n");
    let t = TestServer::with_yaml_in(dir, &yaml).await;
    let alternative = t.mock.smds_address().unwrap();

    // An order of the Alternative SM-DS's SM-DP+, with the operator's MatchingID.
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(EID1)).await;
    let reply = c
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": iccid, "releaseFlag": true, "matchingId": "PUSH-1" }),
        )
        .await;
    assert!(reply.is_success(), "{:?}", reply.body);
    // Its event, registered at the Alternative SM-DS by an SM-DP+ over ES12, cascaded.
    let smdp = es12_caller(&t, "smdp-one.example", &[2, 999, 71]);
    let register = json!({ "eid": EID1, "rspServerAddress": t.mock.smdp_address(),
                           "eventId": "PUSH-1", "forwardingIndicator": true });
    assert!(es12(&smdp, "registerEvent", register).await.is_success());

    let mut lpa = t.mock.lpa(EID1).unwrap();
    let at_root = lpa.discover(&root_smds, None).await.unwrap();
    assert_eq!(at_root.len(), 1);
    assert_eq!(at_root[0].rsp_server_address, alternative);
    assert_ne!(at_root[0].event_id, "PUSH-1");
    let downloaded = lpa.download_event(&at_root[0], None).await.unwrap();
    assert!(downloaded.installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    // The root got the Alternative SM-DS's own registration (not forwarded further), and the
    // Alternative SM-DS journaled its call as outbound.
    let cascaded = last_call(&root, "RegisterEvent");
    assert!(cascaded
        .request
        .as_str()
        .contains("\"forwardingIndicator\":false"));
    assert!(t
        .mock
        .journal()
        .iter()
        .any(|e| e.function == "RegisterEvent" && &*e.source_ip == "outbound"));

    // The mock's own SM-DP+ registers its orders at its SM-DS with forwardingIndicator true
    // (§3.6.1): cascaded to the root before ConfirmOrder answers; the device polling the root
    // downloads it the same way, and the order's end deletes both copies.
    let (second, _) = release_standard(&t, Some(EID2), json!({ "smdsAddress": alternative })).await;
    let mut other = t.mock.lpa(EID2).unwrap();
    // Over the ASN.1 binding: the hop to the Alternative SM-DS (ES11 is JSON only) is made in
    // JSON, the download at the SM-DP+ in ASN.1.
    other.binding = smdpp_rsp::lpa::Binding::Asn1;
    let at_root = other.discover(&root_smds, None).await.unwrap();
    assert_eq!(at_root.len(), 1);
    assert_eq!(at_root[0].rsp_server_address, alternative);
    assert!(
        other
            .download_event(&at_root[0], None)
            .await
            .unwrap()
            .installed
    );
    t.wait_for(&second, |p| p.state == ProfileState::Installed)
        .await;
    assert!(other.discover(&alternative, None).await.unwrap().is_empty());
    // The root's copy is deleted without waiting: the root journals the deletion.
    journaled(
        &root,
        |e| e.function == "DeleteEvent" && e.status == Some("Executed-Success"),
        "no DeleteEvent at the root",
    )
    .await;
    assert!(other.discover(&root_smds, None).await.unwrap().is_empty());
}

/// An external caller's record survives a restart with `--state-file` as its own: after the
/// restart another caller still cannot delete it, and its caller can.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_external_callers_event_survives_a_restart_as_its_own() {
    let callback = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&callback.http_url(), "");
    let start = |dir: TempDir| {
        let state = dir.path().join("state.json");
        TestServer::with_yaml_configured(dir, &yaml, |c| c.state_file = Some(state))
    };
    let t = start(TempDir::new("smds-restart")).await;
    let owner = es12_caller(&t, "smdp-one.example", &[2, 999, 71]);
    let reply = es12(
        &owner,
        "registerEvent",
        register_body(EID1, "KEPT-1", "smdp-one.example"),
    )
    .await;
    assert!(reply.is_success(), "{:?}", reply.body);
    let dir = t.shutdown().await;

    let t = start(dir).await;
    let smds = t.mock.smds_address().unwrap();
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let events = lpa.discover(&smds, None).await.unwrap();
    assert_eq!(
        events,
        [EventEntry {
            event_id: "KEPT-1".into(),
            rsp_server_address: "smdp-one.example".into()
        }]
    );
    let delete = json!({ "eid": EID1, "eventId": "KEPT-1" });
    let stranger = es12_caller(&t, "smdp-two.example", &[2, 999, 72]);
    assert_eq!(
        code(&es12(&stranger, "deleteEvent", delete.clone()).await),
        "8.9.5 / 3.9"
    );
    let owner = es12_caller(&t, "smdp-one.example", &[2, 999, 71]);
    assert!(es12(&owner, "deleteEvent", delete).await.is_success());
    assert!(lpa.discover(&smds, None).await.unwrap().is_empty());
}

/// Waits until `t`'s journal has an entry `matches` (what is sent without waiting: deletions
/// after an order ended), failing with `what` after 20 s.
async fn journaled(
    t: &TestServer,
    matches: impl Fn(&smdpp_mock::JournalEntry) -> bool,
    what: &str,
) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !t.mock.journal().iter().any(&matches) {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A brainpoolP256r1-only card discovers too: the SM-DS signs with its brainpool CERT.DSauth
/// (the first CI of the card's verification list it has one for, as ES9+ chooses), and the card
/// asked to sign under the brainpool CI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brainpool_card_discovers_with_the_brainpool_dsauth() {
    use smdpp_rsp::crypto::Curve;
    use smdpp_rsp::euicc::Euicc;
    use smdpp_rsp::lpa::Lpa;

    let (t, _receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let (_, event_id) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;
    let pki = t.mock.gsma_pki();
    let card = Euicc::with_chains(vec![pki
        .issue_euicc_on(Curve::BrainpoolP256r1, EID1)
        .unwrap()])
    .unwrap();
    let tls_ci = std::fs::read(pki.dir().join(CI_CERT)).unwrap();
    let mut lpa = Lpa::new(card, &[tls_ci]).unwrap();
    let events = lpa.discover(&smds, None).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, event_id);
    let initiated = last_call(&t, "InitiateAuthentication");
    let answer = initiated.response.json().unwrap();
    let der = crypto::base64_decode(answer["serverCertificate"].as_str().unwrap()).unwrap();
    let ds_auth = smdpp_rsp::cert::Certificate::parse(&der).unwrap();
    assert_eq!(ds_auth.curve, Curve::BrainpoolP256r1);
    assert!(ds_auth.roles.contains(&smdpp_rsp::cert::Role::DsAuth));
}

/// One call at a time registers an order's event over the network: while a ReleaseProfile
/// waits for the root SM-DS to take the cascaded registration, a second ReleaseProfile of the
/// same order is refused (`1.2 / 4.2`, try again) and cascades nothing; the first then
/// completes, and the order's event at the mock's SM-DS carries the first's cascade.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_registration_of_the_same_event_meanwhile_is_refused() {
    use smdpp_mock::es2::Function;

    let callback = Receiver::plain(Arc::new(|_| 204)).await;
    let (t, root) = under_fake_root("one-registration-at-a-time", &callback).await;
    let smds = t.mock.smds_address().unwrap();
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", Some(CASCADED)).await;
    confirm(&c, &iccid, json!({ "smdsAddress": smds })).await;

    root.hold();
    let release = json!({ "iccid": iccid });
    let first = {
        let client = t.client("test-mno");
        let body = release.clone();
        tokio::spawn(async move { client.call(Function::ReleaseProfile, body).await })
    };
    // The first call's cascade has reached the root, which holds its answer.
    root.wait_for(1).await;
    let second = c.call(Function::ReleaseProfile, release).await;
    assert_eq!(
        second.status_code(),
        Some(("1.2".into(), "4.2".into())),
        "{:?}",
        second.body
    );
    root.release();
    let first = first.await.unwrap();
    assert!(first.is_success(), "{:?}", first.body);
    assert_eq!(t.state(&iccid), ProfileState::Released);
    assert_eq!(
        root.requests.lock().unwrap().len(),
        1,
        "the second call cascaded nothing"
    );
    let mut lpa = t.mock.lpa(CASCADED).unwrap();
    let cascaded = root.requests.lock().unwrap()[0].body["eventId"].clone();
    let found = lpa
        .discover(&smds, Some(cascaded.as_str().unwrap()))
        .await
        .unwrap();
    assert_eq!(
        found.len(),
        1,
        "the event carries the first call's EventID2"
    );
}
