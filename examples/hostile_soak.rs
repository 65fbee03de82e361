//! The hostile-client soak: the release binary as its own process, with a million-profile
//! inventory, under clients that push every structure a client can grow, all at once:
//!
//! - **EventID loop** (8 connections): DownloadOrder{eid} → ConfirmOrder{smdsAddress, releaseFlag
//!   false, a new 128-character MatchingID} → CancelOrder, so every cycle retires an SM-DS
//!   EventID that must be remembered (`smdp.limits.retiredEventIds`, set to 100,000 here so the
//!   memory fills within the warm-up; the default 1,048,576 is about 26 MiB).
//! - **Long identifiers** (4 connections): ConfirmOrder with a 30,000-character
//!   `functionCallIdentifier` and a 30,000-digit `iccid`, each one new, into the journal.
//! - **HTTP/2 stream floods** (4 connections): 64 requests in flight per connection, each with a
//!   60 KiB body (the server allows 8 streams per connection; the rest wait or are refused).
//! - **Huge callback answers**: every notification is answered with an 8 MiB body (orders of
//!   one profile type are downloaded and installed by a device timeline, 10 per second).
//! - **Sparse platform queries** (2 connections): `/profiles?state=Installed` over the whole
//!   million, cursor after cursor, and `/profile_types`.
//!
//! It samples the server's RSS every 10 s and prints a table; exit status 1 when RSS grew more
//! than 10% over the second half or passed the ceiling (`--ceiling-mb`, default 800).
//!
//! ```sh
//! cargo build --release && cargo run --release --example hostile_soak -- --duration 300
//! ```

#[path = "support/mod.rs"]
mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::rss_mb;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::OperatorClient;
use tokio::net::{TcpListener, TcpStream};

const EID: &str = "89049032123451234512345678901235";

struct Options {
    duration: Duration,
    binary: PathBuf,
    ceiling_mb: f64,
}

fn options() -> Result<Options> {
    let mut o = Options {
        duration: Duration::from_secs(300),
        binary: PathBuf::from("target/release/smdpp-mock"),
        ceiling_mb: 800.0,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match flag.as_str() {
            "--duration" => o.duration = Duration::from_secs(value()?.parse()?),
            "--binary" => o.binary = PathBuf::from(value()?),
            "--ceiling-mb" => o.ceiling_mb = value()?.parse()?,
            other => bail!("unknown flag {other}; use --duration S --binary PATH --ceiling-mb MB"),
        }
    }
    Ok(o)
}

/// A notification endpoint that answers every POST with 200 and an 8 MiB body.
async fn huge_receiver(answered: Arc<AtomicU64>) -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let huge = Bytes::from(vec![b'x'; 8 << 20]);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let (huge, answered) = (huge.clone(), answered.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let (huge, answered) = (huge.clone(), answered.clone());
                    async move {
                        let _ = req.into_body().collect().await;
                        answered.fetch_add(1, Ordering::Relaxed);
                        Ok::<_, std::convert::Infallible>(Response::new(Full::new(huge)))
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
smdp:
  matchingIdSeed: 3
  limits: {{ retiredEventIds: 100000 }}
operators:
  - id: test-mno
    callback:
      url: http://{receiver}/mno
      timeout: 2s
      maxAttempts: 2
      initialBackoff: 100ms
      maxBackoff: 1s
profileTypes:
  - id: LOOP
    owner: test-mno
    profiles: [{{ range: {{ start: "894450300000000000", count: 2000 }} }}]
  - id: NOTIFY
    owner: test-mno
    profiles: [{{ range: {{ start: "894450400000000000", count: 20000 }} }}]
  - id: BULK-A
    owner: test-mno
    profiles: [{{ range: {{ start: "894450100000000000", count: 500000 }} }}]
  - id: BULK-B
    owner: test-mno
    profiles: [{{ range: {{ start: "894450200000000000", count: 500000 }} }}]
devices:
  - match: {{ profileType: NOTIFY }}
    timeline:
      - {{ after: 50ms, event: download }}
      - {{ after: 50ms, event: install-success }}
"#
    )
}

/// The value of a metric series (`name{labels}` as exposed), 0 when absent.
async fn metric(admin: SocketAddr, series: &str) -> u64 {
    let text = async {
        let tcp = TcpStream::connect(admin).await?;
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
        tokio::spawn(conn);
        let response = send
            .send_request(
                Request::builder()
                    .uri("/metrics")
                    .header("host", "localhost")
                    .body(Full::new(Bytes::new()))?,
            )
            .await?;
        let body = response.into_body().collect().await?.to_bytes();
        anyhow::Ok(String::from_utf8_lossy(&body).into_owned())
    }
    .await
    .unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    cycles: AtomicU64,
    pages: AtomicU64,
    transport_errors: AtomicU64,
}

