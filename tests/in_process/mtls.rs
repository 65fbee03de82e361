//! Mutual TLS: who may connect, and how a certificate maps to an operator.

use std::process::Command;

use crate::common::*;
use serde_json::json;
use smdpp_mock::es2::Function::*;
use smdpp_mock::pki::{CertificateAuthority, LeafSpec, Usage};
use time::{Duration, OffsetDateTime};

fn order() -> serde_json::Value {
    json!({ "profileType": "STANDARD" })
}

async fn assert_refused(client: &Es2Client, what: &str) {
    let path = "/gsma/rsp2/es2plus/downloadOrder";
    let result = client
        .request(
            hyper::Method::POST,
            path,
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.5.0"),
            ],
            b"{}".to_vec(),
        )
        .await;
    // Over TLS 1.3 the client finishes its side of the handshake before the server's alert
    // arrives, so the refusal may surface on the first read rather than in `connect`.
    assert!(result.is_err(), "{what} was let in: {result:?}");
}

#[tokio::test]
async fn handshake_refusals() {
    let t = TestServer::start().await;
    let before = t.snapshot();

    assert_refused(&t.anonymous_client(), "a client without certificate").await;

    let stranger = CertificateAuthority::generate("another CA").unwrap();
    let foreign = stranger
        .issue(&LeafSpec::new("test-mno", Usage::Client))
        .unwrap();
    assert_refused(
        &t.client_for(&foreign, "test-mno"),
        "a certificate from another CA",
    )
    .await;

    let ca = t.ca();
    let mut expired = LeafSpec::new("test-mno", Usage::Client);
    expired.not_before = OffsetDateTime::now_utc() - Duration::days(30);
    expired.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    let expired = ca.issue(&expired).unwrap();
    assert_refused(
        &t.client_for(&expired, "test-mno"),
        "an expired certificate",
    )
    .await;

    let server_cert = std::fs::read(t.certs().join("server.pem")).unwrap();
    let server_key = std::fs::read(t.certs().join("server.key")).unwrap();
    assert_refused(
        &t.client_with(&server_cert, &server_key, "test-mno"),
        "a certificate without clientAuth usage",
    )
    .await;

    assert_eq!(t.snapshot(), before);

    // The same CA's valid certificate is let in.
    t.client("test-mno")
        .call(DownloadOrder, order())
        .await
        .assert_success();
}

/// Waits for the handshake failure counter of `reason` to reach `n`.
async fn assert_counted(t: &TestServer, reason: &str, n: u64) {
    t.wait_metric(
        &format!("smdpp_tls_handshake_failures_total{{reason=\"{reason}\"}}"),
        n,
    )
    .await;
}

#[tokio::test]
async fn every_refusal_reason_is_counted() {
    let t = TestServer::start().await;
    let ca = t.ca();
    let before = t.snapshot();

    assert_refused(&t.anonymous_client(), "no certificate").await;
    assert_counted(&t, "no_certificate", 1).await;

    let mut expired = LeafSpec::new("test-mno", Usage::Client);
    expired.not_before = OffsetDateTime::now_utc() - Duration::days(30);
    expired.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    assert_refused(
        &t.client_for(&ca.issue(&expired).unwrap(), "test-mno"),
        "expired",
    )
    .await;
    assert_counted(&t, "expired", 1).await;

    let mut early = LeafSpec::new("test-mno", Usage::Client);
    early.not_before = OffsetDateTime::now_utc() + Duration::days(1);
    early.not_after = OffsetDateTime::now_utc() + Duration::days(30);
    assert_refused(
        &t.client_for(&ca.issue(&early).unwrap(), "test-mno"),
        "not yet valid",
    )
    .await;
    assert_counted(&t, "not_yet_valid", 1).await;

    let stranger = CertificateAuthority::generate("another CA").unwrap();
    let foreign = stranger
        .issue(&LeafSpec::new("test-mno", Usage::Client))
        .unwrap();
    assert_refused(&t.client_for(&foreign, "test-mno"), "another CA").await;
    // A self-signed certificate naming the operator is no better.
    let selfsigned = rcgen::generate_simple_self_signed(vec!["test-mno".to_owned()]).unwrap();
    assert_refused(
        &t.client_with(
            selfsigned.cert.pem().as_bytes(),
            selfsigned.signing_key.serialize_pem().as_bytes(),
            "test-mno",
        ),
        "self-signed",
    )
    .await;
    assert_counted(&t, "unknown_ca", 2).await;

    let server_cert = std::fs::read(t.certs().join("server.pem")).unwrap();
    let server_key = std::fs::read(t.certs().join("server.key")).unwrap();
    assert_refused(
        &t.client_with(&server_cert, &server_key, "test-mno"),
        "serverAuth only",
    )
    .await;
    assert_counted(&t, "wrong_usage", 1).await;
    assert_eq!(t.snapshot(), before);
}

#[tokio::test]
async fn a_certificate_the_scenario_crl_lists_is_refused() {
    use smdpp_mock::pki::PkiDir;
    // The PKI first: a second certificate for test-mno, revoked into certs/crl.pem.
    let dir = TempDir::new("crl");
    let pki = PkiDir::new(dir.path().join("certs"));
    pki.ensure(&["localhost".into()], &["test-mno"]).unwrap();
    pki.issue_client("mno-backup").unwrap();
    let (crl, serial) = pki.revoke("mno-backup").unwrap();
    assert!(crl.ends_with("crl.pem"));
    assert!(!serial.is_empty());
    // Revoking twice keeps one entry.
    pki.revoke("mno-backup").unwrap();

    let yaml = r#"
smdp: { crlFile: certs/crl.pem }
operators:
  - id: test-mno
    certificateNames: [test-mno, mno-backup]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ range: { start: "894450010000000000", count: 5 } }]
