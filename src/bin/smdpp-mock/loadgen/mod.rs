//! `smdpp-mock loadgen`: realistic ES2+ load over mutual TLS, and the same-run baseline that
//! makes its numbers mean something on a shared machine (README, "Performance").
//!
//! Part of the command, not the library: it is a measuring instrument, and it is built with the
//! same stack as the server (hyper, rustls with ring, tokio) so both sides pay the same costs.

mod baseline;
mod client;
mod stats;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use rustls::pki_types::ServerName;
use smdpp_mock::pki::PkiDir;
use tokio_rustls::TlsConnector;

use client::{Step, Target};
use stats::{Samples, Summary};

pub(crate) use baseline::run as run_baseline;

#[derive(Debug, Args)]
pub(crate) struct LoadgenArgs {
    /// The instance to load (ignored with --compare, which starts its own servers).
    #[arg(long, default_value = smdpp_mock::internal::server::DEFAULT_ES2_ADDR)]
    target: SocketAddr,
    /// Start the mock and the minimal baseline server (same TLS and HTTP configuration, fixed
    /// answer) one after the other, load each the same way, and print both and their ratio.
    #[arg(long)]
    compare: bool,
    /// With --compare: pin each server under test to these CPUs and this generator to the
    /// others (`taskset`), so the ratio measures the servers rather than how the scheduler mixes
    /// them with the generator. A list as taskset takes it, e.g. `0` or `0-1`.
    #[arg(long, requires = "compare")]
    pin: Option<String>,
    /// Scenario for the mock that --compare starts (default: the built-in one).
    #[arg(long, value_delimiter = ',')]
    scenario: Vec<PathBuf>,
    /// Concurrent connections (each with one request in flight, as HTTP/1.1 clients have).
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Seconds of measured load (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of load before measuring starts (not counted; none with --requests).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Stop after this many requests in all (warm-up included) instead of after --duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Requests per second in all, sent on schedule whatever the answers' pace (open loop:
    /// latency counts from when a request was due, so a slow server cannot hide it). Without
    /// it, every connection sends its next request as soon as the last is answered.
    #[arg(long)]
    rate: Option<f64>,
    /// A new TCP connection and full TLS handshake (no resumption) for every request.
    #[arg(long)]
    new_connection: bool,
    /// Operator certificate (<certs-dir>/<NAME>.pem) and functionRequesterIdentifier.
    #[arg(long, default_value = "test-mno")]
    operator: String,
    /// Profile type the DownloadOrders ask for.
    #[arg(long, default_value = "STANDARD")]
    profile_type: String,
    /// Name the server certificate is checked against.
    #[arg(long, default_value = "localhost")]
    server_name: String,
    /// Instead of load: how long the mock takes from process start to accepting connections,
    /// with a fresh certificate directory (PKI generation) and with existing certificates.
    #[arg(long, conflicts_with_all = ["compare", "rate", "requests", "new_connection"])]
    startup: bool,
    /// Directory of the test PKI.
    #[arg(long, default_value = "certs", env = "SMDPP_CERTS_DIR")]
    certs_dir: PathBuf,
}

/// What one load run measured.
struct Report {
    label: String,
    requests: usize,
    errors: u64,
    first_error: Option<String>,
    elapsed: Duration,
    /// From when each request was due (open loop) or sent (closed loop) to its answer.
    latency: Summary,
    /// From when each request was actually sent; differs from `latency` only in open loop.
    service: Summary,
    /// Service latency of each function of the cycle, in [`CYCLE`] order.
    by_function: Vec<Summary>,
    open_loop: bool,
}

/// The functions of the cycle, in order.
const CYCLE: [&str; 3] = ["DownloadOrder", "ConfirmOrder", "CancelOrder"];

impl Report {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn print(&self) {
        println!(
            "{:<10} {:>9.0} req/s  {} requests in {:.2} s, {} errors",
            self.label,
            self.per_second(),
            self.requests,
            self.elapsed.as_secs_f64(),
            self.errors
        );
        println!("{:<10} latency  {}", "", self.latency);
        if self.open_loop {
            println!("{:<10} service  {}", "", self.service);
        }
        for (name, summary) in CYCLE.iter().zip(&self.by_function) {
            println!("{:<10}   {name:<13} {summary} (from send)", "");
        }
        if let Some(e) = &self.first_error {
            println!("{:<10} first error: {e}", "");
        }
    }
}

pub(crate) async fn run(args: LoadgenArgs) -> Result<()> {
    if args.connections == 0 {
        bail!("--connections must be at least 1");
    }
    if args.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of requests per second");
    }
    if args.startup {
        return startup(&args);
    }
    println!(
        "{} connections, {}, {}, cycle DownloadOrder → ConfirmOrder → CancelOrder(Available) as {}",
        args.connections,
        if args.new_connection {
            "a new mTLS connection per request"
        } else {
            "keep-alive mTLS"
        },
        match args.rate {
            Some(r) => format!("open loop at {r:.0} req/s"),
            None => "closed loop".to_string(),
        },
        args.operator
    );
    if !args.compare {
        let report = load(&args, args.target, "target").await?;
        report.print();
        return fail_on_errors(&[&report]);
    }
    if let Some(server_cpus) = &args.pin {
        let generator_cpus = pin_generator(server_cpus)?;
        println!("pinned: servers on CPUs {server_cpus}, this generator on CPUs {generator_cpus}");
    }
    let mock = {
        let addr = free_port()?;
        let (server, _) = ChildServer::start(
            pinned(&args, serve_command(&args, addr, &args.certs_dir)?),
            addr,
        )?;
        let report = load(&args, addr, "mock").await;
        drop(server);
        report?
    };
    mock.print();
    let baseline = {
        let addr = free_port()?;
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.arg("loadgen-baseline")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--certs-dir")
            .arg(&args.certs_dir);
        let (server, _) = ChildServer::start(pinned(&args, cmd), addr)?;
        let report = load(&args, addr, "baseline").await;
        drop(server);
        report?
    };
    baseline.print();
    println!(
        "ratio      mock/baseline: throughput {:.2}, p50 latency {:.2}, p99 latency {:.2}, p99.9 latency {:.2}",
        mock.per_second() / baseline.per_second().max(1e-9),
        f64::from(mock.latency.p50) / f64::from(baseline.latency.p50.max(1)),
        f64::from(mock.latency.p99) / f64::from(baseline.latency.p99.max(1)),
        f64::from(mock.latency.p999) / f64::from(baseline.latency.p999.max(1)),
    );
    fail_on_errors(&[&mock, &baseline])
}

