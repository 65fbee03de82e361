//! The network edge: the TLS accept loop and HTTP routing. The only module that speaks to
//! sockets on the server side.

mod guard;
pub mod router;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use tracing::{debug, info, warn};

use crate::app::App;
use crate::conformance::catalog::CheckId;
use crate::metrics::Counters;
use crate::pki::PkiDir;
use tls::PeerIdentity;

/// Transport limits of the ES2+ listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (HTTP 413 above).
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers) accepted: HTTP/1.1 answers 431 above;
    /// HTTP/2 refuses the stream. At least 8 KiB (hyper's smallest read buffer).
    pub max_header_bytes: usize,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time a client has to finish a request head once it has started one (slow-loris guard).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight and no traffic for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once; more are closed on accept (before TLS) and counted.
    pub max_connections: usize,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            max_header_bytes: 16 * 1024,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// hyper refuses HTTP/1 read buffers smaller than this.
const MIN_HEADER_BYTES: usize = 8192;

/// The error that tells hyper to drop a connection on purpose.
#[derive(Debug, thiserror::Error)]
#[error("connection closed by a fault rule")]
struct ConnectionClosedByFault;

/// Marks a response that must not be sent: the connection is dropped instead (fault rules).
#[derive(Debug, Clone, Copy)]
pub struct CloseConnection;

/// Per-connection facts handed to every request on it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    /// The client's address.
    pub remote: SocketAddr,
    /// Its IP as text, formatted once per connection for the journal.
    pub source_ip: Arc<str>,
    /// The verified client certificate's identity.
    pub peer: Option<Arc<PeerIdentity>>,
}

/// Serves ES2+ on `listener` until `shutdown` completes, then lets in-flight requests finish
/// within the grace period.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    pki: PkiDir,
    app: App,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    // The TLS configuration follows the world: a scenario loaded at run time, or a reset, reads
    // its CRL again (so `certs revoke` + `POST /admin/reset` takes effect without a restart).
    let mut tls_world = app.world();
    let mut acceptor = TlsAcceptor::from(tls);
    let es2 = router::Es2Service::new(app.clone(), limits.clone());
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    http.http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let http = Arc::new(http);
    let timeouts = guard::Timeouts {
        header_read: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, remote) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Usually EMFILE: back off instead of spinning.
                        warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let world = app.world();
                // The vendor's IP whitelisting: refused before any TLS is spoken.
                if !world.scenario.source_allowed(remote.ip()) {
                    Counters::bump(&app.counters.connections_refused_source_ip);
                    info!(%remote, "connection refused: source address not whitelisted");
                    continue;
                }
                // Over the limit: closed at once, before any TLS work, and counted.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    Counters::bump(&app.counters.connections_refused_limit);
                    info!(%remote, limit = limits.max_connections, "connection refused: too many connections");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let http = http.clone();
                if !Arc::ptr_eq(&world, &tls_world) {
                    match tls::server_config(&pki, world.scenario.crl_file()) {
                        Ok(config) => acceptor = TlsAcceptor::from(config),
                        Err(e) => warn!(error = %format!("{e:#}"), "keeping the previous TLS configuration"),
                    }
                    tls_world = world;
                }
                let acceptor = acceptor.clone();
                let es2 = es2.clone();
                let watcher = graceful.watcher();
                let handshake_timeout = limits.handshake_timeout;
                let metrics = app.metrics.clone();
                let graded = app.clone();
                // The handshake runs in the connection's own task, so a slow client never
                // holds up `accept`.
                let counters = app.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            let reason = tls::failure_reason(&e);
                            metrics.handshake_failure(reason);
                            let graded_check = match reason {
                                "no_certificate" => Some((CheckId::Tls001, "the client presented no certificate".to_string())),
                                "expired" | "not_yet_valid" | "unknown_ca" | "revoked" | "wrong_usage"
                                | "bad_signature" | "invalid_certificate" => Some((
                                    CheckId::Tls002,
                                    format!("the client certificate was refused: {reason}"),
                                )),
                                _ => None,
                            };
                            if let Some((check, message)) = graded_check {
                                graded.conformance.record(
                                    &[crate::conformance::grade::Grade {
                                        check,
                                        passed: false,
                                        message,
                                    }],
                                    &crate::conformance::Context {
                                        time: crate::clock::es2_timestamp_shared(graded.clock.now()),
                                        operator: None,
                                        excerpt: format!("TLS handshake from {remote}"),
                                        journal_seq: None,
                                    },
                                );
                            }
                            info!(%remote, reason, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            metrics.handshake_failure("timeout");
                            info!(%remote, timeout = ?handshake_timeout, "TLS handshake timed out");
                            return;
                        }
                    };
                    let peer = PeerIdentity::from_connection(tls.get_ref().1).map(Arc::new);
                    debug!(%remote, peer = ?peer.as_ref().map(|p| &p.subject), "TLS connection");
                    let info = ConnectionInfo {
                        remote,
                        source_ip: Arc::from(remote.ip().to_string()),
                        peer,
                    };
                    let activity = Arc::new(guard::Activity::default());
                    let multiplexed = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                    let io = guard::Guarded::new(tls, activity.clone(), timeouts, multiplexed);
                    let requests = activity.clone();
                    // What every request on this connection needs, shared by one count.
                    let connection = Arc::new((es2, info));
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let in_flight = requests.request();
                        let connection = connection.clone();
                        async move {
                            let _in_flight = in_flight;
                            let (es2, info) = &*connection;
                            let response = es2.call(req, info).await;
                            // An error makes hyper drop the connection without an answer.
                            if response.extensions().get::<CloseConnection>().is_some() {
                                return Err(ConnectionClosedByFault);
                            }
                            Ok(response)
                        }
                    });
                    let conn = http.serve_connection(TokioIo::new(io), service).into_owned();
                    let ended = watcher.watch(conn).await;
                    // hyper may end an idle connection quietly on the read error: ask the guard.
                    if let Some(expiry) = activity.expired() {
                        Counters::bump(match expiry {
                            guard::Expiry::HeaderTimeout => &counters.counters.connections_closed_header_timeout,
                            guard::Expiry::IdleTimeout => &counters.counters.connections_closed_idle_timeout,
                        });
                        info!(%remote, reason = expiry.label(), "connection closed");
                    } else if let Err(e) = ended {
                        debug!(%remote, error = %e, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    info!("shutting down: waiting for in-flight requests");
    tokio::select! {
        () = graceful.shutdown() => info!("all connections closed"),
        () = tokio::time::sleep(limits.shutdown_grace) => {
            warn!(grace = ?limits.shutdown_grace, "connections still open after the grace period");
        }
    }
}

/// Serves the admin router over plain HTTP on `listener` until `shutdown` completes.
pub async fn serve_admin(
    listener: TcpListener,
    router: axum::Router,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((tcp, remote)) = accepted else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let router = router.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        router.clone().call(req)
                    });
                    let conn = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tcp), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        debug!(%remote, error = %e, "admin connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(grace) => {}
    }
}
