//! The ES2+ engine: one call in, one [`Exchange`] out, without HTTP types (in the manner of
//! wiremock-rs's `handle_request`). The HTTP layer has routed the request, read its body within
//! the limits and checked nothing ES2+-specific; everything from here on is decided once, in
//! this order:
//!
//! 1. grade the request head (and answer a refusal the head or body already earned);
//! 2. identify the caller, parse the body once, grade the envelope and fields;
//! 3. refuse a source address the operator may not use, then strict-mode failures;
//! 4. authorise, apply fault rules, run the function (its transition and effects commit
//!    through [`App::commit`]);
//! 5. journal the call, count it, and record its grades.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, info, warn};

use super::status::Es2Error;
use super::{run, Context, Function, FunctionAnswer, PATH_PREFIX};
use crate::app::{App, World};
use crate::caller::{Caller, Peer};
use crate::conformance::catalog::CheckId;
use crate::conformance::grade::{self, Grade};
use crate::conformance::policy;
use crate::exchange::{Answer, Call, Engine, Exchange, Head, HttpRefusal};
use crate::journal::{cut, IDENTIFIER_LIMIT};
use crate::json::Json;
use crate::pipeline;
use crate::scenario::Operator;
use crate::sgp22::ResponseHeader;

/// Longest message from a client's request that is logged whole.
const MESSAGE_LIMIT: usize = 300;

/// ES2+ on the mutual-TLS listener.
#[derive(Debug, Clone)]
pub(crate) struct Es2 {
    app: App,
}

impl Es2 {
    /// The engine of `app`.
    pub(crate) fn new(app: App) -> Self {
        Es2 { app }
    }
}

/// The answer to a path on the ES2+ listener that names no function and no platform route.
pub(crate) fn not_found(method: &str, path: &str) -> String {
    format!(
        "no such endpoint: {method} {path}; ES2+ functions are POST /gsma/rsp2/es2plus/{{downloadOrder,confirmOrder,cancelOrder,releaseProfile}}"
    )
}

/// What a call keeps from its admission: one world for the whole call (a scenario loaded
/// meanwhile applies from the next call on), and the grades of its head.
#[derive(Debug)]
pub(crate) struct Admission {
    world: Arc<World>,
    grades: Vec<Grade>,
}

impl Engine for Es2 {
    type Function = Function;
    type Admitted = Admission;

    fn route(&self, path: &str) -> Option<Function> {
        path.strip_prefix(PATH_PREFIX)
            .and_then(Function::from_path_segment)
    }

    fn admit(&self, function: Function, head: &Head<'_>) -> (Admission, Result<(), HttpRefusal>) {
        let admission = Admission {
            world: self.app.world(),
            grades: head_grades(head),
        };
        let verdict = admission.judge(function, head);
        (admission, verdict)
    }

    fn call(&self, call: Call<'_, Function, Admission>) -> Exchange {
        let Call {
            function,
            admitted: Admission { world, grades },
            peer,
            body,
            refusal,
            started,
        } = call;
        let mut record = Record::new(function, peer, grades);
        let answer =
            match body {
                Some(body) => {
                    let request = Received {
                        function,
                        peer,
                        body,
                        refusal,
                        started,
                    };
                    self.carry_out(&world, request, &mut record)
                }
                None => {
                    // No body to grade; the caller is still named in the journal and the report.
                    let caller = Caller::identify(&world.scenario, peer);
                    record.operator = caller.operator.map(|o| o.id.clone());
                    record.refusal(refusal.unwrap_or_else(|| {
                        HttpRefusal::new(400, "the request body could not be read")
                    }))
                }
            };
        let announce = world.scenario.admin_protocol_shared();
        drop(world);
        let fault = record.fault.take();
        let recorded = record.write(&self.app, answer.status, started.elapsed());
        let (delay, drop_connection) = fault.map_or((None, false), |f| (f.delay, f.close));
        Exchange {
            answer,
            announce,
            recorded,
            delay,
            drop_connection,
        }
    }

