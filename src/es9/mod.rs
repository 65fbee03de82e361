//! The ES9+ engine (SGP.22 §5.6, JSON binding §6.5): what an LPA calls to download the profile
//! an operator ordered through ES2+, with SGP.22's crypto, one call in, one [`Exchange`] out,
//! transport-free like the ES2+ engine.
//!
//! - [`authentication`]: InitiateAuthentication and AuthenticateClient (mutual authentication,
//!   the order found by MatchingID or EID, the download attempt counted);
//! - [`download`]: GetBoundProfilePackage (the Confirmation Code, key agreement, the Bound
//!   Profile Package);
//! - [`notification`]: HandleNotification (the installation result and the eUICC's other
//!   notifications) and CancelSession;
//! - [`session`]: RSP sessions by transactionId, bounded;
//! - [`asn1`]: the ASN.1 binding (§6.6), `POST /gsma/rsp2/asn1`, the same functions with DER
//!   requests and answers.
//!
//! Everything the device does becomes the same `profile::machine` events the simulated devices
//! use, committed through `App::commit`, so the HandleDownloadProgressInfo notifications to the
//! operator follow from what the device really did. Signatures are verified over the bytes as
//! received ([`smdpp_rsp::tlv`] keeps them).

mod asn1;
pub(crate) mod authentication;
mod download;
mod notification;
pub(crate) mod session;

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use tracing::{debug, info};

use crate::app::{App, World};
use crate::caller::Peer;
use crate::exchange::{Answer, Call, Engine, Exchange, Head, HttpRefusal};
use crate::fault::FaultAction;
use crate::ids::Iccid;
use crate::journal::{cut, IDENTIFIER_LIMIT};
use crate::pipeline;
use crate::sgp22::{self, Es9Function, ExecutionStatus, StatusCode, ES9_PATH_PREFIX};
use crate::sgp22::{ResponseHeader, StatusCodeData};
use session::{Sessions, TransactionId};
use smdpp_rsp::cert::{self, Certificate};
use smdpp_rsp::crypto;
use smdpp_rsp::pki::ServerCredentials;

/// The hostId of the control reference template (§2.5.3): the same for every package.
pub(crate) const HOST_ID: &[u8] = b"smdpp-mock";

/// Other notifications remembered (by EID and sequence number) to ignore repeats.
const SEEN_NOTIFICATIONS: usize = 100_000;

/// What the ES9+ listener (and the SM-DS's, `smds::SmdsConfig`) is configured with.
#[derive(Debug, Clone)]
pub(crate) struct Es9Config {
    /// The address activation codes name (`host[:port]`); the SM-DS's address.
    pub(crate) address: String,
    /// Every `smdpAddress` InitiateAuthentication accepts, lower case.
    pub(crate) accepted_addresses: Vec<String>,
    /// Check the validity periods of eUICC and EUM certificates.
    pub(crate) check_validity: bool,
    /// The bounds of the session tables: time to live, number, anonymous ones per address.
    pub(crate) sessions: session::Limits,
}

/// The `(EID, seqNumber)` of other notifications handled: a set, and its insertion order.
type Seen = (HashSet<([u8; 16], u64)>, VecDeque<([u8; 16], u64)>);

/// ES9+ on its server-authenticated TLS listener.
pub(crate) struct Es9 {
    app: App,
    credentials: Arc<ServerCredentials>,
    config: Es9Config,
    sessions: Sessions,
    /// `(EID, seqNumber)` of the other notifications already handled.
    seen: Mutex<Seen>,
    /// eUICC chains under the SM-DP+'s CIs.
    chains: EuiccChains,
}

/// EUM certificates kept parsed.
const PARSED_EUMS: usize = 16;

/// What verifies eUICC certificate chains for a server (the SM-DP+, the SM-DS): the CIs it
/// trusts, and the EUM certificates of chains that verified, kept parsed: the same few come
/// with every eUICC.
pub(crate) struct EuiccChains {
    cis: Vec<Certificate>,
    eums: Mutex<Vec<(Vec<u8>, Arc<Certificate>)>>,
}