fn fail_on_errors(reports: &[&Report]) -> Result<()> {
    let errors: u64 = reports.iter().map(|r| r.errors).sum();
    if errors > 0 {
        bail!("{errors} request(s) failed");
    }
    Ok(())
}

/// What every connection task shares.
struct Plan {
    target: Target,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    /// Requests left to send when the run is bounded by count.
    budget: Option<AtomicI64>,
    /// Time between one connection's requests, in open loop.
    interval: Option<Duration>,
    new_connection: bool,
}

#[derive(Default)]
struct ConnectionResult {
    latency: Samples,
    service: Samples,
    by_function: [Samples; 3],
    errors: u64,
    first_error: Option<String>,
    last_answer: Option<Instant>,
}

async fn load(args: &LoadgenArgs, addr: SocketAddr, label: &str) -> Result<Report> {
    let pki = PkiDir::new(&args.certs_dir);
    let config = client::tls_config(pki.dir(), &args.operator, !args.new_connection)?;
    let target = Target {
        addr,
        server_name: ServerName::try_from(args.server_name.clone())
            .with_context(|| format!("--server-name {}", args.server_name))?,
        connector: TlsConnector::from(config),
        requester: args.operator.as_str().into(),
        profile_type: args.profile_type.as_str().into(),
    };
    let start = Instant::now() + Duration::from_millis(20);
    // A run bounded by count measures every request.
    let warmup = if args.requests.is_some() {
        0.0
    } else {
        args.warmup.max(0.0)
    };
    let measure_from = start + Duration::from_secs_f64(warmup);
    let plan = Arc::new(Plan {
        target,
        start,
        measure_from,
        end: if args.requests.is_some() {
            // Bounded by count; the time limit only guards against a hang.
            start + Duration::from_secs(3600)
        } else {
            measure_from + Duration::from_secs_f64(args.duration.max(0.0))
        },
        budget: args.requests.map(|n| AtomicI64::new(n as i64)),
        interval: args
            .rate
            .map(|r| Duration::from_secs_f64(args.connections as f64 / r)),
        new_connection: args.new_connection,
    });
    let tasks: Vec<_> = (0..args.connections)
        .map(|id| tokio::spawn(connection(id, args.connections, plan.clone())))
        .collect();
    let mut latency = Samples::default();
    let mut service = Samples::default();
    let mut by_function: [Samples; 3] = Default::default();
    let mut errors = 0;
    let mut first_error = None;
    let mut last = plan.measure_from;
    for task in tasks {
        let r = task.await.context("a connection task panicked")?;
        latency.merge(r.latency);
        service.merge(r.service);
        for (all, one) in by_function.iter_mut().zip(r.by_function) {
            all.merge(one);
        }
        errors += r.errors;
        first_error = first_error.or(r.first_error);
        last = last.max(r.last_answer.unwrap_or(last));
    }
    Ok(Report {
        label: label.to_string(),
        requests: latency.len(),
        errors,
        first_error,
        elapsed: last.saturating_duration_since(plan.measure_from),
        latency: latency.summary(),
        service: service.summary(),
        by_function: by_function.into_iter().map(Samples::summary).collect(),
        open_loop: args.rate.is_some(),
    })
}

