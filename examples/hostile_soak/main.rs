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
//! - **ES9+, from 26 source addresses of 127.0.0.0/8** (`es9.rs`): anonymous InitiateAuthentication
//!   back to back from 16 addresses, each with a 200-identifier `euiccInfo1`, never
//!   authenticated (every call leaves a session); AuthenticateClient with 30 KiB of garbage
//!   from 4; 128 idle or slow (a byte a second) connections from 4 more.
//! - **Real downloads** beside all that: 2 library LPAs with software eUICCs, each ordering
//!   through ES2+ and downloading over ES9+ back to back; their success and latency are
//!   reported. `--no-flood` runs them alone, for the baseline. Their profile type holds 50,000
//!   profiles: enough for five minutes under the flood (about 25 downloads a second here), and
//!   for two minutes alone (about 380 a second); a longer baseline runs out.
//!
//! It samples the server's RSS every 10 s and prints a table; exit status 1 when RSS grew more
//! than 10% over the second half, passed the ceiling (`--ceiling-mb`, default 1000), or a real
//! download failed. At the end it resets the mock (`POST /admin/reset`) and reports RSS after.
//!
//! ```sh
//! cargo build --release && cargo run --release --example hostile_soak -- --duration 300
//! cargo run --release --example hostile_soak -- --duration 120 --no-flood   # the baseline
//! ```

mod es9;
#[path = "../support/mod.rs"]
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
    /// Only the real downloads: the baseline.
    no_flood: bool,
}

