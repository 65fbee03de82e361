//! The `smdpp-mock` binary as a user runs it: start with defaults, call it, stop it with
//! SIGTERM; the `certs` subcommands; clear errors.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::json;
use smdpp_mock::es2::Function::*;

/// The binary, with ES9+ on a free port (tests run side by side).
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"));
    cmd.env("SMDPP_ES9_LISTEN", "127.0.0.1:0");
    cmd.env("SMDPP_SMDS_LISTEN", "127.0.0.1:0");
    cmd
}

/// Starts `smdpp-mock` in `dir` on a free port and returns it with the port from its banner.
fn spawn_serve(dir: &Path, extra: &[&str]) -> (Child, u16, Duration) {
    let (child, port, _, ready) = spawn_serve_admin(dir, extra);
    (child, port, ready)
}

/// Like [`spawn_serve`], with the admin API's address too.
fn spawn_serve_admin(dir: &Path, extra: &[&str]) -> (Child, u16, String, Duration) {
    let started = Instant::now();
    let mut child = bin()
        .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .args(extra)
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut port = None;
    let mut admin = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("admin API") {
            admin = rest
                .trim()
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap()
                .to_string();
        }
        if let Some(rest) = line.trim().strip_prefix("ES2+ (mutual TLS)") {
            let url = rest.trim();
            let port_text = url
                .trim_start_matches("https://localhost:")
                .split('/')
                .next()
                .unwrap();
            port = Some(port_text.parse().unwrap());
        }
        if line.starts_with("Stop with Ctrl-C") {
            break;
        }
    }
    let port = port.expect("the banner names the ES2+ URL");
    (child, port, admin, started.elapsed())
}

fn terminate(child: &mut Child) -> (bool, String) {
    let ok = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status.success(), stderr)
}

