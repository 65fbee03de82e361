//! ES2+.CancelOrder (SGP.22 §5.3.3, §6.5.2.3): end a pending order and return the ICCID to the
//! inventory or retire it.

use super::status::{self, Es2Error};
use super::wire::Fields;
use super::{check_owner, Context, Executed};
use crate::ids::Iccid;
use crate::profile::machine::{transition, Event, FinalProfileStatus, Refusal};
use crate::scenario::Operator;

/// CancelOrder has no output data (SGP.22 §5.3.3).
pub(crate) type Response = ();

/// Runs CancelOrder.
pub(crate) fn handle(f: &Fields<'_>, ctx: &Context<'_>, operator: &Operator) -> Executed<Response> {
    let iccid = f.iccid("iccid")?;
    let eid = f.opt_eid("eid")?;
    let matching_id = f.opt_matching_id("matchingId")?;
    let final_status = match f.str("finalProfileStatusIndicator")? {
        "Available" => FinalProfileStatus::Available,
        "Unavailable" => FinalProfileStatus::Unavailable,
        other => {
            return Err(Es2Error::invalid(
                "finalProfileStatusIndicator",
                format!("{other:?} is neither \"Available\" nor \"Unavailable\" (Table 29)"),
            ))
        }
    };
    let event = Event::CancelOrder {
        eid,
        matching_id,
        final_status,
    };
    let profile = ctx.commit(iccid, |p| {
        check_owner(p, operator)?;
        transition(p, &event, ctx.scenario().rules(), ctx.now).map_err(|r| refusal(iccid, r))
    })?;
    Ok(((), profile))
}

fn refusal(iccid: Iccid, r: Refusal) -> Es2Error {
    let text = r.to_string();
    match r {
        Refusal::AlreadyDownloaded { .. } => {
            Es2Error::new(status::ICCID_ALREADY_IN_USE, text).subject(iccid)
        }
        Refusal::InvalidTransition { from, .. } => Es2Error::new(
            status::ICCID_INVALID_TRANSITION,
            format!("ICCID {iccid} has no pending order to cancel (state {from})"),
        )
        .subject(iccid),
        // Table 30 puts EID mismatches under subject 8.2.1, unlike ConfirmOrder's 8.1.1.
        Refusal::EidMismatch { .. } => {
            Es2Error::new(status::ICCID_INVALID_ASSOCIATION, text).subject(iccid)
        }
        Refusal::MatchingIdMismatch { given, .. } => {
            Es2Error::new(status::MATCHING_ID_INVALID_ASSOCIATION, text).subject(given.as_str())
        }
        Refusal::AssociatedIdMissing { field } => {
            Es2Error::new(status::CONDITIONAL_ELEMENT_MISSING, text).subject(field)
        }
        other => Es2Error::new(status::EXECUTION_ERROR, other.to_string()).subject(iccid),
    }
}
