//! ES12 as a client (SGP.22 §5.9): the SM-DP+ registering and deleting its events at an SM-DS
//! that is not the mock's own, and the mock's SM-DS, as an Alternative SM-DS, cascading them
//! to a root SM-DS (ES15 is ES12 between SM-DSs, §5.10). Mutual TLS: the caller presents its
//! TLS certificate (DPtls, or DStls), which carries its OID, and trusts the folder's CIs.
//!
//! The protocol engines answer synchronously, so a call that must finish before its caller
//! answers (RegisterEvent in ConfirmOrder, a cascaded registration) blocks its thread on the
//! client's own runtime thread ([`Es12Client::call`], within [`CALL_TIMEOUT`]); deletions after
//! an order ends are sent without waiting ([`Es12Client::send`]).

use std::sync::mpsc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;

use crate::sgp22::{SmdsFunction, StatusCode};

/// How long one ES12 call may take, connection included.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Most bytes of an SM-DS's answer that are read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// How an ES12 call ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Es12Outcome {
    /// `Executed-Success`.
    Done,
    /// The SM-DS answered `Failed` with this code and message.
    Failed(Option<StatusCode>, String),
    /// No ES12 answer: no connection, TLS refused, a timeout, or not an SGP.22 answer.
    Unreachable(String),
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An ES12 client with one identity.
pub(crate) struct Es12Client {
    client: HttpsClient,
    runtime: Option<tokio::runtime::Runtime>,
    /// `functionRequesterIdentifier` of its requests (its OID).
    requester: String,
}

impl std::fmt::Debug for Es12Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es12Client")
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl Drop for Es12Client {
    fn drop(&mut self) {
        // Dropped from async code too (the App goes with a test's runtime): never block there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Es12Client {
    /// A client presenting `chain` (its TLS certificate first) and `key` (PKCS#8 DER),
    /// trusting the CA certificates `roots` (DER), calling itself `requester`.
    pub(crate) fn new(
        chain: &[Vec<u8>],
        key: &[u8],
        roots: &[Vec<u8>],
        requester: String,
    ) -> Result<Self, String> {
        let mut store = rustls::RootCertStore::empty();
        let (_, _) = store
            .add_parsable_certificates(roots.iter().map(|der| CertificateDer::from(der.clone())));
        let chain = chain
            .iter()
            .map(|der| CertificateDer::from(der.clone()))
            .collect();
        let config = rustls::ClientConfig::builder_with_provider(crate::pki::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(store)
            .with_client_auth_cert(chain, PrivateKeyDer::Pkcs8(key.to_vec().into()))
            .map_err(|e| format!("the ES12 client certificate: {e}"))?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .build();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("smdpp-es12")
            .enable_all()
            .build()
            .map_err(|e| format!("starting the ES12 client's thread: {e}"))?;
        let client = {
            let _entered = runtime.enter();
            Client::builder(TokioExecutor::new()).build(connector)
        };
        Ok(Es12Client {
            client,
            runtime: Some(runtime),
            requester,
        })
    }

    /// Calls `function` at the SM-DS `address` (`host[:port]`) with `body` (its members; the
    /// request header is added) and waits for the outcome: the call's own [`CALL_TIMEOUT`],
    /// and a second for the answer to come back from the client's thread.
    pub(crate) fn call(&self, address: &str, function: SmdsFunction, body: Value) -> Es12Outcome {
        // Waiting blocks this thread: on a worker of a multi-threaded runtime its other tasks
        // are handed over meanwhile; the only thread of a current-thread runtime would stall
        // every listener of the mock, and never answer an SM-DS served by that runtime.
        let flavor = tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor());
        if let Ok(tokio::runtime::RuntimeFlavor::CurrentThread) = flavor {
            return Es12Outcome::Unreachable(
                "an ES12 call that must be answered first cannot wait on a current-thread Tokio \
                 runtime: run the mock on a multi-threaded one (the binary does; in tests, \
                 #[tokio::test(flavor = \"multi_thread\")])"
                    .into(),
            );
        }
        let (tx, rx) = mpsc::channel();
        self.send_then(address, function, body, move |outcome| {
            let _ = tx.send(outcome);
        });
        let wait = || {
            rx.recv_timeout(CALL_TIMEOUT + Duration::from_secs(1))
                .unwrap_or_else(|_| Es12Outcome::Unreachable("no answer in time".into()))
        };
        match flavor {
            Ok(_) => tokio::task::block_in_place(wait),
            Err(_) => wait(),
        }
    }

    /// Calls `function` without waiting; `then` gets the outcome on the client's thread.
    pub(crate) fn send_then(
        &self,
        address: &str,
        function: SmdsFunction,
        mut body: Value,
        then: impl FnOnce(Es12Outcome) + Send + 'static,
    ) {
        let Some(runtime) = &self.runtime else {
            return then(Es12Outcome::Unreachable("the client has stopped".into()));
        };
        if let Some(members) = body.as_object_mut() {
            members.insert(
                "header".into(),
                serde_json::json!({
                    "functionRequesterIdentifier": self.requester,
                    "functionCallIdentifier": format!("es12-{}", crate::ids::hex(&random_bytes())),
                }),
            );
        }
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("https://{address}{}", function.path()))
            .header("content-type", "application/json")
            .header(crate::sgp22::ADMIN_PROTOCOL_HEADER, "gsma/rsp/v2.2.0")
            .body(Full::new(Bytes::from(body.to_string())));
        let client = self.client.clone();
        runtime.spawn(async move {
            let outcome = match request {
                Ok(request) => {
                    match tokio::time::timeout(CALL_TIMEOUT, exchange(&client, request)).await {
                        Ok(outcome) => outcome,
                        Err(_) => {
                            Es12Outcome::Unreachable(format!("no answer within {CALL_TIMEOUT:?}"))
                        }
                    }
                }
                Err(e) => Es12Outcome::Unreachable(format!("invalid request: {e}")),
            };
            then(outcome);
        });
    }
}