impl EuiccChains {
    /// Chains to `cis`.
    pub(crate) fn new(cis: Vec<Certificate>) -> Self {
        EuiccChains {
            cis,
            eums: Mutex::default(),
        }
    }

    /// Verifies an eUICC's chain ([`cert::verify_euicc_chain`]), parsing an EUM certificate
    /// only the first time it is seen (every check is still made). Only an EUM certificate of
    /// a chain that verified is kept: what anonymous clients send cannot push the real EUMs
    /// out.
    pub(crate) fn verify(
        &self,
        euicc: &[u8],
        eum: &[u8],
        expected_ci: Option<&[u8]>,
        now: Option<i64>,
    ) -> Result<cert::VerifiedEuicc, cert::ChainError> {
        let known = {
            let eums = self.eums.lock().unwrap_or_else(|e| e.into_inner());
            eums.iter()
                .find(|(der, _)| der.as_slice() == eum)
                .map(|(_, c)| c.clone())
        };
        if let Some(parsed) = known {
            return cert::verify_euicc_chain_parsed(euicc, &parsed, &self.cis, expected_ci, now);
        }
        let parsed = Arc::new(Certificate::parse(eum).map_err(cert::ChainError::Eum)?);
        let verified =
            cert::verify_euicc_chain_parsed(euicc, &parsed, &self.cis, expected_ci, now)?;
        let mut eums = self.eums.lock().unwrap_or_else(|e| e.into_inner());
        if !eums.iter().any(|(der, _)| der.as_slice() == eum) {
            if eums.len() >= PARSED_EUMS {
                eums.remove(0);
            }
            eums.push((eum.to_vec(), parsed));
        }
        Ok(verified)
    }

    /// How many EUM certificates are kept parsed.
    #[cfg(test)]
    fn kept(&self) -> usize {
        self.eums.lock().unwrap().len()
    }
}

impl std::fmt::Debug for Es9 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Es9")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The SM-DP+'s certificates of one CI's hierarchy (one curve), with their keys.
#[derive(Clone, Copy)]
pub(crate) struct Pair<'a> {
    pub(crate) dp_auth: &'a Certificate,
    pub(crate) dp_auth_key: &'a smdpp_rsp::crypto::SigningKey,
    pub(crate) dp_pb: &'a Certificate,
    pub(crate) dp_pb_key: &'a smdpp_rsp::crypto::SigningKey,
}

/// A `Failed` answer: the status code, its message, and the field it is about.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub(crate) code: StatusCode,
    pub(crate) message: String,
    pub(crate) subject_identifier: Option<&'static str>,
}

impl Failure {
    pub(crate) fn new(code: StatusCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            subject_identifier: None,
        }
    }

    pub(crate) fn about(mut self, field: &'static str) -> Self {
        self.subject_identifier = Some(field);
        self
    }
}

/// What a function did: its answer, and what the journal learns.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) answer: Result<Map<String, Value>, Failure>,
    /// HandleNotification: 204 No Content (whatever happened, §6.5.1.4).
    pub(crate) no_content: bool,
    pub(crate) iccid: Option<Iccid>,
    pub(crate) owner: Option<Arc<str>>,
    pub(crate) eid: Option<crate::ids::Eid>,
    /// What happened that the answer does not say (a notification ignored, and why).
    pub(crate) note: Option<String>,
    /// Not answered by the function at all: HTTP 400 (not a request of it), 503 (too many
    /// sessions from the client's address).
    pub(crate) refusal: Option<HttpRefusal>,
}

impl Outcome {
    pub(crate) fn success(fields: Map<String, Value>) -> Self {
        Outcome {
            answer: Ok(fields),
            no_content: false,
            iccid: None,
            owner: None,
            eid: None,
            note: None,
            refusal: None,
        }
    }

