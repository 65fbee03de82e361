//! The whole consumer flow with a real LPA: lpac (built by `scripts/build-lpac.sh`) with
//! `smdpp-mock euicc` behind its stdio APDU driver, against the mock over real TLS, after an
//! ES2+ order.
//!
//! lpac is found at `$SMDPP_LPAC`, else `target/lpac/lpac/build/src/lpac`. Without it these tests
//! are reported ignored (`[needs lpac]`) with a banner saying how to build it, unless
//! `SMDPP_REQUIRE_LPAC=1` (set by `.ci/run`) makes that a failure. lpac is AGPL/LGPL: it runs as
//! an external program only.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use libtest_mimic::Trial;
use serde_json::{json, Value};
use smdpp_mock::profile::{OnDevice, ProfileState};

use crate::common::receiver::points;
use crate::common::*;
use crate::Needed;

/// One lpac command runs this long at most: a hung lpac fails its test instead of hanging the
/// suite. Generous, since a run takes well under a second on an idle machine.
const LPAC_DEADLINE: Duration = Duration::from_secs(120);

/// Where lpac is, or why it is not there.
fn find_lpac() -> Result<PathBuf, String> {
    let (path, from) = match std::env::var_os("SMDPP_LPAC") {
        Some(path) => (PathBuf::from(path), "SMDPP_LPAC"),
        None => (
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lpac/lpac/build/src/lpac"),
            "the default place",
        ),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!(
            "lpac is not at {} ({from}), so the mock's ES9+ was NOT checked against an outside \
             LPA. Build lpac with `scripts/build-lpac.sh` (needs git, cmake, make, a C \
             compiler, pkg-config, libcjson-dev, libcurl4-openssl-dev), or set SMDPP_LPAC to an \
             lpac binary built with its stdio APDU driver",
            path.display()
        ))
    }
}

/// The lpac tests, ignored without lpac.
pub(crate) fn tests() -> (Needed, Vec<Trial>) {
    let needed = Needed::new("needs lpac", find_lpac(), "SMDPP_REQUIRE_LPAC");
    let trials = vec![
        needed.trial(
            "lpac::lpac_downloads_installs_enables_disables_and_deletes",
            lpac_downloads_installs_enables_disables_and_deletes,
        ),
        needed.trial(
            "lpac::lpac_with_confirmation_codes",
            lpac_with_confirmation_codes,
        ),
        needed.trial(
            "lpac::lpac_with_a_wrong_matching_id_fails_cleanly",
            lpac_with_a_wrong_matching_id_fails_cleanly,
        ),
        needed.trial(
            "lpac::lpac_installs_a_ts48_shaped_package_personalised_for_the_order",
            lpac_installs_a_ts48_shaped_package_personalised_for_the_order,
        ),
        needed.trial(
            "lpac::lpac_installs_a_package_under_profile_protection_keys",
            lpac_installs_a_package_under_profile_protection_keys,
        ),
        needed.trial(
            "lpac::a_load_that_breaks_off_is_cancelled_and_the_operator_told",
            a_load_that_breaks_off_is_cancelled_and_the_operator_told,
        ),
        needed.trial(
            "lpac::the_readme_lpac_commands_work_as_written",
            the_readme_lpac_commands_work_as_written,
        ),
        needed.trial(
            "lpac::lpac_discovers_an_smds_order_at_the_mocks_smds_and_downloads_it",
            lpac_discovers_an_smds_order_at_the_mocks_smds_and_downloads_it,
        ),
    ];
    (needed, trials)
}

/// `smdpp-mock euicc -- lpac ARGS`: lpac's final `lpa` message (its code, message, data).
/// lpac and the eUICC run in a process group of their own, killed whole when the run outlives
/// [`LPAC_DEADLINE`] (or the test ends early).
async fn run_lpac(t: &TestServer, lpac: &Path, args: &[&str]) -> Value {
    run_lpac_on(t, &[], lpac, args).await
}

