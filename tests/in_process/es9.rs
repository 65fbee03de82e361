//! ES9+ end to end (SGP.22 §3.1, §5.6): an operator orders through ES2+, the library's LPA with
//! a software eUICC downloads that very order over ES9+ (real TLS, the GSMA-style PKI, SCP03t),
//! and the HandleDownloadProgressInfo notifications a real receiver gets follow from what the
//! eUICC did. Then the refusals, each with the status code of §5.6's tables.

use std::sync::Arc;

use serde_json::{json, Value};
use smdpp_mock::profile::{OnDevice, ProfileState};
use smdpp_rsp::crypto;
use smdpp_rsp::es10b::{
    AuthenticateServerRequest, CtxParams1, PrepareDownloadResponse, SmdpSigned2,
};
use smdpp_rsp::lpa::{Lpa, LpaError};
use smdpp_rsp::profile_package as package;
use smdpp_rsp::{bpp, tlv};

use crate::common::receiver::{points, Receiver};
use crate::common::*;

fn lpa(t: &TestServer, eid: &str) -> Lpa {
    t.mock.lpa(eid).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lpa_downloads_the_order_and_the_notifications_follow_what_the_euicc_did() {
    let (t, receiver) = es9_started("").await;
    let (iccid, mid) = release_standard(&t, None, json!({})).await;
    let code = t.mock.activation_code(&mid);
    assert_eq!(
        code,
        format!("1$localhost:{}${mid}", t.mock.es9_addr().unwrap().port())
    );
    let view = t
        .admin()
        .get(&format!("/admin/profiles/{iccid}"))
        .await
        .body;
    assert_eq!(view["activationCode"], json!(code), "{view}");

    let mut lpa = lpa(&t, EID1);
    let downloaded = lpa.download(&code, None).await.unwrap();
    assert!(downloaded.installed);
    assert_eq!(downloaded.iccid.to_string(), iccid);
    // The package the eUICC decrypted is the one the SM-DP+ generated for the order.
    let installed = &lpa.euicc().profiles()[0];
    let iccid_value = iccid.parse().unwrap();
    let subscription = package::SubscriptionRule::default().for_iccid(&iccid_value);
    let expected = package::synthetic(&iccid_value, &subscription, package::DEFAULT_FILLER);
    assert_eq!(installed.package, expected);
    assert!(
        expected.len() > 10 * 1007,
        "the package needs many segments"
    );
    // The installation result was sent and removed from the card.
    assert!(lpa.euicc().notifications().is_empty());

    let profile = t
        .wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(profile.eid.map(|e| e.to_string()).as_deref(), Some(EID1));
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 4]);
    for r in &got {
        assert_eq!(r.body["iccid"], json!(iccid));
        assert_eq!(r.body["eid"], json!(EID1));
        assert_eq!(
            r.body["notificationPointStatus"]["status"],
            "Executed-Success"
        );
    }
    // Point 4 reports the eUICC's own finalResult: the AID of the ISD-P it made.
    let result = crypto::base64_decode(got[1].body["resultData"].as_str().unwrap()).unwrap();
    assert_eq!(&result[..2], [0xA2, result.len() as u8 - 2]);
    assert!(
        result.windows(16).any(|w| w == installed.aid),
        "{}",
        crypto::hex_upper(&result)
    );

    // Local operations on the card reach the operator as the local points (100, 101, 102).
    let id = installed.iccid;
    assert_eq!(lpa.enable(&id), 0);
    assert_eq!(lpa.send_notifications().await.unwrap(), 1);
    t.wait_for(&iccid, |p| p.on_device == Some(OnDevice::Enabled))
        .await;
    assert_eq!(lpa.disable(&id), 0);
    assert_eq!(lpa.send_notifications().await.unwrap(), 1);
    t.wait_for(&iccid, |p| p.on_device == Some(OnDevice::Disabled))
        .await;
    assert_eq!(lpa.delete(&id), 0);
    assert_eq!(lpa.send_notifications().await.unwrap(), 1);
    t.wait_for(&iccid, |p| p.on_device == Some(OnDevice::Deleted))
        .await;
    let got = receiver.wait_for(5).await;
    assert_eq!(points(&got), [3, 4, 100, 101, 102]);

    // The journal names every ES9+ function with its outcome.
    let journal = t.mock.journal();
    let es9: Vec<(&str, Option<&str>)> = journal
        .iter()
        .filter(|e| !e.function.ends_with("Order") && e.function != "ReleaseProfile")
        .map(|e| (e.function, e.status))
        .collect();
    assert_eq!(
        es9[..4],
        [
            ("InitiateAuthentication", Some("Executed-Success")),
            ("AuthenticateClient", Some("Executed-Success")),
            ("GetBoundProfilePackage", Some("Executed-Success")),
            ("HandleNotification", None),
        ]
    );
    assert_eq!(
        t.metric("smdpp_es9_requests_total{function=\"GetBoundProfilePackage\",status=\"Executed-Success\",subject=\"\",reason=\"\"}")
            .await,
        1
    );
}

/// The `subjectCode / reasonCode` of a refused download.
fn code_of(result: Result<smdpp_rsp::lpa::Downloaded, LpaError>) -> (String, &'static str) {
    match result {
        Err(e @ LpaError::Failed { function, .. }) => (e.status_code().unwrap(), function),
        other => panic!("expected a Failed answer, got {other:?}"),
    }
}

/// §5.6.3 (Table 43): a MatchingID no order has, and an order of another eUICC, are refused
/// without a state change; the procedure is stopped (§3.1.3 step 3), so the CancelSession an
/// LPA sends after a refused AuthenticateClient names an unknown transactionId (`8.10.1 / 3.9`,
/// Table 46) and changes nothing either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_matching_ids_and_other_euiccs_orders_are_refused_and_cancel_changes_nothing() {
    let (t, receiver) = es9_started("").await;
    let (iccid, mid) = release_standard(&t, Some(EID1), json!({})).await;
    let before = t.snapshot();

    let mut lpa = lpa(&t, EID1);
    let unknown = t.mock.activation_code("NO-SUCH-ORDER");
    assert_eq!(
        code_of(lpa.download(&unknown, None).await),
        ("8.2.6 / 3.8".into(), "authenticateClient")
    );
    let cancelled = lpa.cancel_session(0).await.unwrap_err();
    assert_eq!(cancelled.status_code().unwrap(), "8.10.1 / 3.9");

    let mut other = self::lpa(&t, EID2);
    let code = t.mock.activation_code(&mid);
    assert_eq!(
        code_of(other.download(&code, None).await),
        ("8.1.1 / 3.8".into(), "authenticateClient")
    );
    // End-user rejection would end the order, were the session still going.
    let cancelled = other.cancel_session(0).await.unwrap_err();
    assert_eq!(cancelled.status_code().unwrap(), "8.10.1 / 3.9");
    assert_eq!(
        t.snapshot(),
        before,
        "refusals and their cancellations change nothing"
    );

    // The right eUICC still downloads it.
    assert!(lpa.download(&code, None).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}

