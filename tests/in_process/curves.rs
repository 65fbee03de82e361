//! brainpoolP256r1 beside NIST P-256 (SGP.22 §2.6.7.1, §4.5): the mock's PKI has both
//! hierarchies (`_BRP` files), an eUICC names the CIs it trusts in EUICCInfo1, and the SM-DP+
//! answers with the DPauth/DPpb pair chained to one of them; the key agreement is on DPpb's
//! curve. DPtls stays NIST P-256 (rustls has no brainpool TLS), so every LPA here trusts the
//! NIST CI for TLS whatever its card's curve.

use serde_json::{json, Value};
use smdpp_mock::profile::ProfileState;
use smdpp_rsp::cert::Certificate;
use smdpp_rsp::crypto::{self, Curve};
use smdpp_rsp::euicc::Euicc;
use smdpp_rsp::lpa::Lpa;
use smdpp_rsp::pki::{GsmaPki, CI_BRP_CERT, CI_CERT};

use crate::common::receiver::points;
use crate::common::*;

/// An LPA whose card has a chain of each of `curves` (issued by the mock's EUMs), trusting
/// the NIST CI for ES9+'s TLS.
fn lpa_on(t: &TestServer, eid: &str, curves: &[Curve]) -> Lpa {
    let pki = t.mock.gsma_pki();
    let chains = curves
        .iter()
        .map(|c| pki.issue_euicc_on(*c, eid).unwrap())
        .collect();
    let tls_ci = std::fs::read(pki.dir().join(CI_CERT)).unwrap();
    Lpa::new(Euicc::with_chains(chains).unwrap(), &[tls_ci]).unwrap()
}

/// InitiateAuthentication's answer: the curve of the DPauth it presents, and the CI it asks
/// the card to sign under.
fn chosen(answer: &Value) -> (Curve, Vec<u8>) {
    let der = crypto::base64_decode(answer["serverCertificate"].as_str().unwrap()).unwrap();
    let dp_auth = Certificate::parse(&der).unwrap();
    let ci = crypto::base64_decode(answer["euiccCiPKIdToBeUsed"].as_str().unwrap()).unwrap();
    (dp_auth.curve, ci)
}

/// The key identifier of the CI in `file`, as EUICCInfo1 and `euiccCiPKIdToBeUsed` carry it
/// (`04 14 …`, the DER of the SubjectKeyIdentifier).
fn ci_id(pki: &GsmaPki, file: &str) -> Vec<u8> {
    let ci = Certificate::parse(&std::fs::read(pki.dir().join(file)).unwrap()).unwrap();
    ci.subject_key_id.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brainpool_only_euicc_downloads_with_the_brainpool_hierarchy() {
    let (t, receiver) = es9_started("").await;
    let pki = t.mock.gsma_pki();
    // What the SM-DP+ answers such a card: its brainpool DPauth, the brainpool CI to sign under.
    let mut probe = lpa_on(&t, EID2, &[Curve::BrainpoolP256r1]);
    let address = t.mock.smdp_address();
    let answer = initiate_authentication(&mut probe, &address, &address)
        .await
        .unwrap();
    let (curve, ci) = chosen(&answer);
    assert_eq!(curve, Curve::BrainpoolP256r1);
    assert!(ci.ends_with(&ci_id(&pki, CI_BRP_CERT)) || ci == ci_id(&pki, CI_BRP_CERT));
    // And a whole download: mutual authentication, the binding on brainpool (the eUICC's
    // otPK and the SM-DP+'s), the installation result.
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = lpa_on(&t, EID1, &[Curve::BrainpoolP256r1]);
    let downloaded = lpa.download(&code, None).await.unwrap();
    assert!(downloaded.installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    // A local operation's notification, signed with the brainpool chain the profile came with.
    assert_eq!(lpa.enable(&downloaded.iccid), 0);
    assert_eq!(lpa.send_notifications().await.unwrap(), 1);
    assert_eq!(points(&receiver.wait_for(3).await), [3, 4, 100]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nist_only_euicc_gets_the_nist_hierarchy_and_a_card_of_both_the_first_it_names() {
    let (t, _receiver) = es9_started("").await;
    let pki = t.mock.gsma_pki();
    let address = t.mock.smdp_address();
    for (curves, expected, ci_file) in [
        (vec![Curve::NistP256], Curve::NistP256, CI_CERT),
        (
            vec![Curve::BrainpoolP256r1, Curve::NistP256],
            Curve::BrainpoolP256r1,
            CI_BRP_CERT,
        ),
        (
            vec![Curve::NistP256, Curve::BrainpoolP256r1],
            Curve::NistP256,
            CI_CERT,
        ),
    ] {
        let mut probe = lpa_on(&t, EID2, &curves);
        let answer = initiate_authentication(&mut probe, &address, &address)
            .await
            .unwrap();
        let (curve, ci) = chosen(&answer);
        assert_eq!(curve, expected, "card of {curves:?}");
        let id = ci_id(&pki, ci_file);
        assert!(ci.ends_with(&id) || ci == id, "card of {curves:?}");
    }
    // A card of both downloads (with its NIST chain, named first).
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = lpa_on(&t, EID1, &[Curve::NistP256, Curve::BrainpoolP256r1]);
    assert!(lpa.download(&code, None).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
}

/// An eUICC of another PKI, trusting neither of the mock's CIs: InitiateAuthentication is
/// refused with `8.8.2 / 3.1` (none of the proposed Public Key Identifiers is supported,
/// SGP.22 §5.6.1). And one whose signing list names the mock's CI but whose verification list
/// names neither of the SM-DP+'s CIs: `8.8.4 / 3.7` (the SM-DP+ has no CERT.DPauth.ECDSA signed
/// by a CI the eUICC supports).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_euicc_that_trusts_neither_ci_is_refused() {
    let (t, _receiver) = es9_started("").await;
    let other = TempDir::new("curves-foreign-pki");
    let foreign = GsmaPki::new(other.path());
    foreign
        .ensure(&["localhost".into()], "89049032000000000000000000000163")
        .unwrap();
    let card = Euicc::new(foreign.issue_euicc(EID1).unwrap()).unwrap();
    let tls_ci = std::fs::read(t.mock.gsma_pki().dir().join(CI_CERT)).unwrap();
    let mut lpa = Lpa::new(card, &[tls_ci]).unwrap();
    let address = t.mock.smdp_address();
    let refused = initiate_authentication(&mut lpa, &address, &address)
        .await
        .unwrap_err();
    assert_eq!(
        refused.status_code().as_deref(),
        Some("8.8.2 / 3.1"),
        "{refused}"
    );
}

/// `devices[].curves` with `protocol: es9`: the scenario's device is a brainpool-only card, and
/// the SM-DP+ answers it with its brainpool DPauth (read back from the journal).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_device_can_be_a_brainpool_card() {
    let receiver = crate::common::receiver::Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let devices = "devices:\n  - match: { profileType: STANDARD }\n    protocol: es9\n    curves: brainpool\n    timeline:\n      - { event: download }\n      - { after: 10ms, event: install-success }\n";
    let yaml = es9_scenario(&receiver.http_url(), "") + devices;
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    let initiated = last_call(&t, "InitiateAuthentication");
    let answer = initiated.response.json().unwrap();
    assert_eq!(chosen(&answer).0, Curve::BrainpoolP256r1, "{answer}");
    // `curves` names the software eUICC of `protocol: es9`: a simulated device has none.
    let simulated = yaml.replace("    protocol: es9\n", "");
    let err = smdpp_mock::Scenario::from_yaml(&simulated)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`curves` chooses the software eUICC"), "{err}");
}
