//! The SM-DS Event Registration of ConfirmOrder and ReleaseProfile (SGP.22 §3.6.1, §5.3.2,
//! §5.3.4): where it goes ([`crate::app::App::smds_route`]) and when a failure fails the call.
//!
//! A registration that goes over the network (at an external SM-DS over ES12, or cascaded to
//! the root SM-DS the mock's SM-DS has) is made before the order's commit, outside every lock
//! ([`register_ahead`]), and undone when the commit then fails ([`undo`]); the commit checks
//! that its step registers just that ([`check_smds`]). A registration at the mock's own SM-DS
//! is checked in the commit and stored by its effect, with the order (`app/smds_events.rs`).

use std::sync::Arc;

use super::status::{self, Es2Error};
use super::Context;
use crate::app::SmdsRoute;
use crate::es12_client::Es12Outcome;
use crate::ids::{Eid, Iccid};
use crate::profile::machine::{Effect, Step};
use crate::profile::Profile;
use crate::scenario::SmdsBehaviour;
use crate::store::events::Forwarded;

/// A registration made ahead of its order's commit.
#[derive(Debug)]
pub(super) struct Ahead {
    address: Arc<str>,
    event_id: String,
    eid: Eid,
    /// At an external SM-DS, or at the mock's own with its cascade to the root.
    cascade: Option<Forwarded>,
}

/// The registration the step `plan` gives for the profile as it is now makes, when it goes
/// over the network: made now (ConfirmOrder fails with its code when it fails, Table 27). A
/// profile that is missing or refuses the step registers nothing: the commit will say why.
pub(super) fn register_ahead(
    ctx: &Context<'_>,
    iccid: Iccid,
    plan: impl FnOnce(&Profile) -> Result<Step, Es2Error>,
) -> Result<Option<Ahead>, Es2Error> {
    let Some(step) = ctx.profile(iccid.key()).and_then(|p| plan(&p).ok()) else {
        return Ok(None);
    };
    let Some(eid) = step.next.eid else {
        return Ok(None);
    };
    for effect in &step.effects {
        let Effect::SmdsRegisterEvent { address, event_id } = effect else {
            continue;
        };
        match ctx.app.smds_route(ctx.world, address) {
            SmdsRoute::Es12 => {
                external(ctx, address, eid, event_id.as_str())?;
                return Ok(Some(Ahead {
                    address: address.clone(),
                    event_id: event_id.as_str().to_owned(),
                    eid,
                    cascade: None,
                }));
            }
            SmdsRoute::Own(smds) => {
                let Some(root) = ctx.scenario().smds_root() else {
                    return Ok(None);
                };
                // What the mock's SM-DS would refuse is refused before anything is cascaded.
                refused_by_own(ctx, address, eid, &smds.caller, event_id.as_str())?;
                // §3.6.1: the SM-DP+ sets forwardingIndicator, so an Alternative SM-DS cascades.
                let forwarded = ctx
                    .app
                    .cascade_register(root, eid)
                    .map_err(|(code, message)| Es2Error::new(code, message).subject(address))?;
                ctx.app
                    .stash_forwarded(eid, event_id.as_str(), forwarded.clone());
                return Ok(Some(Ahead {
                    address: address.clone(),
                    event_id: event_id.as_str().to_owned(),
                    eid,
                    cascade: Some(forwarded),
                }));
            }
            SmdsRoute::Simulated(_) => {}
        }
    }
    Ok(None)
}

/// Undoes a registration made ahead of a commit that failed: deleted where it was made,
/// without waiting (the call has failed whatever the SM-DS answers).
pub(super) fn undo(ctx: &Context<'_>, ahead: Ahead) {
    match ahead.cascade {
        Some(forwarded) => {
            ctx.app.take_forwarded(ahead.eid, &ahead.event_id);
            ctx.app.cascade_delete_later(forwarded, ahead.eid);
        }
        None => ctx
            .app
            .delete_at_external(&ahead.address, ahead.eid, &ahead.event_id),
    }
}

/// In the commit: refuses a step whose Event Registration fails, at the mock's own SM-DS (a
/// duplicated EventID, no room for the EID's records) or a simulated one (`inaccessible`,
/// `fail`); one that goes over the network must be the one made `ahead` (the order changed
/// meanwhile otherwise: the caller may try again). Codes from Table 27 (ReleaseProfile's table
/// has none; it uses the same, §5.2.6).
pub(super) fn check_smds(
    effects: &[Effect],
    ctx: &Context<'_>,
    profile: &Profile,
    ahead: Option<&Ahead>,
) -> Result<(), Es2Error> {
    let mut registered = None;
    for effect in effects {
        let (Effect::SmdsRegisterEvent { address, event_id }, Some(eid)) = (effect, profile.eid)
        else {
            continue;
        };
        let refused = |code, why: String| Err(Es2Error::new(code, why).subject(address));
        let route = ctx.app.smds_route(ctx.world, address);
        let over_network = match route {
            SmdsRoute::Own(smds) => {
                refused_by_own(ctx, address, eid, &smds.caller, event_id.as_str())?;
                ctx.scenario().smds_root().is_some()
            }
            SmdsRoute::Es12 => true,
            SmdsRoute::Simulated(SmdsBehaviour::Inaccessible) => {
                return refused(
                    status::SMDS_INACCESSIBLE,
                    format!("the SM-DS {address} is not reachable"),
                )
            }
            SmdsRoute::Simulated(SmdsBehaviour::Fail) => {
                return refused(
                    status::SMDS_EXECUTION_ERROR,
                    format!("the SM-DS {address} refused the Event Registration"),
                )
            }
            SmdsRoute::Simulated(_) => false,
        };
        if over_network {
            registered = Some((address.clone(), event_id.as_str().to_owned()));
        }
    }
    let made = ahead.map(|a| (a.address.clone(), a.event_id.clone()));
    if registered != made {
        return Err(Es2Error::new(
            status::EXECUTION_ERROR,
            "the order changed while its event was being registered at the SM-DS: try again",
        ));
    }
    Ok(())
}

/// What the mock's own SM-DS would refuse of this registration.
fn refused_by_own(
    ctx: &Context<'_>,
    address: &str,
    eid: Eid,
    caller: &str,
    event_id: &str,
) -> Result<(), Es2Error> {
    ctx.world.events.check(eid, caller, event_id).map_err(|e| {
        Es2Error::new(
            status::SMDS_EXECUTION_ERROR,
            format!("the SM-DS {address} refused the Event Registration: {e}"),
        )
        .subject(address)
    })
}

/// Event Registration at an external SM-DS over ES12 (behaviour `es12`): its failure is the
/// call's (Table 27: `8.9 / 5.1` not reachable, `8.9 / 4.2` the SM-DS raised an error).
fn external(ctx: &Context<'_>, address: &str, eid: Eid, event_id: &str) -> Result<(), Es2Error> {
    match ctx
        .app
        .register_at_external(ctx.world, address, eid, event_id)
    {
        Es12Outcome::Done => Ok(()),
        Es12Outcome::Failed(code, message) => Err(Es2Error::new(
            status::SMDS_EXECUTION_ERROR,
            format!(
                "the SM-DS {address} refused the Event Registration: {}{message}",
                code.map(|c| format!("{c} ")).unwrap_or_default()
            ),
        )
        .subject(address)),
        Es12Outcome::Unreachable(why) => Err(Es2Error::new(
            status::SMDS_INACCESSIBLE,
            format!("the SM-DS {address} is not reachable over ES12: {why}"),
        )
        .subject(address)),
    }
}