/// §5.6.3, §5.6.2, §5.6.4: signatures are verified over the bytes as received.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_euicc_signatures_are_refused() {
    let (t, _receiver) = es9_started("").await;
    let (iccid, mid) = release_standard(&t, None, json!({})).await;
    let code = t.mock.activation_code(&mid);
    let before = t.snapshot();

    let mut lpa = lpa(&t, EID1);
    lpa.euicc_mut().faults.bad_signature1 = true;
    assert_eq!(
        code_of(lpa.download(&code, None).await),
        ("8.1 / 6.1".into(), "authenticateClient")
    );
    assert_eq!(t.snapshot(), before);

    lpa.euicc_mut().faults.bad_signature1 = false;
    lpa.euicc_mut().faults.bad_signature2 = true;
    assert_eq!(
        code_of(lpa.download(&code, None).await),
        ("8.1 / 6.1".into(), "getBoundProfilePackage")
    );
    let profile = t.profile(&iccid);
    assert_eq!(
        profile.state,
        ProfileState::Released,
        "no package was bound"
    );
    assert_eq!(profile.eid, None);

    // A Profile Installation Result whose signature does not verify is acknowledged (a
    // notification has no status code, §6.5.1.4) and ignored.
    lpa.euicc_mut().faults.bad_signature2 = false;
    lpa.euicc_mut().faults.bad_pir_signature = true;
    let downloaded = lpa.download(&code, None).await.unwrap();
    assert!(downloaded.installed, "the eUICC installed it");
    let profile = t.profile(&iccid);
    assert_eq!(
        profile.state,
        ProfileState::Downloaded,
        "the result was not believed"
    );
    let note = last_call(&t, "HandleNotification");
    assert_eq!(note.http_status, 204);
    assert!(
        note.response
            .as_str()
            .contains("euiccSignPIR does not verify"),
        "{}",
        note.response.as_str()
    );
}

/// The transactionId of the last CancelSession in the journal.
fn cancel_tid(t: &TestServer) -> String {
    let entry = last_call(t, "CancelSession");
    let request: Value = serde_json::from_str(entry.request.as_str()).unwrap();
    request["transactionId"].as_str().unwrap().to_owned()
}

/// §3.1.3.1 step 5: `postponed` (or `timeout`) after GetBoundProfilePackage keeps the order
/// "in the 'Released' state available for a further retry": nothing is sent, and the next
/// download installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postponed_download_after_the_package_stays_released_for_a_retry() {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = lpa(&t, EID1);
    let authenticated = lpa.authenticate(&code).await.unwrap();
    lpa.fetch(authenticated, None).await.unwrap();
    assert_eq!(t.state(&iccid), ProfileState::Downloaded);
    lpa.cancel_session(1).await.unwrap(); // postponed
    assert_eq!(t.state(&iccid), ProfileState::Released);
    assert!(lpa.download(&code, None).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(3).await), [3, 3, 4]);
}

/// §3.1.3.1: a CancelSession after GetBoundProfilePackage (the LPA found the metadata changed,
/// or loading the package failed) is accepted for the session that awaits its installation
/// result; the order goes to Error (§3.1.3.1 step 6) and the operator gets point 3 Failed with
/// the code of Table 32b for the reason (§5.3.5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_session_after_the_package_was_delivered_ends_the_order() {
    let (t, receiver) = es9_started("").await;
    for (n, (reason, subject, code)) in [(4u8, "8.2.9", "3.11"), (5, "8.2.10", "4.2")]
        .into_iter()
        .enumerate()
    {
        let (iccid, code_text) = released(&t, json!({})).await;
        let mut lpa = lpa(&t, EID1);
        let authenticated = lpa.authenticate(&code_text).await.unwrap();
        let fetched = lpa.fetch(authenticated, None).await.unwrap();
        assert!(!fetched.bound_profile_package.is_empty());
        assert_eq!(t.state(&iccid), ProfileState::Downloaded);
        lpa.cancel_session(reason).await.unwrap();
        t.wait_for(&iccid, |p| p.state == ProfileState::Error).await;
        let got = receiver.wait_for(2 * (n + 1)).await;
        let last = got.last().unwrap();
        assert_eq!(last.body["iccid"], json!(iccid));
        assert_eq!(last.body["notificationPointId"], 3, "{:?}", last.body);
        let status = &last.body["notificationPointStatus"];
        assert_eq!(status["status"], "Failed", "{status}");
        assert_eq!(status["statusCodeData"]["subjectCode"], subject, "{status}");
        assert_eq!(status["statusCodeData"]["reasonCode"], code, "{status}");
        let journal = t.mock.journal();
        let cancel = journal
            .iter()
            .rev()
            .find(|e| e.function == "CancelSession")
            .unwrap();
        assert_eq!(cancel.status, Some("Executed-Success"));
        // The session is over: a cancellation again finds none.
        let address = t.mock.smdp_address();
        let again = lpa.call(
            &address,
            "cancelSession",
            json!({ "transactionId": cancel_tid(&t), "cancelSessionResponse": "AA==" }),
        );
        assert_eq!(
            again.await.unwrap_err().status_code().unwrap(),
            "8.10.1 / 3.9"
        );
    }
    assert_eq!(
        points(&receiver.wait_for(4).await),
        [3, 3, 3, 3],
        "success at the package, then Failed at the cancellation, for each order"
    );
}

