//! ES2+ function semantics (SGP.22 §5.3, §6.5): request body in, response body out.
//!
//! This layer knows JSON but not HTTP. The HTTP layer checks method, headers and size, then
//! calls [`handle`]; everything from the envelope inwards is decided here and answered as an
//! ES2+ `functionExecutionStatus`.

pub mod cancel_order;
pub mod confirm_order;
pub mod download_order;
pub mod release_profile;
pub mod status;
pub mod wire;

use serde::Serialize;
use time::OffsetDateTime;

use crate::fault::{CallFacts, FaultAction, Faults};
use crate::ids::Iccid;
use crate::ids::MatchingIdGenerator;
use crate::json::Json;
use crate::profile::machine::Effect;
use crate::profile::Profile;
use crate::scenario::{Operator, Scenario, SmdsBehaviour};
use crate::store::{Store, UpdateError, Updated};
use status::Es2Error;
use wire::{ExecutionStatus, Fields, FunctionExecutionStatus, RequestHeader, ResponseHeader};

pub use crate::sgp22::{Function, PATH_PREFIX};

/// What a function returns: its output and the profile update it committed.
pub type Outcome<T> = Result<(T, Updated), Es2Error>;

/// Everything a function needs to run.
#[derive(Debug)]
pub struct Context<'a> {
    /// The running scenario.
    pub scenario: &'a Scenario,
    /// The profile store.
    pub store: &'a Store,
    /// Source of generated MatchingIDs.
    pub matching_ids: &'a MatchingIdGenerator,
    /// The operator the client certificate maps to, if any.
    pub operator: Option<&'a Operator>,
    /// The scenario's fault rules.
    pub faults: &'a Faults,
    /// The time of the request.
    pub now: OffsetDateTime,
}

/// The answer to an ES2+ request that had a JSON object as body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The response body.
    pub body: Vec<u8>,
    /// The outcome.
    pub status: ExecutionStatus,
    /// Why it failed, when it did.
    pub error: Option<Es2Error>,
    /// The request header, when it was well-formed.
    pub request_header: Option<RequestHeader>,
    /// Effects of the committed transition (SM-DS calls, notifications), for the caller to carry
    /// out; empty on failure.
    pub effects: Vec<Effect>,
    /// The profile after the committed transition.
    pub profile: Option<Profile>,
    /// The fault rule that fired, if any: its delay and `close` are the caller's to apply.
    pub fault: Option<FaultAction>,
}

/// A body that is not a JSON object: an HTTP-level error, not an ES2+ answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// Not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the body must be one JSON object")]
    NotObject,
}

/// Runs `function` on a request body.
pub fn handle(function: Function, body: &[u8], ctx: &Context<'_>) -> Result<Answer, BodyError> {
    handle_parsed(function, crate::json::parse(body).as_ref(), ctx)
}

/// Runs `function` on a request body already parsed as JSON (the HTTP layer parses it once for
/// grading, the journal and the function).
pub fn handle_parsed(
    function: Function,
    parsed: Result<&Json<'_>, &serde_json::Error>,
    ctx: &Context<'_>,
) -> Result<Answer, BodyError> {
    let value = parsed.map_err(|e| BodyError::NotJson(e.to_string()))?;
    let Json::Object(map) = value else {
        return Err(BodyError::NotObject);
    };
    let fields = Fields::new(map);
    let header = fields.header();
    let authorised = match &header {
        Ok(h) => authorise(h, ctx),
        Err(e) => Err(e.clone()),
    };
    let request_header = header.ok();
    let operator = match authorised {
        Ok(operator) => operator,
        Err(e) => return Ok(answer::<()>(Err(e), request_header)),
    };
    let fault = if ctx.faults.is_empty() {
        None
    } else {
        ctx.faults
            .check(&call_facts(function, operator, &fields, ctx))
    };
    if let Some(action) = fault.as_ref().filter(|a| a.close || a.error.is_some()) {
        let mut failed = answer::<()>(
            Err(match &action.error {
                Some((code, message)) => Es2Error::new(*code, message.clone()),
                None => Es2Error::new(status::EXECUTION_ERROR, "connection closed by a fault rule"),
            }),
            request_header,
        );
        failed.fault = fault;
        return Ok(failed);
    }
    let mut done = match function {
        Function::DownloadOrder => answer(
            download_order::handle(&fields, ctx, operator),
            request_header,
        ),
        Function::ConfirmOrder => answer(
            confirm_order::handle(&fields, ctx, operator),
            request_header,
        ),
        Function::CancelOrder => {
            answer(cancel_order::handle(&fields, ctx, operator), request_header)
        }
        Function::ReleaseProfile => answer(
            release_profile::handle(&fields, ctx, operator),
            request_header,
        ),
    };
    done.fault = fault;
    Ok(done)
}

