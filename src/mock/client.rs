//! A small ES2+ client for library users: mutual TLS with an operator's test certificate,
//! keep-alive connections, JSON in and out. Enough for tests; no reqwest needed.

use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;

use crate::error::{Error, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{json, Value};

use crate::pki::PkiDir;
use crate::sgp22::{ExecutionStatus, Function, ADMIN_PROTOCOL, ADMIN_PROTOCOL_HEADER};

/// Trusts the test CA and presents `operator`'s certificate. ALPN is left empty, as
/// hyper-rustls and reqwest both set it themselves (and hyper-rustls refuses a preset one).
pub(super) fn tls_config(pki: &PkiDir, operator: &str) -> anyhow::Result<rustls::ClientConfig> {
    let (cert, key) = (pki.cert_path(operator), pki.key_path(operator));
    if !cert.exists() {
        anyhow::bail!(
            "no certificate for operator {operator:?} in {} (the mock issues one per operator of the scenario)",
            pki.dir().display()
        );
    }
    let mut roots = rustls::RootCertStore::empty();
    let ca = pki.ca_cert_path();
    for cert in CertificateDer::pem_file_iter(&ca).with_context(|| format!("{}", ca.display()))? {
        roots.add(cert.with_context(|| format!("{}", ca.display()))?)?;
    }
    let chain = CertificateDer::pem_file_iter(&cert)
        .with_context(|| format!("{}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(&key).with_context(|| format!("{}", key.display()))?;
    Ok(
        rustls::ClientConfig::builder_with_provider(crate::pki::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?,
    )
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP client for the mock's ES2+ and platform API, as one operator.
#[derive(Debug, Clone)]
pub struct OperatorClient {
    client: HttpsClient,
    base: String,
    operator: String,
}

/// An answer: the HTTP status, the headers and the body (parsed when it is JSON, else
/// `Value::Null`).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status (compares with a number too: `reply.status == 200`).
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    /// The body as sent.
    pub raw: Bytes,
}

impl Reply {
    /// A reply with this status, headers and body.
    pub fn new(status: StatusCode, headers: HeaderMap, raw: Bytes) -> Self {
        let body = serde_json::from_slice(&raw).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            raw,
        }
    }

    /// `header.functionExecutionStatus.status`, e.g. `Executed-Success`.
    pub fn execution_status(&self) -> Option<&str> {
        self.body["header"]["functionExecutionStatus"]["status"].as_str()
    }

    /// Whether the function executed successfully (SGP.22 §6.5.1.2).
    pub fn is_success(&self) -> bool {
        self.status == 200
            && self.execution_status() == Some(ExecutionStatus::ExecutedSuccess.as_str())
    }

    /// The subject and reason code of a `Failed` answer (SGP.22 §5.2.6).
    pub fn status_code(&self) -> Option<(String, String)> {
        let data = &self.body["header"]["functionExecutionStatus"]["statusCodeData"];
        Some((
            data["subjectCode"].as_str()?.to_owned(),
            data["reasonCode"].as_str()?.to_owned(),
        ))
    }
}

impl OperatorClient {
    /// A client for the mock at `base` (e.g. `https://localhost:6443`) presenting the
    /// certificate in `tls` and naming `operator` as `functionRequesterIdentifier`. ALPN in
    /// `tls` must be empty (it is set here).
    pub fn new(tls: rustls::ClientConfig, base: impl Into<String>, operator: &str) -> Self {
        let base = base.into();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .build();
        OperatorClient {
            client: Client::builder(TokioExecutor::new()).build(connector),
            base,
            operator: operator.to_owned(),
        }
    }

    /// Calls an ES2+ function: `body` plus a request header naming this operator and a fresh
    /// `functionCallIdentifier` (SGP.22 §6.5.1.1).
    pub async fn call(&self, function: Function, mut body: Value) -> Result<Reply> {
        static CALLS: AtomicU64 = AtomicU64::new(1);
        let header = json!({
            "functionRequesterIdentifier": self.operator,
            "functionCallIdentifier": format!("lib-{}", CALLS.fetch_add(1, Ordering::Relaxed)),
        });
        match body.as_object_mut() {
            Some(fields) => {
                fields.insert("header".into(), header);
            }
            None => {
                return Err(Error::Call(format!(
                    "the body of {function} must be a JSON object, not {body}"
                )))
            }
        }
        self.call_raw(function, body.to_string()).await
    }

    /// Calls an ES2+ function with `body` exactly as given (to test the mock's refusals).
    pub async fn call_raw(&self, function: Function, body: impl Into<Bytes>) -> Result<Reply> {
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.base, function.path()))
            .header("content-type", "application/json")
            .header(ADMIN_PROTOCOL_HEADER, ADMIN_PROTOCOL)
            .body(Full::new(body.into()))
            .map_err(|e| Error::Call(format!("building the request: {e}")))?;
        self.send(request).await
    }

    /// A GET on the platform API, e.g. `/profiles?state=Available`.
    pub async fn get(&self, path_and_query: &str) -> Result<Reply> {
        let request = Request::builder()
            .method(Method::GET)
            .uri(format!("{}{path_and_query}", self.base))
            .body(Full::new(Bytes::new()))
            .map_err(|e| Error::Call(format!("building the request: {e}")))?;
        self.send(request).await
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Reply> {
        let uri = request.uri().clone();
        let response = self
            .client
            .request(request)
            .await
            .with_context(|| format!("requesting {uri}"))
            .map_err(Error::call)?;
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("reading the answer of {uri}"))
            .map_err(Error::call)?
            .to_bytes();
        Ok(Reply::new(status, headers, raw))
    }
}
