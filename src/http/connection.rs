//! One TLS connection, from handshake to close (mini-redis's `Handler::run`): the handshake
//! within its timeout (a refusal reported to the listener's hooks), the client's certificate read once,
//! the time limits of [`super::guard`], and every request handed to the listener's router.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::Watcher;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info};

use super::router::EngineService;
use super::tls::{self, HandshakeFailure};
use super::{guard, sniff, CloseConnection, ConnectionClosedByFault};
use super::{Event, Hooks};
use crate::caller::Peer;
use crate::exchange::Engine;

/// What every connection of a listener shares.
pub(super) struct Shared<E> {
    pub(super) hooks: Arc<dyn Hooks>,
    pub(super) router: EngineService<E>,
    pub(super) http: auto::Builder<TokioExecutor>,
    pub(super) timeouts: guard::Timeouts,
    pub(super) handshake_timeout: std::time::Duration,
}

/// Serves one accepted connection until it closes.
pub(super) async fn serve_connection<E: Engine>(
    shared: Arc<Shared<E>>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    watcher: Watcher,
) {
    let refused = |failure: HandshakeFailure| {
        shared
            .hooks
            .event(Event::HandshakeFailed { failure, remote });
    };
    // One deadline for the whole handshake, the look at the first bytes included.
    let deadline = tokio::time::Instant::now() + shared.handshake_timeout;
    if sniff::opening(&tcp, shared.handshake_timeout).await == sniff::Opening::PlainHttp {
        refused(HandshakeFailure::PlainHttp);
        info!(%remote, "plain HTTP on the TLS port: answered 400 (use https://)");
        let port = tcp.local_addr().map_or(0, |a| a.port());
        sniff::refuse_plain_http(tcp, port).await;
        return;
    }
    let accepting = acceptor.accept(tcp).into_fallible();
    let tls = match tokio::time::timeout_at(deadline, accepting).await {
        Ok(Ok(tls)) => tls,
        Ok(Err((e, tcp))) => {
            let failure = HandshakeFailure::of(&e);
            refused(failure);
            info!(%remote, reason = failure.label(), error = %e, "TLS handshake refused");
            // The alert that says why has been written: give the client time to read it.
            sniff::linger(tcp).await;
            return;
        }
        Err(_) => {
            refused(HandshakeFailure::Timeout);
            info!(%remote, timeout = ?shared.handshake_timeout, "TLS handshake timed out");
            return;
        }
    };
    let certificate = tls::certificate_identity(tls.get_ref().1).map(Arc::new);
    debug!(%remote, peer = ?certificate.as_ref().map(|c| &c.subject), "TLS connection");
    let peer = Arc::new(Peer::new(remote, certificate));
    let activity = Arc::new(guard::Activity::default());
    let multiplexed = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let io = guard::Guarded::new(tls, activity.clone(), shared.timeouts, multiplexed);
    let requests = activity.clone();
    let service_shared = shared.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let in_flight = requests.request();
        let (shared, peer) = (service_shared.clone(), peer.clone());
        async move {
            let _in_flight = in_flight;
            let response = shared.router.call(req, &peer).await;
            // An error makes hyper drop the connection without an answer.
            if response.extensions().get::<CloseConnection>().is_some() {
                return Err(ConnectionClosedByFault);
            }
            Ok(response)
        }
    });
    let conn = shared
        .http
        .serve_connection(TokioIo::new(io), service)
        .into_owned();
    let ended = watcher.watch(conn).await;
    // hyper may end an idle connection quietly on the read error: ask the guard.
    if let Some(expiry) = activity.expired() {
        shared.hooks.event(Event::Closed(expiry));
        info!(%remote, reason = expiry.label(), "connection closed");
    } else if let Err(e) = ended {
        debug!(%remote, error = %e, "connection ended with an error");
    }
}
