//! One TLS connection, from handshake to close (mini-redis's `Handler::run`): the handshake
//! within its timeout (a refusal is counted and graded), the client's certificate read once,
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
use crate::app::App;
use crate::caller::Peer;
use crate::clock::es2_timestamp_shared;
use crate::exchange::Engine;
use crate::metrics::Counters;

/// What every connection of a listener shares.
pub(super) struct Shared<E> {
    pub(super) app: App,
    pub(super) router: EngineService<E>,
    pub(super) http: auto::Builder<TokioExecutor>,
    pub(super) timeouts: guard::Timeouts,
    pub(super) handshake_timeout: std::time::Duration,
    /// The ES2+ listener (refused handshakes graded), not ES9+.
    pub(super) es2: bool,
}

/// Serves one accepted connection until it closes.
pub(super) async fn serve_connection<E: Engine>(
    shared: Arc<Shared<E>>,
    acceptor: TlsAcceptor,
    tcp: TcpStream,
    remote: SocketAddr,
    watcher: Watcher,
) {
    let app = &shared.app;
    // One deadline for the whole handshake, the look at the first bytes included.
    let deadline = tokio::time::Instant::now() + shared.handshake_timeout;
    if sniff::opening(&tcp, shared.handshake_timeout).await == sniff::Opening::PlainHttp {
        refused(app, shared.es2, HandshakeFailure::PlainHttp, remote);
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
            refused(app, shared.es2, failure, remote);
            info!(%remote, reason = failure.label(), error = %e, "TLS handshake refused");
            // The alert that says why has been written: give the client time to read it.
            sniff::linger(tcp).await;
            return;
        }
        Err(_) => {
            refused(app, shared.es2, HandshakeFailure::Timeout, remote);
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
        Counters::bump(match expiry {
            guard::Expiry::HeaderTimeout => &app.counters.connections_closed_header_timeout,
            guard::Expiry::IdleTimeout => &app.counters.connections_closed_idle_timeout,
        });
        info!(%remote, reason = expiry.label(), "connection closed");
    } else if let Err(e) = ended {
        debug!(%remote, error = %e, "connection ended with an error");
    }
}

/// Counts a refused handshake and grades it when it says something about the client.
fn refused(app: &App, es2: bool, failure: HandshakeFailure, remote: SocketAddr) {
    if !es2 {
        // An LPA's handshake says nothing about an operator's client.
        app.metrics.es9_handshake_failure(failure.label());
        return;
    }
    app.metrics.handshake_failure(failure.label());
    if let Some(grade) = failure.failed_check() {
        app.conformance.record(
            &[grade],
            &crate::conformance::Context {
                time: es2_timestamp_shared(app.clock.now()),
                operator: None,
                excerpt: format!("TLS handshake from {remote}"),
                journal_seq: None,
            },
        );
    }
}
