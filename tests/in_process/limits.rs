//! Transport limits on the ES2+ port (header size, header-read and idle timeouts, the
//! connection limit, the handshake timeout, TLS versions) and the admin API's bearer token.
//! Each test sets small only the limit it is about, and leaves the rest at their defaults (ten
//! seconds and more), so that the clients it expects to be served are never caught by a limit
//! however slowly the machine runs; assertions are about what happens, never about how fast.

use std::time::Duration;

use crate::common::*;
use hyper::StatusCode;
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::Limits;
use smdpp_mock::Scenario;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server with `limits` (the default scenario unless `yaml`).
async fn server(yaml: Option<&str>, limits: Limits) -> TestServer {
    let scenario = match yaml {
        Some(y) => Scenario::from_yaml(y).unwrap(),
        None => Scenario::default_scenario().unwrap(),
    };
    TestServer::configured(scenario, TempDir::new("limits"), |c| c.limits = limits).await
}

/// A short limit for the one under test: long enough for a client that sends its request head
/// (or its handshake) at once to get it in on a loaded machine, short enough that the test does
/// not wait long for a client that never does.
const SHORT: Duration = Duration::from_secs(1);

/// Reads until the peer closes (EOF or an error); panics if it stays open 10 s or sends data.
async fn assert_closed<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, what: &str) {
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
        Err(_) => panic!("{what}: still open after 10 s"),
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!(
            "{what}: got data instead of a close: {:?}",
            String::from_utf8_lossy(&buf[..n])
        ),
    }
}

fn request_head(body_len: usize) -> String {
    format!(
        "POST /gsma/rsp2/es2plus/downloadOrder HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-admin-protocol: gsma/rsp/v2.5.0\r\ncontent-length: {body_len}\r\n"
    )
}

#[tokio::test]
async fn an_oversized_request_head_gets_431_and_changes_nothing() {
    let t = server(
        None,
        Limits {
            max_header_bytes: 8192,
            ..Limits::default()
        },
    )
    .await;
    let before = t.snapshot();
    let mut tls = t.raw_tls("test-mno").await;
    let head = format!(
        "{}x-padding: {}\r\n\r\n",
        request_head(2),
        "a".repeat(20_000)
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(b"{}").await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 431"),
        "expected 431, got {answer:?}"
    );
    assert_eq!(t.snapshot(), before);
    // A head under the limit is served.
    t.client("test-mno")
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await
        .assert_success();
}

#[tokio::test]
async fn a_slow_client_is_cut_off_without_holding_up_others() {
    let t = server(
        None,
        Limits {
            header_read_timeout: SHORT,
            ..Limits::default()
        },
    )
    .await;
    let mut slow = t.raw_tls("test-mno").await;
    // Half a request head, then nothing.
    slow.write_all(request_head(2).as_bytes()).await.unwrap();
    slow.flush().await.unwrap();
    // Meanwhile another client is served.
    t.client("test-mno")
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await
        .assert_success();
    assert_closed(&mut slow, "a client that never finished its request head").await;
    t.wait_metric(
        "smdpp_connections_closed_total{reason=\"header_timeout\"}",
        1,
    )
    .await;
}

#[tokio::test]
async fn a_client_that_stalls_in_its_body_gets_408_and_is_disconnected() {
    // The header-read timeout is the body's deadline as well.
    let t = server(
        None,
        Limits {
            header_read_timeout: SHORT,
            ..Limits::default()
        },
    )
    .await;
    let before = t.snapshot();
    let mut tls = t.raw_tls("test-mno").await;
    tls.write_all(format!("{}\r\n{{\"profileType\":", request_head(100)).as_bytes())
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(t.snapshot(), before);
    let journal = t.admin().get("/admin/journal").await.body;
    assert_eq!(journal["entries"][0]["httpStatus"], 408, "{journal}");
}

#[tokio::test]
async fn over_http2_a_slow_answer_is_not_cut_as_idle() {
    // The answer takes longer than the header-read and idle timeouts together.
    let t = server(
        Some(&delayed_scenario(Function::DownloadOrder, "2500ms")),
        Limits {
            header_read_timeout: SHORT,
            idle_timeout: SHORT,
            ..Limits::default()
        },
    )
    .await;
    let reply = t
        .client("test-mno")
        .http2()
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await;
    reply.assert_success();
}

