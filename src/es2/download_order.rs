//! ES2+.DownloadOrder (SGP.22 §5.3.1, §6.5.2.1): reserve a profile, by ICCID or by profile
//! type, optionally linked to an EID.

use serde::Serialize;

use super::status::{self, Es2Error};
use super::wire::Fields;
use super::{check_owner, Context, Executed};
use crate::ids::Iccid;
use crate::profile::machine::{transition, Event, Refusal, Step};
use crate::profile::Profile;
use crate::scenario::Operator;
use crate::store::AllocateError;

/// Output data (Table 23).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Response {
    /// The reserved ICCID: the caller's own form if it gave one (Table 23: "SHALL be the same").
    pub iccid: Iccid,
}

/// Runs DownloadOrder.
pub(crate) fn handle(f: &Fields<'_>, ctx: &Context<'_>, operator: &Operator) -> Executed<Response> {
    let eid = f.opt_eid("eid")?;
    let iccid = f.opt_iccid("iccid")?;
    let profile_type = f.opt_str("profileType")?;
    let event = Event::DownloadOrder { eid };
    let reserve = |p: &Profile| -> Result<Step, Es2Error> {
        transition(p, &event, ctx.scenario().rules(), ctx.now).map_err(|r| refusal(p, r))
    };

    // Table 24 codes about the profile type come first when one is named.
    if let Some(name) = profile_type {
        let Some(ty) = ctx.scenario().profile_type(name) else {
            return Err(Es2Error::new(
                status::PROFILE_TYPE_UNKNOWN,
                format!("profile type {name:?} is unknown to the SM-DP+"),
            )
            .subject(name));
        };
        if ty.owner != operator.id {
            return Err(Es2Error::new(
                status::PROFILE_TYPE_NOT_ALLOWED,
                format!("profile type {name:?} belongs to another operator"),
            )
            .subject(name));
        }
    }

    match (iccid, profile_type) {
        (Some(iccid), _) => {
            let profile = ctx.commit(iccid, |p| {
                    check_owner(p, operator)?;
                    if let Some(name) = profile_type {
                        if *p.profile_type != *name {
                            return Err(Es2Error::new(
                                status::PROFILE_TYPE_REFUSED,
                                format!(
                                    "profile type {name:?} does not match the type {:?} of ICCID {iccid}",
                                    p.profile_type
                                ),
                            )
                            .subject(name));
                        }
                    }
                    reserve(p)
                })?;
            Ok((Response { iccid }, profile))
        }
        (None, Some(name)) => match ctx.commit_allocation(name, reserve) {
            Ok(profile) => Ok((
                Response {
                    iccid: profile.iccid,
                },
                profile,
            )),
            Err(AllocateError::Exhausted) => Err(Es2Error::new(
                status::PROFILE_TYPE_UNAVAILABLE,
                format!("no more profiles of type {name:?} are available"),
            )
            .subject(name)),
            Err(AllocateError::Refused(e)) => Err(e),
        },
        (None, None) => Err(Es2Error::new(
            status::CONDITIONAL_ELEMENT_MISSING,
            "one of iccid and profileType must be given (SGP.22 §5.3.1)",
        )
        .subject("iccid")),
    }
}

fn refusal(p: &Profile, r: Refusal) -> Es2Error {
    match r {
        Refusal::NotAvailable { state } => Es2Error::new(
            status::ICCID_ALREADY_IN_USE,
            format!("ICCID {} is not available (state {state})", p.iccid),
        )
        .subject(p.iccid),
        other => Es2Error::new(status::EXECUTION_ERROR, other.to_string()).subject(p.iccid),
    }
}
