//! ES2+ (SGP.22 §5.3, §6.5): the operator-facing functions of the SM-DP+, as a transport-free
//! engine.
//!
//! Its public part is [`Function`]. Inside, `engine::Es2` is what the HTTP layer calls (an
//! `exchange::Engine`): it grades the request, identifies and authorises the caller, applies
//! fault rules, runs the function, commits its transition (the effects follow through
//! `App::commit`) and journals the call. Each function lives in its own file with its output
//! type and one `handle`; `wire` is the JSON envelope and `status` the one place a failure
//! becomes subject and reason codes.

pub(crate) mod cancel_order;
pub(crate) mod confirm_order;
pub(crate) mod download_order;
mod engine;
mod event_registration;
pub(crate) mod release_profile;
pub(crate) mod status;
pub(crate) mod wire;

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::app::{App, World};
use crate::caller::Caller;
use crate::fault::{CallFacts, FaultAction};
use crate::ids::{Iccid, IccidKey};
use crate::json::Json;
use crate::profile::machine::Step;
use crate::profile::Profile;
use crate::scenario::{Operator, Scenario};
use crate::sgp22::ExecutionStatus;
use crate::sgp22::ResponseHeader;
use crate::store::{AllocateError, UpdateError};
use status::Es2Error;
use wire::{Fields, RequestHeader};

pub use crate::sgp22::{Function, PATH_PREFIX};
pub(crate) use engine::{not_found, Es2};

/// What a function returns: its output and the profile as its transition committed it.
type Executed<T> = Result<(T, Profile), Es2Error>;

/// Everything a function needs to run.
#[derive(Debug)]
pub(crate) struct Context<'a> {
    /// The application, for the commit path.
    pub(crate) app: &'a App,
    /// The world the call runs in: one for the whole call, even if a scenario is loaded
    /// meanwhile.
    pub(crate) world: &'a Arc<World>,
    /// The time of the request.
    pub(crate) now: OffsetDateTime,
}

impl Context<'_> {
    fn scenario(&self) -> &Scenario {
        &self.world.scenario
    }

    /// Commits the step `check` gives for the profile with this ICCID ([`App::commit`]).
    fn commit(
        &self,
        iccid: Iccid,
        check: impl FnOnce(&Profile) -> Result<Step, Es2Error>,
    ) -> Result<Profile, Es2Error> {
        self.try_commit(iccid, check)
            .map_err(|e| store_error(iccid, e))
    }

    /// [`Context::commit`] with the store's refusal as it is (to retry a MatchingID).
    fn try_commit(
        &self,
        iccid: Iccid,
        check: impl FnOnce(&Profile) -> Result<Step, Es2Error>,
    ) -> Result<Profile, UpdateError<Es2Error>> {
        self.app.commit(self.world, iccid.key(), check)
    }

    /// Commits the step `check` gives for an Available profile of `profile_type`.
    fn commit_allocation(
        &self,
        profile_type: &str,
        check: impl Fn(&Profile) -> Result<Step, Es2Error>,
    ) -> Result<Profile, AllocateError<Es2Error>> {
        self.app.commit_allocation(self.world, profile_type, check)
    }

    /// The profile with this ICCID as it is now.
    fn profile(&self, key: IccidKey) -> Option<Profile> {
        self.world.store.get(key)
    }
}

/// The answer to an ES2+ request that had a JSON object as body.
#[derive(Debug, Clone)]
pub(crate) struct FunctionAnswer {
    /// The response body.
    pub(crate) body: Vec<u8>,
    /// The outcome.
    pub(crate) status: ExecutionStatus,
    /// Why it failed, when it did.
    pub(crate) error: Option<Es2Error>,
    /// The request header, when it was well-formed.
    pub(crate) request_header: Option<RequestHeader>,
    /// The profile after the committed transition.
    pub(crate) profile: Option<Profile>,
    /// The fault rule that fired, if any: its delay and `close` are the transport's to apply.
    pub(crate) fault: Option<FaultAction>,
}

/// A body that is not a JSON object: an HTTP-level error, not an ES2+ answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum BodyError {
    /// Not JSON at all.
    #[error("the body is not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but not an object.
    #[error("the body must be one JSON object")]
    NotObject,
}

/// Runs `function` for `operator` (the caller's, if any) on a request body parsed as JSON.
fn run(
    function: Function,
    parsed: Result<&Json<'_>, &serde_json::Error>,
    caller: &Caller<'_>,
    ctx: &Context<'_>,
) -> Result<FunctionAnswer, BodyError> {
    let value = parsed.map_err(|e| BodyError::NotJson(e.to_string()))?;
    let Json::Object(map) = value else {
        return Err(BodyError::NotObject);
    };
    let fields = Fields::new(map);
    let header = fields.header();
    let authorised = match &header {
        Ok(h) => authorise(h, caller),
        Err(e) => Err(e.clone()),
    };
    let request_header = header.ok();
    let operator = match authorised {
        Ok(operator) => operator,
        Err(e) => return Ok(answer::<()>(Err(e), request_header)),
    };
    let faults = &ctx.world.faults;
    let fault = if faults.is_empty() {
        None
    } else {
        faults.check(&call_facts(function, operator, &fields, ctx))
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
    if let Some(profile) = iccid.and_then(|k| ctx.profile(k)) {
        eid = eid.or(profile.eid);
        if profile_type.is_none() {
            profile_type = ctx
                .world
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
/// `functionRequesterIdentifier` must be one that operator may use (SGP.22 §6.1.1, §6.5.1.3).
fn authorise<'a>(header: &RequestHeader, caller: &Caller<'a>) -> Result<&'a Operator, Es2Error> {
    let operator = caller
        .operator
        .ok_or_else(|| Es2Error::new(status::REQUESTER_UNKNOWN, caller.unidentified()))?;
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

fn answer<T: Serialize>(
    result: Executed<T>,
    request_header: Option<RequestHeader>,
) -> FunctionAnswer {
    let (status, error, output, profile) = match result {
        Ok((out, profile)) => (
            ExecutionStatus::ExecutedSuccess,
            None,
            Some(out),
            Some(profile),
        ),
        Err(e) => (ExecutionStatus::Failed, Some(e), None, None),
    };
    let header = match &error {
        Some(e) => ResponseHeader::failed(e.into()),
        None => ResponseHeader::of(status),
    };
    FunctionAnswer {
        body: crate::sgp22::response_json(&header, output.as_ref()),
        status,
        error,
        request_header,
        profile,
        fault: None,
    }
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

/// ES2+ in the call pipeline: its journal protocol and the section of its JSON binding.
impl crate::pipeline::ProtocolFunction for Function {
    const PROTOCOL: crate::journal::Protocol = crate::journal::Protocol::Es2;
    const BINDING: &'static str = "SGP.22 §6.2";
    fn name(self) -> &'static str {
        Function::name(self)
    }
}
