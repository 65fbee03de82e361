//! The traps of a new user's first hour, each turned into a message that names what to do:
//! commands that use a PKI never create one elsewhere; generated CAs are told apart by name;
//! start-up errors name the flag that changes the failed setting; a missing scenario file says
//! "not found"; the built-in default scenario is includable wherever a file is.

use std::process::Command;

use crate::common::*;

/// The binary, with ES9+ on a free port (tests run side by side).
fn bin() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_smdpp-mock"));
    cmd.env("SMDPP_ES9_LISTEN", "127.0.0.1:0");
    cmd.env("SMDPP_SMDS_LISTEN", "127.0.0.1:0");
    cmd
}

fn stderr_of(cmd: &mut Command) -> (bool, String) {
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn commands_that_use_a_pki_refuse_where_there_is_none() {
    let dir = TempDir::new("no-pki");
    let absolute = std::fs::canonicalize(dir.path()).unwrap().join("certs");
    std::fs::write(dir.path().join("mno.csr"), "not read").unwrap();
    for args in [
        &["certs", "sign-csr", "mno.csr"][..],
        &["certs", "issue-client", "acme-mno"],
        &["certs", "revoke", "acme-mno"],
    ] {
        let (ok, stderr) = stderr_of(bin().args(args).current_dir(dir.path()));
        assert!(!ok, "{args:?} succeeded");
        assert!(
            stderr.contains(&absolute.display().to_string()) && stderr.contains("--certs-dir"),
            "{args:?}: {stderr}"
        );
        assert!(!dir.path().join("certs").exists(), "{args:?} created a PKI");
    }
}

#[test]
fn generated_cas_are_told_apart_by_name() {
    let subject = |dir: &std::path::Path| {
        let out = bin()
            .args(["certs", "init", "--certs-dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = Command::new("openssl")
            .args(["x509", "-noout", "-subject", "-in"])
            .arg(dir.join("ca.pem"))
            .output()
            .expect("openssl runs");
        String::from_utf8_lossy(&text.stdout).into_owned()
    };
    let (a, b) = (TempDir::new("ca-a"), TempDir::new("ca-b"));
    let (first, second) = (subject(a.path()), subject(b.path()));
    assert_ne!(first, second);
    for s in [&first, &second] {
        let suffix = s
            .trim()
            .split("smdpp-mock test CA ")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_else(|| panic!("{s}"));
        assert!(
            suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_hexdigit()),
            "{s}"
        );
    }
}

#[test]
fn a_port_in_use_names_the_flag() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = TempDir::new("port-used");
    let listen = format!("127.0.0.1:{port}");
    let (ok, stderr) = stderr_of(
        bin()
            .args(["--listen", &listen, "--admin-listen", "127.0.0.1:0"])
            .current_dir(dir.path()),
    );
    assert!(!ok);
    assert!(
        stderr.contains("another process listens there") && stderr.contains("--listen"),
        "{stderr}"
    );
    let (ok, stderr) = stderr_of(
        bin()
            .args(["--listen", "127.0.0.1:0", "--admin-listen", &listen])
            .current_dir(dir.path()),
    );
    assert!(!ok);
    assert!(stderr.contains("--admin-listen"), "{stderr}");
}

#[test]
fn a_pki_directory_that_cannot_be_made_names_its_path_and_the_flag() {
    let dir = TempDir::new("certs-blocked");
    // A file where the directory should be: no user can create it.
    std::fs::write(dir.path().join("certs"), "a file").unwrap();
    let (ok, stderr) = stderr_of(
        bin()
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .current_dir(dir.path()),
    );
    assert!(!ok);
    let absolute = std::fs::canonicalize(dir.path()).unwrap().join("certs");
    assert!(
        stderr.contains(&absolute.display().to_string()) && stderr.contains("--certs-dir"),
        "{stderr}"
    );
}

#[test]
fn a_missing_scenario_file_is_not_found() {
    let dir = TempDir::new("no-scenario");
    let (ok, stderr) = stderr_of(
        bin()
            .args(["--scenario", "lab.yaml", "--listen", "127.0.0.1:0"])
            .current_dir(dir.path()),
    );
    assert!(!ok);
    assert!(
        stderr.contains("lab.yaml") && stderr.contains("not found"),
        "{stderr}"
    );
    assert!(!stderr.contains("not valid"), "{stderr}");
    let (_, checked) = stderr_of(
        bin()
            .args(["scenario", "check", "lab.yaml"])
            .current_dir(dir.path()),
    );
    assert!(checked.contains("not found"), "{checked}");
}

#[test]
fn the_built_in_default_is_includable_from_anywhere() {
    let dir = TempDir::new("include-default");
    std::fs::write(
        dir.path().join("lab.yaml"),
        "include: [\"builtin:default\"]\noperators: [{ id: lab-mno }]\n",
    )
    .unwrap();
    let out = bin()
        .args(["scenario", "check", "lab.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The default's two operators and this file's one.
    assert!(stdout.contains("3 operators"), "{stdout}");
}

#[test]
fn counts_are_in_english() {
    let dir = TempDir::new("plural");
    std::fs::write(
        dir.path().join("one.yaml"),
        "operators: [{ id: a }]\nprofileTypes:\n  - id: X\n    owner: a\n    profiles: [{ iccid: \"8944500100000000004\" }]\n",
    )
    .unwrap();
    let out = bin()
        .args(["scenario", "check", "one.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("ok (1 operator, 1 profile type, 1 profile)"),
        "{stdout}"
    );
}
