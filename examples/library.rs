//! Using smdpp-mock as a library: an operator back-end's eSIM ordering code, tested against an
//! in-process mock SM-DP+ with expectations and a simulated device.
//!
//! Run it with `cargo run --example library`; `cargo test` runs it too (`test = true` in
//! Cargo.toml), so it cannot rot.

use anyhow::{ensure, Context, Result};
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::profile::{DeviceEvent, InstallResult};
use smdpp_mock::MockSmdp;
use smdpp_mock::OperatorClient;

/// "Your" back-end code: order a profile for a device and return its Activation Code
/// (SGP.22 §4.1: `1$<SM-DP+ address>$<MatchingID>`).
async fn order_esim(
    es2: &OperatorClient,
    smdp_address: &str,
    eid: &str,
) -> Result<(String, String)> {
    let order = es2
        .call(
            Function::DownloadOrder,
            json!({ "eid": eid, "profileType": "STANDARD" }),
        )
        .await?;
    ensure!(order.is_success(), "DownloadOrder failed: {}", order.body);
    let iccid = order.body["iccid"]
        .as_str()
        .context("no iccid in the DownloadOrder answer")?
        .to_owned();
    let confirm = es2
        .call(
            Function::ConfirmOrder,
            json!({ "iccid": iccid, "eid": eid, "releaseFlag": true }),
        )
        .await?;
    ensure!(
        confirm.is_success(),
        "ConfirmOrder failed: {}",
        confirm.body
    );
    let matching_id = confirm.body["matchingId"]
        .as_str()
        .context("no matchingId in the ConfirmOrder answer")?;
    Ok((iccid, format!("1${smdp_address}${matching_id}")))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mock = MockSmdp::start().await;
    println!(
        "mock SM-DP+ at {} (admin {})",
        mock.es2_url(),
        mock.admin_url()
    );
    mock.expect_call(Function::DownloadOrder)
        .operator("test-mno")
        .succeeded()
        .times(1);
    mock.expect_call(Function::ConfirmOrder)
        .succeeded()
        .times(1);
    mock.expect_call(Function::CancelOrder).never();

    let es2 = mock.client("test-mno")?;
    let smdp_address = mock.smdp_address();
    let eid = "89049032123451234512345678901235";
    let (iccid, activation_code) = order_esim(&es2, &smdp_address, eid).await?;
    println!("ordered {iccid}; activation code {activation_code}");

    // The subscriber's phone scans the code: download, then install.
    mock.device(&iccid, DeviceEvent::Download)?;
    let profile = mock.device(&iccid, DeviceEvent::InstallResult(InstallResult::Success))?;
    println!("profile {iccid} is {}", profile.state);
    ensure!(profile.state.to_string() == "Installed");

    mock.verify().await;
    println!("expectations met");
    Ok(())
}

#[test]
fn example_runs() {
    main().unwrap();
}