/// One connection's loop: runs the cycle until the time or request budget is spent.
async fn connection(id: usize, connections: usize, plan: Arc<Plan>) -> ConnectionResult {
    let mut result = ConnectionResult::default();
    let mut send = None;
    let mut step = Step::Download;
    // Spread the connections' schedules evenly over one interval.
    let mut due = plan.start
        + plan.interval.map_or(Duration::ZERO, |i| {
            i.mul_f64(id as f64 / connections as f64)
        });
    tokio::time::sleep_until(plan.start.into()).await;
    for n in 0u64.. {
        if plan.interval.is_some() {
            tokio::time::sleep_until(due.into()).await;
        } else {
            due = Instant::now();
        }
        if due >= plan.end {
            break;
        }
        if let Some(budget) = &plan.budget {
            if budget.fetch_sub(1, Ordering::Relaxed) <= 0 {
                break;
            }
        }
        let index = step.index();
        let sent = Instant::now();
        let outcome = send_step(&plan.target, &mut send, &step, &format!("LG-{id}-{n}")).await;
        let answered = Instant::now();
        match outcome {
            Ok(reply) => step = std::mem::replace(&mut step, Step::Download).next(&reply),
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{e:#}"));
                step = Step::Download;
                send = None;
            }
        }
        if plan.new_connection {
            send = None;
        }
        if due >= plan.measure_from {
            result.latency.record(answered - due);
            result.service.record(answered - sent);
            result.by_function[index].record(answered - sent);
            result.last_answer = Some(answered);
        }
        if let Some(interval) = plan.interval {
            due += interval;
        }
    }
    // Finish a cycle the stop cut short (unmeasured), so the profile goes back to Available
    // and runs one after the other never drain the inventory.
    let mut n = 0;
    while step != Step::Download {
        let outcome = send_step(&plan.target, &mut send, &step, &format!("LG-{id}-end-{n}")).await;
        n += 1;
        step = match outcome {
            Ok(reply) => step.next(&reply),
            Err(e) => {
                result.errors += 1;
                result.first_error.get_or_insert_with(|| format!("{e:#}"));
                Step::Download
            }
        };
    }
    result
}

/// Sends `step` on the connection, opening one first if there is none.
async fn send_step(
    target: &Target,
    send: &mut Option<hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>>,
    step: &Step,
    call_id: &str,
) -> Result<serde_json::Value> {
    let conn = match send {
        Some(conn) => conn,
        None => send.insert(target.connect().await?),
    };
    client::call(conn, step.function(), &step.body(target, call_id)).await
}

/// A server process for one measurement; killed when dropped. Its stderr goes to a file (a
/// pipe nobody reads could fill and stall it) that is shown if it fails to start.
struct ChildServer {
    child: Child,
    log: PathBuf,
}