#[tokio::test]
async fn an_idle_connection_is_closed_but_a_slow_answer_is_not() {
    let t = server(
        Some(&delayed_scenario(Function::ConfirmOrder, "2500ms")),
        Limits {
            idle_timeout: SHORT,
            ..Limits::default()
        },
    )
    .await;
    let client = t.client("test-mno");
    let iccid = download_by_type(&client, "STANDARD", None).await;

    // An answer that takes longer than the idle timeout still arrives: the connection is busy.
    let body = json!({
        "header": client.header(),
        "iccid": iccid,
        "releaseFlag": false,
    })
    .to_string();
    let mut tls = t.raw_tls("test-mno").await;
    tls.write_all(raw_es2_request(Function::ConfirmOrder, &body).as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("Executed-Success"), "{answer}");

    // Then nothing: the keep-alive connection is closed as idle (counted just after).
    assert_closed(&mut tls, "an idle keep-alive connection").await;
    t.wait_metric("smdpp_connections_closed_total{reason=\"idle_timeout\"}", 1)
        .await;
    assert_eq!(
        t.metric("smdpp_connections_closed_total{reason=\"header_timeout\"}")
            .await,
        0
    );
}

#[tokio::test]
async fn connections_over_the_limit_are_refused_and_counted() {
    // Long timeouts here: the held connections must stay open however slow the machine is.
    let t = TestServer::configured(
        Scenario::default_scenario().unwrap(),
        TempDir::new("limits"),
        |c| {
            c.limits = Limits {
                max_connections: 3,
                idle_timeout: Duration::from_secs(60),
                ..Limits::default()
            }
        },
    )
    .await;
    // Three connections (the limit) held open by TLS clients that send nothing more.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(t.raw_tls("test-mno").await);
    }
    // The fourth is closed before TLS: the handshake fails.
    let refused = t
        .client("test-mno")
        .call_raw_result(Function::DownloadOrder, json!({}))
        .await;
    assert!(
        refused.is_err(),
        "a fourth connection was served: {refused:?}"
    );
    assert_eq!(
        t.metric("smdpp_connections_refused_total{reason=\"connection_limit\"}")
            .await,
        1
    );
    // Once one closes, new connections are served again.
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let attempt = t
            .client("test-mno")
            .call_raw_result(Function::DownloadOrder, json!({}))
            .await;
        if attempt.is_ok() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_client_that_never_completes_the_handshake_is_cut_off() {
    let t = server(
        None,
        Limits {
            handshake_timeout: Duration::from_secs(2),
            ..Limits::default()
        },
    )
    .await;
    let mut tcp = TcpStream::connect(t.es2_addr()).await.unwrap();
    // Served while the silent connection waits.
    t.client("test-mno")
        .call(
            Function::DownloadOrder,
            json!({ "profileType": "STANDARD" }),
        )
        .await
        .assert_success();
    assert_closed(&mut tcp, "a connection that never sent a ClientHello").await;
    // The counter is bumped just after the close.
    t.wait_metric("smdpp_tls_handshake_failures_total{reason=\"timeout\"}", 1)
        .await;
}

/// A TLS 1.1 ClientHello (no supported_versions extension): the server must answer with a
/// protocol_version alert (RFC 8446 §4.2.1), as it only speaks TLS 1.2 and 1.3.
#[tokio::test]
async fn tls_below_1_2_is_refused() {
    let t = server(None, Limits::default()).await;
    let mut hello = vec![0x03, 0x02]; // client_version TLS 1.1
    hello.extend_from_slice(&[7u8; 32]); // random
    hello.push(0); // session id
                   // Suites the server has (ECDHE-ECDSA/RSA-AES128-GCM-SHA256), so only the version is wrong.
    hello.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]);
    hello.extend_from_slice(&[0x01, 0x00]); // null compression
                                            // Everything else the server needs, so the version is the only thing wrong: supported
                                            // groups (x25519, P-256), signature algorithms (ECDSA P-256 SHA-256), point formats.
    let extensions = [
        0x00, 0x0a, 0x00, 0x06, 0x00, 0x04, 0x00, 0x1d, 0x00, 0x17, //
        0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03, //
        0x00, 0x0b, 0x00, 0x02, 0x01, 0x00,
    ];
    hello.extend_from_slice(&u16::try_from(extensions.len()).unwrap().to_be_bytes());
    hello.extend_from_slice(&extensions);
    let mut handshake = vec![0x01, 0x00];
    handshake.extend_from_slice(&u16::try_from(hello.len()).unwrap().to_be_bytes());
    handshake.extend_from_slice(&hello);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend_from_slice(&u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend_from_slice(&handshake);

    let mut tcp = TcpStream::connect(t.es2_addr()).await.unwrap();
    tcp.write_all(&record).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut answer)).await;
    assert!(answer.len() >= 7, "no alert: {answer:?}");
    assert_eq!(answer[0], 0x15, "an alert record: {answer:?}");
    assert_eq!(answer[6], 70, "protocol_version: {answer:?}");
    t.wait_metric(
        "smdpp_tls_handshake_failures_total{reason=\"incompatible\"}",
        1,
    )
    .await;
}

