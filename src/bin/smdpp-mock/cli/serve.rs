//! `smdpp-mock serve` (the default command): run the mock until Ctrl-C or SIGTERM.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use smdpp_mock::internal::server::{
    DEFAULT_ADMIN_ADDR, DEFAULT_ES2_ADDR, DEFAULT_ES9_ADDR, DEFAULT_SMDS_ADDR,
};
use smdpp_mock::pki::CA_CERT;
use smdpp_mock::Limits;
use smdpp_mock::{Server, ServerConfig};

use super::{load_scenario, AdminToken, PkiArgs};

#[derive(Debug, Args)]
pub(super) struct ServeArgs {
    /// Scenario file or directory (repeatable: merged in order); without it the built-in
    /// default scenario runs.
    #[arg(long, env = "SMDPP_SCENARIO", value_delimiter = ',')]
    pub(super) scenario: Vec<PathBuf>,
    /// Address of the ES2+ and platform API listener (mutual TLS).
    #[arg(long, default_value = DEFAULT_ES2_ADDR, env = "SMDPP_LISTEN")]
    listen: SocketAddr,
    /// Address of the ES9+ listener, where LPAs download profiles (server-only TLS with the
    /// DPtls certificate of <certs-dir>/gsma); `off` runs none.
    #[arg(long, default_value = DEFAULT_ES9_ADDR, env = "SMDPP_ES9_LISTEN", value_parser = listen_or_off)]
    es9_listen: Listen,
    /// The `host[:port]` Activation Codes name for ES9+ when LPAs reach it otherwise than at
    /// the scenario's smdp.address and the --es9-listen port (a proxy, a port mapping).
    #[arg(long, env = "SMDPP_ES9_ADDRESS")]
    es9_address: Option<String>,
    /// Address of the SM-DS listener: ES11 for LPAs (server-only TLS) and ES12 for SM-DP+s
    /// (mutual TLS), with the DStls certificate of <certs-dir>/gsma; `off` runs none.
    #[arg(long, default_value = DEFAULT_SMDS_ADDR, env = "SMDPP_SMDS_LISTEN", value_parser = listen_or_off)]
    smds_listen: Listen,
    /// The `host[:port]` of the mock's SM-DS, as ConfirmOrder's smdsAddress names it and LPAs
    /// reach it, when not the scenario's smds.address (or smdp.address's host) with the
    /// --smds-listen port.
    #[arg(long, env = "SMDPP_SMDS_ADDRESS")]
    smds_address: Option<String>,
    /// Seconds an ES9+ session (a transactionId) may stay untouched before it is forgotten.
    #[arg(long, default_value_t = 600, env = "SMDPP_ES9_SESSION_TIMEOUT_SECS")]
    es9_session_timeout_secs: u64,
    /// ES9+ sessions one client address may have between InitiateAuthentication and
    /// AuthenticateClient; the next InitiateAuthentication gets HTTP 503 with Retry-After.
    #[arg(long, default_value_t = 1000, env = "SMDPP_ES9_SESSIONS_PER_ADDRESS", value_parser = clap::value_parser!(u64).range(1..))]
    es9_sessions_per_address: u64,
    /// ES9+ connections one client address may have open at once; more are closed on accept.
    #[arg(long, default_value_t = 256, env = "SMDPP_ES9_CONNECTIONS_PER_ADDRESS", value_parser = clap::value_parser!(u64).range(1..))]
    es9_connections_per_address: u64,
    /// Address of the admin / test-control API (plain HTTP; keep it on loopback).
    #[arg(long, default_value = DEFAULT_ADMIN_ADDR, env = "SMDPP_ADMIN_LISTEN")]
    admin_listen: SocketAddr,
    /// ES2+ calls the admin journal keeps.
    #[arg(long, default_value_t = smdpp_mock::internal::journal::DEFAULT_JOURNAL_CAPACITY, env = "SMDPP_JOURNAL_SIZE")]
    journal_size: usize,
    /// ES9+ calls the admin journal keeps, apart from the ES2+ ones.
    #[arg(long, default_value_t = smdpp_mock::internal::journal::DEFAULT_JOURNAL_CAPACITY, env = "SMDPP_ES9_JOURNAL_SIZE")]
    es9_journal_size: usize,
    #[command(flatten)]
    pub(super) pki: PkiArgs,
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
    /// Requests one HTTP/2 connection may have in flight at once.
    #[arg(long, default_value_t = 8, env = "SMDPP_MAX_CONCURRENT_STREAMS")]
    max_concurrent_streams: u32,
    #[command(flatten)]
    token: AdminToken,
    /// Host name the admin API may be called by (its `Host` header), besides IP addresses and
    /// `localhost`, e.g. a compose service name (repeatable; comma-separated in the env var).
    /// Requests naming any other host are refused (DNS rebinding).
    #[arg(
        long = "admin-allowed-host",
        env = "SMDPP_ADMIN_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    admin_allowed_hosts: Vec<String>,
    /// Keep the state (changed profiles and orders, counters, undelivered notifications) in
    /// this file: restored at start, saved periodically and at shutdown, written atomically. A
    /// corrupt file or one for another inventory is refused.
    #[arg(long, env = "SMDPP_STATE_FILE")]
    state_file: Option<PathBuf>,
    /// Milliseconds between saves of the state file.
    #[arg(long, default_value_t = 5000, env = "SMDPP_STATE_INTERVAL_MS")]
    state_interval_ms: u64,
}

