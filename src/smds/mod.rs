//! The SM-DS (SGP.22 §3.6, §5.8, §5.9) on its own listener, transport-free like the ES2+ and
//! ES9+ engines: ES11 for LPAs (server-only TLS, on ES9+'s paths, Table 57) and ES12 for
//! SM-DP+s (mutual TLS: the caller is the OID of its client certificate).
//!
//! - [`es11`]: InitiateAuthentication and AuthenticateClient, the common mutual
//!   authentication of the SM-DP+ ([`crate::es9::authentication`]) with CERT.DSauth.ECDSA,
//!   answering the eUICC's Event Records;
//! - [`es12`]: RegisterEvent and DeleteEvent, each record kept with its caller.
//!
//! The records are the world's ([`crate::store::events`]): the mock's own SM-DP+ registers and
//! deletes its events there directly (`app::effects`), and they are saved in the state file.

mod es11;
mod es12;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, Value};
use tracing::info;

use crate::app::{App, World};
use crate::caller::Peer;
use crate::es9::session::Sessions;
use crate::es9::{json_answer, EuiccChains, Outcome};
use crate::exchange::{Answer, Call, Engine, Exchange, Head, HttpRefusal};
use crate::journal::Protocol;
use crate::pipeline;
use crate::sgp22::{self, SmdsFunction};
use smdpp_rsp::pki::SmdsCredentials;

/// The `X-Admin-Protocol` of the SM-DS's answers: the SGP.22 version it implements.
const ADMIN_PROTOCOL: &str = "gsma/rsp/v2.2.0";

/// What the SM-DS listener is configured with: what ES9+'s is (its address and the addresses
/// LPAs may name it by, validity checks, the session table of anonymous LPAs).
pub(crate) type SmdsConfig = crate::es9::Es9Config;

/// The SM-DS engine.
pub(crate) struct Smds {
    app: App,
    credentials: Arc<SmdsCredentials>,
    config: SmdsConfig,
    sessions: Sessions,
    chains: EuiccChains,
}

impl std::fmt::Debug for Smds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smds")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Smds {
    /// The SM-DS of `app`, signing with `credentials` (it cascades to a root SM-DS through
    /// `app`'s [`crate::app::SmdsEndpoint`]).
    pub(crate) fn new(app: App, credentials: Arc<SmdsCredentials>, config: SmdsConfig) -> Self {
        Smds {
            sessions: Sessions::new(config.sessions, app.clock.clone(), app.counters.clone()),
            chains: EuiccChains::new(credentials.cis.clone()),
            app,
            credentials,
            config,
        }
    }

    /// The current time in seconds by the mock's clock, when validity periods are checked.
    fn now(&self) -> Option<i64> {
        self.config
            .check_validity
            .then(|| self.app.clock.now().unix_timestamp())
    }

    fn run(
        &self,
        function: SmdsFunction,
        world: &Arc<World>,
        body: &Map<String, Value>,
        peer: &Peer,
        record: &mut Record,
    ) -> Outcome {
        match function {
            SmdsFunction::InitiateAuthentication => es11::initiate(self, world, body, peer),
            SmdsFunction::AuthenticateClient => es11::authenticate_client(self, world, body),
            SmdsFunction::RegisterEvent => es12::register(self, world, body, peer, record),
            SmdsFunction::DeleteEvent => es12::delete(self, world, body, peer, record),
        }
    }
}

/// The SM-DS in the call pipeline: ES11 calls are journaled and counted as ES11, ES12 calls as
/// ES12, whichever listener they came on.
impl pipeline::ProtocolFunction for SmdsFunction {
    const PROTOCOL: Protocol = Protocol::Es11;
    const BINDING: &'static str = "SGP.22 §6.5.1";
    fn name(self) -> &'static str {
        SmdsFunction::name(self)
    }
    fn protocol(self) -> Protocol {
        if self.is_es12() {
            Protocol::Es12
        } else {
            Protocol::Es11
        }
    }
}

/// The record of one SM-DS call.
type Record = pipeline::Record<SmdsFunction>;

impl Engine for Smds {
    type Function = SmdsFunction;
    type Admitted = Arc<World>;

    fn route(&self, path: &str) -> Option<SmdsFunction> {
        SmdsFunction::from_path(path)
    }

    fn admit(
        &self,
        function: SmdsFunction,
        head: &Head<'_>,
    ) -> (Arc<World>, Result<(), HttpRefusal>) {
        let world = self.app.world();
        let verdict = pipeline::judge_head(&world, function, head, || None);
        (world, verdict)
    }

    fn call(&self, call: Call<'_, SmdsFunction, Arc<World>>) -> Exchange {
        let Call {
            function,
            admitted: world,
            peer,
            body,
            refusal,
            started,
        } = call;
        let mut record = Record::new(function, peer, Vec::new());
        record.request = body.clone();
        let answer = match (body, refusal) {
            (Some(body), None) => match parse(function, &body) {
                Ok(fields) => {
                    let outcome = self.run(function, &world, &fields, peer, &mut record);
                    answer(&mut record, function, outcome)
                }
                Err(refusal) => record.refusal(refusal),
            },
            (_, refusal) => record
                .refusal(refusal.unwrap_or_else(|| {
                    HttpRefusal::new(400, "the request body could not be read")
                })),
        };
        let recorded = record.write(&self.app, answer.status, started.elapsed());
        Exchange {
            answer,
            announce: Arc::from(ADMIN_PROTOCOL),
            recorded,
            delay: None,
            drop_connection: false,
        }
    }

    fn abandoned(
        &self,
        function: SmdsFunction,
        peer: &Peer,
        recorded: Option<u64>,
        elapsed: Duration,
    ) {
        pipeline::abandoned(&self.app, function, peer, recorded, elapsed);
    }

    fn announce(&self) -> Arc<str> {
        Arc::from(ADMIN_PROTOCOL)
    }
}

/// The request's JSON object, or HTTP 400.
fn parse(function: SmdsFunction, body: &Bytes) -> Result<Map<String, Value>, HttpRefusal> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err(HttpRefusal::new(
            400,
            format!("the body of {function} must be a JSON object"),
        )),
        Err(e) => Err(HttpRefusal::new(400, format!("the body is not JSON: {e}"))),
    }
}

/// The JSON answer of an outcome (§6.5.1.2: HTTP 200 with the header, the fields unless the
/// function failed), or its HTTP refusal.
fn answer(record: &mut Record, function: SmdsFunction, outcome: Outcome) -> Answer {
    if let Some(refusal) = outcome.refusal {
        return record.refusal(refusal);
    }
    if let Err(failure) = &outcome.answer {
        info!(%function, code = %failure.code, message = %crate::journal::cut(&failure.message, 300), "Failed");
    }
    json_answer(record, outcome.answer)
}

/// JSON errors for every path of the SM-DS listener that is not one of its functions.
pub(crate) fn listener_fallback() -> axum::Router {
    use axum::http::{Method, StatusCode, Uri};
    axum::Router::new().fallback(|method: Method, uri: Uri| async move {
        crate::api::error(
            StatusCode::NOT_FOUND,
            format!(
                "{method} {} is not an SM-DS function; they are POST {}{{initiateAuthentication,authenticateClient}} (ES11) and POST {}{{registerEvent,deleteEvent}} (ES12) (SGP.22 §6.5.2, Table 57)",
                crate::journal::cut(uri.path(), 200),
                sgp22::ES9_PATH_PREFIX,
                sgp22::ES12_PATH_PREFIX,
            ),
        )
    })
}
