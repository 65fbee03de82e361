//! The network edge, the only module that speaks to sockets on the server side: the accept
//! loops ([`serve`] for a TLS listener, [`serve_admin`] for the plain-HTTP admin API), one
//! connection's handshake and service ([`connection`]), routing to a protocol engine
//! ([`router`]) and reading bodies within limits ([`body`]).

mod body;
mod connection;
pub(crate) mod guard;
pub(crate) mod router;
mod sniff;
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

use crate::exchange::Engine;
use router::EngineService;
pub(crate) use tls::HandshakeFailure;

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

/// What a listener asks of the service it serves, and tells it: the transport knows sockets,
/// TLS, HTTP and limits; what a connection from an address means, which TLS configuration is
/// in force and what a refused handshake says about a client (a counter, a conformance grade)
/// are the caller's business.
pub(crate) trait Hooks: Send + Sync + 'static {
    /// Whether a connection from `remote` may start TLS (the vendor's IP whitelisting); one
    /// that may not gets an `access_denied` alert, before any TLS work.
    fn admits(&self, remote: SocketAddr) -> bool;
    /// A new TLS configuration for the connections from now on, when it changed (a scenario
    /// loaded at run time, or a reset, reads its CRL again); checked at each accept.
    fn tls_update(&self) -> Option<Arc<rustls::ServerConfig>>;
    /// Something the transport did on its own: a connection refused or closed, a handshake
    /// that failed.
    fn event(&self, event: Event);
}

/// What a listener reports to its [`Hooks`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// A connection closed on accept, before TLS.
    Refused(Refusal),
    /// A TLS handshake that failed or was refused.
    HandshakeFailed {
        /// Why.
        failure: HandshakeFailure,
        /// The client.
        remote: SocketAddr,
    },
    /// A connection closed by a time limit.
    Closed(guard::Expiry),
}

/// Why a connection was closed on accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// [`Hooks::admits`] said no.
    SourceAddress,
    /// The client address had its share of connections open ([`Listener::per_address`]).
    PerAddress,
    /// The listener had [`Limits::max_connections`] open.
    Limit,
}

/// One TLS listener's options beyond [`Limits`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Listener {
    /// Connections one client address may have open at once; more are closed on accept.
    /// `None`: no bound per address (the ES2+ listener, whose clients are whitelisted).
    pub(crate) per_address: Option<usize>,
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
#[allow(clippy::too_many_arguments)]
pub(crate) async fn serve<E: Engine>(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    options: Listener,
    hooks: Arc<dyn Hooks>,
    router: EngineService<E>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
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
        hooks: hooks.clone(),
        router,
        http,
        timeouts: guard::Timeouts {
            header_read: limits.header_read_timeout,
            idle: limits.idle_timeout,
        },
        handshake_timeout: limits.handshake_timeout,
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
                // The vendor's IP whitelisting: refused before any TLS is spoken.
                if !hooks.admits(remote) {
                    hooks.event(Event::Refused(Refusal::SourceAddress));
                    info!(%remote, "connection refused: source address not admitted");
                    // An alert the client can read, not a bare close; no TLS work is done.
                    tokio::spawn(sniff::refuse_tls(tcp, sniff::Alert::AccessDenied));
                    continue;
                }
                // Over a limit: closed at once, before any TLS work, and counted.
                let address_slot = match options.per_address {
                    Some(limit) => match per_address.take(remote.ip(), limit) {
                        Some(slot) => Some(slot),
                        None => {
                            hooks.event(Event::Refused(Refusal::PerAddress));
                            info!(%remote, limit, "connection refused: too many connections from this address");
                            continue;
                        }
                    },
                    None => None,
                };
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    hooks.event(Event::Refused(Refusal::Limit));
                    info!(%remote, limit = limits.max_connections, "connection refused: too many connections");
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                if let Some(config) = hooks.tls_update() {
                    acceptor = TlsAcceptor::from(config);
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
