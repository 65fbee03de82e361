//! Every row of the README's troubleshooting table, provoked with the clients it names (curl,
//! Python's ssl module): what the client prints, and where the mock says more (log reason,
//! metric, conformance check, journal). The last test keeps the table and these rows in step.

use std::path::{Path, PathBuf};
use std::process::Command;

use smdpp_mock::pki::{LeafSpec, Usage};
use time::{Duration, OffsetDateTime};

use crate::common::*;

/// What a client prints for each row, exactly as the README's table shows it.
const ROWS: &[&str] = &[
    "tlsv13 alert certificate required",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED",
    "alert unknown ca",
    "TLSV1_ALERT_UNKNOWN_CA",
    "alert certificate expired",
    "alert certificate revoked",
    "alert unsupported certificate",
    "unable to get local issuer certificate",
    "no alternative certificate subject name matches target host name",
    "This port speaks HTTPS only",
    "tlsv1 alert protocol version",
    "TLSV1_ALERT_PROTOCOL_VERSION",
    "tlsv1 alert access denied",
    "may not connect from",
    "Couldn't connect to server",
    "Stream error in the HTTP/2 framing layer",
    "the client certificate does not identify any operator",
];

const ORDER: &str = r#"{"header":{"functionRequesterIdentifier":"test-mno","functionCallIdentifier":"1"},"profileType":"STANDARD"}"#;

/// A certificate and key written as `<name>.pem` / `<name>.key` in the server's PKI directory.
fn write_cert(t: &TestServer, name: &str, cert: smdpp_mock::pki::IssuedCert) {
    std::fs::write(t.certs().join(format!("{name}.pem")), cert.cert_pem).unwrap();
    std::fs::write(t.certs().join(format!("{name}.key")), cert.key_pem).unwrap();
}