impl ChildServer {
    /// Starts `cmd` and waits until `addr` accepts connections.
    fn start(mut cmd: Command, addr: SocketAddr) -> Result<(ChildServer, Duration)> {
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let log = std::env::temp_dir().join(format!(
            "smdpp-loadgen-{}-{}.log",
            std::process::id(),
            STARTED.fetch_add(1, Ordering::Relaxed)
        ));
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .context("starting the server process")?;
        let mut server = ChildServer { child, log };
        let deadline = started + Duration::from_secs(30);
        loop {
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok((server, started.elapsed()));
            }
            if let Some(status) = server.child.try_wait()? {
                let stderr = std::fs::read_to_string(&server.log).unwrap_or_default();
                bail!(
                    "the server process exited ({status}) before accepting connections:\n{stderr}"
                );
            }
            if Instant::now() > deadline {
                bail!("the server did not accept connections on {addr} within 30 s");
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `cmd` run under `taskset -c CPUS` when the servers are pinned.
fn pinned(args: &LoadgenArgs, cmd: Command) -> Command {
    let Some(cpus) = &args.pin else {
        return cmd;
    };
    let mut wrapped = Command::new("taskset");
    wrapped
        .arg("-c")
        .arg(cpus)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(v) => wrapped.env(key, v),
            None => wrapped.env_remove(key),
        };
    }
    wrapped
}

/// Pins every thread of this process to the CPUs the servers do not get; returns them.
fn pin_generator(server_cpus: &str) -> Result<String> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let taken = cpu_list(server_cpus)
        .with_context(|| format!("--pin {server_cpus:?}: a CPU list such as 0 or 0-1,3"))?;
    let rest: Vec<String> = (0..all)
        .filter(|c| !taken.contains(c))
        .map(|c| c.to_string())
        .collect();
    if rest.is_empty() {
        bail!("--pin {server_cpus} leaves no CPU for the generator (this machine has {all})");
    }
    let rest = rest.join(",");
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", &rest, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .context("running taskset (util-linux) to pin the generator")?;
    if !status.success() {
        bail!("taskset could not pin the generator to CPUs {rest}");
    }
    Ok(rest)
}

/// The CPUs of a taskset-style list (`0`, `0-2`, `1,3`).
fn cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            Some((a, b)) => {
                out.extend(a.trim().parse::<usize>().ok()?..=b.trim().parse::<usize>().ok()?)
            }
            None => out.push(part.trim().parse().ok()?),
        }
    }
    Some(out)
}

/// A loopback address with a port that was free a moment ago.
fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Time from process start to accepting connections: five runs each with a fresh PKI
/// directory and with the certificates left by the previous run; the median and the range.
fn startup(args: &LoadgenArgs) -> Result<()> {
    let scratch = std::env::temp_dir().join(format!("smdpp-startup-{}", std::process::id()));
    let mut fresh = Vec::new();
    let mut existing = Vec::new();
    let result = (|| -> Result<()> {
        for _ in 0..5 {
            let _ = std::fs::remove_dir_all(&scratch);
            fresh.push(time_to_ready(args, &scratch)?);
            existing.push(time_to_ready(args, &scratch)?);
        }
        Ok(())
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result?;
    for (label, mut times) in [
        ("with PKI generation", fresh),
        ("with existing certificates", existing),
    ] {
        times.sort();
        println!(
            "ready {label}: median {:.1} ms (min {:.1}, max {:.1}, 5 runs)",
            ms(times[2]),
            ms(times[0]),
            ms(times[4])
        );
    }
    Ok(())
}

fn time_to_ready(args: &LoadgenArgs, certs: &Path) -> Result<Duration> {
    let addr = free_port()?;
    let (_server, ready) = ChildServer::start(serve_command(args, addr, certs)?, addr)?;
    Ok(ready)
}

/// `smdpp-mock serve` of this executable on `addr` with the run's scenario.
fn serve_command(args: &LoadgenArgs, addr: SocketAddr, certs: &Path) -> Result<Command> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("serve")
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--admin-listen")
        .arg("127.0.0.1:0")
        .arg("--es9-listen")
        .arg("127.0.0.1:0")
        .arg("--smds-listen")
        .arg("127.0.0.1:0")
        .arg("--certs-dir")
        .arg(certs);
    for s in &args.scenario {
        cmd.arg("--scenario").arg(s);
    }
    Ok(cmd)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
