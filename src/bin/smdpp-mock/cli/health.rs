//! `smdpp-mock health`: the container HEALTHCHECK.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};

use super::admin_request;

/// `GET /health` on the admin API. The listen address is what a container's environment
/// holds, so a wildcard address is turned into loopback to have something to connect to.
pub(super) async fn health(mut admin: SocketAddr, timeout: Duration) -> Result<()> {
    if admin.ip().is_unspecified() {
        admin.set_ip(match admin {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    let (status, body) = tokio::time::timeout(
        timeout,
        admin_request(admin, "GET", "/health", String::new(), None),
    )
    .await
    .with_context(|| format!("no answer from {admin} within {timeout:?}"))??;
    let ok = status == 200
        && serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|v| v["status"] == "ok");
    if !ok {
        anyhow::bail!(
            "{admin} answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    println!("ok: {admin}");
    Ok(())
}
