//! The ES9+ part of the hostile soak: what anonymous clients can do to the device listener, from
//! many source addresses of the loopback range, while real downloads run beside them through
//! the library's LPA and software eUICCs.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use smdpp_mock::es2::Function;
use smdpp_mock::OperatorClient;
use smdpp_rsp::crypto;
use smdpp_rsp::es10b::EuiccInfo1;
use smdpp_rsp::euicc::Euicc;
use smdpp_rsp::lpa::Lpa;
use smdpp_rsp::pki::GsmaPki;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;

/// The ES9+ listener, and how to reach it as a device does.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    /// `localhost:<port>`: the address InitiateAuthentication names.
    pub(crate) address: String,
    tls: Arc<rustls::ClientConfig>,
    /// The CI's key identifier, which a session needs in `euiccInfo1`.
    ci_ski: Vec<u8>,
}

impl Target {
    /// The listener at `addr`, trusted through the CI of `gsma` (DPtls chains to it).
    pub(crate) fn new(addr: SocketAddr, gsma: &GsmaPki) -> Result<Self> {
        let ci_der = std::fs::read(gsma.dir().join("CERT_CI_ECDSA_NIST.der"))?;
        let ci = smdpp_rsp::cert::Certificate::parse(&ci_der)
            .map_err(|e| anyhow::anyhow!("the CI certificate: {e}"))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(rustls::pki_types::CertificateDer::from(ci_der))?;
        let tls = rustls::ClientConfig::builder_with_provider(smdpp_mock::pki::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Target {
            addr,
            address: format!("localhost:{}", addr.port()),
            tls: Arc::new(tls),
            ci_ski: ci.subject_key_id.context("the CI has no key identifier")?,
        })
    }

    /// A TCP connection from `source` (any address of 127.0.0.0/8 is this host's).
    async fn tcp(&self, source: IpAddr) -> Result<tokio::net::TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::new(source, 0))?;
        Ok(socket.connect(self.addr).await?)
    }

    /// An HTTP/1.1 connection over TLS from `source`.
    async fn connect(&self, source: IpAddr) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = self.tcp(source).await?;
        let name = rustls::pki_types::ServerName::try_from("localhost")?;
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(send)
    }
}

/// What the hostile ES9+ clients got back.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) requests: AtomicU64,
    /// Answered `Executed-Success` (sessions the flood started).
    pub(crate) accepted: AtomicU64,
    /// HTTP 503: the address had its share of sessions.
    pub(crate) busy: AtomicU64,
    /// `Failed` or another HTTP status.
    pub(crate) refused: AtomicU64,
    pub(crate) transport_errors: AtomicU64,
    /// Idle or slow connections the server closed.
    pub(crate) closed: AtomicU64,
}

impl Tally {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// POSTs `body` to the ES9+ function: the HTTP status and the `functionExecutionStatus`.
async fn post(
    send: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    function: &str,
    body: &Value,
) -> Result<(u16, String)> {
    send.ready().await?;
    let request = Request::post(format!("/gsma/rsp2/es9plus/{function}"))
        .header("host", &target.address)
        .header("content-type", "application/json")
        .header("x-admin-protocol", "gsma/rsp/v2.2.0")
        .header("user-agent", "gsma-rsp-lpad")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = send.send_request(request).await?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await?.to_bytes();
    let execution = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v["header"]["functionExecutionStatus"]["status"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap_or_default();
    Ok((status, execution))
}

fn count(tally: &Tally, answer: &Result<(u16, String)>) {
    Tally::bump(&tally.requests);
    match answer {
        Ok((200, status)) if status == "Executed-Success" => Tally::bump(&tally.accepted),
        Ok((503, _)) => Tally::bump(&tally.busy),
        Ok(_) => Tally::bump(&tally.refused),
        Err(_) => Tally::bump(&tally.transport_errors),
    }
}

/// Calls of `function` from `source`, back to back, 100 per connection, each with the body
/// `body` makes; a connection that fails is replaced.
async fn call_loop(
    target: &Target,
    source: IpAddr,
    function: &str,
    mut body: impl FnMut() -> Value,
    stop: &AtomicBool,
    tally: &Tally,
) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut send) = target.connect(source).await else {
            Tally::bump(&tally.transport_errors);
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        for _ in 0..100 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let answer = post(&mut send, target, function, &body()).await;
            count(tally, &answer);
            if answer.is_err() {
                break;
            }
        }
    }
}

