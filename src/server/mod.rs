//! Starting and stopping the whole mock, in the manner of mini-redis's `server::run`: first
//! [`Bound`] (the PKI made or loaded, every listener bound, nothing served), then
//! [`Bound::run`] (the application, the admin API, the state file, and the accept loops until
//! shutdown). [`hooks`] holds what the mock makes of its listeners' transport events.

mod hooks;
mod smds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

use crate::error::{Error, Result};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::admin::{AdminState, Readiness, Stage};
use crate::app::App;
use crate::app::Es9Address;
use crate::clock::Clock;
use crate::es2::Es2;
use crate::es9::{Es9, Es9Config};
use crate::http::router::EngineService;
use crate::http::{self, tls, Limits};
use crate::notify::transport::HttpTransport;
use crate::notify::{Notifier, DEFAULT_LOG_CAPACITY, DEFAULT_QUEUE_CAPACITY};
use crate::pki::{EnsureReport, PkiDir};
use crate::scenario::Scenario;
use smdpp_rsp::pki::{GsmaPki, SAMPLE_EID};

/// Default ES2+ listen address (docs/configuration.md).
pub const DEFAULT_ES2_ADDR: &str = "127.0.0.1:6443";
/// Default ES9+ listen address.
pub const DEFAULT_ES9_ADDR: &str = "127.0.0.1:6444";
/// Default SM-DS listen address.
pub const DEFAULT_SMDS_ADDR: &str = "127.0.0.1:6445";
/// Default admin API listen address.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:8080";

/// ES9+ connections one client address may have open at once, by default (a quarter of the
/// listener's connection limit: devices behind one NAT share an address).
pub(crate) const ES9_CONNECTIONS_PER_ADDRESS: usize = 256;

/// Everything needed to start the mock.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where ES2+ (mutual TLS) listens; port 0 picks a free port.
    pub es2_addr: SocketAddr,
    /// Where ES9+ (server-only TLS, for LPAs) listens; port 0 picks a free port; `None` runs
    /// none.
    pub es9_addr: Option<SocketAddr>,
    /// The `host[:port]` Activation Codes name for ES9+, when not the scenario's
    /// `smdp.address` with the ES9+ port (behind a proxy or a port mapping).
    pub es9_address: Option<String>,
    /// Where the SM-DS (ES11 for LPAs, ES12 for SM-DP+s) listens; port 0 picks a free port;
    /// `None` runs none.
    pub smds_addr: Option<SocketAddr>,
    /// The SM-DS address (`host[:port]`) ConfirmOrder's `smdsAddress` and LPAs name, when not
    /// the scenario's (`smds.address`, else `smdp.address`'s host) with the SM-DS port.
    pub smds_address: Option<String>,
    /// An ES9+ session (a transactionId) untouched this long is forgotten.
    pub es9_session_timeout: std::time::Duration,
    /// ES9+ sessions one client address may have between InitiateAuthentication and
    /// AuthenticateClient; the next InitiateAuthentication gets HTTP 503.
    pub es9_sessions_per_address: usize,
    /// ES9+ connections one client address may have open at once; more are closed on accept.
    pub es9_connections_per_address: usize,
    /// The PKI directory.
    pub certs_dir: PathBuf,
    /// SANs for the server certificate besides localhost, 127.0.0.1, ::1 and the SM-DP+
    /// address.
    pub extra_sans: Vec<String>,
    /// The scenario to run.
    pub scenario: Arc<Scenario>,
    /// Transport limits.
    pub limits: Limits,
    /// Bound of the notification queue.
    pub notify_queue_capacity: usize,
    /// How long shutdown waits for queued notifications.
    pub notify_drain: std::time::Duration,
    /// ES2+ calls the journal keeps.
    pub journal_capacity: usize,
    /// ES9+ calls the journal keeps (apart from the ES2+ ones: anonymous ES9+ clients cannot
    /// push an operator's calls out).
    pub es9_journal_capacity: usize,
    /// Where the admin / test-control API listens (plain HTTP); `None` runs none.
    pub admin_addr: Option<SocketAddr>,
    /// Bearer token the admin API requires (all routes but `/health`, `/ready`, `/openapi.json` and the dashboard's files).
    /// When the admin API listens beyond loopback without one, a random token is made and kept
    /// in `<certs_dir>/admin-token` (reused at the next start; [`Server::admin_token`]); the log
    /// names the file, not the token.
    pub admin_token: Option<String>,
    /// Host names (e.g. a compose service name) the admin API may be called by, besides IP
    /// addresses and `localhost`; other `Host`s are refused (DNS rebinding).
    pub admin_allowed_hosts: Vec<String>,
    /// Where the state survives restarts: loaded at start when present, saved every
    /// `state_interval` and at shutdown.
    pub state_file: Option<PathBuf>,
    /// How often the state file is written while running.
    pub state_interval: std::time::Duration,
}

