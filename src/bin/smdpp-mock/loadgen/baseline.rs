//! The same-run baseline: a server with exactly the mock's TLS and HTTP configuration
//! ([`smdpp_mock::internal::http::tls::server_config`], hyper-util's auto HTTP/1.1 + h2 builder, nodelay,
//! the handshake in the connection's task under a timeout) that reads each request body and
//! answers one fixed ES2+ success body. What it costs is what hyper + rustls cost at all; the
//! mock's numbers divided by its numbers are what the mock itself costs.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use smdpp_mock::pki::PkiDir;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Carries every field the load generator reads from any of the three functions' answers.
const SUCCESS_BODY: &str = r#"{"header":{"functionExecutionStatus":{"status":"Executed-Success"}},"iccid":"8944500100000000008","matchingId":"BASE-LINE-0000-0000"}"#;

/// Serves until the process is stopped.
pub(crate) async fn run(listen: SocketAddr, pki: &PkiDir) -> Result<()> {
    let config = smdpp_mock::internal::http::tls::server_config(pki, None)?;
    let acceptor = TlsAcceptor::from(config);
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    eprintln!("baseline server on {}", listener.local_addr()?);
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
            else {
                return;
            };
            let service = hyper::service::service_fn(answer);
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body as the mock does, so both servers do the same transport work.
    let _ = request.into_body().collect().await;
    let mut response = Response::new(Full::new(Bytes::from_static(SUCCESS_BODY.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    headers.insert(
        smdpp_mock::internal::sgp22::ADMIN_PROTOCOL_HEADER,
        hyper::header::HeaderValue::from_static(smdpp_mock::internal::sgp22::ADMIN_PROTOCOL),
    );
    Ok(response)
}
