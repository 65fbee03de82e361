//! HTTP-level refusals reach the client over HTTP/2 as they do over HTTP/1.1. curl, the
//! client most users try first, negotiates HTTP/2 by default; it sends each request many times,
//! with a body large enough that the server could answer before it has all arrived.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::*;

/// Operators: `test-mno` from anywhere, `far-mno` only from 10.0.0.0/8 (so from here it gets
/// 403 on each request).
const SCENARIO: &str = r#"
operators:
  - id: test-mno
  - id: far-mno
    allowedSourceIps: ["10.0.0.0/8"]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{ range: { start: "894450010000000000", count: 5 } }]
"#;

/// How often each request is sent: one lost answer in twenty is what users saw.
const TRIES: usize = 20;

struct Case {
    what: &'static str,
    method: &'static str,
    path: &'static str,
    headers: &'static [&'static str],
    /// Body size in bytes.
    body: usize,
    /// Certificate to present (a name in the PKI directory).
    cert: &'static str,
    status: u16,
}

const JSON: &str = "Content-Type: application/json";
const PROTOCOL: &str = "X-Admin-Protocol: gsma/rsp/v2.5.0";

fn cases() -> Vec<Case> {
    let es2 = "/gsma/rsp2/es2plus/downloadOrder";
    vec![
        Case {
            what: "a non-JSON Content-Type",
            method: "POST",
            path: es2,
            headers: &["Content-Type: text/plain", PROTOCOL],
            body: 40_000,
            cert: "test-mno",
            status: 415,
        },
        Case {
            what: "no X-Admin-Protocol",
            method: "POST",
            path: es2,
            headers: &[JSON],
            body: 40_000,
            cert: "test-mno",
            status: 400,
        },
        Case {
            what: "a malformed body",
            method: "POST",
            path: es2,
            headers: &[JSON, PROTOCOL],
            body: 40_000,
            cert: "test-mno",
            status: 400,
        },
        Case {
            what: "PUT on a function",
            method: "PUT",
            path: es2,
            headers: &[JSON, PROTOCOL],
            body: 40_000,
            cert: "test-mno",
            status: 405,
        },
        Case {
            what: "an unknown function",
            method: "POST",
            path: "/gsma/rsp2/es2plus/nope",
            headers: &[JSON, PROTOCOL],
            body: 40_000,
            cert: "test-mno",
            status: 404,
        },
        Case {
            what: "a body over the limit",
            method: "POST",
            path: es2,
            headers: &[JSON, PROTOCOL],
            body: 200_000,
            cert: "test-mno",
            status: 413,
        },
        Case {
            what: "a source the operator may not use",
            method: "POST",
            path: es2,
            headers: &[JSON, PROTOCOL],
            body: 40_000,
            cert: "near-far",
            status: 403,
        },
        Case {
            what: "POST on a platform route",
            method: "POST",
            path: "/profiles",
            headers: &[JSON],
            body: 40_000,
            cert: "test-mno",
            status: 405,
        },
        Case {
            what: "a platform route without an operator",
            method: "GET",
            path: "/profile_types",
            headers: &[],
            body: 0,
            cert: "nobody",
            status: 403,
        },
    ]
}

/// A body of `size` bytes: JSON, but not a request of any function (the refusal under test
/// comes first, or the body is refused as malformed).
fn body_file(dir: &Path, size: usize) -> PathBuf {
    let path = dir.join(format!("body-{size}.json"));
    let filler = "x".repeat(size.saturating_sub(16));
    std::fs::write(&path, format!("{{\"filler\":\"{filler}\"").as_bytes()).unwrap();
    path
}

/// curl's exit code and the HTTP status it saw (0 when none).
fn curl(t: &TestServer, case: &Case, http2: bool, body: &Path) -> (i32, u16) {
    let certs = t.certs();
    let mut cmd = Command::new("curl");
    cmd.arg("-sS")
        .args(["-o", "/dev/null", "-w", "%{http_code}"])
        .arg(if http2 { "--http2" } else { "--http1.1" })
        .arg("--cacert")
        .arg(certs.join("ca.pem"))
        .arg("--cert")
        .arg(certs.join(format!("{}.pem", case.cert)))
        .arg("--key")
        .arg(certs.join(format!("{}.key", case.cert)))
        .args(["-X", case.method]);
    for header in case.headers {
        cmd.args(["-H", header]);
    }
    if case.body > 0 {
        cmd.arg("--data-binary").arg(format!("@{}", body.display()));
    }
    cmd.arg(format!(
        "https://localhost:{}{}",
        t.es2_addr().port(),
        case.path
    ));
    let out = cmd.output().expect("curl runs (install curl)");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (out.status.code().unwrap_or(-1), status)
}

async fn every_refusal_arrives(http2: bool) {
    let t = TestServer::with_yaml(SCENARIO).await;
    // far-mno's certificate under another file name (the PKI already holds far-mno.pem; this
    // keeps the case table readable), and one that maps to nobody.
    let ca = t.ca();
    for (file, cn) in [("near-far", "far-mno"), ("nobody", "nobody")] {
        let cert = ca
            .issue(&smdpp_mock::pki::LeafSpec::new(
                cn,
                smdpp_mock::pki::Usage::Client,
            ))
            .unwrap();
        std::fs::write(t.certs().join(format!("{file}.pem")), cert.cert_pem).unwrap();
        std::fs::write(t.certs().join(format!("{file}.key")), cert.key_pem).unwrap();
    }
    let before = t.snapshot();
    let mut failures = Vec::new();
    for case in cases() {
        let body = body_file(t.dir.path(), case.body);
        let mut lost = 0;
        for _ in 0..TRIES {
            let (code, status) = tokio::task::block_in_place(|| curl(&t, &case, http2, &body));
            if code != 0 || status != case.status {
                lost += 1;
                if lost == 1 {
                    failures.push(format!(
                        "{}: curl exit {code}, HTTP {status} (expected {})",
                        case.what, case.status
                    ));
                }
            }
        }
        if lost > 0 {
            failures.push(format!(
                "  … {lost} of {TRIES} tries did not get the answer"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "over {}:\n{}",
        if http2 { "HTTP/2" } else { "HTTP/1.1" },
        failures.join("\n")
    );
    assert_eq!(t.snapshot(), before, "a refusal changed state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_level_refusal_arrives_over_http2() {
    every_refusal_arrives(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_http_level_refusal_arrives_over_http1() {
    every_refusal_arrives(false).await;
}