impl ServerConfig {
    /// The defaults of the command line (docs/configuration.md), with `scenario`; tests and
    /// embedders want [`ServerConfig::ephemeral`].
    pub fn new(scenario: Scenario) -> Self {
        ServerConfig {
            es2_addr: SocketAddr::from(([127, 0, 0, 1], 6443)),
            es9_addr: Some(SocketAddr::from(([127, 0, 0, 1], 6444))),
            es9_address: None,
            smds_addr: Some(SocketAddr::from(([127, 0, 0, 1], 6445))),
            smds_address: None,
            es9_session_timeout: crate::es9::session::SESSION_TTL,
            es9_sessions_per_address: crate::es9::session::ANONYMOUS_PER_ADDRESS,
            es9_connections_per_address: ES9_CONNECTIONS_PER_ADDRESS,
            certs_dir: PathBuf::from("certs"),
            extra_sans: Vec::new(),
            scenario: Arc::new(scenario),
            limits: Limits::default(),
            notify_queue_capacity: DEFAULT_QUEUE_CAPACITY,
            notify_drain: std::time::Duration::from_secs(5),
            journal_capacity: crate::journal::DEFAULT_JOURNAL_CAPACITY,
            es9_journal_capacity: crate::journal::DEFAULT_JOURNAL_CAPACITY,
            admin_addr: Some(SocketAddr::from(([127, 0, 0, 1], 8080))),
            admin_token: None,
            admin_allowed_hosts: Vec::new(),
            state_file: None,
            state_interval: std::time::Duration::from_secs(5),
        }
    }

    /// [`ServerConfig::new`] with every listener on a free port of 127.0.0.1 (port 0): ES2+,
    /// ES9+, the SM-DS and the admin API. For tests and for embedding beside other services, so that a
    /// mock already running on the default ports (or anything else there) never gets in the
    /// way; the ports taken are [`Server::es2_addr`], [`Server::es9_addr`],
    /// [`Server::smds_addr`] and [`Server::admin_addr`].
    pub fn ephemeral(scenario: Scenario) -> Self {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        ServerConfig {
            es2_addr: any_port,
            es9_addr: Some(any_port),
            smds_addr: Some(any_port),
            admin_addr: Some(any_port),
            ..ServerConfig::new(scenario)
        }
    }

    /// The server certificate's SANs.
    pub fn server_sans(&self) -> Vec<String> {
        let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"]
            .into_iter()
            .map(String::from)
            .collect();
        for extra in std::iter::once(self.scenario.smdp_address().to_owned())
            .chain(self.extra_sans.iter().cloned())
        {
            if !sans.iter().any(|s| s.eq_ignore_ascii_case(&extra)) {
                sans.push(extra);
            }
        }
        sans
    }
}

