//! The load generator as a user runs it (README, "Performance"): a short `--compare` run that
//! starts the mock and the baseline server as processes, drives the full ES2+ cycle over
//! mutual TLS against both, and must see every request succeed. Only correctness is checked
//! here; the numbers are for the benchmark commands, not for tests.

use std::process::Command;

use crate::common::TempDir;

fn loadgen(dir: &TempDir, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
        .arg("loadgen")
        .args(args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn compare_runs_the_full_cycle_against_the_mock_and_the_baseline_without_errors() {
    let dir = TempDir::new("loadgen-compare");
    let (ok, out, err) = loadgen(
        &dir,
        &["--compare", "--requests", "300", "--connections", "4"],
    );
    assert!(ok, "loadgen failed:\n{out}\n{err}");
    for label in ["mock", "baseline"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in:\n{out}"));
        assert!(line.contains("300 requests"), "{line}");
        assert!(line.contains(" 0 errors"), "{line}");
    }
    assert!(
        out.contains("ratio      mock/baseline: throughput "),
        "{out}"
    );
}

#[test]
fn new_connection_mode_does_a_handshake_per_request() {
    let dir = TempDir::new("loadgen-newconn");
    let (ok, out, err) = loadgen(
        &dir,
        &[
            "--compare",
            "--requests",
            "60",
            "--connections",
            "2",
            "--new-connection",
        ],
    );
    assert!(ok, "loadgen failed:\n{out}\n{err}");
    assert!(out.contains("a new mTLS connection per request"), "{out}");
    assert!(out.contains("60 requests"), "{out}");
}

#[test]
fn errors_are_counted_and_fail_the_run() {
    // A profile type test-mno does not own: every DownloadOrder is refused (1.2 Not Allowed).
    let dir = TempDir::new("loadgen-errors");
    let (ok, out, err) = loadgen(
        &dir,
        &[
            "--compare",
            "--requests",
            "20",
            "--connections",
            "2",
            "--profile-type",
            "OTHER-STANDARD",
        ],
    );
    assert!(!ok, "a run with refused requests must fail:\n{out}");
    assert!(out.contains("mock") && out.contains("20 errors"), "{out}");
    assert!(out.contains("first error: DownloadOrder: Failed"), "{out}");
    assert!(err.contains("request(s) failed"), "{err}");
}

#[test]
fn startup_reports_both_times() {
    let dir = TempDir::new("loadgen-startup");
    let (ok, out, err) = loadgen(&dir, &["--startup"]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("ready with PKI generation: median"), "{out}");
    assert!(
        out.contains("ready with existing certificates: median"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_cut_mid_cycle_hands_every_profile_back() {
    use crate::common::TestServer;
    use smdpp_mock::profile::ProfileState;
    let t = TestServer::start().await;
    let addr = t.es2_addr().to_string();
    let certs = t.certs();
    // 100 requests over 3 connections: the budget runs out in the middle of cycles.
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_smdpp-mock"))
            .args([
                "loadgen",
                "--target",
                &addr,
                "--requests",
                "100",
                "--connections",
                "3",
            ])
            .arg("--certs-dir")
            .arg(certs)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("100 requests"), "{stdout}");
    let not_available: Vec<_> = t
        .snapshot()
        .into_iter()
        .filter(|p| p.state != ProfileState::Available)
        .map(|p| (p.iccid.to_string(), p.state))
        .collect();
    assert!(not_available.is_empty(), "{not_available:?}");
}