/// The `euiccOtpk` (`04 ‖ X ‖ Y`) the eUICC sent in the latest GetBoundProfilePackage.
fn last_euicc_otpk(t: &TestServer) -> Vec<u8> {
    let request: Value =
        serde_json::from_str(last_call(t, "GetBoundProfilePackage").request.as_str()).unwrap();
    let raw = crypto::base64_decode(request["prepareDownloadResponse"].as_str().unwrap()).unwrap();
    match PrepareDownloadResponse::parse(&raw).unwrap() {
        PrepareDownloadResponse::Ok { euicc_signed2, .. } => {
            euicc_signed2.euicc_otpk.value.to_vec()
        }
        PrepareDownloadResponse::Error { code, .. } => panic!("PrepareDownload error {code}"),
    }
}

/// The `bppEuiccOtpk` of the latest AuthenticateClient answer's `smdpSigned2`.
fn last_bpp_euicc_otpk(t: &TestServer) -> Option<Vec<u8>> {
    let response: Value =
        serde_json::from_str(last_call(t, "AuthenticateClient").response.as_str()).unwrap();
    let raw = crypto::base64_decode(response["smdpSigned2"].as_str().unwrap()).unwrap();
    SmdpSigned2::parse_raw(&raw)
        .unwrap()
        .bpp_euicc_otpk
        .map(<[u8]>::to_vec)
}

/// A Bound Profile Package's parts after InitialiseSecureChannel (`A0` to `A3`), and its
/// otPK.DP.ECKA.
fn bound_parts(bpp: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
    let outer = tlv::read_tagged(bpp, 0xBF36).unwrap();
    let parts = outer.children().unwrap();
    let smdp_otpk = parts[0].required(0x5F49).unwrap().value.to_vec();
    (
        parts[1..].iter().map(|p| p.raw.to_vec()).collect(),
        smdp_otpk,
    )
}

/// Download retry after a lost answer (§3.1.3 step 3: the order may be in Downloaded "in case
/// of a retry"; §3.1.6 `Downloaded --> Downloaded : GetBoundProfilePackage (retry)`): the
/// package was fetched and never loaded. The retry's smdpSigned2 names the otPK.EUICC.ECKA the
/// package was bound to (`bppEuiccOtpk`, §3.1.3 step 5); the eUICC kept that unused pair
/// (§5.7.7) and answers with it; the SM-DP+ reuses the package, signing only
/// InitialiseSecureChannel anew (§5.6.2), and it installs. Each AuthenticateClient counted an
/// attempt (§3.1.3 step 3), point 3 was sent for each package.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_retry_after_a_lost_package_reuses_it() {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = lpa(&t, EID1);
    let first = lpa.authenticate(&code).await.unwrap();
    assert_eq!(last_bpp_euicc_otpk(&t), None);
    let lost = lpa.fetch(first, None).await.unwrap();
    let first_otpk = last_euicc_otpk(&t);
    assert_eq!(t.state(&iccid), ProfileState::Downloaded);
    // The LPA never loads it: a new session for the same Activation Code.
    let second = lpa.authenticate(&code).await.unwrap();
    assert_eq!(last_bpp_euicc_otpk(&t), Some(first_otpk.clone()));
    let fetched = lpa.fetch(second, None).await.unwrap();
    assert_eq!(
        last_euicc_otpk(&t),
        first_otpk,
        "the eUICC used the pair it kept"
    );
    let (lost_parts, lost_dp) = bound_parts(&lost.bound_profile_package);
    let (parts, dp) = bound_parts(&fetched.bound_profile_package);
    assert_eq!(dp, lost_dp, "the same otPK.DP.ECKA");
    assert_eq!(parts, lost_parts, "A0 to A3 as before");
    assert_ne!(lost.bound_profile_package, fetched.bound_profile_package);
    assert!(lpa.load(fetched).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(t.profile(&iccid).download_attempts, 2);
    assert_eq!(points(&receiver.wait_for(3).await), [3, 3, 4]);
}

/// Download retry after a load that broke off (the eUICC used its one-time key, so it makes a
/// new one though the retry names the old one, §5.7.5): the SM-DP+ binds the package anew with
/// a new otPK.DP.ECKA (§5.6.2) and it installs. With `packageProtection:
/// profileProtectionKeys` the protected package (`A3`) is the same in both packages, since only
/// ReplaceSessionKeys (`A2`) carries the order's keys under the new session keys (§2.5.3); with
/// the session keys it differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_retry_after_a_broken_load_is_bound_anew() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "").replace(
        "profileTypes:\n",
        "profileTypes:\n  - id: PPK\n    owner: test-mno\n    packageProtection: profileProtectionKeys\n    profiles:\n      - range: { start: \"894450020000000000\", count: 5 }\n",
    );
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");
    for (profile_type, with_ppk) in [("STANDARD", false), ("PPK", true)] {
        let iccid = download_by_type(&c, profile_type, None).await;
        let mid = confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
        let code = t.mock.activation_code(&mid);
        let mut lpa = lpa(&t, EID1);
        let first = lpa.authenticate(&code).await.unwrap();
        let broken = lpa.fetch(first, None).await.unwrap();
        let first_otpk = last_euicc_otpk(&t);
        // The load breaks off at the first profile element segment: the link to the card was
        // lost after InitialiseSecureChannel (the key agreement) had been carried out.
        for command in bpp::es10_commands(&broken.bound_profile_package).unwrap() {
            if command[0] == 0x86 {
                break;
            }
            assert_eq!(lpa.euicc_mut().transmit(&command), Vec::<u8>::new());
        }
        assert_eq!(t.state(&iccid), ProfileState::Downloaded);
        let second = lpa.authenticate(&code).await.unwrap();
        assert_eq!(last_bpp_euicc_otpk(&t), Some(first_otpk.clone()));
        let fetched = lpa.fetch(second, None).await.unwrap();
        assert_ne!(
            last_euicc_otpk(&t),
            first_otpk,
            "a used key is not used again"
        );
        let (broken_parts, broken_dp) = bound_parts(&broken.bound_profile_package);
        let (parts, dp) = bound_parts(&fetched.bound_profile_package);
        assert_ne!(dp, broken_dp, "{profile_type}: bound anew");
        assert_ne!(
            parts[0], broken_parts[0],
            "{profile_type}: A0 under new keys"
        );
        assert_eq!(parts.len(), if with_ppk { 4 } else { 3 }, "{profile_type}");
        assert_eq!(
            parts.last() == broken_parts.last(),
            with_ppk,
            "{profile_type}: A3 the same exactly with Profile Protection Keys"
        );
        assert!(lpa.load(fetched).await.unwrap().installed, "{profile_type}");
        t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
            .await;
    }
}

