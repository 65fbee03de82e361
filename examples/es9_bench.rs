//! ES9+ downloads per second: the release binary as its own process, and the library's LPA with
//! software eUICCs as the load, on the same machine.
//!
//! 1. The orders are placed first through ES2+ (DownloadOrder, ConfirmOrder with releaseFlag),
//!    outside the measurement.
//! 2. `--concurrency` LPAs (one eUICC each) download them over ES9+: InitiateAuthentication,
//!    AuthenticateClient, GetBoundProfilePackage, and HandleNotification with the installation
//!    result, each over keep-alive TLS; every package is decrypted and every MAC verified on the
//!    card. After a warm-up, `--downloads` complete downloads are timed.
//! 3. The server's CPU time (user + system, from /proc) over the timed downloads, per download,
//!    beside the cost of the crypto operations one download needs on the SM-DP+'s side (3 ECDSA
//!    signatures, 5 verifications, one ECDH key pair and agreement, the key derivation and the
//!    SCP03t protection of the package), measured single-threaded in the same run.
//!
//! ```sh
//! cargo build --release && cargo run --release --example es9_bench -- --downloads 6000
//! ```

#[path = "support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::json;
use smdpp_mock::es2::Function;
use smdpp_mock::OperatorClient;
use smdpp_rsp::euicc::Euicc;
use smdpp_rsp::lpa::Lpa;
use smdpp_rsp::pki::GsmaPki;

struct Options {
    downloads: usize,
    warmup: usize,
    concurrency: usize,
    binary: PathBuf,
}