/// Everything on the ES2+ listener besides the ES2+ functions: the platform API, and JSON
/// errors for unknown paths and methods.
pub(crate) fn es2_listener_fallback(app: App) -> axum::Router {
    use axum::http::{Method, StatusCode, Uri};
    crate::platform::router()
        .with_state(app)
        .fallback(|method: Method, uri: Uri| async move {
            crate::api::error(
                StatusCode::NOT_FOUND,
                crate::es2::not_found(method.as_str(), uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            crate::api::error(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed on {}", uri.path()),
            )
        })
}

/// The ES9+ listener, bound and with its credentials, before the application exists.
struct Es9Parts {
    listener: TcpListener,
    addr: SocketAddr,
    /// How Activation Codes name the listener.
    address: Es9Address,
    credentials: Arc<smdpp_rsp::pki::ServerCredentials>,
    tls: Arc<rustls::ServerConfig>,
}

impl Es9Parts {
    /// Loads the SM-DP+'s credentials for the bound `listener`, DPtls checked against the
    /// address Activation Codes will name (its host among DPtls's names: LPAs that check TLS
    /// connect to it).
    fn load(
        config: &ServerConfig,
        gsma: &GsmaPki,
        listener: TcpListener,
        addr: SocketAddr,
    ) -> Result<Self> {
        let address = es9_address(config, addr);
        let activation = address.with_host(config.scenario.smdp_address());
        let credentials = Arc::new(gsma.server_credentials_for(&activation)?);
        let tls = tls::es9_server_config(&credentials).map_err(Error::start)?;
        Ok(Es9Parts {
            addr,
            listener,
            address,
            credentials,
            tls,
        })
    }

    /// Records the address Activation Codes name and returns the accept loop.
    fn serve(
        self,
        app: &App,
        config: &ServerConfig,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> impl std::future::Future<Output = ()> {
        app.set_es9_address(self.address);
        // ES12 to external SM-DSs presents DPtls (§5.9), which carries the SM-DP+'s OID.
        app.set_es12_client(crate::es12_client::LazyClient::new(
            self.credentials.tls_chain.clone(),
            self.credentials.tls_key.clone(),
            nist_cis(&self.credentials.cis),
            self.credentials
                .dp_tls
                .registered_id
                .as_deref()
                .and_then(smdpp_rsp::pki::oid_text)
                .unwrap_or_default(),
        ));
        app.set_device_kit(crate::app::DeviceKit {
            pki: GsmaPki::new(&config.certs_dir),
            route: loopback(self.addr).to_string(),
            // The LPA's TLS anchor: the CI that issued DPtls (its chain's second certificate),
            // whatever curves the device's card has.
            ci: self
                .credentials
                .tls_chain
                .get(1)
                .or_else(|| self.credentials.cis.first().map(|c| &c.der))
                .cloned()
                .unwrap_or_default(),
        });
        let advertised = app.activation_address(&app.world());
        // An LPA sends the address of its Activation Code; the names of DPtls are this SM-DP+ too.
        let accepted = accepted_addresses(
            &advertised,
            config,
            &self.credentials.dp_tls,
            self.addr.port(),
        );
        let engine = Es9::new(
            app.clone(),
            self.credentials,
            listener_config(config, advertised, accepted),
        );
        serve_open(
            (self.listener, self.tls),
            app,
            crate::journal::Protocol::Es9,
            EngineService::new(
                Arc::new(engine),
                es9_listener_fallback(),
                config.limits.clone(),
            ),
            config,
            shutdown,
        )
    }
}

/// The addresses a server listening on `port` is known by: `advertised`, and every name of
/// the server certificate and of its TLS certificate `tls` with the port.
fn accepted_addresses(
    advertised: &str,
    config: &ServerConfig,
    tls: &smdpp_rsp::cert::Certificate,
    port: u16,
) -> Vec<String> {
    let mut accepted = vec![advertised.to_owned()];
    let tls_names = tls
        .dns_names
        .iter()
        .filter(|n| !n.starts_with('*'))
        .cloned()
        .chain(tls.ip_addresses.iter().map(ToString::to_string));
    for san in config.server_sans().into_iter().chain(tls_names) {
        accepted.push(if san.contains(':') {
            format!("[{san}]:{port}")
        } else {
            format!("{san}:{port}")
        });
    }
    accepted
}

/// Serves `router` on a listener anyone may connect to (ES9+, the SM-DS): at most
/// `--es9-connections-per-address` connections from one address, refused handshakes counted
/// under `protocol`.
fn serve_open<E: crate::exchange::Engine>(
    (listener, tls): (TcpListener, Arc<rustls::ServerConfig>),
    app: &App,
    protocol: crate::journal::Protocol,
    router: EngineService<E>,
    config: &ServerConfig,
    shutdown: impl std::future::Future<Output = ()>,
) -> impl std::future::Future<Output = ()> {
    http::serve(
        listener,
        tls,
        http::Listener {
            per_address: Some(config.es9_connections_per_address),
        },
        Arc::new(hooks::OpenHooks {
            app: app.clone(),
            protocol,
        }),
        router,
        config.limits.clone(),
        shutdown,
    )
}

/// What the ES9+ and SM-DS engines are configured with: the address they are known by, every
/// one the LPA may name, validity checks, and the anonymous sessions' bounds of `config`.
fn listener_config(config: &ServerConfig, address: String, accepted: Vec<String>) -> Es9Config {
    Es9Config {
        address,
        accepted_addresses: accepted,
        check_validity: true,
        sessions: crate::es9::session::Limits {
            ttl: config.es9_session_timeout,
            anonymous_per_address: config.es9_sessions_per_address,
            ..Default::default()
        },
    }
}

/// How this process reaches a listener bound at `addr`: through loopback when it listens
/// there or on every address.
fn loopback(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() || addr.ip().is_loopback() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

/// The DER of the NIST P-256 CIs among `cis`: the TLS anchors of ES12 (webpki verifies no
/// brainpool chain).
fn nist_cis(cis: &[smdpp_rsp::cert::Certificate]) -> Vec<Vec<u8>> {
    cis.iter()
        .filter(|c| c.curve == smdpp_rsp::crypto::Curve::NistP256)
        .map(|c| c.der.clone())
        .collect()
}

/// How Activation Codes name the ES9+ listener bound at `addr`.
fn es9_address(config: &ServerConfig, addr: SocketAddr) -> Es9Address {
    match &config.es9_address {
        Some(fixed) => Es9Address::Fixed(Arc::from(fixed.as_str())),
        None => Es9Address::Port(addr.port()),
    }
}

/// Binds `addr` for `what`, or says which setting moves it.
async fn bind_listener(
    addr: SocketAddr,
    what: &'static str,
    flag: &str,
) -> Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| bind_error(e, what, addr, flag))?;
    let addr = bound_address(&listener, what)?;
    Ok((listener, addr))
}

/// Makes what is missing of the GSMA-style PKI: the SM-DP+'s certificates, DPtls and DStls
/// naming the server's names and the hosts of the addresses the ES9+ and SM-DS listeners are
/// known by.
fn ensure_gsma_pki(config: &ServerConfig, hosts: &[String]) -> Result<GsmaPki> {
    let gsma = GsmaPki::new(&config.certs_dir);
    let mut names = config.server_sans();
    for address in hosts {
        let host = smdpp_rsp::pki::address_host(address);
        if !names.iter().any(|n| n.eq_ignore_ascii_case(host)) {
            names.push(host.to_owned());
        }
    }
    let report = gsma
        .ensure(&names, SAMPLE_EID)
        .map_err(|e| pki_error(e.into(), &config.certs_dir))?;
    for created in &report.created {
        tracing::debug!(file = %created.display(), "GSMA-style PKI file created");
    }
    Ok(gsma)
}

/// JSON errors for every path of the ES9+ listener that is not an ES9+ function.
pub(crate) fn es9_listener_fallback() -> axum::Router {
    use axum::http::{Method, StatusCode, Uri};
    axum::Router::new().fallback(|method: Method, uri: Uri| async move {
        crate::api::error(
            StatusCode::NOT_FOUND,
            format!(
                "{method} {} is not an ES9+ function; they are POST {}{{initiateAuthentication,authenticateClient,getBoundProfilePackage,handleNotification,cancelSession}} (SGP.22 §6.5)",
                crate::journal::cut(uri.path(), 200),
                crate::sgp22::ES9_PATH_PREFIX
            ),
        )
    })
}

/// Why a listener could not be bound, with the setting that changes its address.
fn bind_error(e: std::io::Error, what: &'static str, addr: SocketAddr, flag: &str) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            format!("another process listens there; choose another address with {flag}")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("ports below 1024 need privileges; choose another address with {flag}")
        }
        std::io::ErrorKind::AddrNotAvailable => {
            format!("this host has no such address; choose another with {flag}")
        }
        _ => format!("choose another address with {flag}"),
    };
    Error::Bind {
        what,
        addr,
        hint,
        error: e,
    }
}