/// §5.6.1 (Table 37, `8.8.1 / 3.8`): an `smdpAddress` longer than an FQDN can be, or with
/// more than the one root dot, is refused before anything of it is kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_no_fqdn_can_be_is_refused() {
    let (t, _receiver) = es9_started("").await;
    let mut lpa = lpa(&t, EID1);
    let address = t.mock.smdp_address();
    let (host, port) = address.rsplit_once(':').unwrap();
    for given in [
        format!("{host}{}:{port}", ".".repeat(61_000)),
        format!("{host}..:{port}"),
        format!("{}.{host}:{port}", "a".repeat(300)),
    ] {
        let refused = initiate_authentication(&mut lpa, &address, &given)
            .await
            .unwrap_err();
        assert_eq!(
            refused.status_code().unwrap(),
            "8.8.1 / 3.8",
            "{}",
            given.len()
        );
    }
    // With the one root dot it is this SM-DP+.
    initiate_authentication(&mut lpa, &address, &format!("{host}.:{port}"))
        .await
        .unwrap();
}

/// A ProfileInstallationResult without `smdpOid` (OPTIONAL after SGP.22 v2.2, and left out by
/// eUICCs of those versions) is applied by its transactionId: 204, Installed, point 4, and the
/// journal notes the omission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_installation_result_without_smdp_oid_is_applied() {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = lpa(&t, EID1);
    lpa.euicc_mut().faults.omit_pir_smdp_oid = true;
    assert!(lpa.download(&code, None).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
    let handled = last_call(&t, "HandleNotification");
    assert_eq!(handled.http_status, 204);
    assert!(
        handled
            .response
            .as_str()
            .contains("installed (the result has no smdpOid)"),
        "{}",
        handled.response.as_str()
    );
}

/// §6.2: a notification's 204 has an empty body and no `Content-Type` (curl, over real TLS).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_answer_has_no_body_and_no_content_type() {
    use smdpp_rsp::es10b::{NotificationMetadata, ProfileInstallationResult};
    let (t, _receiver) = es9_started("").await;
    // Well-formed, for a transactionId no session has: acknowledged and ignored.
    let metadata = NotificationMetadata {
        seq: 1,
        event: 0, // install
        address: t.mock.smdp_address(),
        iccid: None,
    };
    let result = smdpp_rsp::es10b::FinalResult::Error {
        bpp_command_id: 1,
        error_reason: 1,
    };
    let data = ProfileInstallationResult::encode_data(&[7; 16], &metadata, None, &result);
    let pir = ProfileInstallationResult::encode(&data, &[0; 64]);
    let body = json!({ "pendingNotification": crypto::base64_encode(&pir) }).to_string();
    let port = t.mock.es9_addr().unwrap().port();
    // curl blocks: off the runtime's workers.
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("curl")
            .args(["-sS", "-k", "-i", "-X", "POST"])
            .args(["-H", "Content-Type: application/json"])
            .args(["-H", "X-Admin-Protocol: gsma/rsp/v2.2.0"])
            .args(["-H", "User-Agent: gsma-rsp-lpad"])
            .args(["--data-binary", &body])
            .arg(format!(
                "https://localhost:{port}/gsma/rsp2/es9plus/handleNotification"
            ))
            .output()
            .expect("curl must be installed")
    })
    .await
    .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert_eq!(answer.split_whitespace().nth(1), Some("204"), "{answer}");
    assert!(answer.contains("x-admin-protocol:"), "{answer}");
    assert!(!answer.contains("content-type"), "{answer}");
    assert!(answer.ends_with("\r\n\r\n"), "an empty body: {answer}");
}

/// §5.6.3, §5.6.2, §5.6.5 (Tables 40, 43, 46): a transactionId never issued, or forgotten after
/// the session's time to live, is `8.10.1 / 3.9`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_expired_transaction_ids_are_refused() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let scenario =
        smdpp_mock::Scenario::from_yaml(&es9_scenario(&receiver.http_url(), "")).unwrap();
    let t = TestServer::configured(scenario, TempDir::new("es9-ttl"), |c| {
        c.es9_session_timeout = std::time::Duration::from_secs(300);
    })
    .await;
    let mut lpa = lpa(&t, EID1);
    let address = t.mock.smdp_address();
    for function in [
        "authenticateClient",
        "getBoundProfilePackage",
        "cancelSession",
    ] {
        let answer = lpa
            .call(
                &address,
                function,
                json!({ "transactionId": "00112233445566778899AABBCCDDEEFF",
                        "authenticateServerResponse": "AA==", "prepareDownloadResponse": "AA==",
                        "cancelSessionResponse": "AA==" }),
            )
            .await;
        assert_eq!(
            answer.unwrap_err().status_code().unwrap(),
            "8.10.1 / 3.9",
            "{function}"
        );
    }
    // A session that is left alone past its time to live.
    let initiated = initiate_authentication(&mut lpa, &address, &address)
        .await
        .unwrap();
    // Its time to live passes on the mock's clock (as with `POST /admin/clock`), not in real time.
    t.mock.advance_clock(std::time::Duration::from_secs(301));
    let answer = lpa
        .call(
            &address,
            "authenticateClient",
            json!({ "transactionId": initiated["transactionId"], "authenticateServerResponse": "AA==" }),
        )
        .await;
    assert_eq!(answer.unwrap_err().status_code().unwrap(), "8.10.1 / 3.9");
}