    pub(crate) fn bad_request(message: String) -> Self {
        Outcome {
            refusal: Some(HttpRefusal::new(400, message)),
            ..Outcome::success(Map::new())
        }
    }

    /// HTTP 503 with `Retry-After: seconds`: no status code of SGP.22 says "try later".
    pub(crate) fn unavailable(message: String, seconds: u32) -> Self {
        let mut refusal = HttpRefusal::new(503, message);
        refusal.retry_after = Some(seconds);
        Outcome {
            refusal: Some(refusal),
            ..Outcome::success(Map::new())
        }
    }

    pub(crate) fn failed(failure: Failure) -> Self {
        Outcome {
            answer: Err(failure),
            ..Outcome::success(Map::new())
        }
    }

    pub(crate) fn acknowledged(note: Option<String>) -> Self {
        Outcome {
            no_content: true,
            note,
            ..Outcome::success(Map::new())
        }
    }

    /// The answer of a function that produced `result`.
    pub(crate) fn of(result: Result<Map<String, Value>, Failure>) -> Self {
        match result {
            Ok(fields) => Outcome::success(fields),
            Err(failure) => Outcome::failed(failure),
        }
    }

    /// Names the eUICC and the order of the session the call belonged to, for the journal.
    fn of_session(
        mut self,
        eid: Option<crate::ids::Eid>,
        order: Option<&session::OrderRef>,
    ) -> Self {
        self.eid = eid;
        self.with_order(order)
    }

    fn with_order(mut self, order: Option<&session::OrderRef>) -> Self {
        if let Some(o) = order {
            self.iccid = Some(o.iccid);
            self.owner = Some(o.owner.clone());
        }
        self
    }
}

/// What the functions share.
pub(crate) struct Context<'a> {
    pub(crate) es9: &'a Es9,
    pub(crate) world: &'a Arc<World>,
    pub(crate) body: &'a Map<String, Value>,
    /// The client's address.
    pub(crate) source: std::net::IpAddr,
}

impl Context<'_> {
    /// A base64 field, decoded.
    pub(crate) fn binary(&self, name: &'static str) -> Result<Vec<u8>, Failure> {
        binary(self.body, name)
    }

    /// The `transactionId` field: hex of 1 to 16 bytes.
    pub(crate) fn transaction_id(&self) -> Result<TransactionId, Failure> {
        transaction_id(self.body)
    }

    /// The current time in seconds, by the mock's clock (certificate validity).
    pub(crate) fn now(&self) -> Option<i64> {
        self.es9
            .config
            .check_validity
            .then(|| self.es9.app.clock.now().unix_timestamp())
    }
}

/// A string field of a request body, which must be present.
pub(crate) fn text<'a>(
    body: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str, Failure> {
    match body.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => {
            Err(Failure::new(sgp22::FORMAT_INVALID, format!("{name} must be a string")).about(name))
        }
        None => Err(Failure::new(
            sgp22::MANDATORY_ELEMENT_MISSING,
            format!("{name} is missing"),
        )
        .about(name)),
    }
}

/// A base64 field of a request body, decoded.
pub(crate) fn binary(body: &Map<String, Value>, name: &'static str) -> Result<Vec<u8>, Failure> {
    let text = text(body, name)?;
    crypto::base64_decode(text).ok_or_else(|| {
        Failure::new(sgp22::FORMAT_INVALID, format!("{name} is not base64")).about(name)
    })
}

/// The `transactionId` field of a request body: hex of 1 to 16 bytes.
pub(crate) fn transaction_id(body: &Map<String, Value>) -> Result<TransactionId, Failure> {
    let text = text(body, "transactionId")?;
    crypto::hex_decode(text)
        .and_then(|b| TransactionId::from_bytes(&b))
        .ok_or_else(|| {
            Failure::new(
                sgp22::FORMAT_INVALID,
                "transactionId is not the hex of 1 to 16 bytes",
            )
            .about("transactionId")
        })
}

