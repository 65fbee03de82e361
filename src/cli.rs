//! Command-line arguments (every flag also has an `SMDPP_…` environment variable) and the
//! subcommands.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use smdpp_mock::http::Limits;
use smdpp_mock::pki::{CertificateAuthority, EnsureReport, PkiDir, CA_CERT};
use smdpp_mock::scenario::Scenario;
use smdpp_mock::server::{Config, Server, DEFAULT_ADMIN_ADDR, DEFAULT_ES2_ADDR};

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

#[derive(Debug, Subcommand)]
enum ConformanceCommand {
    /// Print the report of a running instance (JSON, or JUnit XML for CI).
    Report {
        /// The instance's admin API.
        #[arg(long, default_value = DEFAULT_ADMIN_ADDR, env = "SMDPP_ADMIN_LISTEN")]
        admin: SocketAddr,
        /// `json` or `junit`.
        #[arg(long, default_value = "json")]
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
        #[command(flatten)]
        token: AdminToken,
    },
}

#[derive(Debug, Subcommand)]
enum ScenarioCommand {
    /// Check scenario files: exit 0 when all are valid, otherwise print every error as
    /// FILE:LINE:COLUMN: MESSAGE.
    Check {
        /// Scenario files or directories.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Check the files as one scenario, merged in order (as `serve` loads them), instead of
        /// each on its own.
        #[arg(long)]
        together: bool,
    },
    /// Print the JSON Schema of the scenario format (for editors with a YAML language server).
    Schema,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Scenario file or directory (repeatable: merged in order); without it the built-in
    /// default scenario runs.
    #[arg(long, env = "SMDPP_SCENARIO", value_delimiter = ',')]
    scenario: Vec<PathBuf>,
    /// Address of the ES2+ and platform API listener (mutual TLS).
    #[arg(long, default_value = DEFAULT_ES2_ADDR, env = "SMDPP_LISTEN")]
    listen: SocketAddr,
    /// Address of the admin / test-control API (plain HTTP; keep it on loopback).
    #[arg(long, default_value = DEFAULT_ADMIN_ADDR, env = "SMDPP_ADMIN_LISTEN")]
    admin_listen: SocketAddr,
    /// ES2+ calls the admin journal keeps.
    #[arg(long, default_value_t = smdpp_mock::journal::DEFAULT_JOURNAL_CAPACITY, env = "SMDPP_JOURNAL_SIZE")]
    journal_size: usize,
    #[command(flatten)]
    pki: PkiArgs,
    /// Largest accepted request body, in bytes.
    #[arg(long, default_value_t = 64 * 1024, env = "SMDPP_MAX_BODY_BYTES")]
    max_body_bytes: usize,
    /// Seconds a client has to complete the TLS handshake.
    #[arg(long, default_value_t = 10, env = "SMDPP_HANDSHAKE_TIMEOUT_SECS")]
    handshake_timeout_secs: u64,
    /// Largest request head (request line and headers) in bytes; HTTP 431 above. At least 8192.
    #[arg(long, default_value_t = 16 * 1024, env = "SMDPP_MAX_HEADER_BYTES")]
    max_header_bytes: usize,
    /// Seconds a client has to finish a request head once it has started one (slow clients
    /// are cut off).
    #[arg(long, default_value_t = 10, env = "SMDPP_HEADER_READ_TIMEOUT_SECS")]
    header_read_timeout_secs: u64,
    /// Seconds a connection may stay idle (no request in flight, no traffic) before it is closed.
    #[arg(long, default_value_t = 60, env = "SMDPP_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: u64,
    /// ES2+ connections served at once; more are closed on accept and counted.
    #[arg(long, default_value_t = 1024, env = "SMDPP_MAX_CONNECTIONS")]
    max_connections: usize,
    #[command(flatten)]
    token: AdminToken,
    /// Keep the state (changed profiles and orders, counters, undelivered notifications) in
    /// this file: restored at start, saved periodically and at shutdown, written atomically. A
    /// corrupt file or one for another inventory is refused.
    #[arg(long, env = "SMDPP_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// Milliseconds between saves of the state file.
    #[arg(long, default_value_t = 5000, env = "SMDPP_STATE_INTERVAL_MS")]
    state_interval_ms: u64,
}

