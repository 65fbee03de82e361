//! Command-line arguments (every flag also has an `SMDPP_…` environment variable), one file per
//! subcommand.

mod certs;
mod conformance;
mod device;
mod health;
mod scenario;
mod serve;

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use smdpp_mock::internal::server::DEFAULT_ADMIN_ADDR;
use smdpp_mock::pki::PkiDir;
use smdpp_mock::Scenario;

use certs::CertsCommand;
use conformance::ConformanceCommand;
use scenario::ScenarioCommand;
use serve::ServeArgs;

/// A mock GSMA SGP.22 SM-DP+: ES2+ over mutual TLS, driven by YAML scenarios.
///
/// Without a subcommand it runs `serve`.
#[derive(Debug, Parser)]
#[command(name = "smdpp-mock", version, args_conflicts_with_subcommands = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    /// Log format on stderr.
    #[arg(long, value_enum, global = true, default_value_t = LogFormat::Text, env = "SMDPP_LOG_FORMAT")]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the mock SM-DP+ (the default).
    Serve(ServeArgs),
    /// Manage the test PKI.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// Check scenario files, or print their JSON Schema.
    #[command(subcommand)]
    Scenario(ScenarioCommand),
    /// A device: the library's LPA and a software eUICC (kept in a state file) downloading
    /// over ES9+, and enabling, disabling, deleting.
    #[command(subcommand)]
    Device(device::DeviceCommand),
    /// The software eUICC behind lpac's stdio APDU driver:
    /// `smdpp-mock euicc -- lpac profile download -a '1$…'`.
    Euicc(device::EuiccArgs),
    /// The conformance report of a running instance, or a probe of an operator's endpoint.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
    /// Drive realistic ES2+ load over mutual TLS and report throughput and latency; with
    /// --compare, against the mock and a minimal baseline server in the same run.
    Loadgen(crate::loadgen::LoadgenArgs),
    /// Check that a running instance answers on its admin API (exit 0) or not (exit 1); the
    /// container HEALTHCHECK.
    Health {
        /// The instance's admin API; an unspecified address (0.0.0.0, ::) means this host.
        #[arg(long, default_value = DEFAULT_ADMIN_ADDR, env = "SMDPP_ADMIN_LISTEN")]
        admin: SocketAddr,
        /// Seconds to wait for the answer (under the HEALTHCHECK's 3 s, so the reason is
        /// printed before Docker gives up).
        #[arg(long, default_value_t = 2)]
        timeout_secs: u64,
    },
    /// The minimal server `loadgen --compare` measures the mock against.
    #[command(hide = true)]
    LoadgenBaseline {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        #[command(flatten)]
        pki: PkiArgs,
    },
}

#[derive(Debug, Args)]
pub(super) struct AdminToken {
    /// Bearer token the admin API requires (every route but /health, /ready, /openapi.json and the dashboard's files);
    /// the subcommands that call the admin API send it, or else the token the server made in
    /// the certificates directory (`admin-token`), when there is one.
    #[arg(long, env = "SMDPP_ADMIN_TOKEN", hide_env_values = true)]
    pub(super) admin_token: Option<String>,
}

impl AdminToken {
    /// The token given, or the one a server made in `certs_dir`.
    pub(super) fn resolve(&self, certs_dir: &std::path::Path) -> Option<String> {
        self.admin_token
            .clone()
            .filter(|t| !t.is_empty())
            .or_else(|| PkiDir::new(certs_dir).admin_token())
    }
}

#[derive(Debug, Args)]
pub(super) struct PkiArgs {
    /// Directory of the test PKI (created on first start).
    #[arg(long, default_value = "certs", env = "SMDPP_CERTS_DIR", global = true)]
    pub(super) certs_dir: PathBuf,
    /// Extra SAN for the server certificate (repeatable; comma-separated in the env var).
    #[arg(long = "san", env = "SMDPP_SAN", value_delimiter = ',')]
    pub(super) sans: Vec<String>,
}

/// Logs go to stderr, so certificate PEM on stdout stays clean; colour only on a terminal.
pub(crate) fn init_logging(format: LogFormat) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match format {
        LogFormat::Text => builder.with_target(false).init(),
        LogFormat::Json => builder.json().with_current_span(false).init(),
    }
}

pub(crate) async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        None => serve::serve(cli.serve).await,
        Some(Command::Serve(args)) => serve::serve(args).await,
        Some(Command::Certs(cmd)) => certs::certs(cmd),
        Some(Command::Scenario(cmd)) => scenario::scenario(cmd),
        Some(Command::Device(cmd)) => device::device(cmd).await,
        Some(Command::Euicc(args)) => device::euicc(args),
        Some(Command::Conformance(cmd)) => {
            conformance::conformance(cmd, &cli.serve.pki.certs_dir).await
        }
        Some(Command::Health {
            admin,
            timeout_secs,
        }) => health::health(admin, Duration::from_secs(timeout_secs)).await,
        Some(Command::Loadgen(args)) => crate::loadgen::run(args).await,
        Some(Command::LoadgenBaseline { listen, pki }) => {
            crate::loadgen::run_baseline(listen, &PkiDir::new(pki.certs_dir)).await
        }
    }
}

/// One request to a running instance's admin API; the status and body.
pub(super) async fn admin_request(
    admin: SocketAddr,
    method: &str,
    path: &str,
    body: String,
    token: Option<&str>,
) -> Result<(u16, Vec<u8>)> {
    use http_body_util::BodyExt;
    let tcp = tokio::net::TcpStream::connect(admin)
        .await
        .with_context(|| format!("connecting to the admin API at {admin}"))?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", admin.to_string())
        .header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let request = request.body(http_body_util::Full::new(bytes::Bytes::from(body)))?;
    let response = send.send_request(request).await?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes.to_vec()))
}

pub(super) fn load_scenario(paths: &[PathBuf]) -> Result<Scenario> {
    let loaded = if paths.is_empty() {
        Scenario::default_scenario()
    } else {
        Scenario::load_all(paths)
    };
    loaded.map_err(|e| anyhow::anyhow!("cannot load the scenario:\n{e}"))
}

/// `n` things, in English: "1 operator", "2 operators".
pub(super) fn count(n: usize, thing: &str) -> String {
    if n == 1 {
        format!("1 {thing}")
    } else {
        format!("{n} {thing}s")
    }
}