/// §3.1.3.2 step 7, §5.6.2 (Table 40): a wrong Confirmation Code is refused and counted; past
/// the limit the order ends in Error (point 2). The right one downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_confirmation_codes_are_refused_then_end_the_order() {
    let (t, receiver) = es9_started("  limits: { confirmationCodeAttempts: 1 }").await;
    let (good, good_mid) = release_standard(&t, None, json!({ "confirmationCode": "1234" })).await;
    let (bad, bad_mid) = release_standard(&t, None, json!({ "confirmationCode": "1234" })).await;

    let mut lpa = lpa(&t, EID1);
    assert!(
        lpa.download(&t.mock.activation_code(&good_mid), Some("1234"))
            .await
            .unwrap()
            .installed
    );
    t.wait_for(&good, |p| p.state == ProfileState::Installed)
        .await;

    let code = t.mock.activation_code(&bad_mid);
    assert_eq!(
        code_of(lpa.download(&code, Some("4321")).await),
        ("8.2.7 / 3.8".into(), "getBoundProfilePackage")
    );
    assert_eq!(t.profile(&bad).state, ProfileState::Released);
    assert_eq!(
        code_of(lpa.download(&code, Some("0000")).await),
        ("8.2.7 / 6.4".into(), "getBoundProfilePackage")
    );
    assert_eq!(t.profile(&bad).state, ProfileState::Error);
    let got = receiver.wait_for(3).await;
    let last = got.iter().find(|r| r.body["iccid"] == json!(bad)).unwrap();
    assert_eq!(last.body["notificationPointId"], 2);
    assert_eq!(
        last.body["notificationPointStatus"]["statusCodeData"]["reasonCode"],
        "6.4"
    );
}

/// §5.6.3 (Table 43): an order not yet released is `8.2 / 1.2` and stays as it is; past the
/// download attempts an order ends in Error with `8.8.5 / 6.4`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreleased_orders_and_too_many_attempts_are_refused() {
    let (t, _receiver) = es9_started("  limits: { downloadAttempts: 1 }").await;
    let c = t.client("test-mno");
    let confirmed = download_by_type(&c, "STANDARD", None).await;
    let mid = confirm(&c, &confirmed, json!({ "releaseFlag": false })).await;
    let before = t.snapshot();
    let mut lpa = lpa(&t, EID1);
    assert_eq!(
        code_of(lpa.download(&t.mock.activation_code(&mid), None).await),
        ("8.2 / 1.2".into(), "authenticateClient")
    );
    assert_eq!(t.snapshot(), before);

    let (iccid, mid) = release_standard(&t, None, json!({})).await;
    let code = t.mock.activation_code(&mid);
    // The first attempt is spent (its package is refused by a bad signature).
    lpa.euicc_mut().faults.bad_signature2 = true;
    code_of(lpa.download(&code, None).await);
    lpa.euicc_mut().faults.bad_signature2 = false;
    assert_eq!(
        code_of(lpa.download(&code, None).await),
        ("8.8.5 / 6.4".into(), "authenticateClient")
    );
    assert_eq!(t.profile(&iccid).state, ProfileState::Error);
}

/// §5.6.3 (Table 43), §4.5.2.2: an eUICC of an EUM under another CI, an eUICC certificate not
/// issued by the EUM it presents, and one outside its EUM's EID range are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn euicc_certificates_of_other_eums_or_outside_the_range_are_refused() {
    use smdpp_rsp::euicc::Euicc;
    use smdpp_rsp::pki::{EuiccCredentials, GsmaPki};

    let (t, _receiver) = es9_started("").await;
    let (_, mid) = release_standard(&t, None, json!({})).await;
    let code = t.mock.activation_code(&mid);
    let before = t.snapshot();
    let pki = t.mock.gsma_pki();
    let ours = pki.issue_euicc(EID1).unwrap();
    let foreign_dir = TempDir::new("foreign-gsma");
    let foreign = GsmaPki::new(foreign_dir.path());
    foreign.ensure(&[], EID1).unwrap();
    let theirs = foreign.issue_euicc(EID2).unwrap();
    let ci = ours.ci.clone();
    let with = |credentials: EuiccCredentials| {
        Lpa::new(Euicc::new(credentials).unwrap(), std::slice::from_ref(&ci)).unwrap()
    };

    // Their whole chain, offered as if the eUICC trusted our CI.
    let mut other_ci = with(EuiccCredentials {
        ci: ci.clone(),
        ..foreign.issue_euicc(EID2).unwrap()
    });
    assert_eq!(
        code_of(other_ci.download(&code, None).await).0,
        "8.11.1 / 3.9"
    );
    // Their eUICC certificate with our EUM's.
    let mut wrong_eum = with(EuiccCredentials {
        certificate: theirs.certificate,
        key: theirs.key,
        eum: ours.eum.clone(),
        ci: ci.clone(),
    });
    assert_eq!(
        code_of(wrong_eum.download(&code, None).await).0,
        "8.1.3 / 6.1"
    );
    // Our EUM, an EID outside its range.
    let mut outside = with(
        pki.issue_euicc_outside_constraints("89049033000000000000000000000001")
            .unwrap(),
    );
    assert_eq!(
        code_of(outside.download(&code, None).await).0,
        "8.1.3 / 6.1"
    );
    assert_eq!(t.snapshot(), before);
}