    fn abandoned(&self, function: Function, peer: &Peer, recorded: Option<u64>, elapsed: Duration) {
        pipeline::abandoned(&self.app, function, peer, recorded, elapsed);
    }

    fn announce(&self) -> Arc<str> {
        self.app.world().scenario.admin_protocol_shared()
    }
}

impl Admission {
    /// The refusal the head earns under the world's settings, if any: the pipeline's rules,
    /// and under strict conformance the HTTP checks refuse even where the switches don't.
    fn judge(&self, function: Function, head: &Head<'_>) -> Result<(), HttpRefusal> {
        pipeline::judge_head(&self.world, function, head, || {
            policy::head_refusal(&self.grades).map(|(status, message)| (status, message.into()))
        })
    }
}

/// The HTTP-level grades of a request head; TLS-001 passes, since the listener admits no
/// client without a certificate (refused handshakes are graded by the HTTP layer).
fn head_grades(head: &Head<'_>) -> Vec<Grade> {
    // Room for every grade a request can get, so the vector is allocated once.
    let mut grades = Vec::with_capacity(32);
    grade::http(
        &mut grades,
        head.method,
        head.content_type,
        head.admin_protocol,
    );
    grades.push(Grade::pass(CheckId::Tls001));
    grades
}

/// A request whose body was read, as [`Es2::carry_out`] takes it from the [`Call`].
struct Received<'a> {
    function: Function,
    peer: &'a Peer,
    body: Bytes,
    /// The refusal the request already earned on its head or body limits.
    refusal: Option<HttpRefusal>,
    started: Instant,
}

impl Es2 {
    /// Steps 2 to 4 for a request whose body was read. A request refused already (on its head)
    /// is graded in full all the same, so that a client with two mistakes learns of both at
    /// once; its answer stays the refusal, and nothing changes.
    fn carry_out(&self, world: &Arc<World>, request: Received<'_>, record: &mut Record) -> Answer {
        let Received {
            function,
            peer,
            body,
            refusal,
            started,
        } = request;
        record.request = Some(body.clone());
        let caller = Caller::identify(&world.scenario, peer);
        let operator = caller.operator;
        record.operator = operator.map(|o| o.id.clone());
        record.grades.push(caller_grade(&caller));
        // Parsed once, for grading, the journal and the function.
        let parsed_result = crate::json::parse(&body);
        self.grade_body(
            world,
            function,
            parsed_result.as_ref().ok(),
            operator,
            record,
        );
        if let Some(refusal) = refusal {
            return record.refusal(refusal);
        }
        if let Some(answer) = self.refuse_before_run(world, &caller, peer, record) {
            return answer;
        }
        let ctx = Context {
            app: &self.app,
            world,
            now: self.app.clock.now(),
        };
        match run(function, parsed_result.as_ref(), &caller, &ctx) {
            Ok(answer) => answered(function, operator, started, answer, record),
            Err(e) => {
                warn!(%function, remote = %peer.remote, error = %e, "malformed ES2+ body");
                record.refusal(HttpRefusal::new(400, e.to_string()))
            }
        }
    }

    /// Step 2's grades of the body: the ICCID it names (for the journal, and the order as it
    /// was before the call), the reuse of its functionCallIdentifier, and its envelope and
    /// fields.
    fn grade_body(
        &self,
        world: &World,
        function: Function,
        parsed: Option<&Json<'_>>,
        operator: Option<&Operator>,
        record: &mut Record,
    ) {
        let named_iccid = parsed.and_then(|v| v.get("iccid")?.as_str());
        record.iccid = named_iccid.map(|i| cut(i, IDENTIFIER_LIMIT));
        let before = named_iccid
            .and_then(|i| i.parse::<crate::ids::Iccid>().ok())
            .and_then(|i| world.store.get(i.key()));
        let call_id = parsed.and_then(|v| v.get("header")?.get("functionCallIdentifier")?.as_str());
        if let (Some(op), Some(call_id), Some(fp)) = (
            operator,
            call_id,
            parsed.and_then(|v| grade::fingerprint(function, v)),
        ) {
            record
                .grades
                .push(self.app.conformance.call_identifier(&op.id, call_id, fp));
        }
        grade::parsed_body_into(
            &mut record.grades,
            function,
            parsed,
            operator,
            before.as_ref(),
        );
    }

