//! A bounded soak: the release binary as its own process, 64 connections of mixed ES2+ traffic
//! for ten minutes, notifications to a receiver that flaps between up, slow, refusing and
//! dropping connections. Reports requests, errors, notifications expected / acknowledged /
//! lost, and the server's RSS at start, middle and end.
//!
//! ```sh
//! cargo build --release && cargo run --release --example soak -- --duration 600
//! ```
//!
//! Traffic, per connection, in a loop: 98 cycles in 100 are DownloadOrder → ConfirmOrder →
//! CancelOrder(Available), which return the profile; 2 in 100 are DownloadOrder → ConfirmOrder
//! (release) or → ConfirmOrder → ReleaseProfile, after which the scenario's simulated device
//! downloads and installs: two notifications (points 3 and 4) that must each reach the receiver.
//! Exit status 1 when any request failed unexpectedly or any notification was lost.

#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::rss_mb;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use smdpp_mock::es2::Function;
use smdpp_mock::OperatorClient;
use tokio::net::TcpListener;

struct Options {
    duration: Duration,
    connections: usize,
    binary: PathBuf,
    /// Cycles in 100 that end in a download (and two notifications).
    notify_percent: u64,
}

fn options() -> Result<Options> {
    let mut o = Options {
        duration: Duration::from_secs(600),
        connections: 64,
        binary: PathBuf::from("target/release/smdpp-mock"),
        notify_percent: 2,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match flag.as_str() {
            "--duration" => o.duration = Duration::from_secs(value()?.parse()?),
            "--connections" => o.connections = value()?.parse()?,
            "--binary" => o.binary = PathBuf::from(value()?),
            "--notify-percent" => o.notify_percent = value()?.parse::<u64>()?.min(100),
            other => bail!(
                "unknown flag {other}; use --duration S --connections N --binary PATH --notify-percent P"
            ),
        }
    }
    Ok(o)
}

/// The receiver's moods, five seconds each, in turn.
const UP: u8 = 0;
const SLOW: u8 = 1;
const REFUSING: u8 = 2;
const DROPPING: u8 = 3;

#[derive(Default)]
struct Received {
    /// (ICCID, point) acknowledged with 204.
    acked: Mutex<HashSet<(String, u64)>>,
    attempts: AtomicU64,
}

async fn receiver(mood: Arc<AtomicU8>, received: Arc<Received>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            if mood.load(Ordering::Relaxed) == DROPPING {
                drop(tcp); // connection refused, as a receiver that is down
                continue;
            }
            let (mood, received) = (mood.clone(), received.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (mood, received) = (mood.clone(), received.clone());
                    async move {
                        received.attempts.fetch_add(1, Ordering::Relaxed);
                        let body = match req.into_body().collect().await {
                            Ok(b) => b.to_bytes(),
                            Err(_) => Bytes::new(),
                        };
                        let status = match mood.load(Ordering::Relaxed) {
                            REFUSING => 503,
                            SLOW => {
                                // Longer than the callback timeout: the mock gives up and retries.
                                tokio::time::sleep(Duration::from_millis(1500)).await;
                                204
                            }
                            _ => 204,
                        };
                        if status == 204 {
                            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                                let key = (
                                    v["iccid"].as_str().unwrap_or_default().to_owned(),
                                    v["notificationPointId"].as_u64().unwrap_or_default(),
                                );
                                received.acked.lock().unwrap().insert(key);
                            }
                        }
                        Ok::<_, std::convert::Infallible>(
                            Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::new()))
                                .unwrap_or_default(),
                        )
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    Ok(addr)
}

fn scenario(receiver: SocketAddr) -> String {
    format!(
        r#"
smdp: {{ matchingIdSeed: 11 }}
operators:
  - id: test-mno
    callback:
      url: http://{receiver}/mno
      timeout: 1s
      maxAttempts: 1000
      initialBackoff: 200ms
      maxBackoff: 2s
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450100000000000", count: 200000 }} }}]
devices:
  - match: {{ profileType: STANDARD }}
    timeline:
      - {{ after: 100ms, event: download }}
      - {{ after: 100ms, event: install-success }}
"#
    )
}

