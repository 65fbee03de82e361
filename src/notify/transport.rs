//! Sending one notification: the operator's endpoint over HTTPS (optionally with the SM-DP+'s
//! client certificate) or plain HTTP for local receivers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::pki::{PkiDir, NOTIFICATION_CLIENT};
use crate::scenario::Callback;

/// How one attempt ended: the receiver's answer, or why there was none.
pub type AttemptResult = Result<Answered, String>;

/// A receiver's answer to one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answered {
    /// The HTTP status.
    pub status: u16,
    /// The size of the answer's body (SGP.22 §6.3 expects none), counted up to
    /// [`ANSWER_LIMIT`].
    pub body_bytes: usize,
}

impl Answered {
    /// An answer with `status` and no body.
    pub fn empty(status: u16) -> Self {
        Answered {
            status,
            body_bytes: 0,
        }
    }
}

/// Most bytes of a receiver's answer that are read: a notification answer should be empty, and
/// a receiver that sends more cannot make the mock hold it.
pub const ANSWER_LIMIT: usize = 64 * 1024;

/// Something that can deliver a notification body to a callback (HTTP in production, a fake in
/// tests of the dispatcher).
pub trait Transport: Send + Sync + 'static {
    /// POSTs `body` to the callback; the dispatcher applies the attempt timeout around it.
    fn post(
        &self,
        callback: &Callback,
        body: Bytes,
        admin_protocol: &str,
    ) -> Pin<Box<dyn Future<Output = AttemptResult> + Send>>;
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// What distinguishes callback clients: the client certificate (or not) and the CA file.
type TlsSetting = (bool, Option<std::path::PathBuf>);

/// The real transport: hyper's pooled client over rustls.
pub struct HttpTransport {
    pki: PkiDir,
    /// One client per TLS setting, built on first use.
    clients: Mutex<HashMap<TlsSetting, HttpsClient>>,
}

impl HttpTransport {
    /// A transport that trusts `certs/ca.pem` unless a callback names its own CA file, and
    /// presents `certs/smdpp-client.pem` to callbacks that ask for it.
    pub fn new(pki: PkiDir) -> Self {
        HttpTransport {
            pki,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, callback: &Callback) -> Result<HttpsClient, String> {
        let key = (callback.client_certificate, callback.ca_file.clone());
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        // Errors are not kept: a CA file that appears later is picked up on the next attempt.
        let client = self.build(callback)?;
        clients.insert(key, client.clone());
        Ok(client)
    }

    fn build(&self, callback: &Callback) -> Result<HttpsClient, String> {
        let ca = callback
            .ca_file
            .clone()
            .unwrap_or_else(|| self.pki.ca_cert_path());
        let mut roots = rustls::RootCertStore::empty();
        let certs = CertificateDer::pem_file_iter(&ca)
            .map_err(|e| format!("reading {}: {e}", ca.display()))?;
        for cert in certs {
            let cert = cert.map_err(|e| format!("{}: {e}", ca.display()))?;
            roots
                .add(cert)
                .map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        let builder = rustls::ClientConfig::builder_with_provider(crate::pki::provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        // ALPN stays empty: hyper-rustls sets it, and panics when it is set already.
        let config = if callback.client_certificate {
            let (cert, key) = (
                self.pki.cert_path(NOTIFICATION_CLIENT),
                self.pki.key_path(NOTIFICATION_CLIENT),
            );
            let chain = CertificateDer::pem_file_iter(&cert)
                .map_err(|e| format!("reading {}: {e}", cert.display()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.display()))?;
            let key = PrivateKeyDer::from_pem_file(&key)
                .map_err(|e| format!("reading {}: {e}", key.display()))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| e.to_string())?
        } else {
            builder.with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Client::builder(TokioExecutor::new()).build(connector))
    }
}

impl HttpTransport {
    /// POSTs `body` to the callback; the answer's head, its body still to be read.
    fn send(
        &self,
        callback: &Callback,
        body: Bytes,
        admin_protocol: &str,
    ) -> impl Future<Output = Result<hyper::Response<hyper::body::Incoming>, String>> + Send + 'static
    {
        let client = self.client(callback);
        let request = Request::builder()
            .method(Method::POST)
            .uri(&callback.url)
            .header("content-type", "application/json")
            .header(crate::sgp22::ADMIN_PROTOCOL_HEADER, admin_protocol)
            .body(Full::new(body));
        async move {
            let client = client?;
            let request = request.map_err(|e| format!("invalid request: {e}"))?;
            client.request(request).await.map_err(|e| error_chain(&e))
        }
    }

    /// POSTs `body` and returns the status and the response body (for the conformance probe).
    pub fn post_full(
        &self,
        callback: &Callback,
        body: Bytes,
        admin_protocol: &str,
    ) -> Pin<Box<dyn Future<Output = FullAnswer> + Send>> {
        let sent = self.send(callback, body, admin_protocol);
        Box::pin(async move {
            let response = sent.await?;
            let status = response.status().as_u16();
            let body = http_body_util::Limited::new(response.into_body(), ANSWER_LIMIT)
                .collect()
                .await
                .map_err(
                    |e| match e.downcast_ref::<http_body_util::LengthLimitError>() {
                        Some(_) => format!("the answer's body is larger than {ANSWER_LIMIT} bytes"),
                        None => error_chain(e.as_ref()),
                    },
                )?
                .to_bytes();
            Ok((status, body))
        })
    }
}

impl Transport for HttpTransport {
    fn post(
        &self,
        callback: &Callback,
        body: Bytes,
        admin_protocol: &str,
    ) -> Pin<Box<dyn Future<Output = AttemptResult> + Send>> {
        let sent = self.send(callback, body, admin_protocol);
        Box::pin(async move {
            let response = sent.await?;
            let status = response.status().as_u16();
            // Read the body so the connection can be reused, up to the limit: a receiver that
            // sends more gets its connection dropped instead.
            let mut body = std::pin::pin!(response.into_body());
            let mut body_bytes = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    body_bytes += data.len();
                    if body_bytes > ANSWER_LIMIT {
                        break;
                    }
                }
            }
            Ok(Answered { status, body_bytes })
        })
    }
}

/// An error with its sources, e.g. "client error (Connect): tcp connect error: Connection refused".
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The status and body of an answer, or why there was none.
pub type FullAnswer = Result<(u16, Bytes), String>;

/// A transport shared by the dispatcher's tasks.
pub type SharedTransport = Arc<dyn Transport>;