/// `8.10.1 / 3.9`: the session is not known (any more).
pub(crate) fn unknown_session(what: &str) -> Failure {
    Failure::new(
        sgp22::TRANSACTION_ID_UNKNOWN,
        format!("the RSP session identified by the transactionId is unknown: {what}"),
    )
    .about("transactionId")
}

/// A malformed data object in field `name`.
pub(crate) fn malformed(name: &'static str, error: impl std::fmt::Display) -> Failure {
    Failure::new(sgp22::FORMAT_INVALID, format!("{name}: {error}")).about(name)
}

/// The fields of a successful ES9+ answer, beginning with the session's `transactionId` (upper-case
/// hex) that each of them carries.
pub(crate) fn answer_fields(tid: TransactionId) -> Map<String, Value> {
    let mut fields = Map::new();
    fields.insert(
        "transactionId".into(),
        Value::String(crypto::hex_upper(tid.as_bytes())),
    );
    fields
}

/// `name(code)` for the error code an eUICC answered, its name from `names` (the values of one
/// ASN.1 enumeration, such as `AuthenticateErrorCode`), or `unknown code`.
pub(crate) fn error_code_name(names: &[(u64, &str)], code: u64) -> String {
    let name = names
        .iter()
        .find(|(value, _)| *value == code)
        .map_or("unknown code", |(_, name)| name);
    format!("{name}({code})")
}

/// Base64 of `data`, as a JSON string.
pub(crate) fn b64(data: &[u8]) -> Value {
    Value::String(crypto::base64_encode(data))
}

impl Es9 {
    /// The engine of `app`, signing with `credentials`.
    pub(crate) fn new(app: App, credentials: Arc<ServerCredentials>, config: Es9Config) -> Self {
        Es9 {
            chains: EuiccChains::new(credentials.cis.clone()),
            sessions: Sessions::new(config.sessions, app.clock.clone(), app.counters.clone()),
            app,
            credentials,
            config,
            seen: Mutex::default(),
        }
    }

    /// The DPauth/DPpb pair of the session: the brainpool one when `brainpool`.
    pub(crate) fn pair(&self, brainpool: bool) -> Pair<'_> {
        let c = &self.credentials;
        match c.brainpool.as_ref().filter(|_| brainpool) {
            Some(p) => Pair {
                dp_auth: &p.dp_auth,
                dp_auth_key: &p.dp_auth_key,
                dp_pb: &p.dp_pb,
                dp_pb_key: &p.dp_pb_key,
            },
            None => Pair {
                dp_auth: &c.dp_auth,
                dp_auth_key: &c.dp_auth_key,
                dp_pb: &c.dp_pb,
                dp_pb_key: &c.dp_pb_key,
            },
        }
    }

    /// The SM-DP+ OID (subjectAltName registeredID of DPauth), content bytes.
    pub(crate) fn smdp_oid(&self) -> &[u8] {
        self.credentials
            .dp_auth
            .registered_id
            .as_deref()
            .unwrap_or_default()
    }

    /// Whether the other notification `(eid, seq)` is new; remembers it.
    pub(crate) fn first_time(&self, eid: [u8; 16], seq: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (set, order) = &mut *seen;
        if !set.insert((eid, seq)) {
            return false;
        }
        order.push_back((eid, seq));
        if order.len() > SEEN_NOTIFICATIONS {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
        true
    }

    fn run(&self, function: Es9Function, ctx: &Context<'_>) -> Outcome {
        match function {
            Es9Function::InitiateAuthentication => authentication::initiate(ctx),
            Es9Function::AuthenticateClient => authentication::authenticate_client(ctx),
            Es9Function::GetBoundProfilePackage => download::get_bound_profile_package(ctx),
            Es9Function::HandleNotification => notification::handle(ctx),
            Es9Function::CancelSession => notification::cancel_session(ctx),
        }
    }

    /// The fault rule that fires for this call, judged on what the request names.
    fn fault(
        &self,
        function: Es9Function,
        world: &World,
        body: &Map<String, Value>,
    ) -> Option<FaultAction> {
        if world.faults.is_empty() {
            return None;
        }
        let order = body
            .get("transactionId")
            .and_then(Value::as_str)
            .and_then(crypto::hex_decode)
            .and_then(|b| TransactionId::from_bytes(&b))
            .and_then(|tid| {
                match self.sessions.get(&tid, |_| true) {
                    Some(s) => s.order.map(|o| (o, s.euicc.map(|e| e.eid))),
                    // A session whose package was delivered (a CancelSession after it).
                    None => world
                        .awaiting
                        .get(&tid)
                        .map(|d| (d.order, Some(d.euicc.eid))),
                }
            });
        let facts = crate::fault::Es9Facts {
            function,
            operator: order.as_ref().map(|(o, _)| &*o.owner),
            iccid: order.as_ref().map(|(o, _)| o.key),
            eid: order.as_ref().and_then(|(_, e)| *e),
            profile_type: order.as_ref().map(|(o, _)| &*o.profile_type),
        };
        world.faults.check_es9(&facts)
    }
}

