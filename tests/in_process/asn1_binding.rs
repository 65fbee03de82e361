//! The ASN.1 binding of ES9+ (SGP.22 §6.6, issue 30): the library's LPA downloads over
//! `POST /gsma/rsp2/asn1` exactly as over JSON, through the same engine (sessions, the order's
//! notifications, the journal, the metrics); refusals carry the error INTEGER of the function's
//! ASN.1 response type, and what is not a `RemoteProfileProvisioningRequest` is HTTP 400.

use bytes::Bytes;
use serde_json::{json, Value};
use smdpp_mock::profile::ProfileState;
use smdpp_rsp::lpa::{Binding, Lpa, LpaError};

use crate::common::receiver::points;
use crate::common::*;

fn asn1_lpa(t: &TestServer, eid: &str) -> Lpa {
    let mut lpa = t.mock.lpa(eid).unwrap();
    lpa.binding = Binding::Asn1;
    lpa
}

/// The journal's ES9+ entries: function, status, status code, and whether the request was DER.
fn es9_entries(t: &TestServer) -> Vec<(&'static str, Option<&'static str>, Option<String>, bool)> {
    t.mock
        .journal()
        .iter()
        .filter(|e| !e.function.ends_with("Order") && e.function != "ReleaseProfile")
        .map(|e| {
            let request = e.request.json().unwrap_or(Value::Null);
            (
                e.function,
                e.status,
                e.status_code.clone(),
                request["binding"] == json!("ASN.1 (SGP.22 §6.6)"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lpa_downloads_and_installs_over_the_asn1_binding() {
    let (t, receiver) = es9_started("").await;
    let (iccid, mid) = release_standard(&t, None, json!({})).await;
    let mut lpa = asn1_lpa(&t, EID1);
    let downloaded = lpa
        .download(&t.mock.activation_code(&mid), None)
        .await
        .unwrap();
    assert!(downloaded.installed);
    assert_eq!(downloaded.iccid.to_string(), iccid);
    assert!(
        lpa.euicc().notifications().is_empty(),
        "the result was sent"
    );
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);

    // A second order, postponed by the end user: CancelSession over ASN.1 too.
    let (second, mid) = release_standard(&t, None, json!({})).await;
    lpa.authenticate(&t.mock.activation_code(&mid))
        .await
        .unwrap();
    lpa.cancel_session(1).await.unwrap();

    let ok = Some("Executed-Success");
    let entries: Vec<_> = es9_entries(&t)
        .into_iter()
        .map(|(f, s, _, der)| (f, s, der))
        .collect();
    assert_eq!(
        entries,
        [
            ("InitiateAuthentication", ok, true),
            ("AuthenticateClient", ok, true),
            ("GetBoundProfilePackage", ok, true),
            ("HandleNotification", None, true),
            ("InitiateAuthentication", ok, true),
            ("AuthenticateClient", ok, true),
            ("CancelSession", ok, true),
        ]
    );
    // The answers are DER too, kept as such.
    let journal = t.mock.journal();
    let bpp = journal
        .iter()
        .find(|e| e.function == "GetBoundProfilePackage")
        .unwrap();
    assert_eq!(bpp.http_status, 200);
    assert!(
        bpp.response.as_str().contains("\"der\":\"o"),
        "A2… in base64: {}",
        bpp.response.to_string_lossy_prefix(100)
    );
    assert_eq!(
        t.metric("smdpp_es9_requests_total{function=\"GetBoundProfilePackage\",status=\"Executed-Success\",subject=\"\",reason=\"\"}")
            .await,
        1
    );
    // The postponed order is released again for a retry, over either binding.
    assert_eq!(t.state(&second), ProfileState::Released);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asn1_refusals_carry_the_error_codes_of_the_response_types() {
    let (t, _receiver) = es9_started("").await;
    let (_iccid, mid) = release_standard(&t, Some(EID1), json!({})).await;
    let before = t.snapshot();

    // §6.6.2.2: an unknown MatchingID is matchingIdRefused(6).
    let mut lpa = asn1_lpa(&t, EID1);
    let refused = lpa
        .download(&t.mock.activation_code("NO-SUCH-ORDER"), None)
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            LpaError::ErrorCode {
                function: "authenticateClient",
                code: 6,
                name: "matchingIdRefused"
            }
        ),
        "{refused:?}"
    );
    // §6.6.2.5: the session ended with the refusal: invalidTransactionId(1).
    let cancelled = lpa.cancel_session(0).await.unwrap_err();
    assert_eq!(cancelled.error_code(), Some(1), "{cancelled:?}");
    // §6.6.2.2: another eUICC's order is eidMismatch(7).
    let mut other = asn1_lpa(&t, EID2);
    let refused = other
        .download(&t.mock.activation_code(&mid), None)
        .await
        .unwrap_err();
    assert_eq!(refused.error_code(), Some(7), "{refused:?}");

    // The journal and the metrics say what the JSON binding's answers would have said.
    let entries = es9_entries(&t);
    assert_eq!(
        entries[1],
        (
            "AuthenticateClient",
            Some("Failed"),
            Some("8.2.6/3.8".to_owned()),
            true
        )
    );
    assert_eq!(
        t.metric("smdpp_es9_requests_total{function=\"AuthenticateClient\",status=\"Failed\",subject=\"8.2.6\",reason=\"3.8\"}")
            .await,
        1
    );

    // What is not a RemoteProfileProvisioningRequest is HTTP 400, journaled as such.
    let address = format!("localhost:{}", t.mock.es9_addr().unwrap().port());
    for body in [
        &b""[..],
        b"{\"transactionId\":\"01\"}",
        &[0xA2, 0x03, 0xBF, 0x7F, 0x00],
        &[0xA2, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],
        &[0xA2, 0x05, 0xBF, 0x3B, 0x02, 0x80, 0x00],
    ] {
        let (status, answer) = lpa
            .post_asn1(&address, Bytes::copy_from_slice(body))
            .await
            .unwrap();
        assert_eq!(
            status,
            400,
            "{body:02X?}: {}",
            String::from_utf8_lossy(&answer)
        );
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("RemoteProfileProvisioningRequest"),
            "{answer}"
        );
    }
    // Their function is unknown: the journal names the request type.
    let journal = t.mock.journal();
    let undecoded: Vec<_> = journal
        .iter()
        .rev()
        .take(5)
        .map(|e| (e.function, e.http_status))
        .collect();
    assert_eq!(undecoded, [("RemoteProfileProvisioningRequest", 400); 5]);
    assert_eq!(t.snapshot(), before, "refusals change nothing");
}