impl Tally {
    fn count<T>(&self, r: &Result<T>) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if r.is_err() {
            self.transport_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A DownloadOrder for `profile_type`, counted; the ICCID it allocated, if it did.
async fn download_order(
    client: &OperatorClient,
    tally: &Tally,
    profile_type: &str,
) -> Option<String> {
    let order = client
        .call(
            Function::DownloadOrder,
            json!({ "profileType": profile_type, "eid": EID }),
        )
        .await;
    tally.count(&order);
    order
        .ok()
        .and_then(|r| r.body["iccid"].as_str().map(str::to_owned))
}

async fn event_id_loop(
    client: OperatorClient,
    worker: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let Some(iccid) = download_order(&client, &tally, "LOOP").await else {
            continue;
        };
        let mut id = format!("W{worker:02}-{n:012}-");
        while id.len() < 128 {
            id.push('A');
        }
        let r = client
            .call(
                Function::ConfirmOrder,
                json!({ "iccid": iccid, "eid": EID, "matchingId": id, "smdsAddress": "smds.example.com", "releaseFlag": false }),
            )
            .await;
        tally.count(&r);
        let r = client
            .call(
                Function::CancelOrder,
                json!({ "iccid": iccid, "eid": EID, "matchingId": id, "finalProfileStatusIndicator": "Available" }),
            )
            .await;
        tally.count(&r);
        tally.cycles.fetch_add(1, Ordering::Relaxed);
    }
}

async fn long_identifiers(
    client: OperatorClient,
    worker: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let call_id = format!("{worker}-{n}-{}", "c".repeat(30_000));
        let iccid = format!("{n}{}", "8".repeat(30_000));
        let body = json!({
            "header": { "functionRequesterIdentifier": "test-mno", "functionCallIdentifier": call_id },
            "iccid": iccid,
            "releaseFlag": true,
        });
        let r = client
            .call_raw(Function::ConfirmOrder, body.to_string())
            .await;
        tally.count(&r);
    }
}