/// A listen address, or none.
#[derive(Debug, Clone, Copy)]
struct Listen(Option<SocketAddr>);

fn listen_or_off(text: &str) -> Result<Listen, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(Listen(None));
    }
    text.parse()
        .map(|a| Listen(Some(a)))
        .map_err(|e| format!("{e}: expected an address such as 127.0.0.1:6444, or off"))
}

pub(super) async fn serve(args: ServeArgs) -> Result<()> {
    let scenario = load_scenario(&args.scenario)?;
    let mut config = ServerConfig::new(scenario);
    config.es2_addr = args.listen;
    config.es9_addr = args.es9_listen.0;
    config.es9_address = args.es9_address.filter(|a| !a.is_empty());
    config.smds_addr = args.smds_listen.0;
    config.smds_address = args.smds_address.filter(|a| !a.is_empty());
    config.es9_session_timeout = Duration::from_secs(args.es9_session_timeout_secs);
    config.es9_sessions_per_address =
        usize::try_from(args.es9_sessions_per_address).unwrap_or(usize::MAX);
    config.es9_connections_per_address =
        usize::try_from(args.es9_connections_per_address).unwrap_or(usize::MAX);
    config.admin_addr = Some(args.admin_listen);
    config.journal_capacity = args.journal_size;
    config.es9_journal_capacity = args.es9_journal_size;
    config.certs_dir = args.pki.certs_dir;
    config.extra_sans = args.pki.sans;
    config.limits = Limits {
        max_body_bytes: args.max_body_bytes,
        max_header_bytes: args.max_header_bytes,
        handshake_timeout: Duration::from_secs(args.handshake_timeout_secs),
        header_read_timeout: Duration::from_secs(args.header_read_timeout_secs),
        idle_timeout: Duration::from_secs(args.idle_timeout_secs),
        max_connections: args.max_connections,
        max_concurrent_streams: args.max_concurrent_streams,
        ..Limits::default()
    };
    config.admin_token = args.token.admin_token.filter(|t| !t.is_empty());
    config.admin_allowed_hosts = args.admin_allowed_hosts;
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
fn print_banner(config: &ServerConfig, server: &Server) {
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
        "\nsmdpp-mock is ready\n  ES2+ (mutual TLS)  https://{host}:{}/gsma/rsp2/es2plus/\n  ES9+ (LPAs)        {}\n  SM-DS (ES11, ES12) {}\n  admin API          {}\n  scenario           {source} ({}, {})\n  certificates       {dir}/ (CA {dir}/{CA_CERT})\n",
        addr.port(),
        server.es9_addr().map_or("off".to_string(), |_| format!(
            "https://{a}/gsma/rsp2/es9plus/ (Activation Codes 1${a}$<MatchingID>; GSMA-style PKI in {dir}/gsma/)",
            a = server.activation_address(),
        )),
        server.smds_address().map_or("off".to_string(), |a| format!(
            "https://{a}/ (ConfirmOrder smdsAddress {a}; ES12 at /gsma/rsp2/es12/)"
        )),
        server
            .admin_addr()
            .map_or("off".to_string(), |a| format!("http://{a}/ (OpenAPI: /openapi.json)")),
        super::count(scenario.operators().len(), "operator"),
        super::count(scenario.profile_count(), "profile"),
    );
    if let (Some(token), None) = (server.admin_token(), config.admin_token.as_ref()) {
        out.push_str(&format!(
            "  admin token        {token} (generated: the admin API listens beyond loopback; set --admin-token / SMDPP_ADMIN_TOKEN to choose one)\n"
        ));
    }
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
