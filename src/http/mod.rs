//! The network edge, the only module that speaks to sockets on the server side: the accept
//! loops ([`serve`] for a TLS listener, [`serve_admin`] for the plain-HTTP admin API), one
//! connection's handshake and service ([`connection`]), routing to a protocol engine
//! ([`router`]) and reading bodies within limits ([`body`]).

mod body;
mod connection;
mod guard;
pub(crate) mod router;
mod sniff;
pub mod tls;

use std::future::Future;
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
use crate::exchange::Engine;
use crate::metrics::Counters;
use crate::pki::PkiDir;
use router::EngineService;

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
    /// Requests one HTTP/2 connection may have in flight at once (HTTP/1.1 has one), so the
    /// requests in flight are at most `max_connections` × this, each with at most
    /// `max_body_bytes` of body.
    pub max_concurrent_streams: u32,
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
            max_concurrent_streams: 8,
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
pub(crate) struct CloseConnection;

/// Which listener a [`serve`] loop runs: what differs between ES2+ and ES9+ at the edge.
#[derive(Debug, Clone)]
pub(crate) enum Edge {
    /// ES2+: the scenario's source-IP whitelist, client certificates checked against the CRL
    /// of the world in force (read again when the world changes), refused handshakes graded.
    Es2 {
        /// The PKI the TLS configuration is rebuilt from.
        pki: PkiDir,
    },
    /// ES9+: any device may connect, each client address with at most `per_address`
    /// connections at once; refused handshakes are counted apart.
    Es9 {
        /// Connections one client address may have open at once; more are closed on accept.
        per_address: usize,
    },
}

/// Open connections per client address, for a listener that bounds them.
#[derive(Debug, Default)]
struct PerAddress(std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>);

impl PerAddress {
    /// A place for one more connection from `ip`, if it has fewer than `limit`: given back
    /// when the returned guard drops.
    fn take(self: &Arc<Self>, ip: std::net::IpAddr, limit: usize) -> Option<AddressSlot> {
        let mut open = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(AddressSlot {
            table: self.clone(),
            ip,
        })
    }
}

/// One connection's place in [`PerAddress`].
struct AddressSlot {
    table: Arc<PerAddress>,
    ip: std::net::IpAddr,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` over TLS until `shutdown` completes, then lets in-flight
/// requests finish within the grace period.
pub(crate) async fn serve<E: Engine>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    edge: Edge,
    app: App,
    router: EngineService<E>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    // The TLS configuration follows the world: a scenario loaded at run time, or a reset, reads
    // its CRL again (so `certs revoke` + `POST /admin/reset` takes effect without a restart).
    let mut tls_world = app.world();
    let mut acceptor = TlsAcceptor::from(tls);
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        .max_buf_size(limits.max_header_bytes.max(MIN_HEADER_BYTES));
    http.http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(limits.max_concurrent_streams.max(1));
    let shared = Arc::new(connection::Shared {
        app: app.clone(),
        router,
        http,
        timeouts: guard::Timeouts {
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
        },
        handshake_timeout: limits.handshake_timeout,
        es2: matches!(edge, Edge::Es2 { .. }),
    });
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
                let es2_pki = match &edge {
                    Edge::Es2 { pki } => Some(pki),
                    Edge::Es9 { .. } => None,
                };
                // The vendor's IP whitelisting: refused before any TLS is spoken.
                if es2_pki.is_some() && !world.scenario.source_allowed(remote.ip()) {
                    Counters::bump(&app.counters.connections_refused_source_ip);
                    info!(%remote, "connection refused: source address not whitelisted");
                    // An alert the client can read, not a bare close; no TLS work is done.
                    tokio::spawn(sniff::refuse_tls(tcp, sniff::Alert::AccessDenied));
                    continue;
                }
                // Over a limit: closed at once, before any TLS work, and counted.
                let address_slot = match &edge {
                    Edge::Es9 { per_address: limit } => {
                        match per_address.take(remote.ip(), *limit) {
                            Some(slot) => Some(slot),
                            None => {
                                Counters::bump(&app.counters.connections_refused_per_address);
                                info!(%remote, limit, "connection refused: too many connections from this address");
                                continue;
                            }
                        }
                    }
                    Edge::Es2 { .. } => None,
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    Counters::bump(&app.counters.connections_refused_limit);
                    info!(%remote, limit = limits.max_connections, "connection refused: too many connections");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                if let Some(pki) = es2_pki.filter(|_| !Arc::ptr_eq(&world, &tls_world)) {
                    match tls::server_config(pki, world.scenario.crl_file()) {
                        Ok(config) => acceptor = TlsAcceptor::from(config),
                        Err(e) => warn!(error = %format!("{e:#}"), "keeping the previous TLS configuration"),
                    }
                    tls_world = world;
                }
                // The handshake runs in the connection's own task, so a slow client never
                // holds up `accept`.
                let connection = connection::serve_connection(
                    shared.clone(),
                    acceptor.clone(),
                    tcp,
                    remote,
                    graceful.watcher(),
                );
                tokio::spawn(async move {
                    let _slots = (slot, address_slot);
                    connection.await;
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

/// How long the admin port waits for a client's first bytes to tell TLS from HTTP; a client
/// that sends nothing meanwhile is served as HTTP.
const ADMIN_SNIFF_WAIT: Duration = Duration::from_secs(10);

/// Serves the admin router over plain HTTP on `listener` until `shutdown` completes.
pub(crate) async fn serve_admin(
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
                    if sniff::opening(&tcp, ADMIN_SNIFF_WAIT).await == sniff::Opening::Tls {
                        info!(%remote, "TLS on the plain-HTTP admin port: answered with an alert (use http://)");
                        sniff::refuse_tls(tcp, sniff::Alert::ProtocolVersion).await;
                        return;
                    }
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
