//! Who is calling: the facts of a client's connection (address, verified certificate) and the
//! operator they identify. ES2+ and the platform API both ask here, so a certificate and an
//! address mean the same operator everywhere (SGP.22 §6.1.1: the SM-DP+ authenticates the
//! operator by its TLS client certificate).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use crate::scenario::{Operator, Scenario};

/// What a connection tells about its client, shared by every request on it.
#[derive(Debug, Clone)]
pub(crate) struct Peer {
    /// The client's address.
    pub remote: SocketAddr,
    /// Its IP as text, formatted once per connection for the journal.
    pub source_ip: Arc<str>,
    /// The verified client certificate, when the listener asks for one.
    pub certificate: Option<Arc<CertificateIdentity>>,
}

impl Peer {
    /// A peer at `remote` presenting `certificate`.
    pub(crate) fn new(remote: SocketAddr, certificate: Option<Arc<CertificateIdentity>>) -> Self {
        Peer {
            remote,
            source_ip: Arc::from(remote.ip().to_string()),
            certificate,
        }
    }
}

/// The names a verified client certificate carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CertificateIdentity {
    /// The subject's common name.
    pub common_name: Option<String>,
    /// DNS and URI subject alternative names.
    pub alt_names: Vec<String>,
    /// The whole subject DN, for logs and the journal (shared by every call on the connection).
    pub subject: Arc<str>,
    /// The certificate serial, hex.
    pub serial: String,
    /// The subjectAltName registeredID, dotted (`2.999.10`): the SM-DP+ or SM-DS OID of an
    /// SGP.22 TLS certificate, which identifies an ES12 caller (§5.9.1).
    pub registered_id: Option<String>,
}

impl CertificateIdentity {
    /// The CN and SANs: the names an operator's `certificateNames` are matched against.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.common_name
            .iter()
            .chain(self.alt_names.iter())
            .map(String::as_str)
    }
}

/// The caller of one request, as the scenario in force sees it.
#[derive(Debug, Clone)]
pub(crate) struct Caller<'s> {
    /// The operator the client certificate maps to, whatever the source address; `None` when
    /// it maps to none, or to several ([`Caller::ambiguous`]).
    pub operator: Option<&'s Operator>,
    /// The operators a certificate maps to when its names belong to more than one: refused,
    /// since picking one by scenario order would act for the wrong operator.
    pub ambiguous: Vec<&'s str>,
    /// The client's address.
    pub ip: IpAddr,
}

impl<'s> Caller<'s> {
    /// Identifies `peer` in `scenario`.
    pub(crate) fn identify(scenario: &'s Scenario, peer: &Peer) -> Self {
        let matching = peer
            .certificate
            .as_ref()
            .map(|c| scenario.operators_for_certificate(c.names()))
            .unwrap_or_default();
        let (operator, ambiguous) = match matching.as_slice() {
            [one] => (Some(*one), Vec::new()),
            [] => (None, Vec::new()),
            several => (None, several.iter().map(|o| &*o.id).collect()),
        };
        Caller {
            operator,
            ambiguous,
            ip: peer.remote.ip(),
        }
    }

    /// Why the certificate identifies no operator, for the client.
    pub(crate) fn unidentified(&self) -> String {
        if self.ambiguous.is_empty() {
            "the client certificate does not identify any operator of this SM-DP+".into()
        } else {
            format!(
                "the client certificate's names match several operators ({}): ambiguous, so it is refused; give each operator certificate names of its own",
                self.ambiguous.join(", ")
            )
        }
    }

    /// The operator when it may connect from this address (`allowedSourceIps`).
    pub(crate) fn allowed(&self) -> Option<&'s Operator> {
        self.operator.filter(|op| op.allows_source(self.ip))
    }

    /// The operator when it is known but may not connect from this address.
    pub(crate) fn refused_source(&self) -> Option<&'s Operator> {
        self.operator.filter(|op| !op.allows_source(self.ip))
    }
}