/// What an ES9+ path calls: a function of the JSON binding (§6.5, one path each), or the ASN.1
/// binding's one path (§6.6), whose function the request's CHOICE names (`None` until the
/// body is decoded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Es9Route {
    Json(Es9Function),
    Asn1(Option<Es9Function>),
}

impl std::fmt::Display for Es9Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(pipeline::ProtocolFunction::name(*self))
    }
}

/// The function of an ASN.1 request that could not be decoded (its journal and metrics name).
const UNDECODED_ASN1: &str = "RemoteProfileProvisioningRequest";

/// ES9+ in the call pipeline: its journal protocol, and each binding's section and media type;
/// the journal and the metrics name the function whichever binding called it.
impl pipeline::ProtocolFunction for Es9Route {
    const PROTOCOL: crate::journal::Protocol = crate::journal::Protocol::Es9;
    const BINDING: &'static str = "SGP.22 §6.5.1";
    fn name(self) -> &'static str {
        match self {
            Es9Route::Json(f) | Es9Route::Asn1(Some(f)) => f.name(),
            Es9Route::Asn1(None) => UNDECODED_ASN1,
        }
    }
    fn binding(self) -> &'static str {
        match self {
            Es9Route::Json(_) => Self::BINDING,
            Es9Route::Asn1(_) => "SGP.22 §6.6.1",
        }
    }
    fn media_type(self) -> &'static str {
        match self {
            Es9Route::Json(_) => "application/json",
            Es9Route::Asn1(_) => smdpp_rsp::es9::CONTENT_TYPE,
        }
    }
}

impl Es9 {
    /// The function a request body calls and its fields (the JSON object, or the DER decoded
    /// into the same fields), kept in `record` as the journal shows it; or HTTP 400.
    fn parse(
        &self,
        route: Es9Route,
        body: &Bytes,
        record: &mut Record,
    ) -> Result<(Es9Function, Map<String, Value>), HttpRefusal> {
        let function = match route {
            Es9Route::Json(function) => function,
            Es9Route::Asn1(_) => {
                record.request = Some(asn1::journal_text(body));
                let (function, fields) = asn1::decode(body)?;
                record.function = Es9Route::Asn1(Some(function));
                return Ok((function, fields));
            }
        };
        record.request = Some(body.clone());
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(fields)) => Ok((function, fields)),
            Ok(_) => Err(HttpRefusal::new(
                400,
                format!("the body of {function} must be a JSON object"),
            )),
            Err(e) => Err(HttpRefusal::new(400, format!("the body is not JSON: {e}"))),
        }
    }

    /// Runs `function` on `fields`, unless the fault rule `fault` answers for it.
    fn execute(
        &self,
        function: Es9Function,
        world: &Arc<World>,
        fields: &Map<String, Value>,
        peer: &Peer,
        fault: Option<&FaultAction>,
    ) -> Outcome {
        match fault.filter(|f| f.close || f.error.is_some()) {
            Some(f) => {
                info!(%function, fault = %f.name, "fault rule fired");
                let (code, message) = f.error.clone().unwrap_or((
                    sgp22::EXECUTION_ERROR,
                    "connection closed by a fault rule".into(),
                ));
                Outcome::failed(Failure::new(code, message))
            }
            None => self.run(
                function,
                &Context {
                    es9: self,
                    world,
                    body: fields,
                    source: peer.remote.ip(),
                },
            ),
        }
    }
}