#[tokio::test]
async fn serve_with_defaults_then_sigterm() {
    let dir = TempDir::new("cli");
    let (mut child, port, ready) = spawn_serve(dir.path(), &[]);
    eprintln!("ready after {ready:?} (including PKI generation, debug build)");
    let certs = dir.path().join("certs");
    for file in [
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "test-mno.pem",
        "test-mno.key",
        "other-mno.pem",
        "smdpp-client.pem",
    ] {
        assert!(certs.join(file).exists(), "{file}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "server.key", "test-mno.key", "smdpp-client.key"] {
            let mode = std::fs::metadata(certs.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    // The README's two calls: DownloadOrder, then ConfirmOrder.
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = Es2Client::from_dir(addr, &certs, "test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    let r = c
        .call(ConfirmOrder, json!({ "iccid": iccid, "releaseFlag": true }))
        .await;
    r.assert_success();
    assert!(!r.str("matchingId").is_empty());

    let (ok, stderr) = terminate(&mut child);
    assert!(ok, "clean exit on SIGTERM: {stderr}");
    assert!(stderr.contains("shutdown requested"), "{stderr}");
    assert!(stderr.contains("all connections closed"), "{stderr}");

    // A second start reuses the PKI: same CA.
    let ca = std::fs::read(certs.join("ca.pem")).unwrap();
    let (mut child, _, _) = spawn_serve(dir.path(), &[]);
    terminate(&mut child);
    assert_eq!(std::fs::read(certs.join("ca.pem")).unwrap(), ca);
}

#[test]
fn certs_subcommands() {
    let dir = TempDir::new("cli-certs");
    let out = bin()
        .args(["certs", "init", "--san", "smdp.test.example"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "logs go to stderr");
    let certs = dir.path().join("certs");
    assert!(certs.join("test-mno.pem").exists());

    let server = std::fs::read_to_string(certs.join("server.pem")).unwrap();
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(server.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    let sans = String::from_utf8_lossy(&text.stdout);
    for san in [
        "DNS:localhost",
        "IP Address:127.0.0.1",
        "DNS:smdp.test.example",
    ] {
        assert!(sans.contains(san), "{san} in {sans}");
    }

    let out = bin()
        .args(["certs", "issue-client", "acme-mno"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(certs.join("acme-mno.pem").exists() && certs.join("acme-mno.key").exists());
    let again = bin()
        .args(["certs", "issue-client", "acme-mno"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwritten"));
}

#[test]
fn bad_scenario_is_a_clear_error() {
    let dir = TempDir::new("cli-bad");
    std::fs::write(
        dir.path().join("bad.yaml"),
        "operators:\n  - id: a\n    colour: blue\n",
    )
    .unwrap();
    let out = bin()
        .args([
            "--scenario",
            "bad.yaml",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("colour"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("certs").exists(),
        "nothing is created for a bad scenario"
    );
}

#[tokio::test]
async fn conformance_report_from_a_running_instance() {
    let dir = TempDir::new("cli-conformance");
    let (mut child, port, admin, _) = spawn_serve_admin(dir.path(), &[]);
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = Es2Client::from_dir(addr, &dir.path().join("certs"), "test-mno");
    download_by_type(&c, "STANDARD", None).await;
    let out = bin()
        .args([
            "conformance",
            "report",
            "--admin",
            &admin,
            "--format",
            "junit",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(
        xml.contains("<testsuites") && xml.contains("HTTP-003"),
        "{xml}"
    );
    let text = bin()
        .args(["conformance", "report", "--admin", &admin])
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(
        text.starts_with("Conformance of operator clients:") && text.contains("Not exercised yet"),
        "the default is text for people: {text}"
    );
    let gate = bin()
        .args([
            "conformance",
            "report",
            "--admin",
            &admin,
            "--fail-on-error",
        ])
        .output()
        .unwrap();
    assert!(gate.status.success(), "a clean client passes the gate");
    terminate(&mut child);
}

/// Beyond loopback the admin API is never open: without a token of the user's, one is made,
/// printed in the banner and logged once, and required; a token of the user's is never logged.
#[tokio::test]
async fn the_admin_port_beyond_loopback_requires_a_token_generated_when_none_is_set() {
    let start = |token: Option<&str>| {
        let dir = TempDir::new("warn");
        let mut cmd = bin();
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .args(["--log-format", "json"])
        .env_remove("SMDPP_ADMIN_TOKEN")
        .arg("--certs-dir")
        .arg(dir.path().join("certs"));
        if let Some(token) = token {
            cmd.args(["--admin-token", token]);
        }
        (crate::common::process::start(cmd), dir)
    };
    let (open, dir) = start(None);
    let warning: serde_json::Value = open
        .log_lines()
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .find(|v: &serde_json::Value| v["fields"]["file"].is_string())
        .expect("a warning naming the generated token's file");
    // The file is named, the token itself is not logged.
    let made = std::fs::read_to_string(dir.path().join("certs/admin-token"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(made.len(), 32, "{warning}");
    let log = open.log_lines().join("\n");
    assert!(!log.contains(&made), "the token is in the log: {log}");
    let admin = AdminClient::at(open.admin_loopback());
    assert_eq!(admin.get("/admin/journal").await.status, 401);
    let bearer = format!("Bearer {made}");
    let journal = admin
        .send_with(
            hyper::Method::GET,
            "/admin/journal",
            None,
            &[("authorization", &bearer)],
        )
        .await;
    assert_eq!(journal.status, 200, "{:?}", journal.raw);
    assert_eq!(admin.get("/health").await.status, 200);
    // Kept for the tools that share the certificates directory, which find it there.
    let file = dir.path().join("certs/admin-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), made);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let report = bin()
        .args(["conformance", "report", "--admin"])
        .arg(open.admin_loopback().to_string())
        .arg("--certs-dir")
        .arg(dir.path().join("certs"))
        .env_remove("SMDPP_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert!(
        report.status.success(),
        "{}",
        String::from_utf8_lossy(&report.stderr)
    );

    let (guarded, _dir) = start(Some("t0ken"));
    let log = guarded.log_lines().join("\n");
    assert!(!log.contains("generated"), "{log}");
    assert!(
        !log.contains("t0ken"),
        "the token must not be logged: {log}"
    );
    let admin = AdminClient::at(guarded.admin_loopback());
    assert_eq!(admin.get("/admin/journal").await.status, 401);
}

/// `certs init` makes the GSMA-style PKI with SGP.26's file names; `certs euicc` issues an
/// eUICC in the EUM's range only; `device download` downloads a released order over ES9+ with the
/// Activation Code the platform API gives, and the order is Installed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certs_euicc_and_lpa_download_from_the_command_line() {
    let dir = TempDir::new("cli-lpa");
    let (mut child, port, admin, _) = spawn_serve_admin(dir.path(), &[]);
    let gsma = dir.path().join("certs/gsma");
    for file in [
        "CERT_CI_ECDSA_NIST.der",
        "CERT_EUM_ECDSA_NIST.der",
        "CERT_EUICC_ECDSA_NIST.der",
        "SK_EUICC_ECDSA_NIST.pem",
        "CERT_S_SM_DPauth_ECDSA_NIST.der",
        "SK_S_SM_DPauth_ECDSA_NIST.pem",
        "CERT_S_SM_DPpb_ECDSA_NIST.der",
        "SK_S_SM_DPpb_ECDSA_NIST.pem",
        "CERT_S_SM_DP_TLS_NIST.der",
        "SK_S_SM_DP_TLS_NIST.pem",
    ] {
        assert!(gsma.join(file).exists(), "{file}");
    }
    let issued = bin()
        .args(["certs", "euicc", "--eid", EID1])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    assert!(gsma
        .join(format!("euicc-{EID1}/CERT_EUICC_ECDSA_NIST.der"))
        .exists());
    let outside = bin()
        .args([
            "certs",
            "euicc",
            "--eid",
            "89049033000000000000000000000001",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!outside.status.success());
    assert!(String::from_utf8_lossy(&outside.stderr).contains("89049032"));

    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let c = Es2Client::from_dir(addr, &dir.path().join("certs"), "test-mno");
    let iccid = download_by_type(&c, "STANDARD", None).await;
    confirm(&c, &iccid, json!({ "releaseFlag": true })).await;
    let profile = c.get(&format!("/profiles/{iccid}")).await;
    let code = profile.body["activationCode"].as_str().unwrap().to_owned();
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        let code = code.clone();
        move || {
            bin()
                .args([
                    "device",
                    "download",
                    "--activation-code",
                    &code,
                    "--eid",
                    EID1,
                ])
                .current_dir(dir)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with(&format!("installed {iccid} on eUICC {EID1}")),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view = AdminClient::at(admin.parse().unwrap())
        .get(&format!("/admin/profiles/{iccid}"))
        .await
        .body;
    assert_eq!(view["state"], "Installed", "{view}");
    // The same code again: the order is done.
    let again = bin()
        .args(["device", "download", "--fresh", "--activation-code", &code])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("authenticateClient: Failed"));
    terminate(&mut child);
}

/// `smdpp-mock euicc` keeps its card in a state file: saved whole after every change, before
/// the answer goes out (here SetDefaultDpAddress, while the process still runs); a second
/// process on the same card is refused with a clear message; a damaged or hostile state file
/// is refused with the reason, never a panic.
#[test]
fn the_card_state_is_locked_saved_after_each_change_and_checked() {
    let dir = TempDir::new("cli-card-state");
    let init = bin()
        .args(["certs", "init"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let card = |extra: &[&str]| {
        let mut cmd = bin();
        cmd.args(["euicc", "--state", "card.json"])
            .args(extra)
            .current_dir(dir.path());
        cmd
    };
    let mut first = card(&[])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_card = first.stdin.take().unwrap();
    let mut from_card = BufReader::new(first.stdout.take().unwrap());
    let mut ask = |func: &str, param: &str| {
        use std::io::Write;
        let request = json!({ "type": "apdu", "payload": { "func": func, "param": param } });
        writeln!(to_card, "{request}").unwrap();
        to_card.flush().unwrap();
        let mut line = String::new();
        from_card.read_line(&mut line).unwrap();
        serde_json::from_str::<serde_json::Value>(&line).unwrap()["payload"].clone()
    };
    let channel = ask("logic_channel_open", "A0000005591010FFFFFFFF8900000100")["ecode"]
        .as_i64()
        .unwrap();
    assert!((1..4).contains(&channel), "{channel}");
    // STORE DATA, one block: SetDefaultDpAddress (BF3F { 80 "smdp.example" }).
    let command = "BF3F0E800C736D64702E6578616D706C65";
    let apdu = format!(
        "{:02X}E29100{:02X}{command}",
        0x80 + channel,
        command.len() / 2
    );
    let answer = ask("transmit", &apdu);
    assert_eq!(answer["ecode"], 0, "{answer}");
    let saved = std::fs::read_to_string(dir.path().join("card.json")).unwrap();
    assert!(saved.contains("smdp.example"), "saved at once: {saved}");

    let second = card(&["--", "true"]).output().unwrap();
    assert!(!second.status.success());
    let message = String::from_utf8_lossy(&second.stderr);
    assert!(message.contains("card.json.lock is locked"), "{message}");

    drop(to_card);
    assert!(first.wait().unwrap().success());

    // Damaged: a sequence counter at its end, and more profiles than a card holds.
    let state: serde_json::Value = serde_json::from_str(&saved).unwrap();
    for (field, value, reason) in [
        ("nextSeq", json!(u64::MAX), "nextSeq"),
        (
            "profiles",
            json!(vec![
                json!({ "iccid": "8944500400000000024", "aid": "", "enabled": false, "metadata": "", "package": "" });
                40
            ]),
            "40 profiles",
        ),
    ] {
        let mut hostile = state.clone();
        hostile[field] = value;
        std::fs::write(dir.path().join("card.json"), hostile.to_string()).unwrap();
        let out = card(&["--", "true"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{field}: {stderr}");
        assert!(stderr.contains(reason), "{field}: {stderr}");
    }
}
