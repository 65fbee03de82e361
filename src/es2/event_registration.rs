//! The SM-DS Event Registration of ConfirmOrder and ReleaseProfile (SGP.22 §3.6.1, §5.3.2,
//! §5.3.4): where it goes ([`crate::app::App::smds_route`]) and when a failure fails the call.
//!
//! A registration that goes over the network (at an external SM-DS over ES12, or cascaded to
//! the root SM-DS the mock's SM-DS has) is made before the order's commit, outside every lock
//! ([`register_ahead`]), and undone when the commit then fails ([`finish`]); the commit checks
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

/// A registration made ahead of its order's commit, under a claim that keeps other calls off
/// the same event meanwhile.
#[derive(Debug)]
pub(super) struct Ahead {
    address: Arc<str>,
    event_id: String,
    eid: Eid,
    /// The claim's token.
    token: u64,
    /// At the mock's own SM-DS: its cascade to the root. At an external SM-DS: none.
    cascade: Option<Forwarded>,
}

/// The registration the step `plan` gives for the profile as it is now makes, when it goes
/// over the network: made now (the call fails with its code when it fails, Table 27). A
/// profile that is missing or refuses the step registers nothing: the commit will say why.
/// Another call making the same registration meanwhile (a retry that did not wait) is refused:
/// one registration per event.
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
        let event_id = event_id.as_str();
        let root = match ctx.app.smds_route(ctx.world, address) {
            SmdsRoute::Es12 => None,
            SmdsRoute::Own(smds) => match ctx.scenario().smds_root() {
                Some(root) => {
                    // What the mock's SM-DS would refuse is refused before anything is cascaded.
                    refused_by_own(ctx, address, eid, &smds.caller, event_id)?;
                    Some(root)
                }
                None => return Ok(None),
            },
            SmdsRoute::Simulated(_) => continue,
        };
        let token = ctx.app.claim_registration(eid, event_id).ok_or_else(|| {
            Es2Error::new(
                status::EXECUTION_ERROR,
                "another call is registering this order's event at the SM-DS: try again once it has answered",
            )
        })?;
        let made = match root {
            None => external(ctx, address, eid, event_id).map(|()| None),
            // §3.6.1: the SM-DP+ sets forwardingIndicator, so an Alternative SM-DS cascades.
            Some(root) => ctx
                .app
                .cascade_register(root, eid)
                .map(Some)
                .map_err(|(code, message)| Es2Error::new(code, message).subject(address)),
        };
        let cascade = match made {
            Ok(cascade) => cascade,
            Err(e) => {
                ctx.app.release_claim(eid, event_id, token);
                return Err(e);
            }
        };
        if let Some(forwarded) = &cascade {
            ctx.app
                .claimed_cascade(eid, event_id, token, forwarded.clone());
        }
        return Ok(Some(Ahead {
            address: address.clone(),
            event_id: event_id.to_owned(),
            eid,
            token,
            cascade,
        }));
    }
    Ok(None)
}

/// After the commit: a registration made ahead of one that failed is deleted where it was
/// made, before the call answers (a retry then finds the SM-DS as it was); the claim ends.
pub(super) fn finish(ctx: &Context<'_>, ahead: Option<Ahead>, committed: bool) {
    let Some(ahead) = ahead else {
        return;
    };
    if !committed {
        match &ahead.cascade {
            Some(forwarded) => {
                if let Err((code, message)) = ctx.app.cascade_delete(forwarded, ahead.eid) {
                    tracing::warn!(%code, %message, "undoing a cascaded registration failed: the root keeps it");
                }
            }
            None => ctx
                .app
                .delete_at_external_now(&ahead.address, ahead.eid, &ahead.event_id),
        }
    }
    // A committed registration at the mock's own SM-DS took its claim already.
    ctx.app
        .release_claim(ahead.eid, &ahead.event_id, ahead.token);
}

/// In the commit: refuses a step whose Event Registration fails, at the mock's own SM-DS (a
/// duplicated EventID, no room for the EID's records) or a simulated one (`inaccessible`,
/// `fail`); one that goes over the network must be the one made `ahead`, for the same EID,
/// under a claim still this call's (the order changed meanwhile otherwise: the caller may try
/// again). Codes from Table 27 (ReleaseProfile's table has none; it uses the same, §5.2.6).
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
            registered = Some((address.clone(), event_id.as_str().to_owned(), eid));
        }
    }
    let made = ahead
        .filter(|a| ctx.app.holds_claim(a.eid, &a.event_id, a.token))
        .map(|a| (a.address.clone(), a.event_id.clone(), a.eid));
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
        Es12Outcome::Unreachable(why) => {
            // No answer is not no registration (a timeout): deleted in case it was stored.
            ctx.app.delete_at_external(address, eid, event_id);
            Err(Es2Error::new(
                status::SMDS_INACCESSIBLE,
                format!("the SM-DS {address} is not reachable over ES12: {why}"),
            )
            .subject(address))
        }
    }
}