/// Why the PKI directory could not be prepared, with the absolute path and the setting that
/// moves it.
fn pki_error(e: Error, dir: &std::path::Path) -> Error {
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let hint = if e.is_permission_denied() {
        "; it is not writable by this user: choose another directory with --certs-dir / SMDPP_CERTS_DIR"
    } else {
        "; another directory: --certs-dir / SMDPP_CERTS_DIR"
    };
    Error::Pki {
        message: format!(
            "preparing the test PKI in {}: {}{hint}",
            absolute.display(),
            e.with_causes()
        ),
        io_kind: e.io_kind(),
    }
}

/// The address `listener` was bound to (the port the system chose for port 0).
fn bound_address(listener: &TcpListener, what: &str) -> Result<SocketAddr> {
    listener
        .local_addr()
        .map_err(|e| Error::Start(format!("reading the address of {what}: {e}")))
}

/// 128 random bits as 32 hex digits.
fn random_token() -> crate::Result<String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| crate::Error::Start("no randomness for the admin token".into()))?;
    Ok(crate::ids::hex(&bytes))
}

/// Takes an exclusive lock on `<state file>.lock`, released when the process ends.
fn lock_state_file(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    match crate::atomic_file::lock_beside(path)? {
        crate::atomic_file::Lock::Held(file) => Ok(file),
        crate::atomic_file::Lock::Busy(lock_path) => anyhow::bail!(
            "another smdpp-mock is using the state file {} (it holds {})",
            path.display(),
            lock_path.display()
        ),
    }
}

