//! The SM-DS listener: its address, its credentials (CERT.DSauth.ECDSA, CERT.DS.TLS) and its
//! accept loop, beside the SM-DP+'s.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::warn;

use super::{accepted_addresses, listener_config, loopback, nist_cis, serve_open, ServerConfig};
use crate::app::{App, SmdsEndpoint};
use crate::error::{Error, Result};
use crate::http::router::EngineService;
use crate::http::tls;
use crate::smds::Smds;
use smdpp_rsp::pki::{GsmaPki, SmdsCredentials};

/// The SM-DS listener, bound and with its credentials, before the application exists.
pub(super) struct SmdsParts {
    listener: TcpListener,
    pub(super) addr: SocketAddr,
    /// The SM-DS address ConfirmOrder and LPAs name.
    pub(super) address: String,
    credentials: Arc<SmdsCredentials>,
    tls: Arc<rustls::ServerConfig>,
}

/// The SM-DS address for a listener bound at `addr`: `--smds-address`, else the scenario's
/// `smds.address` (with the listener's port when it has none), else the host of the
/// scenario's `smdp.address` with the listener's port (none for 443).
pub(super) fn smds_address(config: &ServerConfig, addr: SocketAddr) -> String {
    if let Some(fixed) = &config.smds_address {
        return fixed.clone();
    }
    let with_port = |host: &str| match addr.port() {
        443 => host.to_owned(),
        port if host.contains(':') => format!("[{host}]:{port}"),
        port => format!("{host}:{port}"),
    };
    match config.scenario.smds_own_address() {
        Some(address) if address.contains(':') && !address.starts_with('[') => address.to_owned(),
        Some(host) => with_port(host),
        None => with_port(smdpp_rsp::pki::address_host(config.scenario.smdp_address())),
    }
}

impl SmdsParts {
    /// Loads the SM-DS's credentials for the bound `listener`; `None` (with a warning) when
    /// the folder has none and cannot make them (a folder of the user's SGP.26 material
    /// without the SM-DS's files and without a CI key).
    pub(super) fn load(
        config: &ServerConfig,
        gsma: &GsmaPki,
        listener: TcpListener,
        addr: SocketAddr,
    ) -> Result<Option<Self>> {
        let address = smds_address(config, addr);
        if !gsma.has_smds() {
            warn!(
                dir = %gsma.dir().display(),
                "the SM-DS does not run: the folder has no {} and {} (with their keys) and no CI key to make them; put the SM-DS's certificates there under these names, or run with --smds-listen off",
                smdpp_rsp::pki::DSAUTH_CERT,
                smdpp_rsp::pki::DSTLS_CERT,
            );
            return Ok(None);
        }
        let credentials = Arc::new(gsma.smds_credentials_for(&address)?);
        let tls = tls::smds_server_config(&credentials).map_err(Error::start)?;
        Ok(Some(SmdsParts {
            listener,
            addr,
            address,
            credentials,
            tls,
        }))
    }

    /// Records the mock's SM-DS for its SM-DP+ (`caller`: the SM-DP+'s OID) and returns the
    /// accept loop.
    pub(super) fn serve(
        self,
        app: &App,
        config: &ServerConfig,
        caller: Arc<str>,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> impl std::future::Future<Output = ()> {
        let accepted = accepted_addresses(
            &self.address,
            config,
            &self.credentials.ds_tls,
            self.addr.port(),
        );
        // ES15 to a root SM-DS presents DStls (§5.10), which carries the SM-DS's OID.
        let cascade = crate::es12_client::LazyClient::new(
            self.credentials.tls_chain.clone(),
            self.credentials.tls_key.clone(),
            nist_cis(&self.credentials.cis),
            self.credentials
                .ds_tls
                .registered_id
                .as_deref()
                .and_then(smdpp_rsp::pki::oid_text)
                .unwrap_or_default(),
        );
        app.set_smds(SmdsEndpoint {
            address: self.address.clone(),
            accepted: accepted.clone(),
            caller,
            route: loopback(self.addr).to_string(),
            cascade: Arc::new(cascade),
        });
        app.register_preset_events(&app.world());
        let engine = Smds::new(
            app.clone(),
            self.credentials,
            listener_config(config, self.address, accepted),
        );
        serve_open(
            (self.listener, self.tls),
            app,
            crate::journal::Protocol::Es11,
            EngineService::new(
                Arc::new(engine),
                crate::smds::listener_fallback(),
                config.limits.clone(),
            ),
            config,
            shutdown,
        )
    }
}
