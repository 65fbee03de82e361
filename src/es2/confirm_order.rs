//! ES2+.ConfirmOrder (SGP.22 §5.3.2, §6.5.2.2): fix the MatchingID, EID, Confirmation Code and
//! SM-DS address of a reserved order, and release it now or later.

use std::sync::Arc;

use serde::Serialize;

use super::event_registration::{check_smds, finish, register_ahead};
use super::status::{self, Es2Error};
use super::wire::Fields;
use super::{check_owner, store_error, Context, Executed};
use crate::ids::{check_server_address, Eid, Iccid};
use crate::profile::machine::{transition, Confirmation, Event, Refusal, Step};
use crate::profile::{OrderMatchingId, Profile};
use crate::scenario::Operator;
use crate::store::UpdateError;

/// How often a generated MatchingID is redrawn when it collides with an existing one.
const GENERATION_ATTEMPTS: usize = 8;

/// Output data (Table 26).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Response {
    /// The EID bound to the order, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eid: Option<Eid>,
    /// The MatchingID: the operator's, or the generated one (`""` for Default SM-DP+ orders).
    pub matching_id: String,
}

/// Runs ConfirmOrder.
pub(crate) fn handle(f: &Fields<'_>, ctx: &Context<'_>, operator: &Operator) -> Executed<Response> {
    let iccid = f.iccid("iccid")?;
    let eid = f.opt_eid("eid")?;
    let supplied = f.opt_matching_id("matchingId")?;
    let confirmation_code_hash = match f.opt_str("confirmationCode")? {
        None => None,
        Some("") => return Err(Es2Error::invalid("confirmationCode", "must not be empty")),
        Some(code) => Some(crate::ids::sha256(code.as_bytes())),
    };
    let smds_address: Option<Arc<str>> = f.opt_str("smdsAddress")?.map(Into::into);
    let release = f.bool("releaseFlag")?;

    let attempts = if supplied.is_some() {
        1
    } else {
        GENERATION_ATTEMPTS
    };
    let mut last_error = None;
    for _ in 0..attempts {
        let matching_id = supplied
            .clone()
            .unwrap_or_else(|| OrderMatchingId::Id(ctx.world.matching_ids.next_id()));
        let event = Event::ConfirmOrder(Confirmation {
            eid,
            matching_id: matching_id.clone(),
            confirmation_code_hash,
            smds_address: smds_address.clone(),
            release,
        });
        let plan = |p: &Profile| -> Result<Step, Es2Error> {
            check_owner(p, operator)?;
            // Table 27: "the smdsAddress is invalid or not reachable", after existence and
            // ownership like every business check.
            if let Some(address) = &smds_address {
                check_server_address(address).map_err(|e| {
                    Es2Error::new(status::SMDS_INACCESSIBLE, e.to_string()).subject(address)
                })?;
            }
            transition(p, &event, ctx.scenario().rules(), ctx.now).map_err(|r| refusal(p, iccid, r))
        };
        // A registration over the network is made before the commit, outside its locks.
        let ahead = register_ahead(ctx, iccid, plan)?;
        let result = ctx.try_commit(iccid, |p| {
            let step = plan(p)?;
            check_smds(&step.effects, ctx, &step.next, ahead.as_ref())?;
            Ok(step)
        });
        finish(ctx, ahead, result.is_ok());
        match result {
            Ok(profile) => {
                let response = Response {
                    eid: profile.eid,
                    matching_id: matching_id.as_str().to_owned(),
                };
                return Ok((response, profile));
            }
            // A generated MatchingID that happens to collide is drawn again.
            Err(e @ UpdateError::MatchingIdInUse(_)) if supplied.is_none() => {
                last_error = Some(store_error(iccid, e));
            }
            Err(e) => return Err(store_error(iccid, e)),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        Es2Error::new(
            status::EXECUTION_ERROR,
            "no unique MatchingID could be generated",
        )
    }))
}

fn refusal(p: &Profile, iccid: Iccid, r: Refusal) -> Es2Error {
    match r {
        Refusal::EidMismatch { given, .. } => {
            Es2Error::new(status::EID_INVALID_ASSOCIATION, r.to_string()).subject(given)
        }
        Refusal::EidRequired { .. } => {
            Es2Error::new(status::EID_MANDATORY_ELEMENT_MISSING, r.to_string()).subject("eid")
        }
        Refusal::EmptyMatchingIdWithSmds => Es2Error::invalid("matchingId", r),
        Refusal::InvalidTransition { from, .. } => Es2Error::new(
            status::ICCID_INVALID_TRANSITION,
            format!(
                "ICCID {iccid} cannot be confirmed in state {from}: it needs a DownloadOrder \
                 and no ConfirmOrder yet"
            ),
        )
        .subject(iccid),
        other => Es2Error::new(status::EXECUTION_ERROR, other.to_string()).subject(p.iccid),
    }
}
