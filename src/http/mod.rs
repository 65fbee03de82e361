//! The network edge: the TLS accept loop and HTTP routing. The only module that speaks to
//! sockets on the server side.

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
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use tracing::{debug, info, warn};

use crate::app::{App, Counters};
use tls::PeerIdentity;

/// Transport limits of the ES2+ listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted (HTTP 413 above).
    pub max_body_bytes: usize,
    /// Time a client has to complete the TLS handshake.
    pub handshake_timeout: Duration,
    /// Time in-flight requests get to finish on shutdown.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024,
            handshake_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

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
    /// The verified client certificate's identity.
    pub peer: Option<Arc<PeerIdentity>>,
}

/// Serves ES2+ on `listener` until `shutdown` completes, then lets in-flight requests finish
/// within the grace period.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: App,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let router = router::es2_router(app.clone(), limits.clone());
    let graceful = GracefulShutdown::new();
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
                // The vendor's IP whitelisting: refused before any TLS is spoken.
                if !app.world().scenario.source_allowed(remote.ip()) {
                    Counters::bump(&app.counters.connections_refused_source_ip);
                    info!(%remote, "connection refused: source address not whitelisted");
                    continue;
                }
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let router = router.clone();
                let watcher = graceful.watcher();
                let handshake_timeout = limits.handshake_timeout;
                let metrics = app.metrics.clone();
                let graded = app.clone();
                // The handshake runs in the connection's own task, so a slow client never
                // holds up `accept`.
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => {
                            let reason = tls::failure_reason(&e);
                            metrics.handshake_failure(reason);
                            let graded_check = match reason {
                                "no_certificate" => Some(("TLS-001", "the client presented no certificate".to_string())),
                                "expired" | "not_yet_valid" | "unknown_ca" | "revoked" | "wrong_usage"
                                | "bad_signature" | "invalid_certificate" => Some((
                                    "TLS-002",
                                    format!("the client certificate was refused: {reason}"),
                                )),
                                _ => None,
                            };
                            if let Some((check, message)) = graded_check {
                                graded.conformance.record(
                                    &[crate::conformance::grade::Outcome {
                                        check,
                                        passed: false,
                                        message,
                                    }],
                                    &crate::conformance::Context {
                                        time: crate::clock::es2_timestamp(graded.clock.now()),
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
                    let info = ConnectionInfo { remote, peer };
                    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
                        req.extensions_mut().insert(info.clone());
                        let response = router.clone().call(req);
                        async move {
                            let response = match response.await {
                                Ok(r) => r,
                                Err(never) => match never {},
                            };
                            // An error makes hyper drop the connection without an answer.
                            if response.extensions().get::<CloseConnection>().is_some() {
                                return Err(ConnectionClosedByFault);
                            }
                            Ok(response)
                        }
                    });
                    let conn = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
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
