//! The whole consumer flow with a real LPA: lpac (built by `../shared/tools/build-lpac.sh`) with
//! `smdpp-mock euicc` behind its stdio APDU driver, against the mock over real TLS, after an
//! ES2+ order; and the same without lpac through `smdpp-mock device`.
//!
//! lpac is found at `$SMDPP_LPAC`, else `target/lpac/lpac/build/src/lpac`. Without it the lpac
//! tests say how to build it and pass, unless `SMDPP_REQUIRE_LPAC=1` (set by `.ci/run`) makes
//! that a failure. lpac is AGPL/LGPL: it runs as an external program only.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};
use smdpp_mock::profile::{OnDevice, ProfileState};

use crate::common::*;

fn lpac() -> Option<PathBuf> {
    let found = std::env::var_os("SMDPP_LPAC")
        .map(PathBuf::from)
        .or_else(|| {
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lpac/lpac/build/src/lpac"))
        })
        .filter(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("SMDPP_REQUIRE_LPAC").is_none(),
            "SMDPP_REQUIRE_LPAC is set but lpac is missing: build it with ../shared/tools/build-lpac.sh target/lpac, or set SMDPP_LPAC"
        );
        eprintln!(
            "lpac not found: skipped. Build it with `../shared/tools/build-lpac.sh target/lpac` (or set SMDPP_LPAC=/path/to/lpac) to run this test"
        );
    }
    found
}

/// An order released through ES2+: the ICCID and its Activation Code.
async fn released(t: &TestServer, extra: Value) -> (String, String) {
    let (iccid, mid) = release_standard(t, None, extra).await;
    (iccid, t.mock.activation_code(&mid))
}

/// `smdpp-mock euicc -- lpac ARGS`: lpac's final `lpa` message (its code, message, data).
async fn run_lpac(t: &TestServer, lpac: &Path, args: &[&str]) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"));
    cmd.arg("euicc")
        .arg("--certs-dir")
        .arg(t.dir.path().join("certs"))
        .arg("--state")
        .arg(t.dir.path().join("card.json"))
        .arg("--")
        .arg(lpac)
        .args(args)
        .env("no_proxy", "localhost,127.0.0.1")
        .env("NO_PROXY", "localhost,127.0.0.1");
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
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

fn points(received: &[crate::common::receiver::Received]) -> Vec<u64> {
    received
        .iter()
        .map(|r| r.body["notificationPointId"].as_u64().unwrap())
        .collect()
}

/// `lpac profile download`, `notification process`, `profile list`, `profile
/// enable/disable/delete`: the operator's receiver gets points 3 and 4, then the local points,
/// and the mock's profile ends Installed and deleted on the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lpac_downloads_installs_enables_disables_and_deletes() {
    let Some(lpac) = lpac() else { return };
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

/// A Confirmation Code: the right one installs; a wrong one is refused (`8.2.7 / 3.8`), and
/// past the limit the order is in Error with point 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lpac_with_confirmation_codes() {
    let Some(lpac) = lpac() else { return };
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
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lpac_with_a_wrong_matching_id_fails_cleanly() {
    let Some(lpac) = lpac() else { return };
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

/// `smdpp-mock device`: the same flow without lpac, with the card kept in its state file
/// between commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_downloads_enables_disables_and_deletes() {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let device = |args: Vec<String>| {
        let dir = t.dir.path().to_path_buf();
        async move {
            tokio::task::spawn_blocking(move || {
                Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
                    .arg("device")
                    .args(&args)
                    .arg("--certs-dir")
                    .arg(dir.join("certs"))
                    .arg("--eid")
                    .arg(EID1)
                    .output()
                    .unwrap()
            })
            .await
            .unwrap()
        }
    };
    let out = device(vec!["download".into(), "--activation-code".into(), code]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    for (op, on_device) in [
        ("enable", OnDevice::Enabled),
        ("disable", OnDevice::Disabled),
        ("delete", OnDevice::Deleted),
    ] {
        let out = device(vec![op.into(), iccid.clone()]).await;
        assert!(
            out.status.success(),
            "{op}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.wait_for(&iccid, |p| p.on_device == Some(on_device)).await;
    }
    assert_eq!(points(&receiver.wait_for(5).await), [3, 4, 100, 101, 102]);
    let out = device(vec!["list".into()]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["eid"], EID1);
    assert_eq!(listed["profiles"], json!([]));
    // Deleting again: the card refuses, and says why.
    let out = device(vec!["delete".into(), iccid]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("iccidOrAidNotFound"));
}
