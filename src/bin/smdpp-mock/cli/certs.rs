//! `smdpp-mock certs`: the test PKI.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Subcommand;
use smdpp_mock::pki::{CertificateAuthority, EnsureReport, PkiDir};
use smdpp_mock::ServerConfig;
use smdpp_rsp::pki::{GsmaPki, SAMPLE_EID};

use super::{load_scenario, PkiArgs};

#[derive(Debug, Subcommand)]
pub(super) enum CertsCommand {
    /// Create the CA, server certificate and one client certificate per operator, and the
    /// GSMA-style PKI of ES9+ in <certs-dir>/gsma (CI, EUM, DPauth, DPpb, DPtls and a sample
    /// eUICC, SGP.26 file names).
    Init {
        /// Scenario whose operators get client certificates (default: the built-in one).
        #[arg(long, env = "SMDPP_SCENARIO", value_delimiter = ',')]
        scenario: Vec<PathBuf>,
        #[command(flatten)]
        pki: PkiArgs,
    },
    /// Revoke a certificate (NAME for certs/NAME.pem, or a PEM file): its serial is added to
    /// certs/crl.pem, which a scenario's `smdp.crlFile` makes the server enforce.
    Revoke {
        /// Certificate name in the PKI directory, or path of a PEM certificate.
        certificate: String,
        #[command(flatten)]
        pki: PkiArgs,
    },
    /// Issue an eUICC certificate and key for an EID (signed by the mock's EUM, whose EID range
    /// is 89049032…): CERT_EUICC_ECDSA_NIST.der and SK_EUICC_ECDSA_NIST.pem, with the EUM and
    /// CI certificates beside them, in a new folder.
    Euicc {
        /// The EID: 32 digits starting with 89049032.
        #[arg(long)]
        eid: String,
        /// The folder to write (default: <certs-dir>/gsma/euicc-<EID>); never overwrites.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pki: PkiArgs,
    },
    /// Issue a TLS client certificate for your SM-DP+ as an ES12 caller of the mock's SM-DS,
    /// signed by the mock's CI (<certs-dir>/gsma): NAME.pem (with the CI), NAME.key and ci.pem
    /// (the anchor of the SM-DS's TLS certificate). Its subjectAltName names NAME and, as
    /// registeredID, the OID that identifies your SM-DP+ at the SM-DS (SGP.22 §5.9.1).
    Es12Client {
        /// The DNS name it names (and its file name), e.g. my-smdp.example.
        name: String,
        /// Your SM-DP+'s OID, dotted, e.g. 2.999.71.
        #[arg(long)]
        oid: String,
        /// The folder to write (default: <certs-dir>/gsma); never overwrites.
        #[arg(long)]
        out: Option<PathBuf>,
        #[command(flatten)]
        pki: PkiArgs,
    },
    /// Issue a client certificate NAME.pem / NAME.key signed by the CA.
    IssueClient {
        /// Name of the certificate: its CN and file name.
        name: String,
        #[command(flatten)]
        pki: PkiArgs,
    },
    /// Sign an operator's CSR (RSA, EC P-256/P-384, Ed25519) into a client certificate.
    ///
    /// The certificate PEM goes to stdout (or --out), logs to stderr.
    SignCsr {
        /// The PEM CSR, e.g. from `openssl req -new -newkey rsa:2048 -nodes -keyout mno.key -out mno.csr`.
        csr: PathBuf,
        /// Write the certificate here instead of stdout (never overwrites).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Validity in days.
        #[arg(long, default_value_t = 825)]
        days: u32,
        #[command(flatten)]
        pki: PkiArgs,
    },
}

fn report(report: &EnsureReport) {
    for path in &report.created {
        tracing::info!("created {}", path.display());
    }
    for path in &report.reused {
        tracing::debug!("reused {}", path.display());
    }
    for warning in &report.warnings {
        tracing::warn!("{warning}");
    }
}