/// Anonymous InitiateAuthentication calls from `source`, each with the largest fields a session
/// is made of: an `euiccInfo1` naming 200 CI key identifiers (the trusted one last) and the
/// longest accepted address form (`localhost.:<port>`). None goes on to AuthenticateClient:
/// every one leaves an anonymous session behind.
pub(crate) async fn initiate_flood(
    target: Target,
    source: IpAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let filler: Vec<[u8; 20]> = (0..199u8).map(|i| [i; 20]).collect();
    let mut ids: Vec<&[u8]> = filler.iter().map(|k| &k[..]).collect();
    ids.push(&target.ci_ski);
    let info1 = crypto::base64_encode(&EuiccInfo1::encode([2, 2, 0], &ids, &ids));
    let address = target.address.replacen(':', ".:", 1);
    let body = || {
        json!({
            "euiccChallenge": crypto::base64_encode(&crypto::random::<16>()),
            "euiccInfo1": info1,
            "smdpAddress": address,
        })
    };
    call_loop(
        &target,
        source,
        "initiateAuthentication",
        body,
        &stop,
        &tally,
    )
    .await;
}

/// AuthenticateClient with garbage from `source`: unknown transactionIds, a random
/// `authenticateServerResponse` of 30 KiB.
pub(crate) async fn garbage_authenticate(
    target: Target,
    source: IpAddr,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut n = 0u64;
    let body = || {
        n += 1;
        let garbage: Vec<u8> = (0..30 * 1024u32)
            .map(|i| (i as u64).wrapping_mul(n | 1) as u8)
            .collect();
        json!({
            "transactionId": crypto::hex_upper(&crypto::random::<16>()),
            "authenticateServerResponse": crypto::base64_encode(&garbage),
        })
    };
    call_loop(&target, source, "authenticateClient", body, &stop, &tally).await;
}

/// `n` connections from `source` that send nothing (idle) or one byte of a TLS record a second
/// (slow); each one the server closes is counted and opened again.
pub(crate) async fn idle_and_slow(
    target: Target,
    source: IpAddr,
    n: usize,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) {
    let mut tasks = Vec::new();
    for i in 0..n {
        let (target, stop, tally) = (target.clone(), stop.clone(), tally.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut tcp) = target.tcp(source).await else {
                    Tally::bump(&tally.transport_errors);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                };
                // A TLS handshake record header, then its body one byte a second.
                let hello = [0x16u8, 0x03, 0x01, 0x02, 0x00];
                let mut sent = 0;
                loop {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let wrote = if i % 2 == 0 {
                        // Idle: only checks whether the server has closed it.
                        tcp.write_all(&[]).await
                    } else if sent < hello.len() {
                        sent += 1;
                        tcp.write_all(&hello[sent - 1..sent]).await
                    } else {
                        tcp.write_all(&[0x01]).await
                    };
                    let mut probe = [0u8; 1];
                    let closed = wrote.is_err()
                        || match tcp.try_read(&mut probe) {
                            Ok(n) => n == 0,
                            Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
                        };
                    if closed {
                        Tally::bump(&tally.closed);
                        break;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

/// What the real downloads did.
#[derive(Default)]
pub(crate) struct Downloads {
    pub(crate) latencies: Mutex<Vec<Duration>>,
    pub(crate) failures: Mutex<Vec<String>>,
}

/// Real downloads, one after another, through the library's LPA with a software eUICC of its
/// own (`eid`): an order of `profile_type` placed and released through ES2+, downloaded and
/// installed over ES9+ (from 127.0.0.1), the installation result sent; then deleted from the
/// card so it never fills. Each download's time (Activation Code to installation result sent)
/// or its failure is recorded.
pub(crate) async fn downloads(
    client: OperatorClient,
    gsma: GsmaPki,
    target: Target,
    profile_type: &'static str,
    eid: String,
    stop: Arc<AtomicBool>,
    results: Arc<Downloads>,
) -> Result<()> {
    let credentials = gsma.issue_euicc(&eid)?;
    let ci = credentials.ci.clone();
    let mut lpa = Lpa::new(Euicc::new(credentials)?, &[ci])?;
    while !stop.load(Ordering::Relaxed) {
        let order = client
            .call(
                Function::DownloadOrder,
                json!({ "profileType": profile_type }),
            )
            .await?;
        let Some(iccid) = order.body["iccid"].as_str().map(str::to_owned) else {
            bail!("DownloadOrder: {}", order.body);
        };
        let confirm = client
            .call(
                Function::ConfirmOrder,
                json!({ "iccid": iccid, "releaseFlag": true }),
            )
            .await?;
        let mid = confirm.body["matchingId"]
            .as_str()
            .context("a MatchingID")?
            .to_owned();
        let started = Instant::now();
        match lpa
            .download(&format!("1${}${mid}", target.address), None)
            .await
        {
            Ok(d) if d.installed => {
                results.latencies.lock().unwrap().push(started.elapsed());
                crate::support::make_room(&mut lpa, &d.iccid);
            }
            Ok(d) => results
                .failures
                .lock()
                .unwrap()
                .push(format!("{}: not installed", d.iccid)),
            Err(e) => results
                .failures
                .lock()
                .unwrap()
                .push(format!("{iccid}: {e}")),
        }
    }
    Ok(())
}

/// The `q` quantile of `sorted` (0 ≤ q ≤ 1), in milliseconds.
pub(crate) fn quantile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}