fn options() -> Result<Options> {
    let mut o = Options {
        duration: Duration::from_secs(300),
        binary: PathBuf::from("target/release/smdpp-mock"),
        // The million profiles (about 340 MB), the journal's two shares of 10,000 entries with
        // bodies up to 8 KiB each (up to about 200 MB), the EventID memory, connections.
        ceiling_mb: 1000.0,
        no_flood: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match flag.as_str() {
            "--duration" => o.duration = Duration::from_secs(value()?.parse()?),
            "--binary" => o.binary = PathBuf::from(value()?),
            "--ceiling-mb" => o.ceiling_mb = value()?.parse()?,
            "--no-flood" => o.no_flood = true,
            other => bail!(
                "unknown flag {other}; use --duration S --binary PATH --ceiling-mb MB --no-flood"
            ),
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
  - id: DL
    owner: test-mno
    profiles: [{{ range: {{ start: "894450500000000000", count: 50000 }} }}]
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
    fn count<T, E>(&self, r: &std::result::Result<T, E>) {
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
    let gsma = smdpp_rsp::pki::GsmaPki::new(&dir.join("certs"));
    let target = es9::Target::new(server.es9, &gsma)?;
    let es9_tally = Arc::new(es9::Tally::default());
    let results = Arc::new(es9::Downloads::default());
    let mut downloaders = Vec::new();
    for w in 0..2 {
        downloaders.push(tokio::spawn(es9::downloads(
            client(),
            gsma.clone(),
            target.clone(),
            "DL",
            format!("89049032{:024}", 7000 + w),
            stop.clone(),
            results.clone(),
        )));
    }
    if !options.no_flood {
        spawn_flood(
            &mut tasks, &stop, &tally, &es9_tally, &target, &tls, &server, &client,
        );
    }
    print_header();
    let started = Instant::now();
    let mut samples: Vec<(Duration, f64)> = Vec::new();
    while started.elapsed() < options.duration {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let rss = rss_mb(pid);
        samples.push((started.elapsed(), rss));
        println!(
            "{:>5}s | {:>8.1} | {:>10} | {:>8} | {:>9} | {:>9} | {:>7} | {:>8} | {:>9} | {:>6} | {:>6}",
            started.elapsed().as_secs(),
            rss,
            tally.requests.load(Ordering::Relaxed),
            tally.cycles.load(Ordering::Relaxed),
            metric(server.admin, "smdpp_retired_event_ids").await,
            metric(server.admin, "smdpp_retired_event_ids_forgotten_total").await,
            tally.pages.load(Ordering::Relaxed),
            answered.load(Ordering::Relaxed),
            es9_tally.requests.load(Ordering::Relaxed),
            es9_tally.busy.load(Ordering::Relaxed),
            results.latencies.lock().unwrap().len(),
        );
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.abort();
    }
    for d in downloaders {
        if let Ok(Err(e)) = d.await {
            results
                .failures
                .lock()
                .unwrap()
                .push(format!("a download loop stopped: {e:#}"));
        }
    }
    report(
        &options,
        &samples,
        started.elapsed().as_secs_f64(),
        &tally,
        &es9_tally,
        &results,
        &answered,
        &server,
    )
    .await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Every hostile client: ES2+ (EventID loop, long identifiers, HTTP/2 floods, sparse queries,
/// notifying orders with huge answers) and ES9+ (from addresses 127.0.0.2 to 127.0.0.27).
#[allow(clippy::too_many_arguments)]
fn spawn_flood(
    tasks: &mut Vec<tokio::task::JoinHandle<()>>,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
    es9_tally: &Arc<es9::Tally>,
    target: &es9::Target,
    tls: &rustls::ClientConfig,
    server: &support::Server,
    client: &dyn Fn() -> OperatorClient,
) {
    let source = |n: u8| std::net::IpAddr::from([127, 0, 0, n]);
    for n in 2..18 {
        tasks.push(tokio::spawn(es9::initiate_flood(
            target.clone(),
            source(n),
            stop.clone(),
            es9_tally.clone(),
        )));
    }
    for n in 18..22 {
        tasks.push(tokio::spawn(es9::garbage_authenticate(
            target.clone(),
            source(n),
            stop.clone(),
            es9_tally.clone(),
        )));
    }
    for n in 22..26 {
        tasks.push(tokio::spawn(es9::idle_and_slow(
            target.clone(),
            source(n),
            32,
            stop.clone(),
            es9_tally.clone(),
        )));
    }
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
}

fn print_header() {
    println!(
        "{:>6} | {:>8} | {:>10} | {:>8} | {:>9} | {:>9} | {:>7} | {:>8} | {:>9} | {:>6} | {:>6}",
        "time",
        "RSS MB",
        "requests",
        "cycles",
        "retired",
        "forgotten",
        "pages",
        "8 MiB answers",
        "ES9+ req",
        "503",
        "DL ok"
    );
}

/// The closing report; an error when memory was not bounded or a real download failed.
#[allow(clippy::too_many_arguments)]
async fn report(
    options: &Options,
    samples: &[(Duration, f64)],
    elapsed: f64,
    tally: &Tally,
    es9_tally: &es9::Tally,
    results: &es9::Downloads,
    answered: &AtomicU64,
    server: &support::Server,
) -> Result<()> {
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
    println!(
        "ES2+: requests {} ({:.0}/s), EventID cycles {}, transport errors {}, platform pages {}, callback answers {}",
        tally.requests.load(Ordering::Relaxed),
        tally.requests.load(Ordering::Relaxed) as f64 / elapsed,
        tally.cycles.load(Ordering::Relaxed),
        tally.transport_errors.load(Ordering::Relaxed),
        tally.pages.load(Ordering::Relaxed),
        answered.load(Ordering::Relaxed)
    );
    println!(
        "ES9+ hostile: requests {} ({:.0}/s): sessions started {}, 503 {}, refused {}, transport errors {}; idle/slow connections closed by the server {}",
        es9_tally.requests.load(Ordering::Relaxed),
        es9_tally.requests.load(Ordering::Relaxed) as f64 / elapsed,
        es9_tally.accepted.load(Ordering::Relaxed),
        es9_tally.busy.load(Ordering::Relaxed),
        es9_tally.refused.load(Ordering::Relaxed),
        es9_tally.transport_errors.load(Ordering::Relaxed),
        es9_tally.closed.load(Ordering::Relaxed),
    );
    println!(
        "ES9+ server: sessions evicted anonymous {} authenticated {}, InitiateAuthentication refused per address {}, connections refused per address {}",
        metric(server.admin, "smdpp_es9_sessions_evicted_total{table=\"anonymous\"}").await,
        metric(server.admin, "smdpp_es9_sessions_evicted_total{table=\"authenticated\"}").await,
        metric(server.admin, "smdpp_es9_sessions_refused_total{reason=\"per_address\"}").await,
        metric(server.admin, "smdpp_connections_refused_total{reason=\"per_address\"}").await,
    );
    let mut latencies = results.latencies.lock().unwrap().clone();
    latencies.sort();
    let failures = results.failures.lock().unwrap().clone();
    let total = latencies.len() + failures.len();
    println!(
        "real downloads: {} of {total} installed ({:.1}%), {:.1}/s; latency p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        if total == 0 { 0.0 } else { latencies.len() as f64 * 100.0 / total as f64 },
        latencies.len() as f64 / elapsed,
        es9::quantile_ms(&latencies, 0.5),
        es9::quantile_ms(&latencies, 0.9),
        es9::quantile_ms(&latencies, 0.99),
        es9::quantile_ms(&latencies, 1.0),
    );
    for f in failures.iter().take(5) {
        println!("  failed: {f}");
    }
    println!(
        "RSS: middle {middle:.1} MB, second-half max {second_half_max:.1} MB (+{growth:.1}%), peak {peak:.1} MB, ceiling {:.0} MB",
        options.ceiling_mb
    );
    // A reset means a clean instance: what the clients left behind goes with the old world.
    // The new world is built before the old one is dropped, and the allocator keeps what it
    // freed for reuse, so the first reset raises RSS by about one inventory; a leak would show
    // as growth with each further reset.
    let pid = server.child.id();
    let mut rss = vec![rss_mb(pid)];
    for _ in 0..3 {
        admin_post(server.admin, "/admin/reset").await?;
        tokio::time::sleep(Duration::from_secs(5)).await;
        rss.push(rss_mb(pid));
    }
    println!(
        "POST /admin/reset three times: RSS {:.1} MB before, then {:.1} / {:.1} / {:.1} MB 5 s after each",
        rss[0], rss[1], rss[2], rss[3]
    );
    if growth > 10.0 || peak > options.ceiling_mb {
        bail!("memory not bounded: +{growth:.1}% over the second half, peak {peak:.1} MB");
    }
    if !failures.is_empty() || latencies.is_empty() {
        bail!("{} of {total} real downloads failed", failures.len());
    }
    Ok(())
}

/// POSTs to the admin API (loopback, no token).
async fn admin_post(admin: SocketAddr, path: &str) -> Result<()> {
    let tcp = TcpStream::connect(admin).await?;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let response = send
        .send_request(
            Request::post(path)
                .header("host", "localhost")
                .body(Full::new(Bytes::new()))?,
        )
        .await?;
    if !response.status().is_success() {
        bail!("{path}: HTTP {}", response.status());
    }
    Ok(())
}
