//! `smdpp-mock conformance`: the report of a running instance, or a probe of an operator's
//! notification endpoint.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Result;
use clap::Subcommand;
use smdpp_mock::internal::server::DEFAULT_ADMIN_ADDR;

use super::{admin_request, AdminToken};

#[derive(Debug, Subcommand)]
pub(super) enum ConformanceCommand {
    /// Print the report of a running instance: for people (text), JSON, or JUnit XML for CI.
    Report {
        /// The instance's admin API.
        #[arg(long, default_value = DEFAULT_ADMIN_ADDR, env = "SMDPP_ADMIN_LISTEN")]
        admin: SocketAddr,
        /// `text`, `json` or `junit`.
        #[arg(long, default_value = "text")]
        format: String,
        /// Exit with status 1 when an error-severity check failed.
        #[arg(long)]
        fail_on_error: bool,
        #[command(flatten)]
        token: AdminToken,
    },
    /// Probe an operator's notification endpoint and print the steps and the report.
    Probe {
        /// The operator whose callback to probe.
        #[arg(long)]
        operator: String,
        /// The instance's admin API.
        #[arg(long, default_value = DEFAULT_ADMIN_ADDR, env = "SMDPP_ADMIN_LISTEN")]
        admin: SocketAddr,
        /// `text` or `json`.
        #[arg(long, default_value = "text")]
        format: String,
        #[command(flatten)]
        token: AdminToken,
    },
}

pub(super) async fn conformance(
    cmd: ConformanceCommand,
    certs_dir: &std::path::Path,
) -> Result<()> {
    let (admin, token) = match &cmd {
        ConformanceCommand::Report { admin, token, .. }
        | ConformanceCommand::Probe { admin, token, .. } => (*admin, token.resolve(certs_dir)),
    };
    let token = token.as_deref();
    let (status, body) = match &cmd {
        ConformanceCommand::Report { format, .. } => {
            admin_request(
                admin,
                "GET",
                &format!("/admin/conformance?format={format}"),
                String::new(),
                token,
            )
            .await?
        }
        ConformanceCommand::Probe {
            operator, format, ..
        } => {
            let body = serde_json::json!({ "operator": operator }).to_string();
            let path = format!("/admin/conformance/probe?format={format}");
            admin_request(admin, "POST", &path, body, token).await?
        }
    };
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&body)?;
    stdout.write_all(b"\n")?;
    if status != 200 {
        anyhow::bail!("the admin API answered {status}");
    }
    if let ConformanceCommand::Report {
        fail_on_error: true,
        ..
    } = cmd
    {
        // The JSON summary says how many error-severity checks failed; JUnit carries it too,
        // so ask for the JSON once more to decide.
        let (_, json) =
            admin_request(admin, "GET", "/admin/conformance", String::new(), token).await?;
        let report: serde_json::Value = serde_json::from_slice(&json)?;
        let failed = report["summary"]["failedErrors"].as_u64().unwrap_or(0);
        if failed > 0 {
            anyhow::bail!("{failed} error-severity conformance check(s) failed");
        }
    }
    Ok(())
}