/// The ES9+ request path over real TLS never panics on random bodies: every request gets an
/// answer (JSON, or 204 for a notification), nothing changes, and a real download still works
/// afterwards on the same server.
#[test]
fn random_bodies_over_tls_are_answered_and_change_nothing() {
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (t, _receiver) = runtime.block_on(es9_started(""));
    let (iccid, mid) = runtime.block_on(release_standard(&t, None, json!({})));
    let lpa = std::cell::RefCell::new(lpa(&t, EID1));
    let address = t.mock.smdp_address();
    // Sessions that AuthenticateClient accepted (each counts a download attempt, so before the
    // snapshot): random package requests and cancellations for them reach the checks behind
    // the transactionId. Sessions only initiated are made during the run (they change nothing).
    let authenticated: std::cell::RefCell<Vec<String>> = (0..6)
        .map(|_| {
            let (_, other) = runtime.block_on(release_standard(&t, None, json!({})));
            let code = t.mock.activation_code(&other);
            let mut lpa = t.mock.lpa(EID2).unwrap();
            runtime
                .block_on(lpa.authenticate(&code))
                .unwrap()
                .transaction_id()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .into();
    let before = t.snapshot();
    let journal_before = t.mock.journal().len();
    let functions = [
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",
        "handleNotification",
        "cancelSession",
    ];
    // What each function's data fields are called, after the transactionId.
    let fields: [&[&str]; 5] = [
        &["euiccChallenge", "euiccInfo1"],
        &["authenticateServerResponse"],
        &["prepareDownloadResponse"],
        &["pendingNotification"],
        &["cancelSessionResponse"],
    ];
    /// The transactionId to put in: `LIVE` becomes a session's at the stage the function needs.
    const LIVE: &str = "LIVE";
    let random = proptest::collection::vec(any::<u8>(), 0..300);
    let body = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        (
            prop::sample::select(vec![
                "transactionId",
                "euiccInfo1",
                "euiccChallenge",
                "smdpAddress",
                "authenticateServerResponse",
                "prepareDownloadResponse",
                "pendingNotification",
                "cancelSessionResponse",
            ]),
            random.clone(),
        )
            .prop_map(|(name, value)| {
                json!({ name: crypto::base64_encode(&value), "transactionId": "00AA" })
                    .to_string()
                    .into_bytes()
            }),
        // A whole request with a live session and random data: what a confused or hostile LPA
        // sends in the middle of a download.
        (random.clone(), random).prop_map(|(a, b)| {
            json!({ "transactionId": LIVE, "smdpAddress": "",
                    "a": crypto::base64_encode(&a), "b": crypto::base64_encode(&b) })
            .to_string()
            .into_bytes()
        }),
    ];
    // A fixed seed: the cases that reach the eUICC checks are the same on every run.
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: 160,
            failure_persistence: None,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    runner
        .run(
            &(0..functions.len(), body, any::<usize>()),
            |(f, body, pick)| {
                let mut body: Value = match serde_json::from_slice::<Value>(&body) {
                    Ok(v) if v["transactionId"] == LIVE => v,
                    _ => Value::Null,
                };
                let bytes = if body.is_null() {
                    // Random bytes, or one random field, as they came.
                    None
                } else {
                    let tid = match f {
                        // Authenticated sessions, until each has had its one random try.
                        2 | 4 if !authenticated.borrow().is_empty() => {
                            let mut pool = authenticated.borrow_mut();
                            let at = pick % pool.len();
                            pool.remove(at)
                        }
                        _ => {
                            let mut lpa = lpa.borrow_mut();
                            let initiated = runtime
                                .block_on(initiate_authentication(&mut lpa, &address, &address))
                                .map_err(|e| TestCaseError::fail(e.to_string()))?;
                            if f == 1 && pick % 2 == 0 {
                                // The card's real AuthenticateServerResponse with one byte
                                // changed: past the parser, into the certificate and
                                // signature checks.
                                let field = |name: &str| {
                                    crypto::base64_decode(initiated[name].as_str().unwrap())
                                        .unwrap()
                                };
                                let request = AuthenticateServerRequest::encode(
                                    &field("serverSigned1"),
                                    smdpp_rsp::tlv::read_tagged(&field("serverSignature1"), 0x5F37)
                                        .unwrap()
                                        .value,
                                    &field("euiccCiPKIdToBeUsed"),
                                    &field("serverCertificate"),
                                    &CtxParams1::encode(Some(&mid), [0x35, 0x29, 0x06, 0x11]),
                                );
                                let mut response = lpa.euicc_mut().transmit(&request);
                                let at = (pick / 16) % response.len();
                                response[at] ^= 1 << ((pick / 2) % 8);
                                body["a"] = json!(crypto::base64_encode(&response));
                            }
                            initiated["transactionId"].as_str().unwrap().to_owned()
                        }
                    };
                    let (a, b) = (body["a"].clone(), body["b"].clone());
                    let object = body.as_object_mut().unwrap();
                    object.remove("a");
                    object.remove("b");
                    object.insert("transactionId".into(), json!(tid));
                    object.insert("smdpAddress".into(), json!(address));
                    for (name, value) in fields[f].iter().zip([a, b]) {
                        object.insert((*name).into(), value);
                    }
                    Some(body.to_string().into_bytes())
                };
                let (status, answer) = runtime
                    .block_on(lpa.borrow_mut().post_bytes(
                        &address,
                        functions[f],
                        bytes.unwrap_or_default().into(),
                    ))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                match status {
                    204 => prop_assert!(answer.is_empty()),
                    200 | 400 | 413 | 415 => {
                        let json: Value = serde_json::from_slice(&answer)
                            .map_err(|e| TestCaseError::fail(format!("{status}: not JSON: {e}")))?;
                        if status == 200 {
                            prop_assert_eq!(
                                &json["header"]["functionExecutionStatus"]["status"],
                                "Failed"
                            );
                        }
                    }
                    other => prop_assert!(false, "HTTP {other}: {answer:?}"),
                }
                Ok(())
            },
        )
        .unwrap();
    // The run reached past the session lookup: refusals that only a live session can get.
    let codes: std::collections::BTreeSet<String> = t.mock.journal()[journal_before..]
        .iter()
        .filter_map(|e| e.status_code.clone())
        .collect();
    assert!(
        codes
            .iter()
            .any(|c| c.starts_with("8.1") && c.ends_with("/6.1")),
        "no refusal from the eUICC checks (§5.6.2: 8.1.x / 6.1): {codes:?}"
    );
    assert_eq!(t.snapshot(), before, "random requests changed nothing");
    let downloaded = runtime
        .block_on(
            lpa.into_inner()
                .download(&t.mock.activation_code(&mid), None),
        )
        .unwrap();
    assert_eq!(downloaded.iccid.to_string(), iccid);
    drop(t);
}

/// Fault rules with `target: es9` act on ES9+ functions, matched on the order of the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_rules_apply_to_es9_functions() {
    let faults = r#"
faults:
  - target: es9
    match: { function: getBoundProfilePackage, profileType: STANDARD }
    error: execution-error
    times: 1
"#;
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = format!("{}{faults}", es9_scenario(&receiver.http_url(), ""));
    let t = TestServer::with_yaml(&yaml).await;
    let (iccid, mid) = release_standard(&t, None, json!({})).await;
    let code = t.mock.activation_code(&mid);
    let mut lpa = lpa(&t, EID1);
    assert_eq!(
        code_of(lpa.download(&code, None).await),
        ("1.2 / 4.2".into(), "getBoundProfilePackage")
    );
    assert_eq!(t.profile(&iccid).state, ProfileState::Released);
    assert!(lpa.download(&code, None).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    let fired = t
        .mock
        .journal()
        .into_iter()
        .find(|e| e.function == "GetBoundProfilePackage")
        .unwrap();
    assert_eq!(fired.fault.as_deref(), Some("faults[0]"));
}

/// `profileTypes[].profilePackage` with a package shaped as GSMA TS.48 test profiles are (header
/// ICCID in plain digits, EF.ICCID swapped, built byte by byte in tests/common/package.rs): each
/// order's package names its own ICCID in both places, differs from the file in those 20 bytes
/// only, and installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ts48_shaped_package_is_personalised_per_order_and_installs() {
    use crate::common::package::{plain, swapped, ts48_shaped};
    let dir = TempDir::new("es9-package");
    // The file names an ICCID no order has, as a real test profile would.
    let file = ts48_shaped("8949440000001155123");
    std::fs::write(dir.path().join("ts48.der"), &file).unwrap();
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = format!(
        r#"
smdp:
  address: localhost
operators:
  - id: test-mno
    callback: {{ url: "{}" }}
profileTypes:
  - id: OWN
    owner: test-mno
    profilePackage: ts48.der
    profiles:
      - range: {{ start: "894450020000000000", count: 2 }}
"#,
        receiver.http_url()
    );
    let t = TestServer::with_yaml_in(dir, &yaml).await;
    let c = t.client("test-mno");
    for eid in [EID1, EID2] {
        let ordered = download_by_type(&c, "OWN", None).await;
        let mid = confirm(&c, &ordered, json!({ "releaseFlag": true })).await;
        let mut lpa = lpa(&t, eid);
        let done = lpa
            .download(&t.mock.activation_code(&mid), None)
            .await
            .unwrap();
        assert!(done.installed, "{ordered}");
        let installed = &lpa.euicc().profiles()[0];
        assert_eq!(installed.iccid.to_string(), ordered, "the metadata's ICCID");
        let delivered = &installed.package;
        assert_eq!(delivered.len(), file.len());
        let header_at = file
            .windows(10)
            .position(|w| w == plain("8949440000001155123"));
        let ef_at = file
            .windows(10)
            .position(|w| w == swapped("8949440000001155123"));
        let (header_at, ef_at) = (header_at.unwrap(), ef_at.unwrap());
        assert_eq!(delivered[header_at..header_at + 10], plain(&ordered));
        assert_eq!(delivered[ef_at..ef_at + 10], swapped(&ordered));
        for (i, (a, b)) in file.iter().zip(delivered).enumerate() {
            let personalised =
                (header_at..header_at + 10).contains(&i) || (ef_at..ef_at + 10).contains(&i);
            assert!(a == b || personalised, "byte {i} changed");
        }
        t.wait_for(&ordered, |p| p.state == ProfileState::Installed)
            .await;
    }
}