/// Writes the state file, one save at a time, off the async threads (it fsyncs).
#[derive(Clone)]
struct StateSaver {
    app: App,
    path: Arc<PathBuf>,
    lock: Arc<std::sync::Mutex<()>>,
}

impl StateSaver {
    async fn save(&self) {
        let this = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let _one_at_a_time = this.lock.lock().unwrap_or_else(|e| e.into_inner());
            crate::state::save(&this.app, &this.path)
        })
        .await;
        match result {
            Ok(Ok(saved)) => tracing::debug!(
                path = %self.path.display(),
                profiles = saved.profiles,
                notifications = saved.notifications,
                bytes = saved.bytes,
                "state saved"
            ),
            Ok(Err(e)) => {
                warn!(path = %self.path.display(), error = %format!("{e:#}"), "saving the state failed")
            }
            Err(e) => warn!(error = %e, "saving the state failed"),
        }
    }
}

/// A running mock. Dropping it stops the listener; [`Server::shutdown`] also waits for
/// in-flight requests.
#[derive(Debug)]
pub struct Server {
    /// Held while the server runs (see `lock_state_file`).
    _state_lock: Option<std::fs::File>,
    es2_addr: SocketAddr,
    es9_addr: Option<SocketAddr>,
    smds_addr: Option<SocketAddr>,
    admin_addr: Option<SocketAddr>,
    admin_token: Option<String>,
    readiness: Readiness,
    app: App,
    pki: PkiDir,
    pki_report: EnsureReport,
    stop: Option<watch::Sender<bool>>,
    task: Option<JoinHandle<()>>,
}

/// The mock before it serves: the PKI made or loaded and every listener bound (a port in use
/// or an unreadable PKI fails here, before anything runs).
struct Bound {
    pki: PkiDir,
    pki_report: EnsureReport,
    es2: TcpListener,
    es2_addr: SocketAddr,
    es2_tls: Arc<rustls::ServerConfig>,
    es9: Option<Es9Parts>,
    smds: Option<smds::SmdsParts>,
    admin: Option<TcpListener>,
}

