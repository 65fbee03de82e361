//! The SM-DS with tools users have: `smdpp-mock certs es12-client` issues the TLS client
//! certificate of an SM-DP+ of theirs, and curl registers an event with it, as docs/smds.md
//! shows.

use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// `certs es12-client NAME --oid OID` writes NAME.pem, NAME.key and ci.pem; curl, with them,
/// registers an event at the mock's SM-DS over mutual TLS, the same registration again is
/// refused (`8.9.5 / 3.3`), and an LPA discovers the event. A second certificate keeps ci.pem
/// and refuses to overwrite the first one's files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_smdp_registers_with_an_issued_es12_client_certificate_and_curl() {
    let (t, _receiver) = es9_started("").await;
    let certs = t.dir.path().join("certs");
    let gsma = certs.join("gsma");
    let issue = |name: &str| {
        Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
            .args([
                "certs",
                "es12-client",
                name,
                "--oid",
                "2.999.71",
                "--certs-dir",
            ])
            .arg(&certs)
            .output()
            .unwrap()
    };
    let out = issue("my-smdp.example");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in ["my-smdp.example.pem", "my-smdp.example.key", "ci.pem"] {
        assert!(gsma.join(file).exists(), "{file}");
    }
    let port = t.mock.smds_addr().unwrap().port();
    let register = |id: &str| {
        let out = Command::new("curl")
            .current_dir(&gsma)
            .args(["-sS", "--cacert", "ci.pem", "--cert", "my-smdp.example.pem"])
            .args(["--key", "my-smdp.example.key"])
            .args(["-H", "Content-Type: application/json"])
            .args(["-H", "X-Admin-Protocol: gsma/rsp/v2.2.0"])
            .arg(format!("https://localhost:{port}/gsma/rsp2/es12/registerEvent"))
            .arg("-d")
            .arg(format!(
                r#"{{"header":{{"functionRequesterIdentifier":"2.999.71","functionCallIdentifier":"reg-{id}"}},"eid":"89049032000000000000000000000163","rspServerAddress":"my-smdp.example","eventId":"{id}","forwardingIndicator":true}}"#
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let done = register("MY-EVENT-1");
    assert_eq!(
        done,
        serde_json::json!({"header":{"functionExecutionStatus":{"status":"Executed-Success"}}})
    );
    let again = register("MY-EVENT-1");
    let data = &again["header"]["functionExecutionStatus"]["statusCodeData"];
    assert_eq!(
        (data["subjectCode"].as_str(), data["reasonCode"].as_str()),
        (Some("8.9.5"), Some("3.3"))
    );
    let mut lpa = t.mock.lpa("89049032000000000000000000000163").unwrap();
    let smds = t.mock.smds_address().unwrap();
    let events = lpa.discover(&smds, None).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_id, "MY-EVENT-1");
    assert_eq!(events[0].rsp_server_address, "my-smdp.example");
    // A second caller: ci.pem kept; the first one's files never overwritten.
    let second = issue("other-smdp.example");
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let again = issue("my-smdp.example");
    assert!(!again.status.success());
}