/// curl's exit code and everything it printed, for a DownloadOrder to `url` presenting the
/// certificate `cert` of the PKI directory (none when `None`).
fn curl(certs: &Path, url: &str, cert: Option<&str>, extra: &[&str]) -> (i32, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "10"]).args(extra);
    cmd.arg("--cacert").arg(certs.join("ca.pem"));
    if let Some(name) = cert {
        cmd.arg("--cert").arg(certs.join(format!("{name}.pem")));
        cmd.arg("--key").arg(certs.join(format!("{name}.key")));
    }
    cmd.args([
        "-H",
        "Content-Type: application/json",
        "-H",
        "X-Admin-Protocol: gsma/rsp/v2.5.0",
        "-d",
        ORDER,
        url,
    ]);
    let out = cmd.output().expect("curl runs (install curl)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// What Python's `ssl` module raises for a request to `port` with `cert` (or answers).
fn python(certs: &Path, port: u16, cert: Option<&str>, trust_ca: bool) -> String {
    let load = match cert {
        Some(name) => format!(
            "ctx.load_cert_chain({:?}, {:?})",
            certs.join(format!("{name}.pem")),
            certs.join(format!("{name}.key"))
        ),
        None => "pass".into(),
    };
    let cafile = if trust_ca {
        format!("cafile={:?}", certs.join("ca.pem"))
    } else {
        String::new()
    };
    let script = format!(
        "import ssl, http.client\n\
         ctx = ssl.create_default_context({cafile})\n\
         {load}\n\
         try:\n\
         \x20   c = http.client.HTTPSConnection('localhost', {port}, context=ctx, timeout=10)\n\
         \x20   c.request('POST', '/gsma/rsp2/es2plus/downloadOrder', body='{{}}', headers={{'Content-Type': 'application/json'}})\n\
         \x20   print(c.getresponse().status)\n\
         except Exception as e:\n\
         \x20   print(type(e).__name__, e)\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .expect("python3 runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn order_url(t: &TestServer) -> String {
    format!(
        "https://localhost:{}/gsma/rsp2/es2plus/downloadOrder",
        t.es2_addr().port()
    )
}

fn assert_prints(what: &str, (code, text): (i32, String), exit: i32, needle: &str) {
    assert!(
        code == exit && text.contains(needle),
        "{what}: expected curl exit {exit} and {needle:?}, got exit {code}: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_refusals_arrive_as_readable_alerts() {
    let t = TestServer::start().await;
    let certs = t.certs();
    let ca = t.ca();
    let mut expired = LeafSpec::new("test-mno", Usage::Client);
    expired.not_before = OffsetDateTime::now_utc() - Duration::days(30);
    expired.not_after = OffsetDateTime::now_utc() - Duration::days(1);
    write_cert(&t, "expired", ca.issue(&expired).unwrap());
    let other = smdpp_mock::pki::CertificateAuthority::generate("another CA").unwrap();
    write_cert(
        &t,
        "foreign",
        other
            .issue(&LeafSpec::new("test-mno", Usage::Client))
            .unwrap(),
    );
    let url = order_url(&t);
    let blocking = |f: &dyn Fn() -> (i32, String)| tokio::task::block_in_place(f);

    let none = blocking(&|| curl(&certs, &url, None, &[]));
    assert_prints(
        "no certificate",
        none,
        56,
        "tlsv13 alert certificate required",
    );
    let py = tokio::task::block_in_place(|| python(&certs, t.es2_addr().port(), None, true));
    assert!(py.contains("TLSV13_ALERT_CERTIFICATE_REQUIRED"), "{py}");
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"no_certificate\"}",
        2,
    )
    .await;

    let foreign = blocking(&|| curl(&certs, &url, Some("foreign"), &[]));
    assert_prints("another CA", foreign, 56, "alert unknown ca");
    let py =
        tokio::task::block_in_place(|| python(&certs, t.es2_addr().port(), Some("foreign"), true));
    assert!(py.contains("TLSV1_ALERT_UNKNOWN_CA"), "{py}");
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"unknown_ca\"}",
        2,
    )
    .await;

    let expired = blocking(&|| curl(&certs, &url, Some("expired"), &[]));
    assert_prints("expired", expired, 56, "alert certificate expired");
    t.wait_metric("smdpp_tls_handshake_failures_total{reason=\"expired\"}", 1)
        .await;

    let server_cert = blocking(&|| curl(&certs, &url, Some("server"), &[]));
    assert_prints(
        "the server's certificate",
        server_cert,
        56,
        "alert unsupported certificate",
    );
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"wrong_usage\"}",
        1,
    )
    .await;

    // The client that does not trust the mock's CA (no --cacert): refused on its side.
    let untrusted = blocking(&|| {
        let out = Command::new("curl")
            .args(["-sS", "-d", ORDER, &url])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    assert_prints(
        "an untrusted server",
        untrusted,
        60,
        "unable to get local issuer certificate",
    );
    let py = tokio::task::block_in_place(|| python(&certs, t.es2_addr().port(), None, false));
    assert!(
        py.contains("unable to get local issuer certificate"),
        "{py}"
    );

    // A host name the server certificate does not carry.
    let resolve = format!("smdp.example.com:{}:127.0.0.1", t.es2_addr().port());
    let named = format!(
        "https://smdp.example.com:{}/gsma/rsp2/es2plus/downloadOrder",
        t.es2_addr().port()
    );
    let wrong_name = blocking(&|| curl(&certs, &named, Some("test-mno"), &["--resolve", &resolve]));
    assert_prints(
        "a host name not in the certificate",
        wrong_name,
        60,
        "no alternative certificate subject name matches target host name",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_is_refused_with_its_alert() {
    let dir = TempDir::new("revoked");
    let pki = smdpp_mock::pki::PkiDir::new(dir.path().join("certs"));
    pki.ensure(&["localhost".into()], &["test-mno"]).unwrap();
    pki.issue_client("old-mno").unwrap();
    let (crl, _) = pki.revoke("old-mno").unwrap();
    let t = TestServer::with_yaml_in(
        dir,
        &format!(
            r#"
smdp: {{ crlFile: "{}" }}
operators: [{{ id: test-mno, certificateNames: [test-mno, old-mno] }}]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450010000000000", count: 5 }} }}]
"#,
            crl.display()
        ),
    )
    .await;
    let certs = t.certs();
    let url = order_url(&t);
    let revoked = tokio::task::block_in_place(|| curl(&certs, &url, Some("old-mno"), &[]));
    assert_prints("revoked", revoked, 56, "alert certificate revoked");
    t.wait_metric("smdpp_tls_handshake_failures_total{reason=\"revoked\"}", 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_protocols_on_each_port_are_answered_readably() {
    let t = TestServer::start().await;
    let certs = t.certs();
    // http:// to the TLS port: a plain 400 that says what to do.
    let plain = tokio::task::block_in_place(|| {
        curl(
            &certs,
            &format!("http://localhost:{}/", t.es2_addr().port()),
            None,
            &["-w", "%{http_code}"],
        )
    });
    assert_prints(
        "http:// on the TLS port",
        plain.clone(),
        0,
        "This port speaks HTTPS only",
    );
    assert!(plain.1.ends_with("400"), "{}", plain.1);
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"plain_http\"}",
        1,
    )
    .await;
    // https:// to the plain-HTTP admin port: a TLS alert.
    let admin = format!("https://localhost:{}/health", t.admin_addr().port());
    let tls = tokio::task::block_in_place(|| curl(&certs, &admin, None, &[]));
    assert_prints(
        "https:// on the admin port",
        tls,
        35,
        "tlsv1 alert protocol version",
    );
    let py = tokio::task::block_in_place(|| python(&certs, t.admin_addr().port(), None, true));
    assert!(py.contains("TLSV1_ALERT_PROTOCOL_VERSION"), "{py}");
    // Nobody listening.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let nobody = tokio::task::block_in_place(|| {
        curl(
            &certs,
            &format!("https://localhost:{port}/"),
            Some("test-mno"),
            &[],
        )
    });
    assert_prints("no server", nobody, 7, "Couldn't connect to server");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_address_refusals_say_where() {
    // Nobody may connect from loopback: the connection is closed before TLS.
    let t = TestServer::with_yaml(
        r#"
operators: [{ id: test-mno, allowedSourceIps: ["10.0.0.0/8"] }]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ range: { start: "894450010000000000", count: 5 } }]
"#,
    )
    .await;
    let (certs, url) = (t.certs(), order_url(&t));
    let closed = tokio::task::block_in_place(|| curl(&certs, &url, Some("test-mno"), &[]));
    assert_prints(
        "a source nobody may use",
        closed,
        35,
        "tlsv1 alert access denied",
    );
    t.wait_metric("smdpp_source_ip_refusals_total{stage=\"connection\"}", 1)
        .await;

    // Another operator may connect from here, this one may not: HTTP 403 that says so.
    let t = TestServer::with_yaml(
        r#"
operators:
  - id: test-mno
    allowedSourceIps: ["10.0.0.0/8"]
  - id: lab-mno
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ range: { start: "894450010000000000", count: 5 } }]
"#,
    )
    .await;
    let (certs, url) = (t.certs(), order_url(&t));
    let refused = tokio::task::block_in_place(|| curl(&certs, &url, Some("test-mno"), &[]));
    assert_prints(
        "a source the operator may not use",
        refused,
        0,
        "may not connect from",
    );
    t.wait_metric("smdpp_source_ip_refusals_total{stage=\"request\"}", 1)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_of_no_operator_is_answered_in_es2_terms() {
    let t = TestServer::start().await;
    write_cert(
        &t,
        "nobody",
        t.ca()
            .issue(&LeafSpec::new("nobody", Usage::Client))
            .unwrap(),
    );
    let (certs, url) = (t.certs(), order_url(&t));
    let answer = tokio::task::block_in_place(|| curl(&certs, &url, Some("nobody"), &[]));
    assert_prints(
        "a certificate of no operator",
        answer,
        0,
        "the client certificate does not identify any operator",
    );
    let journal = t.admin().get("/admin/journal").await.body;
    assert_eq!(journal["entries"][0]["statusCode"], "1.1/1.1");
}

/// The README table shows every row above, and nothing untested.
#[test]
fn the_readme_table_is_these_rows() {
    let readme =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    let start = readme
        .find("## Troubleshooting")
        .expect("a Troubleshooting section");
    let section = &readme[start..];
    let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
    for row in ROWS {
        assert!(
            section.contains(row),
            "the troubleshooting table lacks {row:?}"
        );
    }
    let table_rows = section
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| what"))
        .count();
    assert!(table_rows >= 10, "{table_rows} rows");
}