impl Bound {
    /// Makes what is missing of both PKIs, loads the credentials and binds the listeners.
    async fn bind(config: &ServerConfig) -> Result<Bound> {
        let pki = PkiDir::new(&config.certs_dir);
        let operator_ids: Vec<&str> = config.scenario.operators().iter().map(|o| &*o.id).collect();
        let pki_report = pki
            .ensure(&config.server_sans(), &operator_ids)
            .map_err(|e| pki_error(e, &config.certs_dir))?;
        for warning in &pki_report.warnings {
            warn!("{warning}");
        }
        let es9 = match config.es9_addr {
            Some(addr) => Some(
                bind_listener(addr, "the ES9+ listener", "--es9-listen / SMDPP_ES9_LISTEN").await?,
            ),
            None => None,
        };
        let smds = match config.smds_addr {
            Some(addr) => Some(
                bind_listener(
                    addr,
                    "the SM-DS listener",
                    "--smds-listen / SMDPP_SMDS_LISTEN",
                )
                .await?,
            ),
            None => None,
        };
        // One pass over the GSMA-style PKI, DPtls and DStls naming the hosts both are known by.
        let mut hosts = Vec::new();
        if let Some((_, addr)) = &es9 {
            hosts.push(es9_address(config, *addr).with_host(config.scenario.smdp_address()));
        }
        if let Some((_, addr)) = &smds {
            hosts.push(smds::smds_address(config, *addr));
        }
        let gsma = match hosts.is_empty() {
            true => None,
            false => Some(ensure_gsma_pki(config, &hosts)?),
        };
        let es9 = match (es9, &gsma) {
            (Some((listener, addr)), Some(gsma)) => {
                Some(Es9Parts::load(config, gsma, listener, addr)?)
            }
            _ => None,
        };
        let smds = match (smds, &gsma) {
            (Some((listener, addr)), Some(gsma)) => {
                smds::SmdsParts::load(config, gsma, listener, addr)?
            }
            _ => None,
        };
        let es2_tls = tls::server_config(&pki, config.scenario.crl_file())
            .map_err(|e| Error::Start(e.to_string()))?;
        let es2 = TcpListener::bind(config.es2_addr).await.map_err(|e| {
            bind_error(
                e,
                "the ES2+ listener",
                config.es2_addr,
                "--listen / SMDPP_LISTEN",
            )
        })?;
        let admin = match config.admin_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                bind_error(
                    e,
                    "the admin API",
                    addr,
                    "--admin-listen / SMDPP_ADMIN_LISTEN",
                )
            })?),
            None => None,
        };
        Ok(Bound {
            pki,
            pki_report,
            es2_addr: bound_address(&es2, "the ES2+ listener")?,
            es2,
            es2_tls,
            es9,
            smds,
            admin,
        })
    }

    /// Builds the application, starts the admin API, restores the state file and serves ES2+
    /// (and ES9+) until the returned server stops.
    async fn run(self, config: ServerConfig) -> Result<Server> {
        let app = build_app(&config, &self.pki)?;
        // The admin API answers from here on (`/health` alive, `/ready` 503) while the state is
        // restored and the ES2+ listener starts.
        let readiness = Readiness::default();
        let (stop, stopped) = watch::channel(false);
        let (admin_addr, admin_token) = match self.admin {
            Some(listener) => {
                let (addr, token) = serve_admin(
                    listener,
                    &config,
                    &app,
                    &self.pki,
                    &readiness,
                    stopped_for(stopped.clone()),
                )?;
                (Some(addr), token)
            }
            None => (None, config.admin_token.clone()),
        };
        // One process per state file: a second one would overwrite the first one's saves.
        let state_lock = match config.state_file.as_deref() {
            Some(path) => Some(lock_state_file(path).map_err(Error::state)?),
            None => None,
        };
        let saver = restore_state(&config, &app, &stopped)?;
        let router = EngineService::new(
            Arc::new(Es2::new(app.clone())),
            es2_listener_fallback(app.clone()),
            config.limits.clone(),
        );
        let es9_addr = self.es9.as_ref().map(|p| p.addr);
        // The SM-DP+'s identity at its own SM-DS: the OID its DPtls would present on ES12.
        let caller: Arc<str> = self
            .es9
            .as_ref()
            .and_then(|p| p.credentials.dp_tls.registered_id.as_deref())
            .and_then(smdpp_rsp::pki::oid_text)
            .unwrap_or_else(|| {
                smdpp_rsp::pki::oid_text(&smdpp_rsp::pki::oid_content(&smdpp_rsp::pki::SMDP_OID))
                    .unwrap_or_default()
            })
            .into();
        let smds_addr = self.smds.as_ref().map(|p| p.addr);
        let smds_address = self.smds.as_ref().map(|p| p.address.clone());
        // ES9+ first: it records the address Activation Codes name, which the SM-DS's preset
        // events name as their SM-DP+.
        let es9_serving = self
            .es9
            .map(|parts| parts.serve(&app, &config, stopped_for(stopped.clone())));
        let smds_serving = self
            .smds
            .map(|parts| parts.serve(&app, &config, caller, stopped_for(stopped.clone())));
        let serving = http::serve(
            self.es2,
            self.es2_tls,
            http::Listener::default(),
            Arc::new(hooks::Es2Hooks::new(app.clone(), self.pki.clone())),
            router,
            config.limits.clone(),
            stopped_for(stopped),
        );
        let serving = async move {
            let es9 = async move {
                if let Some(es9) = es9_serving {
                    es9.await;
                }
            };
            let smds = async move {
                if let Some(smds) = smds_serving {
                    smds.await;
                }
            };
            tokio::join!(serving, es9, smds);
        };
        let task = tokio::spawn(run_until_stopped(
            serving,
            app.clone(),
            readiness.clone(),
            config.notify_drain,
            saver,
        ));
        info!(es2_addr = %self.es2_addr, profiles = config.scenario.profile_count(), "ES2+ listening (mutual TLS)");
        if let Some(addr) = es9_addr {
            info!(es9_addr = %addr, activation_address = %app.activation_address(&app.world()), "ES9+ listening (server-only TLS)");
        }
        if let (Some(addr), Some(address)) = (smds_addr, &smds_address) {
            info!(smds_addr = %addr, smds_address = %address, "SM-DS listening (ES11 server-only TLS, ES12 mutual TLS)");
        }
        Ok(Server {
            _state_lock: state_lock,
            es2_addr: self.es2_addr,
            es9_addr,
            smds_addr,
            admin_addr,
            admin_token,
            readiness,
            app,
            pki: self.pki,
            pki_report: self.pki_report,
            stop: Some(stop),
            task: Some(task),
        })
    }
}