/// One HTTP/2 connection with `streams` requests in flight, each with a 60 KiB body.
async fn h2_flood(
    tls: rustls::ClientConfig,
    es2: SocketAddr,
    streams: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut tls = tls;
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let body = Bytes::from(format!(
        "{{\"header\":{{\"functionRequesterIdentifier\":\"test-mno\",\"functionCallIdentifier\":\"flood\"}},\"profileType\":\"{}\"}}",
        "F".repeat(60 * 1024)
    ));
    while !stop.load(Ordering::Relaxed) {
        let connected = async {
            let tcp = TcpStream::connect(es2).await?;
            let name = rustls::pki_types::ServerName::try_from("localhost")?;
            let stream = connector.connect(name, tcp).await?;
            let (send, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                    .await?;
            tokio::spawn(conn);
            anyhow::Ok(send)
        }
        .await;
        let Ok(send) = connected else {
            tally.transport_errors.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let tasks: Vec<_> = (0..streams)
            .map(|_| {
                let (mut send, body, stop, tally) =
                    (send.clone(), body.clone(), stop.clone(), tally.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let request = Request::post(format!(
                            "https://localhost:{}{}",
                            es2.port(),
                            Function::DownloadOrder.path()
                        ))
                        .header("content-type", "application/json")
                        .header("x-admin-protocol", "gsma/rsp/v2.5.0")
                        .body(Full::new(body.clone()))
                        .expect("a request");
                        if send.ready().await.is_err() {
                            return;
                        }
                        let r = send.send_request(request).await;
                        tally.requests.fetch_add(1, Ordering::Relaxed);
                        match r {
                            Ok(response) => {
                                let _ = response.into_body().collect().await;
                            }
                            Err(_) => {
                                tally.transport_errors.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

async fn sparse_queries(client: OperatorClient, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut cursor: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        let path = match &cursor {
            None => "/profiles?state=Installed&limit=100".to_string(),
            Some(c) => format!("/profiles?state=Installed&limit=100&cursor={c}"),
        };
        let r = client.get(&path).await;
        tally.count(&r);
        tally.pages.fetch_add(1, Ordering::Relaxed);
        cursor = r
            .ok()
            .and_then(|r| r.body["nextCursor"].as_str().map(str::to_owned));
        let r = client.get("/profile_types").await;
        tally.count(&r);
    }
}

/// Orders of the device-timeline type, 10 per second: each one is downloaded and installed,
/// and both notifications get 8 MiB answers.
async fn notifying_orders(client: OperatorClient, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let Some(iccid) = download_order(&client, &tally, "NOTIFY").await else {
            continue;
        };
        let r = client
            .call(
                Function::ConfirmOrder,
                json!({ "iccid": iccid, "releaseFlag": true }),
            )
            .await;
        tally.count(&r);
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let options = options()?;
    let dir = std::env::temp_dir().join(format!("smdpp-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let answered = Arc::new(AtomicU64::new(0));
    let receiver = huge_receiver(answered.clone()).await?;
    std::fs::write(dir.join("hostile.yaml"), scenario(receiver))?;
    let server = support::start_server(
        &options.binary,
        &dir,
        "hostile.yaml",
        "warn,smdpp_mock::server=info",
    )?;
    let pid = server.child.id();
    println!(
        "hostile soak: {} s, server pid {pid} on {}, RSS after start {:.1} MB",
        options.duration.as_secs(),
        server.es2,
        rss_mb(pid)
    );

    let tls = support::operator_tls(&dir.join("certs"), "test-mno")?;
    let base = format!("https://localhost:{}", server.es2.port());
    let client = || OperatorClient::new(tls.clone(), base.clone(), "test-mno");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut tasks = Vec::new();
    for w in 0..8 {
        tasks.push(tokio::spawn(event_id_loop(
            client(),
            w,
            stop.clone(),
            tally.clone(),
        )));
    }
    for w in 0..4 {
        tasks.push(tokio::spawn(long_identifiers(
            client(),
            w,
            stop.clone(),
            tally.clone(),
        )));
    }
    for _ in 0..4 {
        tasks.push(tokio::spawn(h2_flood(
            tls.clone(),
            server.es2,
            64,
            stop.clone(),
            tally.clone(),
        )));
    }
    for _ in 0..2 {
        tasks.push(tokio::spawn(sparse_queries(
            client(),
            stop.clone(),
            tally.clone(),
        )));
    }
    tasks.push(tokio::spawn(notifying_orders(
        client(),
        stop.clone(),
        tally.clone(),
    )));

    println!(
        "{:>6} | {:>8} | {:>10} | {:>8} | {:>9} | {:>9} | {:>7} | {:>8}",
        "time", "RSS MB", "requests", "cycles", "retired", "forgotten", "pages", "8 MiB answers"
    );
    let started = Instant::now();
    let mut samples: Vec<(Duration, f64)> = Vec::new();
    while started.elapsed() < options.duration {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = rss_mb(pid);
        samples.push((started.elapsed(), rss));
        println!(
            "{:>5}s | {:>8.1} | {:>10} | {:>8} | {:>9} | {:>9} | {:>7} | {:>8}",
            started.elapsed().as_secs(),
            rss,
            tally.requests.load(Ordering::Relaxed),
            tally.cycles.load(Ordering::Relaxed),
            metric(server.admin, "smdpp_retired_event_ids").await,
            metric(server.admin, "smdpp_retired_event_ids_forgotten_total").await,
            tally.pages.load(Ordering::Relaxed),
            answered.load(Ordering::Relaxed),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    let half = options.duration / 2;
    let middle = samples
        .iter()
        .find(|(t, _)| *t >= half)
        .map_or(0.0, |(_, r)| *r);
    let second_half_max = samples
        .iter()
        .filter(|(t, _)| *t >= half)
        .map(|(_, r)| *r)
        .fold(0.0, f64::max);
    let peak = samples.iter().map(|(_, r)| *r).fold(0.0, f64::max);
    let growth = if middle > 0.0 {
        (second_half_max - middle) / middle * 100.0
    } else {
        0.0
    };
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "requests {} ({:.0}/s), EventID cycles {}, transport errors {}, platform pages {}, callback answers {}",
        tally.requests.load(Ordering::Relaxed),
        tally.requests.load(Ordering::Relaxed) as f64 / elapsed,
        tally.cycles.load(Ordering::Relaxed),
        tally.transport_errors.load(Ordering::Relaxed),
        tally.pages.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed)
    );
    println!(
        "RSS: middle {middle:.1} MB, second-half max {second_half_max:.1} MB (+{growth:.1}%), peak {peak:.1} MB, ceiling {:.0} MB",
        options.ceiling_mb
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    if growth > 10.0 || peak > options.ceiling_mb {
        bail!("memory not bounded: +{growth:.1}% over the second half, peak {peak:.1} MB");
    }
    Ok(())
}
