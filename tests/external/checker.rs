//! The mock's ES9+ against a second implementation that shares no code with the crate:
//! `tests/checker/es9_checker.py`, an eUICC + LPA written from SGP.22 in Python (asn1tools
//! compiling Annex H and the TCA profile package module, pyca `cryptography` for the crypto).
//! It downloads an order placed through ES2+, checks every certificate chain, signature, the key
//! agreement, SCP03t and the package's three ICCIDs, then installs, cancels or fails as told;
//! each test then checks what the operator was told and the profile's state.
//!
//! Needs `python3` with `cryptography` and `asn1tools` (`python3 -m pip install cryptography
//! asn1tools`). Without them these tests are reported ignored (`[needs python3 asn1tools]`),
//! unless `SMDPP_REQUIRE_CHECKER=1` (set by `.ci/run`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use libtest_mimic::Trial;
use serde_json::{json, Value};
use smdpp_mock::profile::ProfileState;

use crate::common::receiver::{points, Received, Receiver};
use crate::common::*;
use crate::{find_python, Needed};

/// An EID inside the mock EUM's name constraint (`89049032…`); the checker issues its own
/// eUICC certificate for it with the EUM's key.
const EID: &str = "89049032123451234512345678901235";

fn checker_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/checker/es9_checker.py")
}

/// The checker tests, ignored without Python's `cryptography` and `asn1tools`.
pub(crate) fn tests() -> (Needed, Vec<Trial>) {
    let needed = Needed::new(
        "needs python3 asn1tools",
        find_python(
            "cryptography asn1tools",
            "the mock's ES9+ against the independent Python eUICC",
        ),
        "SMDPP_REQUIRE_CHECKER",
    );
    let trials = vec![
        needed.trial(
            "checker::downloads_and_installs_the_generated_package",
            downloads_and_installs_the_generated_package,
        ),
        needed.trial(
            "checker::installs_a_ts48_shaped_package_with_a_confirmation_code",
            installs_a_ts48_shaped_package_with_a_confirmation_code,
        ),
        needed.trial(
            "checker::downloads_and_installs_over_the_asn1_binding",
            downloads_and_installs_over_the_asn1_binding,
        ),
        needed.trial(
            "checker::a_cancel_over_the_asn1_binding_reaches_the_operator",
            a_cancel_over_the_asn1_binding_reaches_the_operator,
        ),
        needed.trial(
            "checker::a_cancel_after_a_failed_load_reaches_the_operator",
            a_cancel_after_a_failed_load_reaches_the_operator,
        ),
        needed.trial(
            "checker::an_installation_error_reaches_the_operator",
            an_installation_error_reaches_the_operator,
        ),
        needed.trial(
            "checker::a_retry_after_a_lost_package_gets_the_same_package",
            a_retry_after_a_lost_package_gets_the_same_package,
        ),
        needed.trial(
            "checker::a_retry_after_a_broken_load_is_bound_anew_under_profile_protection_keys",
            a_retry_after_a_broken_load_is_bound_anew_under_profile_protection_keys,
        ),
        needed.trial(
            "checker::the_generated_package_decodes_with_the_tca_module",
            the_generated_package_decodes_with_the_tca_module,
        ),
        needed.trial(
            "checker::three_byte_tags_read_and_write_as_asn1tools_codes_them",
            three_byte_tags_read_and_write_as_asn1tools_codes_them,
        ),
        needed.trial(
            "checker::the_smds_against_an_independent_smdp_and_lpa",
            the_smds_against_an_independent_smdp_and_lpa,
        ),
    ];
    (needed, trials)
}

/// Runs the checker against `t` for `activation_code` with `extra` arguments; panics with its
/// output unless every check passed. Its last line, the JSON summary.
async fn run_checker(
    python: &Path,
    t: &TestServer,
    activation_code: &str,
    extra: &[&str],
) -> Value {
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(checker_script())
        .arg("--gsma-dir")
        .arg(t.dir.path().join("certs/gsma"))
        .args(["--eid", EID, "--activation-code", activation_code])
        .args(extra)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("the checker finished within 120 s")
        .expect("running the checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the checker failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no summary from the checker ({e}):\n{stdout}"))
}

fn status(received: &Received) -> &Value {
    &received.body["notificationPointStatus"]
}

/// The generated package: every check passes, the installation result lands, the order is
/// Installed and the operator got point 3 and point 4 success for this EID.
async fn downloads_and_installs_the_generated_package(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let summary = run_checker(&python, &t, &code, &["--expect-iccid", &iccid]).await;
    assert_eq!(summary["iccid"], json!(iccid));
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 4]);
    for point in &got {
        assert_eq!(
            status(point)["status"],
            "Executed-Success",
            "{}",
            point.body
        );
        assert_eq!(point.body["eid"], EID);
        assert_eq!(point.body["iccid"], json!(iccid));
    }
}

