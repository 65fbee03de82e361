//! What the examples that measure the release binary share: starting it as its own process
//! with JSON logs on ports the system picks, and reading its addresses from the "listening"
//! lines.

// Each example uses some of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

/// The release binary, running; killed and reaped on drop.
pub(crate) struct Server {
    pub(crate) child: Child,
    /// The ES2+ listener.
    pub(crate) es2: SocketAddr,
    /// The admin API.
    pub(crate) admin: SocketAddr,
    /// The ES9+ listener.
    pub(crate) es9: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `binary serve` on loopback port 0 (ES2+, admin, ES9+) with JSON logs, the test PKI in
/// `dir/certs`, the scenario `dir/scenario` and `RUST_LOG=rust_log`, and waits for its addresses.
pub(crate) fn start_server(
    binary: &std::path::Path,
    dir: &std::path::Path,
    scenario: &str,
    rust_log: &str,
) -> Result<Server> {
    let mut child = Command::new(binary)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args([
            "--es9-listen",
            "127.0.0.1:0",
            "--smds-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json"])
        .arg("--certs-dir")
        .arg(dir.join("certs"))
        .arg("--scenario")
        .arg(dir.join(scenario))
        .env("RUST_LOG", rust_log)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "starting {} (cargo build --release first)",
                binary.display()
            )
        })?;
    let stderr = child.stderr.take().context("stderr")?;
    // Read on a thread of its own; the listening lines carry the addresses.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let (mut es2, mut admin, mut es9) = (None, None, None);
    while es2.is_none() || admin.is_none() || es9.is_none() {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .context("the server did not start")?;
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let addr = |k: &str| v["fields"][k].as_str().and_then(|a| a.parse().ok());
        es2 = es2.or(addr("es2_addr"));
        admin = admin.or(addr("admin_addr"));
        es9 = es9.or(addr("es9_addr"));
    }
    // Keep draining, so the server never blocks on a full pipe.
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Ok(Server {
        child,
        es2: es2.context("es2")?,
        admin: admin.context("admin")?,
        es9: es9.context("es9")?,
    })
}

/// The server's resident memory, MB.
pub(crate) fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A client configuration for `operator`: trusting the CA of `certs`, presenting the
/// operator's certificate from there.
pub(crate) fn operator_tls(
    certs: &std::path::Path,
    operator: &str,
) -> Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let pki = smdpp_mock::pki::PkiDir::new(certs);
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(pki.ca_cert_path())? {
        roots.add(c?)?;
    }
    let chain = rustls::pki_types::CertificateDer::pem_file_iter(pki.cert_path(operator))?
        .collect::<Result<Vec<_>, _>>()?;
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pki.key_path(operator))?;
    Ok(
        rustls::ClientConfig::builder_with_provider(smdpp_mock::internal::pki::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?,
    )
}

/// Room on the card for the next download: the profile `iccid` deleted, and the card's pending
/// notifications dropped rather than sent (what the examples measure is downloads).
pub(crate) fn make_room(lpa: &mut smdpp_rsp::lpa::Lpa, iccid: &smdpp_mock::ids::Iccid) {
    use smdpp_rsp::tlv;
    lpa.delete(iccid);
    let pending: Vec<u64> = lpa
        .euicc()
        .notifications()
        .iter()
        .map(|n| n.metadata.seq)
        .collect();
    for seq in pending {
        lpa.euicc_mut().transmit(&tlv::encode(
            0xBF30,
            &tlv::encode(0x80, &tlv::uint_value(seq)),
        ));
    }
}