/// What fault rules may match on: the request's own fields, completed from the order it names.
fn call_facts<'a>(
    function: Function,
    operator: &'a Operator,
    fields: &'a Fields<'a>,
    ctx: &Context<'a>,
) -> CallFacts<'a> {
    let iccid = fields.opt_iccid("iccid").ok().flatten().map(|i| i.key());
    let mut eid = fields.opt_eid("eid").ok().flatten();
    let mut profile_type: Option<&'a str> = fields.opt_str("profileType").ok().flatten();
    if let Some(profile) = iccid.and_then(|k| ctx.store.get(k)) {
        eid = eid.or(profile.eid);
        if profile_type.is_none() {
            profile_type = ctx
                .scenario
                .profile_type(&profile.profile_type)
                .map(|t| &*t.id);
        }
    }
    CallFacts {
        function,
        operator: &operator.id,
        iccid,
        eid,
        profile_type,
    }
}

/// The caller's identity: the certificate must map to an operator, and the
/// `functionRequesterIdentifier` must be one that operator may use.
fn authorise<'a>(header: &RequestHeader, ctx: &Context<'a>) -> Result<&'a Operator, Es2Error> {
    let operator = ctx.operator.ok_or_else(|| {
        Es2Error::new(
            status::REQUESTER_UNKNOWN,
            "the client certificate does not identify any operator of this SM-DP+",
        )
    })?;
    let requester = &header.function_requester_identifier;
    if !operator
        .requester_identifiers
        .iter()
        .any(|r| r == requester)
    {
        return Err(Es2Error::new(
            status::REQUESTER_NOT_ALLOWED,
            format!(
                "functionRequesterIdentifier {requester:?} is not one the operator {:?} may use",
                operator.id
            ),
        )
        .subject(requester));
    }
    Ok(operator)
}

fn answer<T: Serialize>(result: Outcome<T>, request_header: Option<RequestHeader>) -> Answer {
    let (status, error, output, effects, profile) = match result {
        Ok((out, updated)) => (
            ExecutionStatus::ExecutedSuccess,
            None,
            Some(out),
            updated.effects,
            Some(updated.profile),
        ),
        Err(e) => (ExecutionStatus::Failed, Some(e), None, Vec::new(), None),
    };
    let header = ResponseHeader {
        function_execution_status: FunctionExecutionStatus {
            status,
            status_code_data: error.as_ref().map(Into::into),
        },
    };
    Answer {
        body: wire::response_json(&header, output.as_ref()),
        status,
        error,
        request_header,
        effects,
        profile,
        fault: None,
    }
}

/// The body of a `Failed` answer for `error`, for refusals decided outside the functions.
pub fn refusal_answer(error: Es2Error) -> Vec<u8> {
    answer::<()>(Err(error), None).body
}

/// The profile belongs to the calling operator (`8.2.1 / 1.2 Not Allowed` otherwise).
fn check_owner(profile: &Profile, operator: &Operator) -> Result<(), Es2Error> {
    if profile.owner == operator.id {
        Ok(())
    } else {
        Err(Es2Error::new(
            status::ICCID_NOT_ALLOWED,
            "the profile belongs to another operator",
        )
        .subject(profile.iccid))
    }
}

/// Refuses a step whose SM-DS Event Registration the simulated SM-DS would not accept
/// (SGP.22 §3.6.1; codes from Table 27, also usable by ReleaseProfile through §5.2.6).
fn check_smds(effects: &[Effect], scenario: &Scenario) -> Result<(), Es2Error> {
    for effect in effects {
        if let Effect::SmdsRegisterEvent { address, .. } = effect {
            match scenario.smds_behaviour(address) {
                SmdsBehaviour::Register => {}
                SmdsBehaviour::Inaccessible => {
                    return Err(Es2Error::new(
                        status::SMDS_INACCESSIBLE,
                        format!("the SM-DS {address} is not reachable"),
                    )
                    .subject(address))
                }
                SmdsBehaviour::Fail => {
                    return Err(Es2Error::new(
                        status::SMDS_EXECUTION_ERROR,
                        format!("the SM-DS {address} refused the Event Registration"),
                    )
                    .subject(address))
                }
            }
        }
    }
    Ok(())
}

/// Maps the store's refusals that every function shares.
fn store_error(iccid: Iccid, e: UpdateError<Es2Error>) -> Es2Error {
    match e {
        UpdateError::UnknownIccid => Es2Error::new(
            status::ICCID_UNKNOWN,
            format!("ICCID {iccid} is unknown to the SM-DP+"),
        )
        .subject(iccid),
        UpdateError::Refused(e) => e,
        UpdateError::MatchingIdInUse(id) => Es2Error::new(
            status::MATCHING_ID_ALREADY_IN_USE,
            format!("MatchingID {id} is already used by another order"),
        )
        .subject(id),
    }
}
