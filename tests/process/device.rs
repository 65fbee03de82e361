//! `smdpp-mock device`: the consumer flow with the library's LPA and software eUICC run as a
//! command, the card kept in its state file between commands. (The same flow with lpac is in
//! tests/external/lpac.rs.)

use std::process::Command;

use serde_json::{json, Value};
use smdpp_mock::profile::{OnDevice, ProfileState};

use crate::common::receiver::points;
use crate::common::*;

/// `smdpp-mock device`: the same flow without lpac, with the card kept in its state file
/// between commands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_downloads_enables_disables_and_deletes() {
    let (t, receiver) = es9_started("").await;
    let (iccid, code) = released(&t, json!({})).await;
    let out = device(
        &t,
        vec!["download".into(), "--activation-code".into(), code],
    )
    .await;
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
        let out = device(&t, vec![op.into(), iccid.clone()]).await;
        assert!(
            out.status.success(),
            "{op}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        t.wait_for(&iccid, |p| p.on_device == Some(on_device)).await;
    }
    assert_eq!(points(&receiver.wait_for(5).await), [3, 4, 100, 101, 102]);
    let out = device(&t, vec!["list".into()]).await;
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed["eid"], EID1);
    assert_eq!(listed["profiles"], json!([]));
    // Deleting again: the card refuses, and says why.
    let out = device(&t, vec!["delete".into(), iccid]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("iccidOrAidNotFound"));
}

/// `smdpp-mock device download --binding asn1`: the command's LPA speaks ES9+ in its ASN.1
/// binding (SGP.22 §6.6); the order is installed and the journal shows the calls on
/// `/gsma/rsp2/asn1` (their requests kept as DER).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_downloads_over_the_asn1_binding() {
    let (t, receiver) = es9_started("").await;
    downloads_and_installs(&t, &receiver, &["--binding", "asn1"]).await;
    let calls: Vec<_> = t
        .mock
        .journal()
        .into_iter()
        .filter(|e| e.protocol == smdpp_mock::Protocol::Es9)
        .collect();
    let functions: Vec<&str> = calls.iter().map(|e| e.function).collect();
    assert_eq!(
        functions,
        [
            "InitiateAuthentication",
            "AuthenticateClient",
            "GetBoundProfilePackage",
            "HandleNotification"
        ]
    );
    for call in &calls {
        let request = call.request.json().unwrap_or(Value::Null);
        assert_eq!(
            request["binding"],
            json!("ASN.1 (SGP.22 §6.6)"),
            "{}: not over the ASN.1 binding",
            call.function
        );
    }
}

/// `smdpp-mock device download --curves brainpool`: the command's card has only a
/// brainpoolP256r1 chain (issued by the mock's brainpool EUM), and the order is installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_can_be_a_brainpool_card() {
    let (t, receiver) = es9_started("").await;
    downloads_and_installs(&t, &receiver, &["--curves", "brainpool"]).await;
}

/// Releases an order, runs `smdpp-mock device download` for it with `options` (and the card of
/// [`EID1`]), and checks the order is Installed and the operator got points 3 and 4.
async fn downloads_and_installs(
    t: &TestServer,
    receiver: &crate::common::receiver::Receiver,
    options: &[&str],
) {
    let (iccid, code) = released(t, json!({})).await;
    let mut args = vec!["download".to_owned(), "--activation-code".to_owned(), code];
    args.extend(options.iter().map(|o| o.to_string()));
    let out = device(t, args).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.wait_for(&iccid, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(2).await), [3, 4]);
}

/// Runs `smdpp-mock device ARGS` on the card of [`EID1`] with `t`'s certificates.
async fn device(t: &TestServer, args: Vec<String>) -> std::process::Output {
    let dir = t.dir.path().to_path_buf();
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

/// `smdpp-mock device discover`: Event Retrieval at the mock's SM-DS (ES11), then the event's
/// download from the SM-DP+ it names; `device download` without an Activation Code does the
/// same at the card's root SM-DS (`--root-ds`). The events are gone once installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_command_discovers_and_downloads_smds_events() {
    let (t, receiver) = es9_started("").await;
    let smds = t.mock.smds_address().unwrap();
    let (first, event_id) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;
    let listed = device(
        &t,
        vec![
            "discover".into(),
            "--smds".into(),
            smds.clone(),
            "--no-download".into(),
        ],
    )
    .await;
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let events: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(
        events,
        json!([{ "eventId": event_id, "rspServerAddress": t.mock.smdp_address() }])
    );
    let out = device(&t, vec!["discover".into(), "--smds".into(), smds.clone()]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("event {event_id} at ")), "{text}");
    assert!(text.contains(&format!("installed {first}")), "{text}");
    t.wait_for(&first, |p| p.state == ProfileState::Installed)
        .await;

    // Without an Activation Code: the card's root SM-DS.
    let (second, _) = release_standard(&t, Some(EID1), json!({ "smdsAddress": smds })).await;
    let out = device(
        &t,
        vec!["download".into(), "--root-ds".into(), smds.clone()],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    t.wait_for(&second, |p| p.state == ProfileState::Installed)
        .await;
    assert_eq!(points(&receiver.wait_for(4).await), [3, 4, 3, 4]);
    // Nothing left: the command says so and fails.
    let out = device(&t, vec!["discover".into(), "--smds".into(), smds]).await;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("holds no event"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
