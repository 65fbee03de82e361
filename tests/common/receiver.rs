//! A real operator notification endpoint for tests: plain HTTP or HTTPS (optionally requiring a
//! client certificate), recording every request and answering with a scripted status.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use smdpp_mock::pki::{CertificateAuthority, LeafSpec, Usage};
use tokio::net::TcpListener;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Value,
    /// The CN of the client certificate, over mTLS.
    pub client_cn: Option<String>,
}

/// The status to answer the n-th request (0-based) with.
pub type Script = Arc<dyn Fn(usize) -> u16 + Send + Sync>;

/// The full answer to the n-th request with this body: status, body, delay.
pub type Behaviour =
    Arc<dyn Fn(usize, &Value) -> (u16, &'static str, std::time::Duration) + Send + Sync>;

pub struct Receiver {
    pub addr: SocketAddr,
    pub requests: Arc<Mutex<Vec<Received>>>,
    /// While false, every request is recorded at once but answered only when it turns true
    /// ([`Receiver::held`], [`Receiver::release`]): "still in flight" without a race with time.
    open: Arc<tokio::sync::watch::Sender<bool>>,
}

impl Receiver {
    /// A plain HTTP receiver.
    pub async fn plain(script: Script) -> Self {
        Self::start(
            None,
            Arc::new(move |n, _: &Value| (script(n), "", std::time::Duration::ZERO)),
        )
        .await
    }

    /// A plain HTTP receiver whose answers depend on the request.
    pub async fn plain_with(behaviour: Behaviour) -> Self {
        Self::start(None, behaviour).await
    }

    /// A plain HTTP receiver that records each request and holds its answer (204) until
    /// [`Receiver::release`].
    pub async fn held() -> Self {
        let receiver = Self::plain(Arc::new(|_| 204)).await;
        receiver.open.send_replace(false);
        receiver
    }

    /// Holds the answers to the requests from now on (each recorded at once) until
    /// [`Receiver::release`].
    pub fn hold(&self) {
        self.open.send_replace(false);
    }

    /// Answers the requests held so far, and every one after.
    pub fn release(&self) {
        self.open.send_replace(true);
    }

    /// An HTTPS receiver whose certificate comes from the CA in `certs`; with
    /// `require_client_cert` it accepts only clients with a certificate of that CA.
    pub async fn tls(certs: &Path, require_client_cert: bool, script: Script) -> Self {
        let ca = CertificateAuthority::from_pem(
            &std::fs::read_to_string(certs.join("ca.pem")).unwrap(),
            &std::fs::read_to_string(certs.join("ca.key")).unwrap(),
        )
        .unwrap();
        let mut spec = LeafSpec::new("receiver", Usage::Server);
        spec.sans = vec!["127.0.0.1".into(), "localhost".into()];
        let issued = ca.issue(&spec).unwrap();
        let provider = smdpp_mock::pki::provider();
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            for c in CertificateDer::pem_slice_iter(ca.cert_pem().as_bytes()) {
                roots.add(c.unwrap()).unwrap();
            }
            builder.with_client_cert_verifier(
                rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .unwrap(),
            )
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(
                CertificateDer::pem_slice_iter(issued.cert_pem.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap(),
                rustls::pki_types::PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
                    .unwrap(),
            )
            .unwrap();
        let behaviour: Behaviour =
            Arc::new(move |n, _: &Value| (script(n), "", std::time::Duration::ZERO));
        Self::start(Some(Arc::new(config)), behaviour).await
    }

    /// An HTTPS receiver with its own TLS configuration, answering by `behaviour`.
    pub async fn tls_with(config: Arc<rustls::ServerConfig>, behaviour: Behaviour) -> Self {
        Self::start(Some(config), behaviour).await
    }

    async fn start(tls: Option<Arc<rustls::ServerConfig>>, script: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = requests.clone();
        let open = Arc::new(tokio::sync::watch::Sender::new(true));
        let gate = open.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (seen, script, tls) = (seen.clone(), script.clone(), tls.clone());
                let gate = gate.subscribe();
                tokio::spawn(async move {
                    match tls {
                        None => serve(TokioIo::new(tcp), None, seen, script, gate).await,
                        Some(config) => {
                            let Ok(stream) =
                                tokio_rustls::TlsAcceptor::from(config).accept(tcp).await
                            else {
                                return;
                            };
                            let cn = stream.get_ref().1.peer_certificates().and_then(|c| {
                                let (_, cert) =
                                    x509_parser::parse_x509_certificate(c[0].as_ref()).ok()?;
                                let cn = cert.subject().iter_common_name().next()?;
                                cn.as_str().ok().map(str::to_owned)
                            });
                            serve(TokioIo::new(stream), cn, seen, script, gate).await
                        }
                    }
                });
            }
        });
        Receiver {
            addr,
            requests,
            open,
        }
    }

    pub fn http_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// Waits (up to 20 s) until at least `n` requests arrived; returns all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.requests.lock().unwrap().clone();
            if got.len() >= n {
                return got;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "only {} of {n} notifications arrived: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// The `notificationPointId`s of `received`, in order.
pub fn points(received: &[Received]) -> Vec<u64> {
    received
        .iter()
        .map(|r| r.body["notificationPointId"].as_u64().unwrap())
        .collect()
}

async fn serve<IO>(
    io: TokioIo<IO>,
    cn: Option<String>,
    seen: Arc<Mutex<Vec<Received>>>,
    script: Behaviour,
    gate: tokio::sync::watch::Receiver<bool>,
) where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (seen, script, cn) = (seen.clone(), script.clone(), cn.clone());
        let mut gate = gate.clone();
        async move {
            let headers = req.headers().clone();
            let body = req.into_body().collect().await?.to_bytes();
            let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let index = {
                let mut seen = seen.lock().unwrap();
                seen.push(Received {
                    headers,
                    body: json.clone(),
                    client_cn: cn,
                });
                seen.len() - 1
            };
            let _ = gate.wait_for(|open| *open).await;
            let (status, answer, delay) = script(index, &json);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            Ok::<_, hyper::Error>(
                Response::builder()
                    .status(StatusCode::from_u16(status).unwrap())
                    .body(Full::new(Bytes::from_static(answer.as_bytes())))
                    .unwrap(),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .await;
}