/// The same download over the ASN.1 binding (§6.6, issue 30): asn1tools encodes every
/// RemoteProfileProvisioningRequest from Annex H and decodes every answer with its response
/// type; the order is Installed and the operator gets points 3 and 4 as over JSON.
async fn downloads_and_installs_over_the_asn1_binding(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let summary = run_checker(
        &python,
        &t,
        &code,
        &["--expect-iccid", &iccid, "--binding", "asn1"],
    )
    .await;
    assert_eq!(summary["iccid"], json!(iccid));
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 4]);
    let journal = t.mock.journal();
    let asn1 = journal
        .iter()
        .filter(|e| e.request.as_str().contains("ASN.1 (SGP.22"))
        .map(|e| e.function)
        .collect::<Vec<_>>();
    assert_eq!(
        asn1,
        [
            "InitiateAuthentication",
            "AuthenticateClient",
            "GetBoundProfilePackage",
            "HandleNotification"
        ]
    );
}

/// CancelSession over the ASN.1 binding, as asn1tools encodes CancelSessionRequestEs9: the
/// failed load ends the order as over JSON.
async fn a_cancel_over_the_asn1_binding_reaches_the_operator(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    run_checker(
        &python,
        &t,
        &code,
        &["--outcome", "cancelled:5", "--binding", "asn1"],
    )
    .await;
    t.wait_for(&iccid, |p| p.state == ProfileState::Error).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 3]);
    assert_eq!(status(&got[1])["status"], "Failed");
}

/// A package with the published TS.48 structure (ProfileHeader with the ICCID in plain BCD, MF
/// with EF.ICCID swapped) and a Confirmation Code: the checker finds the ordered ICCID in the
/// metadata, the header and EF.ICCID (the mock personalised both) and sends the hashed code.
async fn installs_a_ts48_shaped_package_with_a_confirmation_code(python: PathBuf) {
    let dir = TempDir::new("checker-ts48");
    std::fs::write(
        dir.path().join("ts48.der"),
        package::ts48_shaped("8949440000001155123"),
    )
    .unwrap();
    let receiver = Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "").replace(
        "  - id: STANDARD\n",
        "  - id: STANDARD\n    profilePackage: ts48.der\n",
    );
    let t = TestServer::with_yaml_in(dir, &yaml).await;
    let (iccid, code) = released(&t, json!({ "confirmationCode": "4711" })).await;
    let summary = run_checker(
        &python,
        &t,
        &code,
        &["--expect-iccid", &iccid, "--confirmation-code", "4711"],
    )
    .await;
    assert_eq!(summary["iccid"], json!(iccid));
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}

/// §3.1.3.1: after GetBoundProfilePackage the load fails and the LPA cancels with
/// `loadBppExecutionError(5)`: the order goes to Error (§3.1.6) and the operator gets point 3
/// Failed with `8.2.10 / 4.2` (§5.3.5, Table 32b) after point 3's success.
async fn a_cancel_after_a_failed_load_reaches_the_operator(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    run_checker(&python, &t, &code, &["--outcome", "cancelled:5"]).await;
    t.wait_for(&iccid, |p| p.state == ProfileState::Error).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 3]);
    assert_eq!(status(&got[0])["status"], "Executed-Success");
    let failed = status(&got[1]);
    assert_eq!(failed["status"], "Failed", "{failed}");
    assert_eq!(
        failed["statusCodeData"]["subjectCode"], "8.2.10",
        "{failed}"
    );
    assert_eq!(failed["statusCodeData"]["reasonCode"], "4.2", "{failed}");
}

/// §3.1.3.3 step 8: an installation result with `errorResult` (loadProfileElements(5),
/// installFailedDueToDataMismatch(13)) puts the order in Error and reaches the operator as point
/// 4 Failed naming the command and the reason.
async fn an_installation_error_reaches_the_operator(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    run_checker(&python, &t, &code, &["--outcome", "failed:5:13"]).await;
    t.wait_for(&iccid, |p| p.state == ProfileState::Error).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 4]);
    let failed = status(&got[1]);
    assert_eq!(failed["status"], "Failed", "{failed}");
    assert_eq!(
        failed["statusCodeData"]["subjectCode"], "8.2.10",
        "{failed}"
    );
    let message = failed["statusCodeData"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        message.contains("bppCommandId 5") && message.contains("installFailedDueToDataMismatch"),
        "{failed}"
    );
}

