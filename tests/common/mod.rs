//! Shared helpers for the integration tests: a real server on port 0 with its own PKI directory,
//! and an mTLS HTTP client that presents an operator's certificate.

#![allow(dead_code, unreachable_pub)] // each test binary uses a different subset

pub mod package;
pub mod process;
pub mod readme;
pub mod receiver;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use smdpp_mock::es2::Function;
use smdpp_mock::ids::Iccid;
use smdpp_mock::profile::{Profile, ProfileState};
use smdpp_mock::Scenario;
use smdpp_mock::{MockSmdp, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// An EID for tests.
pub const EID1: &str = "89049032123451234512345678901235";
/// Another EID.
pub const EID2: &str = "89049032123451234512345678901236";

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "smdpp-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running mock (the library's [`MockSmdp`]) with a directory of its own for certificates
/// and scenario files.
pub struct TestServer {
    pub mock: MockSmdp,
    pub dir: TempDir,
}

impl TestServer {
    /// Starts the built-in default scenario.
    pub async fn start() -> Self {
        Self::with_scenario(Scenario::default_scenario().unwrap()).await
    }

    /// Starts a scenario given as YAML text (written to a real file first).
    pub async fn with_yaml(yaml: &str) -> Self {
        let dir = TempDir::new("scenario");
        let file = dir.path().join("scenario.yaml");
        std::fs::write(&file, yaml).unwrap();
        let scenario = Scenario::load(&file).unwrap();
        Self::start_in(scenario, dir).await
    }

    /// Starts a scenario file of the repository, e.g. `scenarios/faults.yaml`.
    pub async fn with_file(path: &str) -> Self {
        let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
        let scenario = Scenario::load(&full).unwrap_or_else(|e| panic!("{e}"));
        Self::with_scenario(scenario).await
    }

    /// Starts a YAML scenario in `dir`, whose `certs/` may already hold the PKI.
    pub async fn with_yaml_in(dir: TempDir, yaml: &str) -> Self {
        Self::with_yaml_configured(dir, yaml, |_| {}).await
    }

    /// [`TestServer::with_yaml_in`] with the library's test settings changed by `adjust` (a
    /// state file, fixed addresses).
    pub async fn with_yaml_configured(
        dir: TempDir,
        yaml: &str,
        adjust: impl FnOnce(&mut ServerConfig) + Send + 'static,
    ) -> Self {
        let file = dir.path().join("scenario.yaml");
        std::fs::write(&file, yaml).unwrap();
        let scenario = Scenario::load(&file).unwrap_or_else(|e| panic!("{e}"));
        Self::configured(scenario, dir, adjust).await
    }

    pub async fn with_scenario(scenario: Scenario) -> Self {
        Self::start_in(scenario, TempDir::new("server")).await
    }

    async fn start_in(scenario: Scenario, dir: TempDir) -> Self {
        Self::configured(scenario, dir, |_| {}).await
    }

    /// Starts `scenario` in `dir` with the library's test settings (ports 0) changed by
    /// `adjust`.
    pub async fn configured(
        scenario: Scenario,
        dir: TempDir,
        adjust: impl FnOnce(&mut ServerConfig) + Send + 'static,
    ) -> Self {
        let mock = MockSmdp::builder()
            .scenario(scenario)
            .certs_dir(dir.path().join("certs"))
            .configure(|config| {
                // The server's own default, not the library fixture's shorter one.
                config.notify_drain = std::time::Duration::from_secs(5);
                adjust(config);
            })
            .start()
            .await
            .unwrap();
        TestServer { mock, dir }
    }

    /// The ES2+ listener's address.
    pub fn es2_addr(&self) -> std::net::SocketAddr {
        self.mock.es2_addr()
    }

    /// The admin API's address.
    pub fn admin_addr(&self) -> std::net::SocketAddr {
        self.mock.admin_addr()
    }

    /// The application inside the mock.
    pub fn app(&self) -> &smdpp_mock::internal::app::App {
        smdpp_mock::internal::app::of_mock(&self.mock)
    }

    /// Stops gracefully (queued notifications drain, a state file is saved); the directory.
    pub async fn shutdown(self) -> TempDir {
        let TestServer { mock, dir } = self;
        mock.shutdown().await;
        dir
    }

    /// A TLS connection presenting `certs/<name>.pem`, HTTP/1.1 by ALPN, nothing sent yet.
    pub async fn raw_tls(&self, name: &str) -> tokio_rustls::client::TlsStream<TcpStream> {
        self.raw_tls_alpn(name, b"http/1.1").await
    }

    /// Like [`TestServer::raw_tls`], offering `alpn` (e.g. `h2`).
    pub async fn raw_tls_alpn(
        &self,
        name: &str,
        alpn: &[u8],
    ) -> tokio_rustls::client::TlsStream<TcpStream> {
        let certs = self.certs();
        let cert = std::fs::read(certs.join(format!("{name}.pem"))).unwrap();
        let key_pem = std::fs::read(certs.join(format!("{name}.key"))).unwrap();
        let mut config = client_config_builder(&certs)
            .with_client_auth_cert(chain(&cert), key(&key_pem))
            .unwrap();
        config.alpn_protocols = vec![alpn.to_vec()];
        let tcp = TcpStream::connect(self.es2_addr()).await.unwrap();
        TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .unwrap()
    }

    /// Waits (up to 10 s) until the metric series is `n`: the server counts a refusal in its
    /// connection task, after the client has already seen it.
    pub async fn wait_metric(&self, series: &str, n: u64) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = self.metric(series).await;
            if got == n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{series} is {got}, not {n}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The value of a metric line (`name{labels}` exactly as exposed), 0 when absent.
    pub async fn metric(&self, series: &str) -> u64 {
        let text = String::from_utf8(self.admin().get("/metrics").await.raw.to_vec()).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0)
    }

    /// Simulates a device event on the order of `iccid`.
    pub fn device(
        &self,
        iccid: &str,
        event: smdpp_mock::profile::machine::DeviceEvent,
    ) -> Result<Profile, smdpp_mock::internal::app::simulator::SimulateError> {
        smdpp_mock::internal::app::simulator::simulate(
            self.app(),
            iccid.parse::<Iccid>().unwrap().key(),
            None,
            event,
        )
    }

    pub fn certs(&self) -> PathBuf {
        self.dir.path().join("certs")
    }

    /// A client presenting `certs/<name>.pem`.
    pub fn client(&self, name: &str) -> Es2Client {
        Es2Client::from_dir(self.es2_addr(), &self.certs(), name)
    }

    /// A client presenting the given PEM certificate and key.
    pub fn client_with(&self, cert_pem: &[u8], key_pem: &[u8], requester: &str) -> Es2Client {
        let builder = client_config_builder(&self.certs());
        Es2Client::new(
            self.es2_addr(),
            builder
                .with_client_auth_cert(chain(cert_pem), key(key_pem))
                .unwrap(),
            requester,
        )
    }

    /// A client presenting `cert`, issued by any CA.
    pub fn client_for(&self, cert: &smdpp_mock::pki::IssuedCert, requester: &str) -> Es2Client {
        self.client_with(cert.cert_pem.as_bytes(), cert.key_pem.as_bytes(), requester)
    }

    /// The server's test CA, to issue certificates of any kind.
    pub fn ca(&self) -> smdpp_mock::pki::CertificateAuthority {
        let certs = self.certs();
        smdpp_mock::pki::CertificateAuthority::from_pem(
            &std::fs::read_to_string(certs.join("ca.pem")).unwrap(),
            &std::fs::read_to_string(certs.join("ca.key")).unwrap(),
        )
        .unwrap()
    }

    /// A client with a valid certificate from the test CA (CN `nobody`) that maps to no operator.
    pub fn unmapped_client(&self) -> Es2Client {
        use smdpp_mock::pki::{LeafSpec, Usage};
        let nobody = self
            .ca()
            .issue(&LeafSpec::new("nobody", Usage::Client))
            .unwrap();
        self.client_for(&nobody, "nobody")
    }

    /// A client that presents no certificate.
    pub fn anonymous_client(&self) -> Es2Client {
        let config = client_config_builder(&self.certs()).with_no_client_auth();
        Es2Client::new(self.es2_addr(), config, "anonymous")
    }

    pub fn profile(&self, iccid: &str) -> Profile {
        let key = iccid.parse::<Iccid>().unwrap().key();
        self.app().world().store.get(key).unwrap()
    }

    pub fn state(&self, iccid: &str) -> ProfileState {
        self.profile(iccid).state
    }

    /// Waits (polling, up to 20 s) until the profile satisfies `done`; returns it.
    pub async fn wait_for(&self, iccid: &str, done: impl Fn(&Profile) -> bool) -> Profile {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let p = self.profile(iccid);
            if done(&p) {
                return p;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "profile {iccid} never got there: {p:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Every profile, for "nothing changed" assertions.
    pub fn snapshot(&self) -> Vec<Profile> {
        let mut all = self.app().world().store.snapshot();
        all.sort_by_key(|p| p.iccid.key());
        all
    }
}

fn chain(pem: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn key(pem: &[u8]) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem).unwrap()
}

/// A client config trusting `<certs>/ca.pem`.
fn client_config_builder(
    certs: &Path,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::client::WantsClientCert> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(certs.join("ca.pem")).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    rustls::ClientConfig::builder_with_provider(smdpp_mock::pki::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
}

/// The library's reply (status, headers, body parsed as JSON when it is JSON), with the
/// assertions the tests share.
pub use smdpp_mock::Reply;

pub trait ReplyExt {
    /// Asserts `Executed-Success` over HTTP 200.
    fn assert_success(&self) -> &Self;
    /// Asserts `Failed` with these codes over HTTP 200, and that no output field is present.
    fn assert_failed(&self, subject: &str, reason: &str) -> &Self;
    fn subject_identifier(&self) -> Option<&str>;
    fn str(&self, field: &str) -> &str;
}

/// `functionExecutionStatus.status`, which every assertion below needs.
fn execution_status(reply: &Reply) -> &str {
    reply
        .execution_status()
        .unwrap_or_else(|| panic!("no functionExecutionStatus in {}", reply.body))
}

impl ReplyExt for Reply {
    fn assert_success(&self) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(execution_status(self), "Executed-Success", "{}", self.body);
        self
    }

    fn assert_failed(&self, subject: &str, reason: &str) -> &Self {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(execution_status(self), "Failed", "{}", self.body);
        let data = &self.body["header"]["functionExecutionStatus"]["statusCodeData"];
        assert_eq!(
            (data["subjectCode"].as_str(), data["reasonCode"].as_str()),
            (Some(subject), Some(reason)),
            "{}",
            self.body
        );
        assert_eq!(
            self.body.as_object().unwrap().len(),
            1,
            "a Failed answer carries only the header: {}",
            self.body
        );
        self
    }

    fn subject_identifier(&self) -> Option<&str> {
        self.body["header"]["functionExecutionStatus"]["statusCodeData"]["subjectIdentifier"]
            .as_str()
    }

    fn str(&self, field: &str) -> &str {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("no {field} in {}", self.body))
    }
}