/// The function a request path calls.
impl Engine for Es9 {
    type Function = Es9Route;
    type Admitted = Arc<World>;

    fn route(&self, path: &str) -> Option<Es9Route> {
        if path == smdpp_rsp::es9::PATH {
            return Some(Es9Route::Asn1(None));
        }
        path.strip_prefix(ES9_PATH_PREFIX)
            .and_then(Es9Function::from_path_segment)
            .map(Es9Route::Json)
    }

    fn admit(&self, route: Es9Route, head: &Head<'_>) -> (Arc<World>, Result<(), HttpRefusal>) {
        let world = self.app.world();
        let verdict = pipeline::judge_head(&world, route, head, || None);
        (world, verdict)
    }

    fn call(&self, call: Call<'_, Es9Route, Arc<World>>) -> Exchange {
        let Call {
            function: route,
            admitted: world,
            peer,
            body,
            refusal,
            started,
        } = call;
        let mut record = Record::new(route, peer, Vec::new());
        let mut fault = None;
        let answer =
            match (body, refusal) {
                (Some(body), None) => match self.parse(route, &body, &mut record) {
                    Ok((function, fields)) => {
                        fault = self.fault(function, &world, &fields);
                        let outcome = self.execute(function, &world, &fields, peer, fault.as_ref());
                        record.fault_name = fault.as_ref().map(|f| f.name.clone());
                        answer(&mut record, function, route, outcome)
                    }
                    Err(refusal) => record.refusal(refusal),
                },
                (body, refusal) => {
                    record.request = match route {
                        Es9Route::Asn1(_) => body.map(|b| asn1::journal_text(&b)),
                        Es9Route::Json(_) => body,
                    };
                    record.refusal(refusal.unwrap_or_else(|| {
                        HttpRefusal::new(400, "the request body could not be read")
                    }))
                }
            };
        if fault.as_ref().is_some_and(|f| f.close) {
            record.unanswered();
        }
        let recorded = record.write(&self.app, answer.status, started.elapsed());
        let (delay, drop_connection) = fault.map_or((None, false), |f| (f.delay, f.close));
        Exchange {
            answer,
            announce: Arc::from(sgp22::ES9_ADMIN_PROTOCOL),
            recorded,
            delay,
            drop_connection,
        }
    }

    fn abandoned(&self, route: Es9Route, peer: &Peer, recorded: Option<u64>, elapsed: Duration) {
        pipeline::abandoned(&self.app, route, peer, recorded, elapsed);
    }

    fn announce(&self) -> Arc<str> {
        Arc::from(sgp22::ES9_ADMIN_PROTOCOL)
    }
}

/// The answer of an outcome in the binding of `route` (§6.3: 200 for request/response
/// functions, whether they succeeded or not; 204 without a body for notifications), written
/// into `record`: JSON with its header (§6.5.1), or DER (§6.6, [`asn1::answer`]).
fn answer(record: &mut Record, function: Es9Function, route: Es9Route, outcome: Outcome) -> Answer {
    if let Some(refusal) = outcome.refusal {
        return record.refusal(refusal);
    }
    record.operator = outcome.owner.clone();
    record.iccid = outcome.iccid.map(|i| cut(&i.to_string(), IDENTIFIER_LIMIT));
    if outcome.no_content {
        if let Some(note) = &outcome.note {
            info!(%function, note = %cut(note, 300), "notification acknowledged");
        }
        // The journal keeps the note; the client gets no body.
        record.response = outcome
            .note
            .map(|n| Bytes::from(json!({ "note": n }).to_string()));
        return Answer::json(204, Bytes::new());
    }
    match &outcome.answer {
        Ok(_) => debug!(%function, iccid = ?record.iccid, "Executed-Success"),
        Err(failure) => {
            info!(%function, code = %failure.code, message = %cut(&failure.message, 300), "Failed");
        }
    }
    match route {
        Es9Route::Asn1(_) => asn1::answer(record, function, outcome.answer),
        Es9Route::Json(_) => json_answer(record, outcome.answer),
    }
}