/// A package that cannot be personalised per order is refused when the scenario loads, with
/// the reason, at the key that names it.
#[test]
fn a_package_that_cannot_be_personalised_is_refused_at_load() {
    let dir = TempDir::new("es9-bad-package");
    // The End element alone: no ProfileHeader.
    std::fs::write(
        dir.path().join("bad.der"),
        [0xAA, 0x05, 0xA0, 0x03, 0x81, 0x01, 0x02],
    )
    .unwrap();
    let path = dir.path().join("scenario.yaml");
    std::fs::write(
        &path,
        r#"operators: [{ id: test-mno }]
profileTypes:
  - id: OWN
    owner: test-mno
    profilePackage: bad.der
    profiles: [{ range: { start: "894450020000000000", count: 1 } }]
"#,
    )
    .unwrap();
    let err = smdpp_mock::Scenario::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("scenario.yaml:5:")
            && err.contains("cannot be personalised per order")
            && err.contains("not the ProfileHeader"),
        "{err}"
    );
    // A header and the End element: personalisable, but no card installs it (no MF, no USIM).
    let iccid = crate::common::package::plain("8944500200000000001");
    let header = crate::common::package::der(0xA0, &crate::common::package::der(0x83, &iccid));
    let end = crate::common::package::der(
        0xAA,
        &crate::common::package::der(0xA0, &[0x81, 0x01, 0x01]),
    );
    std::fs::write(dir.path().join("bad.der"), [header, end].concat()).unwrap();
    let err = smdpp_mock::Scenario::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("scenario.yaml:5:")
            && err.contains("a card would not install it")
            && err.contains("MF elements"),
        "{err}"
    );
}

/// §3.1.2 / §3.1.3: an order with an empty MatchingID (the default SM-DP+ case) is found by the
/// eUICC's EID, and only by that eUICC.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_without_a_matching_id_is_found_by_the_euiccs_eid() {
    let (t, receiver) = es9_started("").await;
    let (iccid, mid) =
        release_standard(&t, Some(EID1), json!({ "eid": EID1, "matchingId": "" })).await;
    assert_eq!(mid, "");
    let code = t.mock.activation_code("");
    assert_eq!(
        code_of(self::lpa(&t, EID2).download(&code, None).await).0,
        "8.2.6 / 3.8"
    );
    let downloaded = lpa(&t, EID1).download(&code, None).await.unwrap();
    assert_eq!(downloaded.iccid.to_string(), iccid);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}