pub(super) fn certs(cmd: CertsCommand) -> Result<()> {
    match cmd {
        CertsCommand::Init { scenario, pki } => {
            let scenario = load_scenario(&scenario)?;
            let mut config = ServerConfig::new(scenario);
            config.extra_sans = pki.sans;
            let operators: Vec<&str> = config.scenario.operators().iter().map(|o| &*o.id).collect();
            let mut result =
                PkiDir::new(&pki.certs_dir).ensure(&config.server_sans(), &operators)?;
            // DPtls and DStls name the server's names, and the host of the scenario's
            // smds.address when it has one (`serve` adds the --es9-address and
            // --smds-address hosts when it makes them).
            let mut tls_names = config.server_sans();
            if let Some(address) = config.scenario.smds_own_address() {
                let host = smdpp_rsp::pki::address_host(address).to_owned();
                if !tls_names.iter().any(|n| n.eq_ignore_ascii_case(&host)) {
                    tls_names.push(host);
                }
            }
            let gsma = GsmaPki::new(&pki.certs_dir).ensure(&tls_names, SAMPLE_EID)?;
            result.created.extend(gsma.created);
            result.reused.extend(gsma.reused);
            report(&result);
            tracing::info!(
                "test PKI ready in {} ({} files created, {} reused)",
                pki.certs_dir.display(),
                result.created.len(),
                result.reused.len()
            );
            Ok(())
        }
        CertsCommand::Revoke { certificate, pki } => {
            let (crl, serial) = PkiDir::new(&pki.certs_dir).revoke(&certificate)?;
            eprintln!(
                "revoked serial {serial}: {} now lists it (point a scenario's smdp.crlFile at it; a running instance reads it on start, scenario load and reset)",
                crl.display()
            );
            Ok(())
        }
        CertsCommand::Euicc { eid, out, pki } => {
            let gsma = GsmaPki::new(&pki.certs_dir);
            if !gsma.dir().join(smdpp_rsp::pki::EUM_CERT).exists() {
                anyhow::bail!(
                    "no GSMA-style PKI in {} (no EUM there): create it with `smdpp-mock certs init --certs-dir {}` (`serve` creates one on first start)",
                    gsma.dir().display(),
                    pki.certs_dir.display()
                );
            }
            let out = out.unwrap_or_else(|| gsma.dir().join(format!("euicc-{eid}")));
            for path in gsma.issue_euicc_files(&eid, &out)? {
                tracing::info!("created {}", path.display());
            }
            Ok(())
        }
        CertsCommand::Es12Client {
            name,
            oid,
            out,
            pki,
        } => {
            let gsma = GsmaPki::new(&pki.certs_dir);
            if !gsma.dir().join(smdpp_rsp::pki::CI_KEY).exists() {
                anyhow::bail!(
                    "no CI key in {}: the mock issues ES12 client certificates from its own CI; create the PKI with `smdpp-mock certs init --certs-dir {}` (`serve` creates one on first start), or sign one with your own CI (docs/smds.md)",
                    gsma.dir().display(),
                    pki.certs_dir.display()
                );
            }
            let out = out.unwrap_or_else(|| gsma.dir().to_path_buf());
            for path in gsma.issue_es12_caller_files(&name, &oid, &out)? {
                tracing::info!("created {}", path.display());
            }
            Ok(())
        }
        CertsCommand::IssueClient { name, pki } => {
            let result = PkiDir::new(&pki.certs_dir).issue_client(&name)?;
            report(&result);
            Ok(())
        }
        CertsCommand::SignCsr {
            csr,
            out,
            days,
            pki,
        } => {
            let ca: CertificateAuthority = PkiDir::new(&pki.certs_dir).existing_ca()?;
            let pem = std::fs::read_to_string(&csr)
                .with_context(|| format!("reading {}", csr.display()))?;
            let cert = ca
                .sign_csr(&pem, days)
                .with_context(|| format!("signing {}", csr.display()))?;
            match out {
                Some(path) => {
                    let mut file = std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .open(&path)
                        .with_context(|| {
                            format!("creating {} (never overwritten)", path.display())
                        })?;
                    file.write_all(cert.as_bytes())?;
                    tracing::info!("wrote {}", path.display());
                }
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(cert.as_bytes())?;
                    stdout.flush()?;
                }
            }
            Ok(())
        }
    }
}
