//! What the mock makes of its listeners' transport events ([`http::Hooks`]): the ES2+
//! listener admits the scenario's whitelisted addresses, follows the world's CRL, counts
//! refusals and grades refused handshakes for conformance (TLS-001, TLS-002); the ES9+ and
//! SM-DS listeners admit anyone and count their refused handshakes apart (an LPA's handshake
//! says nothing about an operator's client).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::app::{App, World};
use crate::clock::es2_timestamp_shared;
use crate::conformance::catalog::CheckId;
use crate::conformance::grade::Grade;
use crate::http::guard::Expiry;
use crate::http::{tls, Event, HandshakeFailure, Hooks, Refusal};
use crate::journal::Protocol;
use crate::metrics::Counters;
use crate::pki::PkiDir;

/// The ES2+ listener's hooks.
pub(super) struct Es2Hooks {
    app: App,
    pki: PkiDir,
    /// The world whose CRL the TLS configuration in force was built with.
    tls_world: Mutex<Arc<World>>,
}

impl Es2Hooks {
    pub(super) fn new(app: App, pki: PkiDir) -> Self {
        let tls_world = Mutex::new(app.world());
        Es2Hooks {
            app,
            pki,
            tls_world,
        }
    }
}

impl Hooks for Es2Hooks {
    fn admits(&self, remote: SocketAddr) -> bool {
        self.app.world().scenario.source_allowed(remote.ip())
    }

    /// A scenario loaded at run time, or a reset, reads its CRL again (so `certs revoke` +
    /// `POST /admin/reset` takes effect without a restart).
    fn tls_update(&self) -> Option<Arc<rustls::ServerConfig>> {
        let world = self.app.world();
        let mut in_force = self.tls_world.lock().unwrap_or_else(|e| e.into_inner());
        if Arc::ptr_eq(&world, &in_force) {
            return None;
        }
        let config = match tls::server_config(&self.pki, world.scenario.crl_file()) {
            Ok(config) => Some(config),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "keeping the previous TLS configuration");
                None
            }
        };
        *in_force = world;
        config
    }

    fn event(&self, event: Event) {
        match event {
            Event::HandshakeFailed { failure, remote } => {
                self.app
                    .metrics
                    .handshake_failure(Protocol::Es2, failure.label());
                if let Some(grade) = failed_check(failure) {
                    self.app.conformance.record(
                        &[grade],
                        &crate::conformance::Context {
                            time: es2_timestamp_shared(self.app.clock.now()),
                            operator: None,
                            excerpt: format!("TLS handshake from {remote}"),
                            journal_seq: None,
                        },
                    );
                }
            }
            other => count(&self.app, other),
        }
    }
}

/// The hooks of a listener anyone may connect to: ES9+ (server-only TLS), and the SM-DS (ES11
/// is server-only; ES12's callers are told apart by their certificates, not at accept). Their
/// refused handshakes are counted under `protocol`, apart from ES2+'s.
pub(super) struct OpenHooks {
    pub(super) app: App,
    pub(super) protocol: Protocol,
}

impl Hooks for OpenHooks {
    fn admits(&self, _remote: SocketAddr) -> bool {
        true
    }

    fn tls_update(&self) -> Option<Arc<rustls::ServerConfig>> {
        None
    }

    fn event(&self, event: Event) {
        match event {
            Event::HandshakeFailed { failure, .. } => {
                self.app
                    .metrics
                    .handshake_failure(self.protocol, failure.label());
            }
            other => count(&self.app, other),
        }
    }
}

/// Counts a refused or closed connection.
fn count(app: &App, event: Event) {
    let counters = &app.counters;
    let counter = match event {
        Event::Refused(Refusal::SourceAddress) => &counters.connections_refused_source_ip,
        Event::Refused(Refusal::PerAddress) => &counters.connections_refused_per_address,
        Event::Refused(Refusal::Limit) => &counters.connections_refused_limit,
        Event::Closed(Expiry::HeaderTimeout) => &counters.connections_closed_header_timeout,
        Event::Closed(Expiry::IdleTimeout) => &counters.connections_closed_idle_timeout,
        Event::HandshakeFailed { .. } => return,
    };
    Counters::bump(counter);
}

/// The conformance check an operator's client failed in a refused handshake, with what was
/// wrong; `None` when the failure says nothing about the client's certificate.
pub(crate) fn failed_check(failure: HandshakeFailure) -> Option<Grade> {
    match failure {
        HandshakeFailure::NoCertificate => Some(Grade::fail(
            CheckId::Tls001,
            "the client presented no certificate",
        )),
        HandshakeFailure::Expired
        | HandshakeFailure::NotYetValid
        | HandshakeFailure::UnknownCa
        | HandshakeFailure::Revoked
        | HandshakeFailure::WrongUsage
        | HandshakeFailure::BadSignature
        | HandshakeFailure::InvalidCertificate => Some(Grade::fail(
            CheckId::Tls002,
            format!("the client certificate was refused: {}", failure.label()),
        )),
        HandshakeFailure::Incompatible
        | HandshakeFailure::AlertReceived
        | HandshakeFailure::Protocol
        | HandshakeFailure::Io
        | HandshakeFailure::Timeout
        | HandshakeFailure::PlainHttp => None,
    }
}