/// An mTLS client for the ES2+ port. Each request uses a fresh connection, so refusals at the
/// handshake show up on every call.
pub struct Es2Client {
    addr: std::net::SocketAddr,
    config: rustls::ClientConfig,
    connector: TlsConnector,
    requester: String,
    calls: AtomicUsize,
    http2: bool,
}

impl Es2Client {
    /// A client for `addr` trusting `<certs>/ca.pem` and presenting `<certs>/<name>.pem`.
    pub fn from_dir(addr: std::net::SocketAddr, certs: &Path, name: &str) -> Self {
        let cert = std::fs::read(certs.join(format!("{name}.pem"))).unwrap();
        let key_pem = std::fs::read(certs.join(format!("{name}.key"))).unwrap();
        let config = client_config_builder(certs)
            .with_client_auth_cert(chain(&cert), key(&key_pem))
            .unwrap();
        Es2Client::new(addr, config, name)
    }

    /// A client for `addr` with its own TLS configuration (an ES12 caller's certificate).
    pub fn with_config(
        addr: std::net::SocketAddr,
        config: rustls::ClientConfig,
        requester: &str,
    ) -> Self {
        Es2Client::new(addr, config, requester)
    }

    fn new(addr: std::net::SocketAddr, mut config: rustls::ClientConfig, requester: &str) -> Self {
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Es2Client {
            addr,
            connector: TlsConnector::from(Arc::new(config.clone())),
            config,
            requester: requester.to_string(),
            calls: AtomicUsize::new(0),
            http2: false,
        }
    }

