//! The mock as a library: a whole SM-DP+ in-process on free ports, for an
//! operator's own `#[tokio::test]`s, in the manner of wiremock-rs.
//!
//! [`MockSmdp::start`] runs the built-in default scenario; [`MockSmdp::builder`] takes a scenario
//! (YAML text, a file, or a [`Scenario`]) and a certificate directory. Each instance has its own
//! test PKI in a temporary directory (removed on drop) unless told otherwise, so tests running in
//! parallel never share state.
//!
//! Expectations ([`MockSmdp::expect_call`], [`MockSmdp::expect_notification`]) are checked when
//! the mock is dropped, or earlier with [`MockSmdp::verify`]; a failure panics with what the mock
//! actually received.

mod client;
mod expect;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};

pub use self::client::{OperatorClient, Reply};
pub use self::expect::Expectation;
use self::expect::{Spec, Target};
use crate::app::simulator::SimulateError;
use crate::app::App;
use crate::ids::Iccid;
use crate::journal::{JournalEntry, JournalFilter};
use crate::notify::DeliveryRecord;
use crate::profile::machine::DeviceEvent;
use crate::profile::Profile;
use crate::scenario::Scenario;
use crate::server::{Server, ServerConfig};
use crate::sgp22::Function;

/// A running mock SM-DP+: ES2+ and the platform API over mutual TLS, and the admin API, on
/// loopback ports chosen by the system.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> anyhow::Result<()> {
/// use serde_json::json;
/// use smdpp_mock::{es2::Function, MockSmdp};
///
/// let mock = MockSmdp::start().await;
/// mock.expect_call(Function::DownloadOrder).times(1);
///
/// let client = mock.client("test-mno")?;
/// let reply = client
///     .call(Function::DownloadOrder, json!({ "profileType": "STANDARD" }))
///     .await?;
/// assert!(reply.is_success());
/// let iccid = reply.body["iccid"].as_str().unwrap();
/// assert_eq!(mock.profile(iccid).unwrap().state.to_string(), "Allocated");
/// # Ok(()) }
/// ```
pub struct MockSmdp {
    server: Option<Server>,
    /// The server's application, kept for the expectation checks after a shutdown.
    app: App,
    certs_dir: PathBuf,
    /// Set when the mock made the directory, which it then removes on drop.
    owned_dir: Option<PathBuf>,
    expectations: Mutex<Vec<Arc<Mutex<Spec>>>>,
}

impl std::fmt::Debug for MockSmdp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockSmdp")
            .field("es2_url", &self.es2_url())
            .field("admin_url", &self.admin_url())
            .field("certs_dir", &self.certs_dir)
            .finish_non_exhaustive()
    }
}

/// How to start a [`MockSmdp`].
#[derive(Default)]
#[must_use = "call .start().await"]
pub struct MockSmdpBuilder {
    scenario: Option<ScenarioSource>,
    certs_dir: Option<PathBuf>,
    journal_capacity: Option<usize>,
    extra_sans: Vec<String>,
    configure: Option<Adjustment>,
}

/// A change to the server configuration, made by [`MockSmdpBuilder::configure`].
type Adjustment = Box<dyn FnOnce(&mut ServerConfig) + Send>;

impl std::fmt::Debug for MockSmdpBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockSmdpBuilder")
            .field("scenario", &self.scenario)
            .field("certs_dir", &self.certs_dir)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum ScenarioSource {
    Value(Box<Scenario>),
    Yaml(String),
    Files(Vec<PathBuf>),
}

impl MockSmdpBuilder {
    /// Runs this scenario.
    pub fn scenario(mut self, scenario: Scenario) -> Self {
        self.scenario = Some(ScenarioSource::Value(Box::new(scenario)));
        self
    }

    /// Runs the scenario in this YAML text (errors name line and column of `<inline>`).
    pub fn scenario_yaml(mut self, yaml: impl Into<String>) -> Self {
        self.scenario = Some(ScenarioSource::Yaml(yaml.into()));
        self
    }