/// Download retry, checked from outside: the first package is taken as lost (its one-time key
/// unused, kept); the retry's smdpSigned2 must name that key as `bppEuiccOtpk` (§3.1.3 step 5),
/// and the eUICC answering with it must get the same package back (§5.6.2), which installs.
async fn a_retry_after_a_lost_package_gets_the_same_package(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let summary = run_checker(&python, &t, &code, &["--retry", "lost"]).await;
    assert_eq!(summary["keptKeyUsed"], true, "{summary}");
    assert_eq!(summary["protectedPackageUnchanged"], true, "{summary}");
    assert_eq!(summary["withProfileProtectionKeys"], false, "{summary}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(t.profile(&iccid).download_attempts, 2);
    assert_eq!(points(&receiver.wait_for(3).await), [3, 3, 4]);
}

/// Profile Protection Keys (`packageProtection: profileProtectionKeys`), checked from outside:
/// the checker decrypts ReplaceSessionKeys (`A2`, §5.5.4) with the session keys and the package
/// with the keys it carries, the counter back at 1 (§2.5.3). After a load that broke off (its
/// key used), the retry is bound anew (new otPK.DP.ECKA) while the protected package is the same.
async fn a_retry_after_a_broken_load_is_bound_anew_under_profile_protection_keys(python: PathBuf) {
    let receiver = Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "").replace(
        "    owner: test-mno\n",
        "    owner: test-mno\n    packageProtection: profileProtectionKeys\n",
    );
    let t = TestServer::with_yaml(&yaml).await;
    let (iccid, code) = released(&t, json!({})).await;
    let summary = run_checker(&python, &t, &code, &["--retry", "interrupted"]).await;
    assert_eq!(summary["withProfileProtectionKeys"], true, "{summary}");
    assert_eq!(summary["keptKeyUsed"], false, "{summary}");
    assert_eq!(summary["protectedPackageUnchanged"], true, "{summary}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(3).await), [3, 3, 4]);
}

/// BER-TLV tags of three bytes (tag numbers 128 to 16383, `BF 81 00` to `BF FF 7F`), as asn1tools
/// codes them in DER: the crate's reader finds each tag, length and value, its writer gives the
/// same bytes back. SGP.22's own tags stop at two bytes, so only an outside encoder pins these.
async fn three_byte_tags_read_and_write_as_asn1tools_codes_them(python: PathBuf) {
    use smdpp_rsp::tlv;
    const MODULE: &str = "T DEFINITIONS AUTOMATIC TAGS ::= BEGIN \
        A ::= [128] SEQUENCE { x INTEGER } \
        B ::= [200] OCTET STRING \
        C ::= [PRIVATE 16383] SEQUENCE { y [APPLICATION 300] OCTET STRING } END";
    let script = format!(
        "import asn1tools\n\
         s = asn1tools.compile_string('{MODULE}', 'der')\n\
         print(s.encode('A', {{'x': 1}}).hex())\n\
         print(s.encode('B', bytes(range(130))).hex())\n\
         print(s.encode('C', {{'y': b'ab'}}).hex())\n"
    );
    let out = Command::new(&python)
        .args(["-c", &script])
        .output()
        .expect("running python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Vec<u8>> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect();
    // [128] SEQUENCE: context class, constructed: BF 81 00.
    let a = tlv::read_exact(&lines[0]).unwrap();
    assert_eq!(a.tag, 0xBF8100);
    assert_eq!(a.required(0x80).unwrap().uint().unwrap(), 1);
    assert_eq!(
        tlv::constructed(0xBF8100, &[&tlv::encode(0x80, &[1])]),
        lines[0]
    );
    // [200] OCTET STRING, primitive, with a long-form length: 9F 81 48 81 82 ….
    let b = tlv::read_exact(&lines[1]).unwrap();
    assert_eq!(b.tag, 0x9F8148);
    assert_eq!(b.value, (0..130).collect::<Vec<u8>>());
    assert_eq!(tlv::encode(0x9F8148, b.value), lines[1]);
    // [PRIVATE 16383] holding [APPLICATION 300]: FF FF 7F { 5F 82 2C 02 61 62 }.
    let c = tlv::read_exact(&lines[2]).unwrap();
    assert_eq!(c.tag, 0xFFFF7F);
    let y = c.required(0x5F822C).unwrap();
    assert_eq!(y.value, b"ab");
    assert_eq!(
        tlv::constructed(0xFFFF7F, &[&tlv::encode(0x5F822C, b"ab")]),
        lines[2]
    );
}

/// The package the mock generates, as the library's eUICC installed it, decoded by asn1tools
/// with the TCA module (`tests/vectors/profile_package.py`): header first and end last, the MF
/// with EF.ICCID (swapped) and EF.DIR, PIN and PUK codes, a USIM whose EF.IMSI is the
/// documented rule's, Milenage with the rule's K and OPc computed in Python; and the platform
/// API shows the owning operator the same IMSI, K and OPc. Once with the default rule, once
/// with a profile type's own (`subscription:` with a 3-digit MNC).
async fn the_generated_package_decodes_with_the_tca_module(python: PathBuf) {
    let receiver = Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let own = "    subscription: { mcc: \"999\", mnc: \"123\", op: \"00112233445566778899AABBCCDDEEFF\", keySeed: lab-7 }\n";
    for (subscription, mcc, mnc, op, seed) in [
        (
            "",
            "001",
            "01",
            "CDC202D5123E20F62B6D676AC72CB318",
            "smdpp-mock",
        ),
        (
            own,
            "999",
            "123",
            "00112233445566778899AABBCCDDEEFF",
            "lab-7",
        ),
    ] {
        let yaml = es9_scenario(&receiver.http_url(), "").replace(
            "    owner: test-mno\n",
            &format!("    owner: test-mno\n{subscription}"),
        );
        let t = TestServer::with_yaml(&yaml).await;
        let (iccid, code) = released(&t, json!({})).await;
        let mut lpa = t.mock.lpa(EID).unwrap();
        assert!(lpa.download(&code, None).await.unwrap().installed);
        let file = t.dir.path().join("installed.der");
        std::fs::write(&file, &lpa.euicc().profiles()[0].package).unwrap();
        let out = Command::new(&python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/profile_package.py"))
            .arg(&file)
            .args([iccid.as_str(), mcc, mnc, op, seed])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "the package does not check out:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("{name} in {stdout}"))
                .to_owned()
        };
        let view = t
            .client("test-mno")
            .get(&format!("/profiles/{iccid}"))
            .await;
        assert_eq!(view.status, 200, "{}", view.body);
        let shown = &view.body["subscription"];
        assert_eq!(shown["imsi"], json!(printed("IMSI")));
        assert_eq!(shown["k"], json!(printed("K")));
        assert_eq!(shown["opc"], json!(printed("OPC")));
        assert!(printed("IMSI").starts_with(&format!("{mcc}{mnc}")));
    }
}

/// The SM-DS against `tests/checker/smds_checker.py`, an ES12 caller and an eUICC + LPA written
/// from SGP.22 in Python: it registers, finds a duplicate refused, retrieves the EID's events in
/// the order registered (the operator's first, then its own) with CERT.DSauth and
/// serverSignature1 checked, one by its EventID and an unknown one refused, deletes its own,
/// then downloads the operator's event with its EventID and finds it deleted afterwards.
async fn the_smds_against_an_independent_smdp_and_lpa(python: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let (iccid, event_id) = release_standard(&t, Some(EID), json!({ "smdsAddress": smds })).await;
    // The checker's TLS client certificate, of the mock's CI, naming its own OID.
    let pki = t.mock.gsma_pki();
    let issued = pki
        .issue_es12_caller("smds-checker", &[2, 999, 55])
        .unwrap();
    let ci = std::fs::read(pki.dir().join(smdpp_rsp::pki::CI_CERT)).unwrap();
    let pem = |der: &[u8]| {
        let text = smdpp_rsp::crypto::base64_encode(der);
        let lines: Vec<&str> = text
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            lines.join("\n")
        )
    };
    let cert = t.dir.path().join("checker-caller.pem");
    let key = t.dir.path().join("checker-caller.key");
    std::fs::write(&cert, pem(&issued.der) + &pem(&ci)).unwrap();
    std::fs::write(&key, issued.key.to_pem()).unwrap();
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/checker/smds_checker.py"))
        .arg("--gsma-dir")
        .arg(t.dir.path().join("certs/gsma"))
        .args(["--eid", EID, "--smds", &smds, "--event-id", &event_id])
        .args(["--smdp", &t.mock.smdp_address()])
        .arg("--caller-cert")
        .arg(&cert)
        .arg("--caller-key")
        .arg(&key)
        .kill_on_drop(true);
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), cmd.output())
        .await
        .expect("the checker finished within 120 s")
        .expect("running the checker");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the SM-DS checker failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("no summary from the checker ({e}):\n{stdout}"));
    assert_eq!(summary["iccid"], json!(iccid));
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}