async fn admin_get(admin: SocketAddr, path: &str) -> Result<Value> {
    let tcp = tokio::net::TcpStream::connect(admin).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let response = send
        .send_request(
            Request::builder()
                .uri(path)
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    Ok(serde_json::from_slice(
        &response.into_body().collect().await?.to_bytes(),
    )?)
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    errors: AtomicU64,
    notifying_cycles: AtomicU64,
}

/// One connection's loop. Returns the ICCIDs whose devices will notify (points 3 and 4).
async fn worker(
    client: OperatorClient,
    n: usize,
    notify_percent: u64,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> Vec<String> {
    let mut notifying = Vec::new();
    let mut i: u64 = n as u64;
    let ok = |r: &smdpp_mock::Result<smdpp_mock::Reply>, tally: &Tally| {
        tally.requests.fetch_add(1, Ordering::Relaxed);
        let good = matches!(r, Ok(reply) if reply.is_success());
        if !good {
            tally.errors.fetch_add(1, Ordering::Relaxed);
            if tally.errors.load(Ordering::Relaxed) <= 5 {
                eprintln!("unexpected answer: {r:?}");
            }
        }
        good
    };
    while !stop.load(Ordering::Relaxed) {
        i = i
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // 2 cycles in 100 end in a download: about what a real operator's traffic mixes, and
        // within what the bounded queue holds through the receiver's 15-second outages.
        let draw = (i >> 33) % 100;
        // Below the percentage: half release at ConfirmOrder, half with ReleaseProfile.
        let kind = if draw < notify_percent { draw % 2 } else { 2 };
        let order = client
            .call(
                Function::DownloadOrder,
                json!({ "profileType": "STANDARD" }),
            )
            .await;
        if !ok(&order, &tally) {
            continue;
        }
        let Some(iccid) = order
            .ok()
            .and_then(|r| r.body["iccid"].as_str().map(str::to_owned))
        else {
            continue;
        };
        match kind {
            0 => {
                let r = client
                    .call(
                        Function::ConfirmOrder,
                        json!({ "iccid": iccid, "releaseFlag": true }),
                    )
                    .await;
                if ok(&r, &tally) {
                    notifying.push(iccid);
                }
            }
            1 => {
                let r = client
                    .call(
                        Function::ConfirmOrder,
                        json!({ "iccid": iccid, "releaseFlag": false }),
                    )
                    .await;
                if ok(&r, &tally) {
                    let r = client
                        .call(Function::ReleaseProfile, json!({ "iccid": iccid }))
                        .await;
                    if ok(&r, &tally) {
                        notifying.push(iccid);
                    }
                }
            }
            _ => {
                let r = client
                    .call(
                        Function::ConfirmOrder,
                        json!({ "iccid": iccid, "releaseFlag": false }),
                    )
                    .await;
                ok(&r, &tally);
                let r = client
                    .call(
                        Function::CancelOrder,
                        json!({ "iccid": iccid, "finalProfileStatusIndicator": "Available", "matchingId": r.ok().and_then(|r| r.body["matchingId"].as_str().map(str::to_owned)) }),
                    )
                    .await;
                ok(&r, &tally);
            }
        }
    }
    tally
        .notifying_cycles
        .fetch_add(notifying.len() as u64, Ordering::Relaxed);
    notifying
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = options()?;
    let dir = std::env::temp_dir().join(format!("smdpp-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let mood = Arc::new(AtomicU8::new(UP));
    let received = Arc::new(Received::default());
    let receiver_addr = receiver(mood.clone(), received.clone()).await?;
    std::fs::write(dir.join("soak.yaml"), scenario(receiver_addr))?;
    let server = support::start_server(
        &options.binary,
        &dir,
        "soak.yaml",
        "warn,smdpp_mock::server=info,smdpp_mock::http=info",
    )?;
    let pid = server.child.id();
    println!(
        "soak: {} s, {} connections, server pid {pid} on {}",
        options.duration.as_secs(),
        options.connections,
        server.es2
    );

    // The library's client, with the certificates the server just made.
    let tls = support::operator_tls(&dir.join("certs"), "test-mno")?;
    let base = format!("https://localhost:{}", server.es2.port());

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let workers: Vec<_> = (0..options.connections)
        .map(|n| {
            // One client (one pooled connection in use at a time) per worker.
            let client = OperatorClient::new(tls.clone(), base.clone(), "test-mno");
            tokio::spawn(worker(
                client,
                n,
                options.notify_percent,
                stop.clone(),
                tally.clone(),
            ))
        })
        .collect();

    // Warm-up, then RSS at start; the receiver's mood turns every 5 s.
    tokio::time::sleep(Duration::from_secs(5).min(options.duration / 4)).await;
    let rss_start = rss_mb(pid);
    let started = Instant::now();
    let mut rss_middle = 0.0;
    let mut last_report = Instant::now();
    while started.elapsed() < options.duration {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let turn = (started.elapsed().as_secs() / 5 % 4) as u8;
        mood.store(turn, Ordering::Relaxed);
        if rss_middle == 0.0 && started.elapsed() >= options.duration / 2 {
            rss_middle = rss_mb(pid);
        }
        if last_report.elapsed() >= Duration::from_secs(60) {
            last_report = Instant::now();
            println!(
                "  {:>4} s: {} requests, {} errors, RSS {:.1} MB",
                started.elapsed().as_secs(),
                tally.requests.load(Ordering::Relaxed),
                tally.errors.load(Ordering::Relaxed),
                rss_mb(pid)
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    let load_time = started.elapsed();
    println!("  load stopped; waiting for the workers and the notification queue");
    let mut expected = HashSet::new();
    for w in workers {
        for iccid in w.await? {
            expected.insert((iccid.clone(), 3));
            expected.insert((iccid, 4));
        }
    }
    let rss_end = rss_mb(pid);

    // The receiver comes back for good; everything queued must arrive.
    mood.store(UP, Ordering::Relaxed);
    let drain_deadline = Instant::now() + Duration::from_secs(120);
    let summary = loop {
        let summary = admin_get(server.admin, "/admin/summary").await?;
        let done = summary["notifications"]["queueDepth"] == 0
            && expected.is_subset(&received.acked.lock().unwrap());
        if done || Instant::now() > drain_deadline {
            break summary;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  draining: queue depth {}, acknowledged {} of {}",
                summary["notifications"]["queueDepth"],
                expected
                    .intersection(&received.acked.lock().unwrap())
                    .count(),
                expected.len()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let acked = received.acked.lock().unwrap().clone();
    let lost: Vec<_> = expected.difference(&acked).collect();
    let n = &summary["notifications"];
    let requests = tally.requests.load(Ordering::Relaxed);
    let errors = tally.errors.load(Ordering::Relaxed);
    println!(
        "requests        {requests} ({:.0}/s)",
        requests as f64 / load_time.as_secs_f64()
    );
    println!("errors          {errors}");
    println!(
        "notifications   expected {} · acknowledged {} · lost {} · mock: queued {} delivered {} failed {} dropped {} · receiver saw {} attempts",
        expected.len(),
        expected.intersection(&acked).count(),
        lost.len(),
        n["queued"],
        n["delivered"],
        n["failed"],
        n["droppedQueueFull"].as_u64().unwrap_or(0) + n["droppedByFault"].as_u64().unwrap_or(0),
        received.attempts.load(Ordering::Relaxed)
    );
    println!(
        "RSS             start {rss_start:.1} MB · middle {rss_middle:.1} MB · end {rss_end:.1} MB"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    if errors > 0 || !lost.is_empty() {
        bail!(
            "soak failed: {errors} errors, {} lost notifications",
            lost.len()
        );
    }
    Ok(())
}