    /// Runs the scenario in this file or directory; called again, the files are merged in
    /// order, as `smdpp-mock serve --scenario A --scenario B` does.
    pub fn scenario_file(mut self, path: impl Into<PathBuf>) -> Self {
        match &mut self.scenario {
            Some(ScenarioSource::Files(files)) => files.push(path.into()),
            _ => self.scenario = Some(ScenarioSource::Files(vec![path.into()])),
        }
        self
    }

    /// Keeps the test PKI in `dir` (created if absent, reused if present, left in place)
    /// instead of a temporary directory.
    pub fn certs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.certs_dir = Some(dir.into());
        self
    }

    /// Adds a SAN to the server certificate (besides localhost, 127.0.0.1 and ::1).
    pub fn san(mut self, name: impl Into<String>) -> Self {
        self.extra_sans.push(name.into());
        self
    }

    /// ES2+ calls the journal keeps (default 10,000).
    pub fn journal_capacity(mut self, entries: usize) -> Self {
        self.journal_capacity = Some(entries);
        self
    }

    /// Changes any other server setting (transport limits, admin token, state file…) after the
    /// builder has set its own: free loopback ports, the certificate directory and a short
    /// notification drain at shutdown.
    pub fn configure(mut self, adjust: impl FnOnce(&mut ServerConfig) + Send + 'static) -> Self {
        self.configure = Some(Box::new(adjust));
        self
    }

    /// Loads the scenario, makes the PKI and starts listening.
    pub async fn start(self) -> Result<MockSmdp> {
        let scenario = match self.scenario {
            None => Scenario::default_scenario(),
            Some(ScenarioSource::Value(s)) => Ok(*s),
            Some(ScenarioSource::Yaml(text)) => Scenario::from_yaml(&text),
            Some(ScenarioSource::Files(files)) => Scenario::load_all(&files),
        }?;
        let (certs_dir, owned_dir) = match self.certs_dir {
            Some(dir) => (dir, None),
            None => {
                let dir = unique_temp_dir()?;
                (dir.join("certs"), Some(dir))
            }
        };
        let mut config = ServerConfig::ephemeral(scenario);
        config.certs_dir = certs_dir.clone();
        config.extra_sans = self.extra_sans;
        if let Some(n) = self.journal_capacity {
            config.journal_capacity = n;
        }
        // Notifications still queued when the test ends are not worth waiting long for.
        config.notify_drain = Duration::from_secs(1);
        if let Some(adjust) = self.configure {
            adjust(&mut config);
        }
        let server = match Server::start(config).await {
            Ok(server) => server,
            Err(e) => {
                if let Some(dir) = &owned_dir {
                    let _ = std::fs::remove_dir_all(dir);
                }
                return Err(e);
            }
        };
        Ok(MockSmdp {
            app: server.app().clone(),
            server: Some(server),
            certs_dir,
            owned_dir,
            expectations: Mutex::new(Vec::new()),
        })
    }
}

/// A directory of its own under the system temp dir.
fn unique_temp_dir() -> Result<PathBuf> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "smdpp-mock-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::Start(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

impl MockSmdp {
    /// Starts the built-in default scenario (operators `test-mno` and `other-mno`).
    ///
    /// # Panics
    ///
    /// When the mock cannot start (no free port, unwritable temp dir); use
    /// [`MockSmdp::builder`] to get the error instead.
    pub async fn start() -> MockSmdp {
        match MockSmdp::builder().start().await {
            Ok(mock) => mock,
            Err(e) => panic!("smdpp-mock did not start: {e:#}"),
        }
    }

    /// A builder for a scenario, certificate directory or journal size of your choice.
    pub fn builder() -> MockSmdpBuilder {
        MockSmdpBuilder::default()
    }

    pub(crate) fn server(&self) -> &Server {
        // Only `drop` and `shutdown` (which consumes the mock) take the server out.
        self.server.as_ref().unwrap_or_else(|| unreachable!())
    }