    /// Step 3: the refusal of a source address the operator may not connect from, then, under
    /// strict conformance, of an operator's body that failed a check; `None` lets the call run.
    fn refuse_before_run(
        &self,
        world: &World,
        caller: &Caller<'_>,
        peer: &Peer,
        record: &mut Record,
    ) -> Option<Answer> {
        if let Some(op) = caller.refused_source() {
            crate::metrics::Counters::bump(&self.app.counters.requests_refused_source_ip);
            warn!(operator = %op.id, remote = %peer.remote, "source address not allowed for the operator");
            return Some(record.refusal(HttpRefusal::new(
                403,
                format!(
                    "operator {} may not connect from {} (allowedSourceIps)",
                    op.id, caller.ip
                ),
            )));
        }
        if world.scenario.settings().conformance_strict && caller.operator.is_some() {
            if let Some(failed) = policy::body_refusal(&record.grades) {
                let error = Es2Error::invalid(failed.check.as_str(), &failed.message);
                return Some(record.answer(&ResponseHeader::failed((&error).into()), None::<&()>));
            }
        }
        None
    }
}

/// TLS-002: the client certificate identifies exactly one operator.
fn caller_grade(caller: &Caller<'_>) -> Grade {
    if caller.operator.is_some() {
        Grade::pass(CheckId::Tls002)
    } else if caller.ambiguous.is_empty() {
        Grade::fail(
            CheckId::Tls002,
            "the client certificate identifies no operator",
        )
    } else {
        Grade::fail(CheckId::Tls002, caller.unidentified())
    }
}

/// Step 5's part for a function that ran: the record learns the ICCID, call identifier, status,
/// body and fault rule of its answer, the call is logged, and its body goes out as the HTTP
/// answer.
fn answered(
    function: Function,
    operator: Option<&Operator>,
    started: Instant,
    mut answer: FunctionAnswer,
    record: &mut Record,
) -> Answer {
    if let Some(profile) = answer.profile.take() {
        // DownloadOrder by profile type: the answer names the ICCID the request did not.
        record
            .iccid
            .get_or_insert_with(|| profile.iccid.to_string());
    }
    record.call_id = answer
        .request_header
        .take()
        .map(|h| cut(&h.function_call_identifier, IDENTIFIER_LIMIT));
    record.status = Some(answer.status);
    record.code = answer.error.as_ref().map(|e| e.code);
    // Shared with the HTTP answer, not copied.
    let body = Bytes::from(std::mem::take(&mut answer.body));
    record.response = Some(body.clone());
    if let Some(fault) = answer.fault.take() {
        info!(%function, fault = %fault.name, "fault rule fired");
        record.fault_name = Some(fault.name.clone());
        if fault.close {
            // No answer reaches the client: journal the call as unanswered.
            record.unanswered();
        }
        record.fault = Some(fault);
    }
    let call_id = record.call_id.as_deref().unwrap_or("");
    match &answer.error {
        // Successes at debug: a log line per call is the largest cost under load,
        // and the journal (admin API) records every call anyway. Failures at info.
        None => debug!(
            %function, operator = operator.map(|o| &*o.id), call_id,
            elapsed_us = started.elapsed().as_micros() as u64, "Executed-Success"
        ),
        Some(e) => info!(
            %function, operator = operator.map(|o| &*o.id), call_id,
            code = %e.code, message = %cut(&e.message, MESSAGE_LIMIT), "Failed"
        ),
    }
    Answer::json(200, body)
}

/// The record of one ES2+ call.
type Record = pipeline::Record<Function>;