/// `protocol: es9`: device timelines played by a software eUICC and the LPA over the real
/// listener; the journal shows the ES9+ calls and the operator gets what the card did.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_timelines_can_run_over_es9() {
    let receiver = Receiver::plain(Arc::new(|_| 204)).await;
    let yaml = format!(
        r#"
smdp:
  address: localhost
operators:
  - id: test-mno
    callback: {{ url: "{}", initialBackoff: 10ms }}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles:
      - range: {{ start: "894450010000000000", count: 5 }}
  - id: FAILING
    owner: test-mno
    profiles:
      - range: {{ start: "894450020000000000", count: 5 }}
  - id: REJECTED
    owner: test-mno
    profiles:
      - range: {{ start: "894450030000000000", count: 5 }}
devices:
  - match: {{ profileType: STANDARD }}
    protocol: es9
    timeline:
      - {{ event: download }}
      - {{ after: 10ms, event: install-success }}
      - {{ after: 10ms, event: enable }}
  - match: {{ profileType: FAILING }}
    protocol: es9
    timeline:
      - {{ event: download }}
      - {{ after: 10ms, event: install-failure, errorReason: 9, bppCommandId: 5 }}
  - match: {{ profileType: REJECTED }}
    protocol: es9
    timeline:
      - {{ event: end-user-rejection }}
"#,
        receiver.http_url()
    );
    let t = TestServer::with_yaml(&yaml).await;
    let c = t.client("test-mno");
    let ok = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &ok, json!({ "releaseFlag": true })).await;
    let installed = t
        .wait_for(&ok, |p| p.on_device == Some(OnDevice::Enabled))
        .await;
    assert_eq!(installed.state, ProfileState::Installed);
    let failing = download_by_type(&c, "FAILING", None).await;
    confirm(&c, &failing, json!({ "releaseFlag": true })).await;
    t.wait_for(&failing, |p| p.state == ProfileState::Error)
        .await;
    let rejected = download_by_type(&c, "REJECTED", None).await;
    confirm(&c, &rejected, json!({ "releaseFlag": true })).await;
    t.wait_for(&rejected, |p| p.state == ProfileState::Error)
        .await;

    let got = receiver.wait_for(6).await;
    let of = |iccid: &str| -> Vec<(u64, String)> {
        got.iter()
            .filter(|r| r.body["iccid"] == json!(iccid))
            .map(|r| {
                (
                    r.body["notificationPointId"].as_u64().unwrap(),
                    r.body["notificationPointStatus"]["status"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect()
    };
    let success = || "Executed-Success".to_string();
    assert_eq!(of(&ok), [(3, success()), (4, success()), (100, success())]);
    assert_eq!(of(&failing), [(3, success()), (4, "Failed".to_string())]);
    assert_eq!(of(&rejected), [(1, "Failed".to_string())]);
    // The card's own errorReason (9, installFailedDueToIccidAlreadyExistsOnEuicc) is reported.
    let failed = got
        .iter()
        .find(|r| r.body["iccid"] == json!(failing) && r.body["notificationPointId"] == 4)
        .unwrap();
    let result = crypto::base64_decode(failed.body["resultData"].as_str().unwrap()).unwrap();
    assert!(
        result.ends_with(&[0x81, 0x01, 0x09]),
        "{}",
        crypto::hex_upper(&result)
    );
    // Real ES9+ calls, in the journal.
    let functions: Vec<&str> = t.mock.journal().iter().map(|e| e.function).collect();
    for f in [
        "InitiateAuthentication",
        "AuthenticateClient",
        "GetBoundProfilePackage",
        "HandleNotification",
        "CancelSession",
    ] {
        assert!(functions.contains(&f), "{f} in {functions:?}");
    }
}

/// Anonymous sessions (after InitiateAuthentication, before AuthenticateClient) are bounded per
/// client address: past `es9_sessions_per_address` the next InitiateAuthentication gets HTTP 503
/// with `Retry-After` (no SGP.22 status code says "try later"), counted in `/metrics`; a session
/// that had authenticated before goes on and installs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_sessions_are_bounded_per_address() {
    let (t, _receiver) = es9_configured(|c| c.es9_sessions_per_address = 3).await;
    let (iccid, code) = released(&t, json!({})).await;
    let mut lpa = lpa(&t, EID1);
    let authenticated = lpa.authenticate(&code).await.unwrap();
    let address = t.mock.smdp_address();
    let mut other = t.mock.lpa(EID2).unwrap();
    for _ in 0..3 {
        initiate_authentication(&mut other, &address, &address)
            .await
            .unwrap();
    }
    match initiate_authentication(&mut other, &address, &address).await {
        Err(LpaError::Http { status, body, .. }) => {
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("--es9-sessions-per-address"), "{body}");
        }
        other => panic!("not refused: {other:?}"),
    }
    // The header, seen by curl.
    let ci_pem = t.dir.path().join("ci.pem");
    let converted = std::process::Command::new("openssl")
        .args(["x509", "-inform", "der", "-in"])
        .arg(t.certs().join("gsma/CERT_CI_ECDSA_NIST.der"))
        .arg("-out")
        .arg(&ci_pem)
        .status()
        .unwrap();
    assert!(converted.success());
    let challenge = other.euicc_mut().transmit(&[0xBF, 0x2E, 0x00]);
    let info1 = other.euicc_mut().transmit(&[0xBF, 0x20, 0x00]);
    let body = json!({ "smdpAddress": address,
                       "euiccChallenge": crypto::base64_encode(&challenge[5..]),
                       "euiccInfo1": crypto::base64_encode(&info1) });
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "--cacert"])
        .arg(&ci_pem)
        .args([
            "-H",
            "Content-Type: application/json",
            "-H",
            "X-Admin-Protocol: gsma/rsp/v2.2.0",
            "-d",
            &body.to_string(),
            &format!("https://{address}/gsma/rsp2/es9plus/initiateAuthentication"),
        ])
        .env("no_proxy", "localhost,127.0.0.1")
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(answer.starts_with("http/2 503"), "{answer}");
    assert!(answer.contains("\r\nretry-after: 10\r\n"), "{answer}");
    let metrics = String::from_utf8(t.admin().get("/metrics").await.raw.to_vec()).unwrap();
    assert!(
        metrics.contains("smdpp_es9_sessions_refused_total{reason=\"per_address\"} 2"),
        "{metrics}"
    );
    // The download that had authenticated is not affected.
    let fetched = lpa.fetch(authenticated, None).await.unwrap();
    assert!(lpa.load(fetched).await.unwrap().installed);
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
}

/// `POST /admin/reset` means a clean instance for ES9+ too: the sessions of the old world are
/// dropped, so a client address that had its share of anonymous sessions may start new ones
/// at once, and a transactionId of before the reset is unknown (`8.10.1 / 3.9`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reset_drops_the_es9_sessions() {
    let (t, _receiver) = es9_configured(|c| c.es9_sessions_per_address = 2).await;
    let address = t.mock.smdp_address();
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let mut before = Vec::new();
    for _ in 0..2 {
        let answer = initiate_authentication(&mut lpa, &address, &address)
            .await
            .unwrap();
        before.push(answer["transactionId"].as_str().unwrap().to_owned());
    }
    assert!(matches!(
        initiate_authentication(&mut lpa, &address, &address).await,
        Err(LpaError::Http { status: 503, .. })
    ));
    assert_eq!(t.admin().post("/admin/reset", json!({})).await.status, 200);
    initiate_authentication(&mut lpa, &address, &address)
        .await
        .unwrap();
    let refused = lpa
        .call(
            &address,
            "authenticateClient",
            json!({ "transactionId": before[0], "authenticateServerResponse": "AA==" }),
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status_code().unwrap(), "8.10.1 / 3.9");
}