fn options() -> Result<Options> {
    let mut o = Options {
        downloads: 6000,
        warmup: 300,
        concurrency: 16,
        binary: PathBuf::from("target/release/smdpp-mock"),
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().context("a value after the flag");
        match flag.as_str() {
            "--downloads" => o.downloads = value()?.parse()?,
            "--warmup" => o.warmup = value()?.parse()?,
            "--concurrency" => o.concurrency = value()?.parse()?,
            "--binary" => o.binary = value()?.into(),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

/// User + system CPU seconds of a process (all its threads).
fn cpu_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat(5); here 0-based after the name: 11, 12.
    (ticks(11) + ticks(12)) / clock_ticks()
}

fn clock_ticks() -> f64 {
    // USER_HZ: 100 on Linux for every architecture this runs on.
    100.0
}

async fn order_all(
    client: OperatorClient,
    count: usize,
    queue: Arc<Mutex<VecDeque<String>>>,
) -> Result<()> {
    for _ in 0..count {
        let order = client
            .call(Function::DownloadOrder, json!({ "profileType": "BENCH" }))
            .await?;
        let iccid = order.body["iccid"].as_str().context("an ICCID")?.to_owned();
        let confirm = client
            .call(
                Function::ConfirmOrder,
                json!({ "iccid": iccid, "releaseFlag": true }),
            )
            .await?;
        let mid = confirm.body["matchingId"]
            .as_str()
            .context("a MatchingID")?
            .to_owned();
        queue.lock().unwrap().push_back(mid);
    }
    Ok(())
}

/// One LPA downloading orders from the queue until it is empty; each installed profile is
/// deleted from the card afterwards, so the card never fills.
async fn download_loop(
    mut lpa: Lpa,
    address: String,
    queue: Arc<Mutex<VecDeque<String>>>,
    done: Arc<std::sync::atomic::AtomicUsize>,
) -> Result<Lpa> {
    loop {
        let Some(mid) = queue.lock().unwrap().pop_front() else {
            return Ok(lpa);
        };
        let downloaded = lpa.download(&format!("1${address}${mid}"), None).await?;
        if !downloaded.installed {
            bail!("not installed: {}", downloaded.iccid);
        }
        support::make_room(&mut lpa, &downloaded.iccid);
        done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Microseconds of the SM-DP+'s own crypto for one download, the median of `rounds`: the
/// crypto operations only (certificates are parsed before the clock starts).
fn crypto_cost(pki: &GsmaPki, rounds: usize) -> Result<f64> {
    use smdpp_rsp::cert::{Certificate, Role};
    use smdpp_rsp::{bpp, crypto, profile_package as package, tlv};
    let server = pki.server_credentials()?;
    let euicc = pki.sample_euicc()?;
    let eum = Certificate::parse(&euicc.eum)?;
    let card = Certificate::parse(&euicc.certificate)?;
    let ci = &server.cis[0];
    let eid = card.eid().context("an EID")?;
    let message = vec![0x5A; 300];
    let euicc_signature = euicc.key.sign(&message);
    let iccid: smdpp_mock::ids::Iccid = "8944500100000000004".parse()?;
    let subscription = package::SubscriptionRule::default().for_iccid(&iccid);
    let profile = package::synthetic(&iccid, &subscription, package::DEFAULT_FILLER);
    let metadata = vec![0x42; 200];
    let card_key = crypto::OneTimeKey::generate();
    let card_public = *card_key.public_key();
    let otpk_tlv = tlv::encode(0x5F49, &card_public);
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let started = Instant::now();
        // InitiateAuthentication: serverSignature1.
        std::hint::black_box(server.dp_auth_key.sign(&message));
        // AuthenticateClient: the EUM and eUICC certificates' signatures, euiccSignature1,
        // smdpSignature2.
        eum.check_issued_by(ci, Role::Ci)?;
        card.check_issued_by(&eum, Role::Eum)?;
        assert!(crypto::verify(&card.public_key, &message, &euicc_signature));
        std::hint::black_box(server.dp_pb_key.sign(&message));
        // GetBoundProfilePackage: euiccSignature2, key agreement, KDF, the package (smdpSign
        // and SCP03t).
        assert!(crypto::verify(&card.public_key, &message, &euicc_signature));
        let one_time = crypto::OneTimeKey::generate();
        let smdp_otpk = *one_time.public_key();
        let shs = one_time.agree(&card_public).context("ECDH")?;
        let keys = crypto::derive_session_keys(&shs, b"smdpp-mock", &eid);
        std::hint::black_box(bpp::build(
            &bpp::Binding {
                transaction_id: &[1; 16],
                host_id: b"smdpp-mock",
                smdp_otpk: &smdp_otpk,
                euicc_otpk_tlv: &otpk_tlv,
                keys: &keys,
                signer: &server.dp_pb_key,
            },
            &metadata,
            &profile,
            None,
        ));
        // HandleNotification: euiccSignPIR.
        assert!(crypto::verify(&card.public_key, &message, &euicc_signature));
        samples.push(started.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

fn main() -> Result<()> {
    let options = options()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let dir = std::env::temp_dir().join(format!("smdpp-es9-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let total = options.downloads + options.warmup;
    std::fs::write(
        dir.join("bench.yaml"),
        format!(
            "smdp:\n  address: localhost\noperators:\n  - id: test-mno\nprofileTypes:\n  - id: BENCH\n    owner: test-mno\n    profiles:\n      - range: {{ start: \"894450010000000000\", count: {} }}\n",
            total + 100
        ),
    )?;
    let server = support::start_server(
        &options.binary,
        &dir,
        "bench.yaml",
        "warn,smdpp_mock::server=info",
    )?;
    let pid = server.child.id().to_string();
    let address = format!("localhost:{}", server.es9.port());
    let gsma = GsmaPki::new(&dir.join("certs"));
    let result = runtime.block_on(async {
        let tls = support::operator_tls(&dir.join("certs"), "test-mno")?;
        let base = format!("https://localhost:{}", server.es2.port());
        // The orders, placed through ES2+ before anything is timed.
        let ordered = Instant::now();
        let queue = Arc::new(Mutex::new(VecDeque::new()));
        let mut tasks = Vec::new();
        for w in 0..8 {
            let n = total / 8 + usize::from(w < total % 8);
            let client = OperatorClient::new(tls.clone(), base.clone(), "test-mno");
            tasks.push(tokio::spawn(order_all(client, n, queue.clone())));
        }
        for t in tasks {
            t.await??;
        }
        println!(
            "ES9+ bench: {} orders released through ES2+ in {:.1} s; {} LPAs, {} warm-up + {} timed downloads",
            total,
            ordered.elapsed().as_secs_f64(),
            options.concurrency,
            options.warmup,
            options.downloads
        );
        let done = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut lpas = Vec::new();
        for i in 0..options.concurrency {
            let eid = format!("89049032{:024}", 1000 + i);
            let credentials = gsma.issue_euicc(&eid)?;
            let ci = credentials.ci.clone();
            let mut lpa = Lpa::new(Euicc::new(credentials)?, &[ci])?;
            lpa.timings = Some(Vec::new());
            lpas.push(lpa);
        }
        let tasks: Vec<_> = lpas
            .into_iter()
            .map(|lpa| tokio::spawn(download_loop(lpa, address.clone(), queue.clone(), done.clone())))
            .collect();
        // The timed window: from the warm-up's end to the last download's.
        while done.load(std::sync::atomic::Ordering::Relaxed) < options.warmup {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let (start, start_done) = (Instant::now(), done.load(std::sync::atomic::Ordering::Relaxed));
        let (server_cpu0, own_cpu0) = (cpu_seconds(&pid), cpu_seconds("self"));
        let mut timings: Vec<(&'static str, Duration)> = Vec::new();
        for t in tasks {
            timings.extend(t.await??.timings.unwrap_or_default());
        }
        let elapsed = start.elapsed().as_secs_f64();
        let timed = done.load(std::sync::atomic::Ordering::Relaxed) - start_done;
        let server_cpu = cpu_seconds(&pid) - server_cpu0;
        let own_cpu = cpu_seconds("self") - own_cpu0;
        anyhow::Ok((timed, elapsed, server_cpu, own_cpu, timings))
    });
    let (timed, elapsed, server_cpu, own_cpu, timings) = result?;
    drop(server);
    let crypto_us = crypto_cost(&gsma, 400)?;
    // The same on both cores at once: the conditions the server ran in, beside the generator.
    let loaded_us = std::thread::scope(|scope| {
        let other = scope.spawn(|| crypto_cost(&gsma, 400));
        let mine = crypto_cost(&gsma, 400);
        let theirs = other
            .join()
            .map_err(|_| anyhow::anyhow!("the second thread panicked"))?;
        anyhow::Ok((mine? + theirs?) / 2.0)
    })?;
    let _ = std::fs::remove_dir_all(&dir);
    let per_download_us = server_cpu / timed as f64 * 1e6;
    println!(
        "downloads            {timed} in {elapsed:.2} s = {:.0} downloads/s",
        timed as f64 / elapsed
    );
    for function in [
        "initiateAuthentication",
        "authenticateClient",
        "getBoundProfilePackage",
        "handleNotification",
    ] {
        let mut times: Vec<Duration> = timings
            .iter()
            .filter(|(f, _)| *f == function)
            .map(|(_, d)| *d)
            .collect();
        times.sort();
        if times.is_empty() {
            continue;
        }
        let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_micros();
        println!(
            "  {function:<24} p50 {} µs  p90 {} µs  p99 {} µs  max {} µs ({} calls, warm-up included)",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0),
            times.len()
        );
    }
    println!(
        "server CPU           {server_cpu:.2} s = {per_download_us:.0} µs per download (the generator used {own_cpu:.2} s = {:.0} µs per download)",
        own_cpu / timed as f64 * 1e6
    );
    println!(
        "SM-DP+ crypto cost   {crypto_us:.0} µs per download alone, {loaded_us:.0} µs with both cores computing it at once (medians of 400)"
    );
    println!(
        "ratio                {:.2}× the crypto cost alone, {:.2}× the crypto cost on a busy machine",
        per_download_us / crypto_us,
        per_download_us / loaded_us
    );
    Ok(())
}