#[tokio::test]
async fn the_admin_token_guards_every_route_but_health_readiness_the_description_and_the_page() {
    let t = TestServer::configured(
        Scenario::default_scenario().unwrap(),
        TempDir::new("token"),
        |c| c.admin_token = Some("s3cret-token".into()),
    )
    .await;
    let admin = t.admin();
    for path in [
        "/health",
        "/ready",
        "/openapi.json",
        "/",
        "/admin/dashboard",
        "/admin/dashboard/app.js",
    ] {
        assert_eq!(admin.get(path).await.status, StatusCode::OK, "{path}");
    }
    for path in ["/admin/journal", "/metrics", "/admin/summary"] {
        let refused = admin.get(path).await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED, "{path}");
        assert!(refused.headers.contains_key("www-authenticate"));
        assert_eq!(refused.body["status"], 401);
    }
    let reset = admin.post("/admin/reset", json!({})).await;
    assert_eq!(reset.status, StatusCode::UNAUTHORIZED);

    for (value, ok) in [
        ("Bearer s3cret-token", true),
        ("Bearer s3cret-tokeN", false),
        ("Bearer s3cret", false),
        ("Basic s3cret-token", false),
        ("s3cret-token", false),
    ] {
        let r = admin
            .send_with(
                hyper::Method::GET,
                "/admin/journal",
                None,
                &[("authorization", value)],
            )
            .await;
        assert_eq!(r.status == StatusCode::OK, ok, "{value}: {}", r.status);
    }
}

/// A TLS connection to the ES9+ listener, trusting the GSMA CI as a device does.
async fn es9_tls(t: &TestServer) -> tokio_rustls::client::TlsStream<TcpStream> {
    let ci = std::fs::read(t.certs().join("gsma/CERT_CI_ECDSA_NIST.der")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ci))
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(smdpp_mock::pki::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(t.mock.es9_addr().unwrap())
        .await
        .unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").unwrap(),
            tcp,
        )
        .await
        .unwrap()
}

/// The same deadlines hold on the ES9+ listener, which anyone can reach: a client that stalls
/// in its request head is cut off, one that stalls in its body gets 408 and is disconnected,
/// while another device is served meanwhile.
#[tokio::test]
async fn es9_clients_that_stall_are_cut_off() {
    let t = server(
        None,
        Limits {
            header_read_timeout: SHORT,
            ..Limits::default()
        },
    )
    .await;
    let head = "POST /gsma/rsp2/es9plus/initiateAuthentication HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-admin-protocol: gsma/rsp/v2.2.0\r\ncontent-length: 100\r\n";
    let mut in_head = es9_tls(&t).await;
    in_head.write_all(head.as_bytes()).await.unwrap();
    in_head.flush().await.unwrap();
    let mut in_body = es9_tls(&t).await;
    in_body
        .write_all(format!("{head}\r\n{{\"smdpAddress\":").as_bytes())
        .await
        .unwrap();
    in_body.flush().await.unwrap();
    // Meanwhile a device is served.
    let mut lpa = t.mock.lpa(EID1).unwrap();
    let address = t.mock.smdp_address();
    initiate_authentication(&mut lpa, &address, &address)
        .await
        .unwrap();
    assert_closed(&mut in_head, "an ES9+ client that never finished its head").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), in_body.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}