    /// Stops listening, lets in-flight requests finish and queued notifications drain (for as
    /// long as the configuration allows; a state file is saved), then checks the expectations
    /// as a drop does.
    pub async fn shutdown(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await;
        }
    }

    /// The admin API's address (loopback, system-chosen port).
    pub fn admin_addr(&self) -> SocketAddr {
        match self.server().admin_addr() {
            Some(addr) => addr,
            None => unreachable!("the library always runs the admin API"),
        }
    }

    /// The ES2+ listener's address (loopback, system-chosen port).
    pub fn es2_addr(&self) -> SocketAddr {
        self.server().es2_addr()
    }

    /// The ES2+ base URL, `https://localhost:PORT` (the name the server certificate carries).
    /// Function paths go after it: `/gsma/rsp2/es2plus/downloadOrder`.
    pub fn es2_url(&self) -> String {
        format!("https://localhost:{}", self.es2_addr().port())
    }

    /// The ES9+ listener's address (loopback, system-chosen port), unless configured off.
    pub fn es9_addr(&self) -> Option<SocketAddr> {
        self.server().es9_addr()
    }

    /// The SM-DS listener's address (loopback, system-chosen port), unless configured off.
    pub fn smds_addr(&self) -> Option<SocketAddr> {
        self.server().smds_addr()
    }

    /// The address of the mock's SM-DS as ConfirmOrder's `smdsAddress` names it and LPAs
    /// discover at (`localhost:<port>`), unless it does not run.
    pub fn smds_address(&self) -> Option<String> {
        self.server().smds_address()
    }

    /// An Activation Code for `matching_id`: `1$<address>$<MatchingID>` (SGP.22 §4.1), the
    /// address being where the ES9+ listener is reached.
    pub fn activation_code(&self, matching_id: &str) -> String {
        format!("1${}${matching_id}", self.smdp_address())
    }

    /// The GSMA-style PKI of the ES9+ side (`<certs>/gsma`).
    pub fn gsma_pki(&self) -> smdpp_rsp::pki::GsmaPki {
        smdpp_rsp::pki::GsmaPki::new(&self.certs_dir)
    }

    /// An LPA with a new software eUICC for `eid` (issued by the mock's EUM; the EID must
    /// start with [`smdpp_rsp::pki::EUM_IIN`]), trusting the mock's CI for ES9+'s TLS.
    pub fn lpa(&self, eid: &str) -> Result<smdpp_rsp::lpa::Lpa> {
        let pki = self.gsma_pki();
        let credentials = pki.issue_euicc(eid)?;
        let ci = credentials.ci.clone();
        let euicc = smdpp_rsp::euicc::Euicc::new(credentials)?;
        Ok(smdpp_rsp::lpa::Lpa::new(euicc, &[ci])?)
    }

    /// The admin API base URL, `http://127.0.0.1:PORT`.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin_addr())
    }

    /// The directory holding `ca.pem`, `server.pem` and `<operator>.pem`/`.key`.
    pub fn certs_dir(&self) -> &Path {
        &self.certs_dir
    }

    /// The test CA certificate (PEM), to trust the server.
    pub fn ca_pem(&self) -> Result<String> {
        let path = self.server().pki().ca_cert_path();
        std::fs::read_to_string(&path).map_err(|e| Error::Pki {
            message: format!("reading {}: {e}", path.display()),
            io_kind: Some(e.kind()),
        })
    }

    /// A rustls client configuration that trusts the test CA and presents `operator`'s
    /// certificate: plug it into your own HTTP client. ALPN is left unset (hyper-rustls and
    /// reqwest set their own); the server speaks HTTP/1.1 and HTTP/2.
    pub fn operator_tls_config(&self, operator: &str) -> Result<rustls::ClientConfig> {
        client::tls_config(self.server().pki(), operator).map_err(Error::pki)
    }

    /// An HTTP client for the ES2+ and platform API as `operator` (keep-alive, mutual TLS).
    pub fn client(&self, operator: &str) -> Result<OperatorClient> {
        Ok(OperatorClient::new(
            self.operator_tls_config(operator)?,
            self.es2_url(),
            operator,
        ))
    }

    pub(crate) fn app(&self) -> &App {
        &self.app
    }

    /// The SM-DP+ address of Activation Codes: where the ES9+ listener is reached
    /// (`localhost:PORT`), or the scenario's `smdp.address` when ES9+ is off.
    pub fn smdp_address(&self) -> String {
        self.app().activation_address(&self.app().world())
    }

    /// Moves the mock's clock forward by `by`, as `POST /admin/clock` does: orders expire and
    /// device timelines play that much sooner, so a test never waits for them in real time.
    pub fn advance_clock(&self, by: Duration) {
        self.app().clock.advance(by);
    }

    /// Notifications queued or being delivered now.
    pub fn pending_notifications(&self) -> usize {
        self.app().notifier.depth()
    }

    /// The profile with this ICCID (with or without the trailing F), as the store has it now.
    pub fn profile(&self, iccid: &str) -> Option<Profile> {
        let key = iccid.parse::<Iccid>().ok()?.key();
        self.app().world().store.get(key)
    }

    /// Every profile, in inventory order.
    pub fn profiles(&self) -> Vec<Profile> {
        let mut all = self.app().world().store.snapshot();
        all.sort_by_key(|p| p.iccid.key());
        all
    }

    /// The journal of ES2+ and ES9+ calls, oldest first.
    pub fn journal(&self) -> Vec<JournalEntry> {
        self.app()
            .journal
            .query(&JournalFilter::default(), usize::MAX)
    }

    /// Every notification delivery the log holds, oldest first.
    pub fn notifications(&self) -> Vec<DeliveryRecord> {
        self.app().notifier.log().records()
    }

    /// Lets the device of the order on `iccid` do `event` now (download, install result,
    /// enable…), as a real eUICC talking ES9+ would; notifications follow.
    pub fn device(&self, iccid: &str, event: DeviceEvent) -> Result<Profile, SimulateError> {
        let key = iccid
            .parse::<Iccid>()
            .map_err(|_| crate::store::UpdateError::UnknownIccid)?
            .key();
        crate::app::simulator::simulate(self.app(), key, None, event)
    }

    /// Expects calls of `function` (by default at least one); narrow it with the returned
    /// [`Expectation`]'s methods.
    pub fn expect_call(&self, function: Function) -> Expectation {
        self.expect(Target::Call(function))
    }

    /// Expects delivered notifications with this `notificationPointId` (by default at least
    /// one). Deliveries happen in the background: call [`MockSmdp::verify`] (which waits for
    /// them) at the end of the test rather than relying on the check on drop, which cannot wait.
    pub fn expect_notification(&self, point: u32) -> Expectation {
        self.expect(Target::Notification(point))
    }

    fn expect(&self, target: Target) -> Expectation {
        // Like a wiremock mock, an expectation counts what happens after it is registered.
        let app = self.app();
        let after = (app.journal.last_seq(), app.notifier.log().last_id());
        let spec = Arc::new(Mutex::new(Spec::new(target, after)));
        lock(&self.expectations).push(spec.clone());
        Expectation::new(spec)
    }

    /// Checks the expectations now. Unmet ones get up to 10 s, for notifications still to come
    /// (device timelines wait before they queue anything, then deliveries take a moment); a
    /// test whose expectations are met returns as soon as they are.
    ///
    /// # Panics
    ///
    /// When an expectation is not met, listing what the mock received.
    pub async fn verify(&self) {
        // Wall-clock time: with tokio's paused clock a tokio deadline would pass at once.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while let Some(report) = self.unmet() {
            // A call count already too high cannot come right by waiting.
            if std::time::Instant::now() >= deadline || self.overshot() {
                panic!("{report}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn overshot(&self) -> bool {
        let journal = self.journal();
        let notifications = self.notifications();
        lock(&self.expectations)
            .iter()
            .any(|spec| lock(spec).overshot(&journal, &notifications))
    }

    /// The diagnostic for the expectations not met, if any.
    fn unmet(&self) -> Option<String> {
        let journal = self.journal();
        let notifications = self.notifications();
        let specs = lock(&self.expectations);
        let failures: Vec<String> = specs
            .iter()
            .filter_map(|spec| lock(spec).check(&journal, &notifications))
            .collect();
        if failures.is_empty() {
            return None;
        }
        let pending = self.app().notifier.depth();
        Some(expect::report(&failures, &journal, &notifications, pending))
    }
}

impl Drop for MockSmdp {
    fn drop(&mut self) {
        // A test already failing should show its own panic, not ours on top.
        let report = if std::thread::panicking() {
            None
        } else {
            self.unmet()
        };
        // Stop listening before the certificates go away.
        drop(self.server.take());
        if let Some(dir) = &self.owned_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some(report) = report {
            panic!("{report}");
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