/// Eight random bytes for a functionCallIdentifier.
fn random_bytes() -> [u8; 8] {
    smdpp_rsp::crypto::random()
}

/// One request and its answer read as an SGP.22 function execution status.
async fn exchange(client: &HttpsClient, request: Request<Full<Bytes>>) -> Es12Outcome {
    let response = match client.request(request).await {
        Ok(r) => r,
        Err(e) => return Es12Outcome::Unreachable(crate::notify::transport::error_chain(&e)),
    };
    let status = response.status().as_u16();
    let body = match http_body_util::Limited::new(response.into_body(), ANSWER_LIMIT)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(e) => return Es12Outcome::Unreachable(format!("reading the answer: {e}")),
    };
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return Es12Outcome::Unreachable(format!("HTTP {status} without an SGP.22 answer"));
    };
    let execution = &json["header"]["functionExecutionStatus"];
    match execution["status"].as_str() {
        Some("Executed-Success") | Some("Executed-WithWarning") => Es12Outcome::Done,
        Some(_) => {
            let data = &execution["statusCodeData"];
            let code = crate::sgp22::known_code(
                data["subjectCode"].as_str().unwrap_or_default(),
                data["reasonCode"].as_str().unwrap_or_default(),
            );
            let message = data["message"].as_str().unwrap_or_default();
            Es12Outcome::Failed(code, crate::journal::cut(message, 300))
        }
        None => Es12Outcome::Unreachable(format!("HTTP {status} without an SGP.22 answer")),
    }
}

/// An ES12 client made on first use from its identity: most runs never call an external
/// SM-DS, and a client keeps a thread.
pub(crate) struct LazyClient {
    chain: Vec<Vec<u8>>,
    key: Vec<u8>,
    roots: Vec<Vec<u8>>,
    requester: String,
    client: std::sync::OnceLock<Result<Es12Client, String>>,
}

impl std::fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyClient")
            .field("requester", &self.requester)
            .finish_non_exhaustive()
    }
}

impl LazyClient {
    /// The identity of [`Es12Client::new`], kept until the first call.
    pub(crate) fn new(
        chain: Vec<Vec<u8>>,
        key: Vec<u8>,
        roots: Vec<Vec<u8>>,
        requester: String,
    ) -> Self {
        LazyClient {
            chain,
            key,
            roots,
            requester,
            client: std::sync::OnceLock::new(),
        }
    }

    /// The client, or why it could not be made.
    pub(crate) fn get(&self) -> Result<&Es12Client, &str> {
        self.client
            .get_or_init(|| {
                Es12Client::new(&self.chain, &self.key, &self.roots, self.requester.clone())
            })
            .as_ref()
            .map_err(String::as_str)
    }

    /// [`Es12Client::call`], or `Unreachable` when there is no client.
    pub(crate) fn call(&self, address: &str, function: SmdsFunction, body: Value) -> Es12Outcome {
        match self.get() {
            Ok(client) => client.call(address, function, body),
            Err(e) => Es12Outcome::Unreachable(e.to_owned()),
        }
    }

    /// [`Es12Client::send_then`], or `then(Unreachable)` at once when there is no client.
    pub(crate) fn send_then(
        &self,
        address: &str,
        function: SmdsFunction,
        body: Value,
        then: impl FnOnce(Es12Outcome) + Send + 'static,
    ) {
        match self.get() {
            Ok(client) => client.send_then(address, function, body, then),
            Err(e) => then(Es12Outcome::Unreachable(e.to_owned())),
        }
    }
}