    /// Speak HTTP/2 (negotiated with ALPN) instead of HTTP/1.1.
    pub fn http2(mut self) -> Self {
        self.config.alpn_protocols = vec![b"h2".to_vec()];
        self.connector = TlsConnector::from(Arc::new(self.config.clone()));
        self.http2 = true;
        self
    }

    /// A standard ES2+ header with a fresh call identifier.
    pub fn header(&self) -> Value {
        let n = self.calls.fetch_add(1, Ordering::Relaxed);
        json!({
            "functionRequesterIdentifier": self.requester,
            "functionCallIdentifier": format!("TX-{n}"),
        })
    }

    /// Calls an ES2+ function with `body` plus a standard header.
    pub async fn call(&self, function: Function, mut body: Value) -> Reply {
        body.as_object_mut()
            .unwrap()
            .insert("header".into(), self.header());
        self.call_raw(function, body).await
    }

    /// Calls an ES2+ function with `body` exactly as given.
    pub async fn call_raw(&self, function: Function, body: Value) -> Reply {
        self.call_raw_result(function, body).await.unwrap()
    }

    /// Like [`Es2Client::call_raw`], but a transport failure is returned, not a panic.
    pub async fn call_raw_result(&self, function: Function, body: Value) -> Result<Reply, String> {
        self.request(
            Method::POST,
            &function.path(),
            &[
                ("content-type", "application/json"),
                ("x-admin-protocol", "gsma/rsp/v2.5.0"),
            ],
            body.to_string().into_bytes(),
        )
        .await
    }

