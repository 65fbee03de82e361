//! Onboarding with a CSR through the command line: an operator's openssl CSR signed by
//! `smdpp-mock certs sign-csr` gives a certificate the running mock accepts.

use std::process::Command;

use serde_json::json;
use smdpp_mock::es2::Function;

use crate::common::*;

/// The vendor onboarding step: the operator makes a key and CSR with openssl, the SM-DP+ signs
/// it with `smdpp-mock certs sign-csr`, and the certificate works for mTLS.
#[tokio::test]
async fn sign_csr_from_openssl_rsa_2048_is_accepted() {
    let t = TestServer::start().await;
    let work = TempDir::new("csr");
    let (key, csr) = (work.path().join("mno.key"), work.path().join("mno.csr"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=test-mno/O=Test MNO",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&csr)
        .output()
        .expect("openssl must be installed to run this test");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );

    let out = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
        .args(["certs", "sign-csr"])
        .arg(&csr)
        .arg("--certs-dir")
        .arg(t.certs())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cert = String::from_utf8(out.stdout).unwrap();
    assert!(
        cert.starts_with("-----BEGIN CERTIFICATE-----"),
        "stdout is only the PEM: {cert}"
    );
    assert!(cert.trim_end().ends_with("-----END CERTIFICATE-----"));

    // openssl agrees the certificate chains to the CA and is not a CA itself.
    let cert_path = work.path().join("mno.pem");
    std::fs::write(&cert_path, &cert).unwrap();
    let verify = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(t.certs().join("ca.pem"))
        .arg(&cert_path)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-text", "-in"])
        .arg(&cert_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("CA:FALSE"), "{text}");
    assert!(text.contains("TLS Web Client Authentication"), "{text}");

    let c = t.client_with(cert.as_bytes(), &std::fs::read(&key).unwrap(), "test-mno");
    c.call(
        Function::DownloadOrder,
        json!({ "profileType": "STANDARD" }),
    )
    .await
    .assert_success();
}

/// `--days` out of range is a clear error, not a panic (which exits 101).
#[test]
fn sign_csr_days_out_of_range_is_a_clear_error() {
    let work = TempDir::new("csr-days");
    let certs = work.path().join("certs");
    smdpp_mock::pki::PkiDir::new(&certs)
        .ensure(&["localhost".into()], &["test-mno"])
        .unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["test-mno".to_string()]).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test-mno");
    let csr = work.path().join("mno.csr");
    std::fs::write(&csr, params.serialize_request(&key).unwrap().pem().unwrap()).unwrap();
    for days in ["0", "36526", "4000000"] {
        let out = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
            .args(["certs", "sign-csr"])
            .arg(&csr)
            .args(["--days", days])
            .arg("--certs-dir")
            .arg(&certs)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{days}: {stderr}");
        assert!(
            stderr.contains("--days must be from 1 to 36525"),
            "{days}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}