/// A future that completes when `stop` is set.
async fn stopped_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// The application: the scenario, the system clock, the notification dispatcher (its own
/// thread), the journal.
fn build_app(config: &ServerConfig, pki: &PkiDir) -> Result<App> {
    let transport = Arc::new(HttpTransport::new(pki.clone()));
    let notifier = Notifier::start_dedicated(
        transport,
        config.notify_queue_capacity,
        DEFAULT_LOG_CAPACITY,
    )
    .context("starting the notification dispatcher")
    .map_err(Error::start)?;
    Ok(App::new(
        config.scenario.clone(),
        Clock::system(),
        notifier,
        crate::journal::Capacity {
            es2: config.journal_capacity,
            es9: config.es9_journal_capacity,
        },
    ))
}

/// Serves the admin API on `listener` until `shutdown`; its address and the token it requires.
/// Beyond loopback, anyone who can reach the port could drive the mock: without a token of the
/// user's, one is made (and its file named in the log), never none.
fn serve_admin(
    listener: TcpListener,
    config: &ServerConfig,
    app: &App,
    pki: &PkiDir,
    readiness: &Readiness,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(SocketAddr, Option<String>)> {
    let admin_addr = bound_address(&listener, "the admin API")?;
    let mut token = config.admin_token.clone();
    if !admin_addr.ip().is_loopback() && token.is_none() {
        let (made, _) = pki.ensure_admin_token(random_token)?;
        // Where the token is, not the token: logs are read by more people than the
        // certificates directory.
        warn!(%admin_addr, file = %pki.admin_token_path().display(), "the admin API listens beyond loopback without --admin-token / SMDPP_ADMIN_TOKEN: it requires the generated token kept in the file (mode 0600, read by the tools that share the certificates directory)");
        token = Some(made);
    }
    let router = crate::admin::router(AdminState {
        app: app.clone(),
        pki: pki.clone(),
        sans: Arc::new(config.server_sans()),
        token: token.as_deref().map(Arc::from),
        allowed_hosts: Arc::new(config.admin_allowed_hosts.clone()),
        readiness: readiness.clone(),
    });
    tokio::spawn(http::serve_admin(
        listener,
        router,
        config.limits.shutdown_grace,
        shutdown,
    ));
    info!(%admin_addr, "admin API listening (plain HTTP)");
    Ok((admin_addr, token))
}

/// Restores the state file, if there is one, and starts saving it every `state_interval`
/// until `stopped`; the saver for the last save at shutdown.
fn restore_state(
    config: &ServerConfig,
    app: &App,
    stopped: &watch::Receiver<bool>,
) -> Result<Option<StateSaver>> {
    if let Some(path) = config.state_file.as_deref().filter(|p| p.exists()) {
        let restored = crate::state::load(app, path).map_err(Error::state)?;
        info!(
            path = %path.display(),
            profiles = restored.profiles,
            notifications = restored.notifications,
            "state restored"
        );
    }
    let Some(path) = config.state_file.clone() else {
        return Ok(None);
    };
    let saver = StateSaver {
        app: app.clone(),
        path: Arc::new(path),
        lock: Arc::default(),
    };
    let interval = config
        .state_interval
        .max(std::time::Duration::from_millis(10));
    let mut stopped = stopped.clone();
    let periodic = saver.clone();
    tokio::spawn(async move {
        loop {
            let stop = tokio::select! {
                () = tokio::time::sleep(interval) => false,
                _ = stopped.wait_for(|stop| *stop) => true,
            };
            if stop {
                break;
            }
            periodic.save().await;
        }
    });
    Ok(Some(saver))
}

/// Marks the mock ready, serves until the accept loops end, then drains the notifications
/// (within `drain`) and saves the state one last time.
async fn run_until_stopped(
    serving: impl std::future::Future<Output = ()>,
    app: App,
    ready: Readiness,
    drain: std::time::Duration,
    saver: Option<StateSaver>,
) {
    // Polled: the accept loops run from here on.
    ready.set(Stage::Ready);
    serving.await;
    let left = app.notifier.drain(drain).await;
    if left == 0 {
        info!("notifications drained");
    } else if saver.is_some() {
        info!(
            left,
            "notifications still undelivered at shutdown: kept in the state file"
        );
    } else {
        warn!(left, deadline = ?drain, "notifications still undelivered at shutdown");
    }
    if let Some(saver) = saver {
        saver.save().await;
    }
}

impl Server {
    /// Makes sure the PKI exists, binds the listeners and starts serving.
    pub async fn start(config: ServerConfig) -> Result<Server> {
        Bound::bind(&config).await?.run(config).await
    }

    /// The bound ES2+ address.
    pub fn es2_addr(&self) -> SocketAddr {
        self.es2_addr
    }

    /// The bound ES9+ address, if it runs.
    pub fn es9_addr(&self) -> Option<SocketAddr> {
        self.es9_addr
    }

    /// The bound SM-DS address, if it runs.
    pub fn smds_addr(&self) -> Option<SocketAddr> {
        self.smds_addr
    }

    /// The SM-DS address (`host[:port]`) ConfirmOrder's `smdsAddress` names to have the mock's
    /// own SM-DS register the event, and LPAs discover it at; `None` when it does not run.
    pub fn smds_address(&self) -> Option<String> {
        self.app.smds().map(|s| s.address.clone())
    }

    /// The SM-DP+ address Activation Codes name: where LPAs reach ES9+.
    pub fn activation_address(&self) -> String {
        self.app.activation_address(&self.app.world())
    }

    /// The bound admin API address, if it runs.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The token the admin API requires: the configured one, or the one made at start because
    /// the admin API listens beyond loopback without one.
    pub fn admin_token(&self) -> Option<&str> {
        self.admin_token.as_deref()
    }

    /// The application state (store, scenario, clock).
    pub(crate) fn app(&self) -> &App {
        &self.app
    }

    /// The PKI directory in use.
    pub fn pki(&self) -> &PkiDir {
        &self.pki
    }

    /// What the PKI step created and reused.
    pub fn pki_report(&self) -> &EnsureReport {
        &self.pki_report
    }

    /// Stops accepting, lets in-flight requests finish, and returns when done.
    pub async fn shutdown(mut self) {
        self.readiness.set(Stage::Stopping);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.readiness.set(Stage::Stopping);
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}