"#;
    let t = TestServer::with_yaml_in(dir, yaml).await;
    assert_refused(&t.client("mno-backup"), "a revoked certificate").await;
    assert_counted(&t, "revoked", 1).await;
    t.client("test-mno")
        .call(DownloadOrder, order())
        .await
        .assert_success();

    // Revoked at run time: a reset reads the CRL again.
    PkiDir::new(t.certs()).revoke("test-mno").unwrap();
    assert_eq!(t.admin().post("/admin/reset", json!({})).await.status, 200);
    assert_refused(&t.client("test-mno"), "a certificate revoked at run time").await;
    assert_counted(&t, "revoked", 2).await;
}

#[tokio::test]
async fn a_crl_file_that_is_not_a_crl_is_a_located_scenario_error() {
    let dir = TempDir::new("badcrl");
    std::fs::write(dir.path().join("crl.pem"), "not a CRL").unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, "smdp:\n  crlFile: crl.pem\noperators: [{ id: a }]\n").unwrap();
    let err = smdpp_mock::Scenario::load(&file).unwrap_err().to_string();
    assert!(err.contains("s.yaml:2:12: smdp.crlFile"), "{err}");
    assert!(err.contains("no CRL in the file"), "{err}");
}

#[tokio::test]
async fn certificate_of_the_ca_without_an_operator_is_unknown() {
    let t = TestServer::start().await;
    let c = t.unmapped_client();
    let before = t.snapshot();
    c.call(DownloadOrder, order())
        .await
        .assert_failed("1.1", "1.1");
    assert_eq!(t.snapshot(), before);
}

#[tokio::test]
async fn operator_isolation() {
    let t = TestServer::start().await;
    let mine = t.client("test-mno");
    let theirs = t.client("other-mno");
    let their_iccid = download_by_type(&theirs, "OTHER-STANDARD", Some(EID1)).await;
    let mid = confirm(&theirs, &their_iccid, json!({})).await;
    let before = t.snapshot();

    mine.call(DownloadOrder, json!({ "profileType": "OTHER-STANDARD" }))
        .await
        .assert_failed("8.2.5", "1.2");
    mine.call(DownloadOrder, json!({ "iccid": their_iccid }))
        .await
        .assert_failed("8.2.1", "1.2");
    mine.call(
        ConfirmOrder,
        json!({ "iccid": their_iccid, "releaseFlag": true }),
    )
    .await
    .assert_failed("8.2.1", "1.2");
    mine.call(ReleaseProfile, json!({ "iccid": their_iccid }))
        .await
        .assert_failed("8.2.1", "1.2");
    mine.call(
        CancelOrder,
        json!({ "iccid": their_iccid, "eid": EID1, "matchingId": mid, "finalProfileStatusIndicator": "Unavailable" }),
    )
    .await
    .assert_failed("8.2.1", "1.2");
    assert_eq!(t.snapshot(), before);

    // And the other way round.
    theirs
        .call(DownloadOrder, json!({ "profileType": "STANDARD" }))
        .await
        .assert_failed("8.2.5", "1.2");
}

#[tokio::test]
async fn sign_csr_from_openssl_ec_p384_and_p256() {
    let t = TestServer::start().await;
    let ca = t.ca();
    for curve in ["secp384r1", "prime256v1"] {
        let work = TempDir::new("csr-ec");
        let (key, csr) = (work.path().join("k.pem"), work.path().join("r.csr"));
        let ok = Command::new("openssl")
            .args(["req", "-new", "-newkey", "ec", "-pkeyopt"])
            .arg(format!("ec_paramgen_curve:{curve}"))
            .args([
                "-nodes",
                "-subj",
                "/CN=test-mno",
                "-addext",
                "subjectKeyIdentifier=hash",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&csr)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        let cert = ca
            .sign_csr(&std::fs::read_to_string(&csr).unwrap(), 30)
            .unwrap();
        let c = t.client_with(cert.as_bytes(), &std::fs::read(&key).unwrap(), "test-mno");
        c.call(DownloadOrder, order()).await.assert_success();
    }
}

#[tokio::test]
async fn tampered_csr_is_refused() {
    let t = TestServer::start().await;
    let ca = t.ca();
    let work = TempDir::new("csr-bad");
    let csr = work.path().join("r.csr");
    let ok = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-subj", "/CN=test-mno", "-keyout"])
        .arg(work.path().join("k.pem"))
        .arg("-out")
        .arg(&csr)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateSigningRequestDer::from_pem_file(&csr)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    // Flip a bit inside the subject's common name: the signature no longer matches.
    let mut tampered = der.clone();
    let at = der.windows(8).position(|w| w == b"test-mno").unwrap();
    tampered[at] ^= 0x01;
    let pem = format!(
        "-----BEGIN CERTIFICATE REQUEST-----\n{}\n-----END CERTIFICATE REQUEST-----\n",
        base64(&tampered)
    );
    let err = ca.sign_csr(&pem, 30).unwrap_err();
    assert!(format!("{err:#}").contains("signature"), "{err:#}");
}

fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}
