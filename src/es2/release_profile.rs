//! ES2+.ReleaseProfile (SGP.22 §5.3.4, §6.5.2.4): allow the download of a confirmed order.

use super::event_registration::{check_smds, finish, register_ahead};
use super::status::{self, Es2Error};
use super::wire::Fields;
use super::{check_owner, Context, Executed};
use crate::profile::machine::{transition, Event, Refusal, Step};
use crate::profile::Profile;
use crate::scenario::Operator;

/// ReleaseProfile has no output data (SGP.22 §5.3.4).
pub(crate) type Response = ();

/// Runs ReleaseProfile. Releasing a Released profile succeeds and does nothing (§5.3.4 NOTE).
pub(crate) fn handle(f: &Fields<'_>, ctx: &Context<'_>, operator: &Operator) -> Executed<Response> {
    let iccid = f.iccid("iccid")?;
    let plan = |p: &Profile| -> Result<Step, Es2Error> {
        check_owner(p, operator)?;
        transition(p, &Event::ReleaseProfile, ctx.scenario().rules(), ctx.now).map_err(
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
        )
    };
    // A registration over the network is made before the commit, outside its locks.
    let ahead = register_ahead(ctx, iccid, plan)?;
    let result = ctx.commit(iccid, |p| {
        let step = plan(p)?;
        check_smds(&step.effects, ctx, &step.next, ahead.as_ref())?;
        Ok(step)
    });
    finish(ctx, ahead, result.is_ok());
    let profile = result?;
    Ok(((), profile))
}
