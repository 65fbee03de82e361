//! Notification throughput to a local receiver, and ES2+ latency with the dispatcher idle and
//! busy.
//!
//! ```sh
//! cargo run --release --example notify_bench            # 50,000 notifications
//! cargo run --release --example notify_bench -- 200000
//! ```
//!
//! Receiver, dispatcher and ES2+ client all share this process and the machine's cores, as a
//! local docker-compose set-up would.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::json;
use smdpp_mock::ids::Iccid;
use smdpp_mock::{internal::notify::Outgoing, DeliveryState};
use smdpp_mock::{internal::scenario::Callback, Scenario};
use smdpp_mock::{Server, ServerConfig};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A minimal HTTP/1.1 receiver answering 204 and counting requests.
async fn receiver() -> Result<(String, Arc<AtomicU64>), BoxError> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = tcp.set_nodelay(true);
            let seen = seen.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            seen.fetch_add(1, Ordering::Relaxed);
                            Ok::<_, hyper::Error>(
                                Response::builder()
                                    .status(204)
                                    .body(Full::new(Bytes::new()))
                                    .unwrap_or_default(),
                            )
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok((url, count))
}

/// An mTLS HTTP/1.1 connection to the mock, as operator `test-mno`.
async fn es2_client(
    server: &Server,
) -> Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>, BoxError> {
    let pki = server.pki();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(pki.ca_cert_path())? {
        roots.add(cert?)?;
    }
    let chain =
        CertificateDer::pem_file_iter(pki.cert_path("test-mno"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(pki.key_path("test-mno"))?;
    let config = rustls::ClientConfig::builder_with_provider(smdpp_mock::pki::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    let tcp = TcpStream::connect(server.es2_addr()).await?;
    tcp.set_nodelay(true)?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
    tokio::spawn(conn);
    Ok(send)
}

async fn call(
    send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    function: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, BoxError> {
    let request = Request::post(format!("/gsma/rsp2/es2plus/{function}"))
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header("x-admin-protocol", "gsma/rsp/v2.5.0")
        .body(Full::new(Bytes::from(body.to_string())))?;
    send.ready().await?;
    let response = send.send_request(request).await?;
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok(serde_json::from_slice(&bytes)?)
}

/// Latencies (µs) of `n` DownloadOrder + CancelOrder pairs, one at a time.
async fn es2_latencies(server: &Server, n: usize) -> Result<Vec<u64>, BoxError> {
    let mut send = es2_client(server).await?;
    let header =
        json!({ "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": "B" });
    let mut out = Vec::with_capacity(n * 2);
    for _ in 0..n {
        let started = Instant::now();
        let r = call(
            &mut send,
            "downloadOrder",
            json!({ "header": header, "profileType": "STANDARD" }),
        )
        .await?;
        out.push(started.elapsed().as_micros() as u64);
        let iccid = r["iccid"].as_str().ok_or("no ICCID")?.to_owned();
        let started = Instant::now();
        call(
            &mut send,
            "cancelOrder",
            json!({ "header": header, "iccid": iccid, "finalProfileStatusIndicator": "Available" }),
        )
        .await?;
        out.push(started.elapsed().as_micros() as u64);
    }
    out.sort_unstable();
    Ok(out)
}

fn pct(sorted: &[u64], p: f64) -> u64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn enqueue_burst(server: &Server, url: &str, total: usize) -> Result<(), BoxError> {
    let app = smdpp_mock::internal::app::of(server);
    let mut callback = Callback::with_defaults(url)?;
    callback.initial_backoff = Duration::from_millis(10);
    let callback = Arc::new(callback);
    let now = OffsetDateTime::now_utc();
    for i in 0..total {
        // 10 notifications per ICCID, so the per-ICCID ordering is exercised too.
        let iccid = Iccid::from_body(894450900000000000 + (i / 10) as u128, 18, false)
            .ok_or("ICCID out of range")?;
        let id = app.notifier.next_id();
        app.notifier.enqueue(
            id,
            Outgoing {
                key: iccid.key(),
                iccid: iccid.to_string(),
                operator: "test-mno".into(),
                point_id: 3,
                callback: callback.clone(),
                body: json!({ "header": { "functionRequesterIdentifier": "bench", "functionCallIdentifier": format!("N-{id}") },
                              "iccid": iccid.to_string(), "profileType": "STANDARD",
                              "timestamp": "2026-11-27T00:00:00Z", "notificationPointId": 3,
                              "notificationPointStatus": { "status": "Executed-Success" } }),
                call_id: format!("N-{id}"),
                admin_protocol: "gsma/rsp/v2.5.0".into(),
                drop: false,
                delay: None,
                duplicate: false,
            },
            now,
        );
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let total: usize = std::env::args().nth(1).map_or(Ok(50_000), |a| a.parse())?;
    let (url, received) = receiver().await?;
    let dir = std::env::temp_dir().join(format!("smdpp-notify-bench-{}", std::process::id()));
    let mut config = ServerConfig::ephemeral(Scenario::default_scenario()?);
    config.admin_addr = None;
    config.certs_dir = dir.join("certs");
    config.notify_queue_capacity = total.max(10_000);
    let server = Server::start(config).await?;

    // 1. ES2+ latency, dispatcher idle.
    es2_latencies(&server, 200).await?; // warm-up
    let idle = es2_latencies(&server, 2_000).await?;

    // 2. Throughput: `total` notifications as fast as the dispatcher delivers them.
    let started = Instant::now();
    enqueue_burst(&server, &url, total)?;
    let left = smdpp_mock::internal::app::of(&server)
        .notifier
        .drain(Duration::from_secs(300))
        .await;
    let took = started.elapsed();
    let delivered = smdpp_mock::internal::app::of(&server)
        .notifier
        .log()
        .counters
        .delivered
        .load(Ordering::Relaxed);

    // 3. ES2+ latency while the dispatcher is busy with another burst.
    enqueue_burst(&server, &url, total)?;
    let busy = es2_latencies(&server, 2_000).await?;
    let busy_left = smdpp_mock::internal::app::of(&server)
        .notifier
        .log()
        .records()
        .iter()
        .filter(|r| r.state == DeliveryState::Pending)
        .count();
    smdpp_mock::internal::app::of(&server)
        .notifier
        .drain(Duration::from_secs(300))
        .await;

    println!("notifications: {delivered} delivered of {total} (undelivered after drain: {left}); receiver saw {}", received.load(Ordering::Relaxed));
    println!(
        "throughput: {:.0} notifications/s ({:.2} s for {total})",
        total as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    );
    println!(
        "ES2+ latency, dispatcher idle: p50 {} µs, p99 {} µs, max {} µs ({} calls)",
        pct(&idle, 0.5),
        pct(&idle, 0.99),
        idle[idle.len() - 1],
        idle.len()
    );
    println!(
        "ES2+ latency, dispatcher busy: p50 {} µs, p99 {} µs, max {} µs ({} calls; {busy_left} deliveries still pending when they ended)",
        pct(&busy, 0.5),
        pct(&busy, 0.99),
        busy[busy.len() - 1],
        busy.len()
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