    /// Sends any request; errors are transport errors (e.g. a refused handshake).
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> Result<Reply, String> {
        let tcp = TcpStream::connect(self.addr)
            .await
            .map_err(|e| e.to_string())?;
        let tls = self
            .connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let mut builder = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            builder = builder.header(*name, HeaderValue::from_str(value).unwrap());
        }
        if !self.http2 {
            builder = builder.header("host", "localhost");
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let io = TokioIo::new(tls);
        let response = if self.http2 {
            let (mut send, conn) =
                hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
                    .await
                    .map_err(|e| format!("h2 handshake: {e}"))?;
            tokio::spawn(conn);
            send.send_request(request).await
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| format!("http1 handshake: {e}"))?;
            tokio::spawn(conn);
            send.send_request(request).await
        }
        .map_err(|e| format!("request: {e}"))?;
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Reply::new(status, headers, raw))
    }
}

/// An HTTP/1.1 ES2+ request as raw text (for tests that hold the connection themselves).
pub fn raw_es2_request(function: Function, body: &str) -> String {
    format!(
        "POST {} HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\nx-admin-protocol: gsma/rsp/v2.5.0\r\ncontent-length: {}\r\n\r\n{body}",
        function.path(),
        body.len()
    )
}

/// A scenario with operator `test-mno`, five STANDARD profiles and one fault delaying
/// `function` by `delay` (e.g. `900ms`).
pub fn delayed_scenario(function: Function, delay: &str) -> String {
    format!(
        r#"
operators: [{{ id: test-mno }}]
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles: [{{ range: {{ start: "894450010000000000", count: 5 }} }}]
faults:
  - match: {{ function: {function} }}
    delay: {delay}
"#
    )
}

/// DownloadOrder by profile type; returns the ICCID.
pub async fn download_by_type(client: &Es2Client, profile_type: &str, eid: Option<&str>) -> String {
    let mut body = json!({ "profileType": profile_type });
    if let Some(eid) = eid {
        body["eid"] = json!(eid);
    }
    let reply = client.call(Function::DownloadOrder, body).await;
    reply.assert_success();
    reply.str("iccid").to_string()
}

/// ConfirmOrder; returns the MatchingID.
pub async fn confirm(client: &Es2Client, iccid: &str, extra: Value) -> String {
    let mut body = json!({ "iccid": iccid, "releaseFlag": false });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let reply = client.call(Function::ConfirmOrder, body).await;
    reply.assert_success();
    reply.str("matchingId").to_string()
}

/// A plain-HTTP client for the admin API.
pub struct AdminClient {
    addr: std::net::SocketAddr,
}

impl TestServer {
    /// A client for the admin API.
    pub fn admin(&self) -> AdminClient {
        AdminClient {
            addr: self.admin_addr(),
        }
    }
}

impl AdminClient {
    /// A client for the admin API at `addr` (a server this test started some other way).
    pub fn at(addr: std::net::SocketAddr) -> Self {
        AdminClient { addr }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        content_type: &str,
    ) -> Reply {
        self.send_with(method, path, body, &[("content-type", content_type)])
            .await
    }