#[derive(Debug, Args)]
struct AdminToken {
    /// Bearer token the admin API requires (every route but /health and the dashboard's files);
    /// the subcommands that call the admin API send it.
    #[arg(long, env = "SMDPP_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

#[derive(Debug, Args)]
struct PkiArgs {
    /// Directory of the test PKI (created on first start).
    #[arg(long, default_value = "certs", env = "SMDPP_CERTS_DIR", global = true)]
    certs_dir: PathBuf,
    /// Extra SAN for the server certificate (repeatable; comma-separated in the env var).
    #[arg(long = "san", env = "SMDPP_SAN", value_delimiter = ',')]
    sans: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum CertsCommand {
    /// Create the CA, server certificate and one client certificate per operator.
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
        None => serve(cli.serve).await,
        Some(Command::Serve(args)) => serve(args).await,
        Some(Command::Certs(cmd)) => certs(cmd),
        Some(Command::Scenario(cmd)) => scenario(cmd),
        Some(Command::Conformance(cmd)) => conformance(cmd).await,
        Some(Command::Health {
            admin,
            timeout_secs,
        }) => health(admin, Duration::from_secs(timeout_secs)).await,
        Some(Command::Loadgen(args)) => crate::loadgen::run(args).await,
        Some(Command::LoadgenBaseline { listen, pki }) => {
            crate::loadgen::run_baseline(listen, &PkiDir::new(pki.certs_dir)).await
        }
    }
}

/// One request to a running instance's admin API; the status and body.
async fn admin_request(
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

/// `GET /health` on the admin API. The listen address is what a container's environment
/// holds, so a wildcard address is turned into loopback to have something to connect to.
async fn health(mut admin: SocketAddr, timeout: Duration) -> Result<()> {
    if admin.ip().is_unspecified() {
        admin.set_ip(match admin {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let (status, body) = tokio::time::timeout(
        timeout,
        admin_request(admin, "GET", "/health", String::new(), None),
    )
    .await
    .with_context(|| format!("no answer from {admin} within {timeout:?}"))??;
    let ok = status == 200
        && serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v["status"] == "ok");
    if !ok {
        anyhow::bail!(
            "{admin} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    println!("ok: {admin}");
    Ok(())
}

async fn conformance(cmd: ConformanceCommand) -> Result<()> {
    let (admin, token) = match &cmd {
        ConformanceCommand::Report { admin, token, .. }
        | ConformanceCommand::Probe { admin, token, .. } => (*admin, token.admin_token.as_deref()),
    };
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
        ConformanceCommand::Probe { operator, .. } => {
            let body = serde_json::json!({ "operator": operator }).to_string();
            admin_request(admin, "POST", "/admin/conformance/probe", body, token).await?
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

fn load_scenario(paths: &[PathBuf]) -> Result<Scenario> {
    let loaded = if paths.is_empty() {
        Scenario::default_scenario()
    } else {
        Scenario::load_all(paths)
    };
    loaded.map_err(|e| anyhow::anyhow!("the scenario is not valid:\n{e}"))
}

fn scenario(cmd: ScenarioCommand) -> Result<()> {
    match cmd {
        ScenarioCommand::Schema => {
            let text = serde_json::to_string_pretty(&smdpp_mock::scenario::json_schema())?;
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(text.as_bytes())?;
            stdout.write_all(b"\n")?;
            Ok(())
        }
        ScenarioCommand::Check { files, together } => {
            let groups: Vec<Vec<PathBuf>> = if together {
                vec![files]
            } else {
                files.into_iter().map(|f| vec![f]).collect()
            };
            let mut failed = 0;
            for group in &groups {
                let names: Vec<String> = group.iter().map(|p| p.display().to_string()).collect();
                match Scenario::load_all(group) {
                    Ok(s) => println!(
                        "{}: ok ({} operators, {} profile types, {} profiles)",
                        names.join(" + "),
                        s.operators().len(),
                        s.profile_types().count(),
                        s.profile_count()
                    ),
                    Err(errors) => {
                        failed += 1;
                        eprintln!("{errors}");
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} scenario(s) are not valid", groups.len());
            }
            Ok(())
        }
    }
}

async fn serve(args: ServeArgs) -> Result<()> {
    let scenario = load_scenario(&args.scenario)?;
    let mut config = Config::new(scenario);
    config.es2_addr = args.listen;
    config.admin_addr = Some(args.admin_listen);
    config.journal_capacity = args.journal_size;
    config.certs_dir = args.pki.certs_dir;
    config.extra_sans = args.pki.sans;
    config.limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_header_bytes: args.max_header_bytes,
        handshake_timeout: Duration::from_secs(args.handshake_timeout_secs),
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connections: args.max_connections,
        ..Limits::default()
    };
    config.admin_token = args.token.admin_token.filter(|t| !t.is_empty());
    config.state_file = args.state_file;
    config.state_interval = Duration::from_millis(args.state_interval_ms);
    let server = Server::start(config.clone()).await?;
    print_banner(&config, &server);
    shutdown_signal().await;
    tracing::info!("shutdown requested");
    server.shutdown().await;
    Ok(())
}

/// One block on stdout that tells a newcomer how to call the mock.
fn print_banner(config: &Config, server: &Server) {
    let scenario = &config.scenario;
    let dir = config.certs_dir.display();
    let addr = server.es2_addr();
    let host = if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        "localhost".to_string()
    } else {
        addr.ip().to_string()
    };
    let source = scenario.sources().join(" + ");
    let mut out = format!(
        "\nsmdpp-mock is ready\n  ES2+ (mutual TLS)  https://{host}:{}/gsma/rsp2/es2plus/\n  admin API          {}\n  scenario           {source} ({} operators, {} profiles)\n  certificates       {dir}/ (CA {dir}/{CA_CERT})\n",
        addr.port(),
        server
            .admin_addr()
            .map_or("off".to_string(), |a| format!("http://{a}/ (OpenAPI: /openapi.json)")),
        scenario.operators().len(),
        scenario.profile_count(),
    );
    if let Some(op) = scenario.operators().first() {
        let profile_type = scenario
            .profile_types()
            .find(|t| t.owner == op.id)
            .map_or("YOUR-PROFILE-TYPE".to_string(), |t| t.id.to_string());
        let requester = op.requester_identifiers.first().map_or("", String::as_str);
        out.push_str(&format!(
            "\nTry a DownloadOrder as operator {id}:\n  curl --cacert {dir}/{CA_CERT} --cert {dir}/{id}.pem --key {dir}/{id}.key \\\n    -H 'Content-Type: application/json' -H 'X-Admin-Protocol: gsma/rsp/v2.5.0' \\\n    https://{host}:{port}/gsma/rsp2/es2plus/downloadOrder \\\n    -d '{{\"header\":{{\"functionRequesterIdentifier\":\"{requester}\",\"functionCallIdentifier\":\"call-1\"}},\"profileType\":\"{profile_type}\"}}'\n",
            id = op.id,
            port = addr.port(),
        ));
    }
    out.push_str("\nStop with Ctrl-C.\n");
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
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

fn certs(cmd: CertsCommand) -> Result<()> {
    match cmd {
        CertsCommand::Init { scenario, pki } => {
            let scenario = load_scenario(&scenario)?;
            let mut config = Config::new(scenario);
            config.extra_sans = pki.sans;
            let operators: Vec<&str> = config.scenario.operators().iter().map(|o| &*o.id).collect();
            let result = PkiDir::new(&pki.certs_dir).ensure(&config.server_sans(), &operators)?;
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
            let dir = PkiDir::new(&pki.certs_dir);
            let mut ensure = EnsureReport::default();
            std::fs::create_dir_all(dir.dir())
                .with_context(|| format!("creating {}", dir.dir().display()))?;
            let ca: CertificateAuthority = dir.ensure_ca(&mut ensure)?;
            report(&ensure);
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
