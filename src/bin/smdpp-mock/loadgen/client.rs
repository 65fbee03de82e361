//! One load-generating connection: mutual TLS with an operator's certificate, HTTP/1.1, and
//! the ES2+ cycle DownloadOrder → ConfirmOrder → CancelOrder(Available) that hands every
//! profile back, so the inventory never drains however long the run.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use smdpp_mock::es2::Function;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A client TLS config trusting `<certs>/ca.pem` and presenting `<certs>/<name>.pem`.
///
/// With `resume` false every connection does a full handshake, which is what the
/// new-connection mode is there to measure.
pub(crate) fn tls_config(
    certs: &Path,
    name: &str,
    resume: bool,
) -> Result<Arc<rustls::ClientConfig>> {
    let ca = certs.join("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        CertificateDer::pem_file_iter(&ca).with_context(|| format!("reading {}", ca.display()))?
    {
        roots.add(cert.map_err(|e| anyhow!("{}: {e}", ca.display()))?)?;
    }
    let cert_path = certs.join(format!("{name}.pem"));
    let chain = CertificateDer::pem_file_iter(&cert_path)
        .with_context(|| {
            format!(
                "reading {} (issue it with `smdpp-mock certs issue-client {name}`)",
                cert_path.display()
            )
        })?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{}: {e}", cert_path.display()))?;
    let key_path = certs.join(format!("{name}.key"));
    let key = PrivateKeyDer::from_pem_file(&key_path)
        .map_err(|e| anyhow!("{}: {e}", key_path.display()))?;
    let mut config =
        rustls::ClientConfig::builder_with_provider(smdpp_mock::internal::pki::provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_client_auth_cert(chain, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(Arc::new(config))
}

/// Where and as whom to connect.
#[derive(Clone)]
pub(crate) struct Target {
    pub(crate) addr: SocketAddr,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) connector: TlsConnector,
    pub(crate) requester: Arc<str>,
    pub(crate) profile_type: Arc<str>,
}

impl Target {
    /// TCP connect, mutual-TLS handshake and HTTP/1.1 handshake.
    pub(crate) async fn connect(&self) -> Result<SendRequest<Full<Bytes>>> {
        let tcp = TcpStream::connect(self.addr).await.context("connect")?;
        tcp.set_nodelay(true)?;
        let tls = self
            .connector
            .connect(self.server_name.clone(), tcp)
            .await
            .context("TLS handshake")?;
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(conn);
        Ok(send)
    }
}

/// The next request of a connection's cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    Download,
    Confirm { iccid: String },
    Cancel { iccid: String, matching_id: String },
}

impl Step {
    pub(crate) fn function(&self) -> Function {
        match self {
            Step::Download => Function::DownloadOrder,
            Step::Confirm { .. } => Function::ConfirmOrder,
            Step::Cancel { .. } => Function::CancelOrder,
        }
    }

    /// The step's place in the cycle: 0, 1 or 2.
    pub(crate) fn index(&self) -> usize {
        match self {
            Step::Download => 0,
            Step::Confirm { .. } => 1,
            Step::Cancel { .. } => 2,
        }
    }

    /// The request body, with a call identifier unique to this connection and call.
    pub(crate) fn body(&self, target: &Target, call_id: &str) -> Value {
        let header = json!({
            "functionRequesterIdentifier": &*target.requester,
            "functionCallIdentifier": call_id,
        });
        match self {
            Step::Download => json!({ "header": header, "profileType": &*target.profile_type }),
            Step::Confirm { iccid } => {
                json!({ "header": header, "iccid": iccid, "releaseFlag": true })
            }
            Step::Cancel { iccid, matching_id } => json!({
                "header": header,
                "iccid": iccid,
                "matchingId": matching_id,
                "finalProfileStatusIndicator": "Available",
            }),
        }
    }

    /// The step after a successful answer `reply`; an unsuccessful one restarts the cycle.
    pub(crate) fn next(self, reply: &Value) -> Step {
        let field = |name: &str| reply.get(name).and_then(Value::as_str).map(str::to_string);
        match self {
            Step::Download => match field("iccid") {
                Some(iccid) => Step::Confirm { iccid },
                None => Step::Download,
            },
            Step::Confirm { iccid } => match field("matchingId") {
                Some(matching_id) => Step::Cancel { iccid, matching_id },
                None => Step::Download,
            },
            Step::Cancel { .. } => Step::Download,
        }
    }
}

/// Sends one ES2+ request; the parsed answer when the function executed successfully.
pub(crate) async fn call(
    send: &mut SendRequest<Full<Bytes>>,
    function: Function,
    body: &Value,
) -> Result<Value> {
    send.ready().await?;
    let request = hyper::Request::builder()
        .method("POST")
        .uri(function.path())
        .header("host", "localhost")
        .header("content-type", "application/json")
        .header(
            smdpp_mock::internal::sgp22::ADMIN_PROTOCOL_HEADER,
            smdpp_mock::internal::sgp22::ADMIN_PROTOCOL,
        )
        .body(Full::new(Bytes::from(serde_json::to_vec(body)?)))?;
    let response = send.send_request(request).await?;
    let status = response.status();
    let raw = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(anyhow!("HTTP {status}"));
    }
    let reply: Value = serde_json::from_slice(&raw).context("answer is not JSON")?;
    match reply["header"]["functionExecutionStatus"]["status"].as_str() {
        Some("Executed-Success") => Ok(reply),
        other => Err(anyhow!(
            "{function}: {} {}",
            other.unwrap_or("no status"),
            reply["header"]["functionExecutionStatus"]["statusCodeData"]
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cycle_returns_to_download_and_restarts_on_a_missing_field() {
        let s = Step::Download.next(&json!({ "iccid": "8944" }));
        assert_eq!(
            s,
            Step::Confirm {
                iccid: "8944".into()
            }
        );
        let s = s.next(&json!({ "matchingId": "M-1" }));
        assert_eq!(
            s,
            Step::Cancel {
                iccid: "8944".into(),
                matching_id: "M-1".into()
            }
        );
        assert_eq!(s.next(&json!({})), Step::Download);
        assert_eq!(Step::Download.next(&json!({})), Step::Download);
        assert_eq!(
            Step::Confirm { iccid: "1".into() }.next(&json!({})),
            Step::Download
        );
    }
}