    /// A request with these headers (and `host: localhost` unless they name a host).
    pub async fn send_with(
        &self,
        method: Method,
        path: &str,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut request = Request::builder().method(method).uri(path);
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            request = request.header("host", "localhost");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
            .unwrap();
        let response = send.send_request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response.into_body().collect().await.unwrap().to_bytes();
        Reply::new(status, headers, raw)
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, "application/json").await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::POST,
            path,
            Some(&body.to_string()),
            "application/json",
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> Reply {
        self.send(
            Method::PUT,
            path,
            Some(&body.to_string()),
            "application/json",
        )
        .await
    }
}

impl Es2Client {
    /// GET on the platform API (same mTLS connection setup as ES2+).
    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, &[], Vec::new())
            .await
            .unwrap()
    }
}

/// A scenario for the ES9+ tests: the SM-DP+ at `localhost`, `test-mno` notified at `callback`,
/// 20 `STANDARD` profiles; `smdp_extra` goes under `smdp:` (e.g. `  limits: { … }`).
pub fn es9_scenario(callback: &str, smdp_extra: &str) -> String {
    format!(
        r#"
smdp:
  address: localhost
{smdp_extra}
operators:
  - id: test-mno
    callback: {{ url: "{callback}", initialBackoff: 10ms }}
profileTypes:
  - id: STANDARD
    owner: test-mno
    profiles:
      - range: {{ start: "894450010000000000", count: 20 }}
"#
    )
}

/// [`es9_scenario`] running, with a receiver that answers 204.
pub async fn es9_started(smdp_extra: &str) -> (TestServer, receiver::Receiver) {
    let receiver = receiver::Receiver::plain(Arc::new(|_| 204)).await;
    let t = TestServer::with_yaml(&es9_scenario(&receiver.http_url(), smdp_extra)).await;
    (t, receiver)
}

/// [`es9_started`] with `adjust` applied to the server's configuration (limits, capacities).
pub async fn es9_configured(
    adjust: impl FnOnce(&mut ServerConfig) + Send + 'static,
) -> (TestServer, receiver::Receiver) {
    let receiver = receiver::Receiver::plain(Arc::new(|_| 204)).await;
    let dir = TempDir::new("es9");
    let file = dir.path().join("scenario.yaml");
    std::fs::write(&file, es9_scenario(&receiver.http_url(), "")).unwrap();
    let scenario = Scenario::load(&file).unwrap();
    (
        TestServer::configured(scenario, dir, adjust).await,
        receiver,
    )
}

/// An order released through ES2+ (as [`release_standard`] without an EID): its ICCID and its
/// Activation Code.
pub async fn released(t: &TestServer, extra: Value) -> (String, String) {
    let (iccid, mid) = release_standard(t, None, extra).await;
    (iccid, t.mock.activation_code(&mid))
}

/// DownloadOrder of a `STANDARD` profile (for `eid`, if given) and ConfirmOrder with
/// `releaseFlag` and the fields of `extra`: the ICCID and the MatchingID.
pub async fn release_standard(t: &TestServer, eid: Option<&str>, extra: Value) -> (String, String) {
    let c = t.client("test-mno");
    let iccid = download_by_type(&c, "STANDARD", eid).await;
    let mut body = json!({ "releaseFlag": true });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let mid = confirm(&c, &iccid, body).await;
    (iccid, mid)
}

/// ES9+ InitiateAuthentication by `lpa` for `smdp_address`, with its card's challenge and
/// EUICCInfo1: the SM-DP+'s answer (a session at its first stage, which changes no order).
pub async fn initiate_authentication(
    lpa: &mut smdpp_rsp::lpa::Lpa,
    address: &str,
    smdp_address: &str,
) -> Result<Value, smdpp_rsp::lpa::LpaError> {
    let challenge = lpa.euicc_mut().transmit(&[0xBF, 0x2E, 0x00]);
    let info1 = lpa.euicc_mut().transmit(&[0xBF, 0x20, 0x00]);
    lpa.call(
        address,
        "initiateAuthentication",
        json!({ "smdpAddress": smdp_address,
                "euiccChallenge": smdpp_rsp::crypto::base64_encode(&challenge[5..]),
                "euiccInfo1": smdpp_rsp::crypto::base64_encode(&info1) }),
    )
    .await
}

/// The newest journal entry of `function` (`"CancelSession"`).
pub fn last_call(t: &TestServer, function: &str) -> smdpp_mock::JournalEntry {
    t.mock
        .journal()
        .into_iter()
        .rev()
        .find(|e| e.function == function)
        .unwrap_or_else(|| panic!("no {function} in the journal"))
}