/// The JSON answer (§6.5.1.2): the header, and the fields unless the function failed.
pub(crate) fn json_answer<F: pipeline::ProtocolFunction>(
    record: &mut pipeline::Record<F>,
    outcome: Result<Map<String, Value>, Failure>,
) -> Answer {
    match outcome {
        Ok(fields) => record.answer(
            &ResponseHeader::of(ExecutionStatus::ExecutedSuccess),
            Some(&fields),
        ),
        Err(failure) => {
            let data = StatusCodeData::new(
                failure.code,
                failure.subject_identifier.map(str::to_owned),
                failure.message,
            );
            record.answer(&ResponseHeader::failed(data), None::<&()>)
        }
    }
}

/// The record of one ES9+ call.
type Record = pipeline::Record<Es9Route>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Clock;
    use crate::notify::transport::HttpTransport;
    use crate::notify::Notifier;
    use crate::pki::PkiDir;
    use crate::scenario::Scenario;
    use smdpp_rsp::pki::{GsmaPki, SAMPLE_EID};

    fn pki(name: &str) -> GsmaPki {
        let dir = std::env::temp_dir().join(format!("smdpp-eums-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let gsma = GsmaPki::new(&dir);
        gsma.ensure(&["localhost".into()], SAMPLE_EID).unwrap();
        gsma
    }

    /// The EUM cache keeps only certificates of chains that verified: what anonymous clients
    /// send (garbage, or a well-formed EUM of a CI this SM-DP+ does not trust) is parsed and
    /// checked each time, and never pushes the real EUMs out.
    #[tokio::test]
    async fn only_eum_certificates_of_verified_chains_are_kept() {
        let (ours, theirs) = (pki("ours"), pki("theirs"));
        let dir = std::env::temp_dir();
        let app = App::new(
            Arc::new(Scenario::default_scenario().unwrap()),
            Clock::system(),
            Notifier::start(Arc::new(HttpTransport::new(PkiDir::new(&dir))), 10, 10),
            crate::journal::Capacity { es2: 10, es9: 10 },
        );
        let es9 = Es9::new(
            app,
            Arc::new(ours.server_credentials().unwrap()),
            Es9Config {
                address: "localhost:6444".into(),
                accepted_addresses: vec!["localhost:6444".into()],
                check_validity: true,
                sessions: session::Limits::default(),
            },
        );
        let kept = || es9.chains.kept();
        let (card, foreign) = (ours.sample_euicc().unwrap(), theirs.sample_euicc().unwrap());
        for _ in 0..PARSED_EUMS + 1 {
            assert!(es9
                .chains
                .verify(&foreign.certificate, &foreign.eum, None, None)
                .is_err());
            assert!(es9
                .chains
                .verify(&card.certificate, &[0x30, 0x03, 1, 2, 3], None, None)
                .is_err());
        }
        assert_eq!(kept(), 0);
        es9.chains
            .verify(&card.certificate, &card.eum, None, None)
            .unwrap();
        es9.chains
            .verify(&card.certificate, &card.eum, None, None)
            .unwrap();
        assert_eq!(kept(), 1);
        let _ = std::fs::remove_dir_all(ours.dir().parent().unwrap());
        let _ = std::fs::remove_dir_all(theirs.dir().parent().unwrap());
    }
}