/// [`run_lpac`] with `card` flags for `smdpp-mock euicc` (`--interrupt-load`).
async fn run_lpac_on(t: &TestServer, card: &[&str], lpac: &Path, args: &[&str]) -> Value {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_smdpp-mock"));
    cmd.arg("euicc")
        .args(card)
        .arg("--certs-dir")
        .arg(t.dir.path().join("certs"))
        .arg("--state")
        .arg(t.dir.path().join("card.json"))
        .arg("--")
        .arg(lpac)
        .args(args)
        .env("no_proxy", "localhost,127.0.0.1")
        .env("NO_PROXY", "localhost,127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let child = cmd.spawn().expect("starting smdpp-mock euicc");
    let mut group = ProcessGroup(child.id());
    let out = match tokio::time::timeout(LPAC_DEADLINE, child.wait_with_output()).await {
        Ok(out) => out.expect("waiting for smdpp-mock euicc"),
        Err(_) => panic!(
            "lpac {args:?} did not finish within {} s: killed",
            LPAC_DEADLINE.as_secs()
        ),
    };
    group.0 = None;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .rfind(|v| v["type"] == "lpa")
        .unwrap_or_else(|| {
            panic!(
                "lpac {args:?} gave no result: {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    last["payload"].clone()
}

/// A process group, killed when dropped while still set: on a timeout or a panic (lpac is the
/// eUICC's child, so killing the eUICC alone would leave it running).
struct ProcessGroup(Option<u32>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pid) = self.0 {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// `lpac profile download`, `notification process`, `profile list`, `profile
/// enable/disable/delete`: the operator's receiver gets points 3 and 4, then the local points,
/// and the mock's profile ends Installed and deleted on the device.
async fn lpac_downloads_installs_enables_disables_and_deletes(lpac: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let chip = run_lpac(&t, &lpac, &["chip", "info"]).await;
    assert_eq!(chip["code"], 0, "{chip}");
    assert_eq!(chip["data"]["eidValue"], "89049032000000000000000000000163");

    let (iccid, code) = released(&t, json!({})).await;
    let download = run_lpac(&t, &lpac, &["profile", "download", "-a", &code]).await;
    assert_eq!(download["code"], 0, "{download}");
    assert_eq!(download["data"]["iccid"], json!(iccid));
    // lpac leaves the installation result on the card until notifications are processed.
    assert_eq!(t.state(&iccid), ProfileState::Downloaded);
    let processed = run_lpac(&t, &lpac, &["notification", "process", "-a", "-r"]).await;
    assert_eq!(processed["code"], 0, "{processed}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);

    let list = run_lpac(&t, &lpac, &["profile", "list"]).await;
    assert_eq!(list["data"][0]["iccid"], json!(iccid), "{list}");
    assert_eq!(list["data"][0]["profileState"], "disabled");

    for (expected, (op, on_device, point)) in (3..).zip([
        ("enable", OnDevice::Enabled, 100),
        ("disable", OnDevice::Disabled, 101),
        ("delete", OnDevice::Deleted, 102),
    ]) {
        let done = run_lpac(&t, &lpac, &["profile", op, &iccid]).await;
        assert_eq!(done["code"], 0, "{op}: {done}");
        let processed = run_lpac(&t, &lpac, &["notification", "process", "-a", "-r"]).await;
        assert_eq!(processed["code"], 0, "{op}: {processed}");
        t.wait_for(&iccid, |p| p.on_device == Some(on_device)).await;
        let got = receiver.wait_for(expected).await;
        assert_eq!(points(&got).last(), Some(&point), "{op}");
    }
    assert_eq!(points(&receiver.wait_for(5).await), [3, 4, 100, 101, 102]);
    assert_eq!(t.state(&iccid), ProfileState::Installed);
    let list = run_lpac(&t, &lpac, &["profile", "list"]).await;
    assert_eq!(list["data"], json!([]), "{list}");
}

/// The push flow (SGP.22 §3.6, §3.1.3 option b): DownloadOrder with the EID, ConfirmOrder
/// with the mock's SM-DS as `smdsAddress`, then lpac's `profile discovery` at that SM-DS (ES11:
/// lpac posts to ES9+'s paths with `smdpAddress` holding the SM-DS address) lists the SM-DP+'s
/// address, `profile download -s <that address> -m <EventID>` installs, and once the
/// installation result is in, the event is gone: a second discovery finds nothing.
async fn lpac_discovers_an_smds_order_at_the_mocks_smds_and_downloads_it(lpac: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let smds = t.mock.smds_address().expect("the SM-DS runs");
    let eid = smdpp_rsp::pki::SAMPLE_EID;
    let (iccid, event_id) = release_standard(&t, Some(eid), json!({ "smdsAddress": smds })).await;
    let found = run_lpac(&t, &lpac, &["profile", "discovery", "-s", &smds]).await;
    assert_eq!(found["code"], 0, "{found}");
    let smdp = t.mock.smdp_address();
    assert_eq!(found["data"], json!([smdp]), "{found}");
    // lpac prints the addresses only; the SM-DS answered the EventID beside it (the journal
    // keeps the answer), and it is the order's MatchingID (§3.6.1.1).
    let es11 = last_call(&t, "AuthenticateClient");
    let answer = serde_json::to_value(&es11).unwrap();
    assert_eq!(answer["protocol"], "ES11", "{answer}");
    assert!(
        answer["response"].to_string().contains(&event_id),
        "{answer}"
    );

    let download = run_lpac(
        &t,
        &lpac,
        &["profile", "download", "-s", &smdp, "-m", &event_id],
    )
    .await;
    assert_eq!(download["code"], 0, "{download}");
    assert_eq!(download["data"]["iccid"], json!(iccid));
    let processed = run_lpac(&t, &lpac, &["notification", "process", "-a", "-r"]).await;
    assert_eq!(processed["code"], 0, "{processed}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
    let again = run_lpac(&t, &lpac, &["profile", "discovery", "-s", &smds]).await;
    assert_eq!(again["code"], 0, "{again}");
    assert_eq!(again["data"], json!([]), "the event is deleted: {again}");
}

/// A Confirmation Code: the right one installs; a wrong one is refused (`8.2.7 / 3.8`), and
/// past the limit the order is in Error with point 2.
async fn lpac_with_confirmation_codes(lpac: PathBuf) {
    let (t, receiver) = es9_started("  limits: { confirmationCodeAttempts: 1 }").await;
    let (good, code) = released(&t, json!({ "confirmationCode": "1234" })).await;
    let download = run_lpac(
        &t,
        &lpac,
        &[
            "profile",
            "download",
            "-a",
            &format!("{code}$$1"),
            "-c",
            "1234",
        ],
    )
    .await;
    assert_eq!(download["code"], 0, "{download}");
    run_lpac(&t, &lpac, &["notification", "process", "-a", "-r"]).await;
    t.wait_for(&good, |p| p.state == ProfileState::Installed)
        .await;

    let (bad, code) = released(&t, json!({ "confirmationCode": "1234" })).await;
    let refused = run_lpac(
        &t,
        &lpac,
        &["profile", "download", "-a", &code, "-c", "0000"],
    )
    .await;
    assert_eq!(refused["code"], -1, "{refused}");
    assert_eq!(t.state(&bad), ProfileState::Released);
    let journal = t.mock.journal();
    let gbpp = journal
        .iter()
        .rev()
        .find(|e| e.function == "GetBoundProfilePackage")
        .unwrap();
    assert_eq!(gbpp.status_code.as_deref(), Some("8.2.7/3.8"));
    let again = run_lpac(
        &t,
        &lpac,
        &["profile", "download", "-a", &code, "-c", "9999"],
    )
    .await;
    assert_eq!(again["code"], -1, "{again}");
    assert_eq!(t.state(&bad), ProfileState::Error);
    let got = receiver.wait_for(3).await;
    let last = got.iter().find(|r| r.body["iccid"] == json!(bad)).unwrap();
    assert_eq!(last.body["notificationPointId"], 2);
}

/// A wrong MatchingID: lpac reports the SM-DP+'s refusal, the mock journals AuthenticateClient
/// refused and the CancelSession lpac sends, and nothing changes.
async fn lpac_with_a_wrong_matching_id_fails_cleanly(lpac: PathBuf) {
    let (t, _receiver) = es9_started("").await;
    released(&t, json!({})).await;
    let before = t.snapshot();
    let code = t.mock.activation_code("NO-SUCH-ORDER");
    let refused = run_lpac(&t, &lpac, &["profile", "download", "-a", &code]).await;
    assert_eq!(refused["code"], -1, "{refused}");
    assert!(
        refused["data"]
            .as_str()
            .unwrap_or_default()
            .contains("refused"),
        "lpac shows the SM-DP+'s message: {refused}"
    );
    let es9: Vec<(&str, Option<&str>, Option<String>)> = t
        .mock
        .journal()
        .iter()
        .filter(|e| !e.function.ends_with("Order"))
        .map(|e| (e.function, e.status, e.status_code.clone()))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    assert_eq!(
        es9,
        [
            ("InitiateAuthentication", Some("Executed-Success"), None),
            (
                "AuthenticateClient",
                Some("Failed"),
                Some("8.2.6/3.8".into())
            ),
            // The procedure stopped with the refusal (§3.1.3 step 3): the session is gone.
            ("CancelSession", Some("Failed"), Some("8.10.1/3.9".into())),
        ]
    );
    assert_eq!(t.snapshot(), before);
}

/// The README's "End to end with lpac" block, after its first example placed and released an
/// order: every lpac run ends with code 0, and the profile ends Installed and enabled. The
/// block's first line builds lpac with `scripts/build-lpac.sh`; here the lpac under test is
/// named instead (the script itself runs in `.ci/run`).
async fn the_readme_lpac_commands_work_as_written(lpac: PathBuf) {
    use crate::common::readme::*;
    let (t, receiver) = es9_started("").await;
    let readme = readme();
    let build_line = "LPAC=$(scripts/build-lpac.sh | tail -n 1)";
    let lpac_block = block_after(&readme, "<!-- readme-lpac-example");
    assert!(lpac_block.starts_with(build_line), "{lpac_block}");
    let script = format!(
        "{}\n{}",
        block_after(&readme, "<!-- readme-curl-example"),
        lpac_block.replacen(build_line, &format!("LPAC='{}'", lpac.display()), 1)
    )
    .replace(
        "localhost:6443",
        &format!("localhost:{}", t.es2_addr().port()),
    );
    let printed = run_script(script, t.dir.path()).await;
    let results: Vec<Value> = printed
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "lpa")
        .collect();
    assert_eq!(results.len(), 6, "one result per lpac run: {printed}");
    for result in &results {
        assert_eq!(result["payload"]["code"], 0, "{printed}");
    }
    let iccid = printed
        .lines()
        .find_map(|l| l.strip_prefix("reserved "))
        .unwrap()
        .to_owned();
    t.wait_for(&iccid, |p| p.on_device == Some(OnDevice::Enabled))
        .await;
    assert_eq!(t.state(&iccid), ProfileState::Installed);
    assert_eq!(points(&receiver.wait_for(3).await), [3, 4, 100]);
}

/// A package shaped as GSMA TS.48 test profiles are (tests/common/package.rs) as the profile
/// type's `profilePackage`: lpac downloads it into our eUICC, which installs it, with the header
/// and EF.ICCID naming the ordered ICCID and every other byte as in the file.
async fn lpac_installs_a_ts48_shaped_package_personalised_for_the_order(lpac: PathBuf) {
    use crate::common::package::{plain, swapped, ts48_shaped};
    let dir = TempDir::new("lpac-ts48");
    let file = ts48_shaped("8949440000001155123");
    std::fs::write(dir.path().join("ts48.der"), &file).unwrap();
    let receiver = crate::common::receiver::Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "").replace(
        "  - id: STANDARD\n",
        "  - id: STANDARD\n    profilePackage: ts48.der\n",
    );
    let t = TestServer::with_yaml_in(dir, &yaml).await;
    let (iccid, code) = released(&t, json!({})).await;
    let download = run_lpac(&t, &lpac, &["profile", "download", "-a", &code]).await;
    assert_eq!(download["code"], 0, "{download}");
    assert_eq!(download["data"]["iccid"], json!(iccid));
    let processed = run_lpac(&t, &lpac, &["notification", "process", "-a", "-r"]).await;
    assert_eq!(processed["code"], 0, "{processed}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
    // The package on the card, from its state file.
    let card: Value =
        serde_json::from_slice(&std::fs::read(t.dir.path().join("card.json")).unwrap()).unwrap();
    let package =
        smdpp_rsp::crypto::base64_decode(card["profiles"][0]["package"].as_str().unwrap()).unwrap();
    assert_eq!(package.len(), file.len());
    let header_at = file
        .windows(10)
        .position(|w| w == plain("8949440000001155123"))
        .unwrap();
    let ef_at = file
        .windows(10)
        .position(|w| w == swapped("8949440000001155123"))
        .unwrap();
    assert_eq!(package[header_at..header_at + 10], plain(&iccid));
    assert_eq!(package[ef_at..ef_at + 10], swapped(&iccid));
    for (i, (a, b)) in file.iter().zip(&package).enumerate() {
        let personalised =
            (header_at..header_at + 10).contains(&i) || (ef_at..ef_at + 10).contains(&i);
        assert!(a == b || personalised, "byte {i} changed");
    }
}

/// `packageProtection: profileProtectionKeys`: the Bound Profile Package carries
/// ReplaceSessionKeys (`A2`, §5.5.4), which lpac hands to the card as its own
/// LoadBoundProfilePackage command (§2.5.5) before the profile elements; the card switches to
/// the Profile Protection Keys and installs.
async fn lpac_installs_a_package_under_profile_protection_keys(lpac: PathBuf) {
    let receiver = crate::common::receiver::Receiver::plain(std::sync::Arc::new(|_| 204)).await;
    let yaml = es9_scenario(&receiver.http_url(), "").replace(
        "    owner: test-mno\n",
        "    owner: test-mno\n    packageProtection: profileProtectionKeys\n",
    );
    let t = TestServer::with_yaml(&yaml).await;
    let (iccid, code) = released(&t, json!({})).await;
    let download = run_lpac(&t, &lpac, &["profile", "download", "-a", &code]).await;
    assert_eq!(download["code"], 0, "{download}");
    let processed = run_lpac(&t, &lpac, &["notification", "process", "-a", "-r"]).await;
    assert_eq!(processed["code"], 0, "{processed}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    // The profile elements were protected with the Profile Protection Keys: the card could
    // read them only after ReplaceSessionKeys.
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}

/// §3.1.3.1 with lpac: the card breaks off loading the package (`--interrupt-load`), lpac
/// cancels the session after GetBoundProfilePackage (lpac 2.3 gives `endUserRejection` for every
/// failure), the SM-DP+ accepts it, the order goes to Error, and the operator gets point 3
/// Failed with that reason's code (`8.8.5 / 3.8`, Table 32b) after point 3's success.
async fn a_load_that_breaks_off_is_cancelled_and_the_operator_told(lpac: PathBuf) {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let download = run_lpac_on(
        &t,
        &["--interrupt-load"],
        &lpac,
        &["profile", "download", "-a", &code],
    )
    .await;
    assert_eq!(download["code"], -1, "{download}");
    t.wait_for(&iccid, |p| p.state == ProfileState::Error).await;
    let got = receiver.wait_for(2).await;
    assert_eq!(points(&got), [3, 3]);
    assert_eq!(
        got[0].body["notificationPointStatus"]["status"],
        "Executed-Success"
    );
    let failed = &got[1].body["notificationPointStatus"];
    assert_eq!(failed["status"], "Failed", "{failed}");
    assert_eq!(failed["statusCodeData"]["subjectCode"], "8.8.5", "{failed}");
    assert_eq!(failed["statusCodeData"]["reasonCode"], "3.8", "{failed}");
    let cancel = last_call(&t, "CancelSession");
    assert_eq!(cancel.status, Some("Executed-Success"));
}
