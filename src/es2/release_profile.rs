//! ES2+.ReleaseProfile (SGP.22 §5.3.4, §6.5.2.4): allow the download of a confirmed order.

use super::status::{self, Es2Error};
use super::wire::Fields;
use super::{check_owner, check_smds, Context, Executed};
use crate::profile::machine::{transition, Event, Refusal};
use crate::scenario::Operator;

/// ReleaseProfile has no output data (SGP.22 §5.3.4).
pub(crate) type Response = ();

/// Runs ReleaseProfile. Releasing a Released profile succeeds and does nothing (§5.3.4 NOTE).
pub(crate) fn handle(f: &Fields<'_>, ctx: &Context<'_>, operator: &Operator) -> Executed<Response> {
    let iccid = f.iccid("iccid")?;
    let profile = ctx.commit(iccid, |p| {
        check_owner(p, operator)?;
        let step = transition(p, &Event::ReleaseProfile, ctx.scenario().rules(), ctx.now).map_err(
            |r| match r {
                Refusal::InvalidTransition { from, .. } => Es2Error::new(
                    status::ICCID_INVALID_TRANSITION,
                    format!(
                        "ICCID {iccid} cannot be released in state {from}: it needs \
                             DownloadOrder and ConfirmOrder with releaseFlag false first"
                    ),
                )
                .subject(iccid),
                other => Es2Error::new(status::EXECUTION_ERROR, other.to_string()).subject(iccid),
            },
        )?;
        check_smds(&step.effects, ctx, &step.next)?;
        Ok(step)
    })?;
    Ok(((), profile))
}
