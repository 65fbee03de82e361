//! HandleNotification (SGP.22 §5.6.4, §3.1.3.3 steps 7-10, §3.5) and CancelSession (§5.6.5,
//! §3.1.3.1 steps 4-7).
//!
//! HandleNotification is acknowledged with 204 whenever its `pendingNotification` is a
//! PendingNotification (§6.5.1.4: notifications have no status codes); what the mock made of
//! it, or why it ignored it, goes to the journal. An LPA that got anything but 2xx would retry
//! forever.

use serde_json::Map;

use super::authentication::{commit, commit_reported};
use super::session::TransactionId;
use super::{malformed, unknown_session, Context, Failure, Outcome};
use crate::profile::machine::{
    CancelSessionReason, DeviceEvent, Event, InstallResult, LocalOperation,
};
use crate::sgp22;
use smdpp_rsp::es10b::{
    eid_from_bytes, CancelSessionResponse, FinalResult, OtherSignedNotification,
    PendingNotification, ProfileInstallationResult,
};

/// HandleNotification.
pub(super) fn handle(ctx: &Context<'_>) -> Outcome {
    let raw = match ctx.binary("pendingNotification") {
        Ok(raw) => raw,
        Err(f) => return Outcome::bad_request(f.message),
    };
    match PendingNotification::parse(&raw) {
        Ok(PendingNotification::InstallationResult(pir)) => installation_result(ctx, &pir, &raw),
        Ok(PendingNotification::Other(other)) => other_notification(ctx, &other),
        Err(e) => Outcome::bad_request(format!(
            "pendingNotification is not a PendingNotification: {e}"
        )),
    }
}

/// The ProfileInstallationResult: verified with the key of the eUICC the package was bound to,
/// then the order is Installed or in Error (point 4 with the real `finalResult`).
fn installation_result(
    ctx: &Context<'_>,
    pir: &ProfileInstallationResult<'_>,
    raw: &[u8],
) -> Outcome {
    let Some(tid) = TransactionId::from_bytes(pir.transaction_id) else {
        return Outcome::acknowledged(Some(
            "ignored: the transactionId is not 1 to 16 bytes".into(),
        ));
    };
    // The world's: a reset or a new scenario since the download dropped it.
    let awaiting = &ctx.world.awaiting;
    let reported_already = || {
        Outcome::acknowledged(Some(
            "ignored: no Bound Profile Package awaits an installation result for this transactionId (unknown, or reported already)".into(),
        ))
    };
    // Checked on a copy: a forged result leaves the entry where it is for the genuine one.
    let Some(delivered) = awaiting.get(&tid) else {
        return reported_already();
    };
    let note = |outcome: Outcome| outcome.with_order(Some(&delivered.order));
    if !delivered.euicc.verifies(pir.data_raw, pir.signature) {
        return note(Outcome::acknowledged(Some(
            "ignored: euiccSignPIR does not verify".into(),
        )));
    }
    if pir.smdp_oid.is_some_and(|oid| oid != ctx.es9.smdp_oid()) {
        return note(Outcome::acknowledged(Some(
            "ignored: the result names another SM-DP+ OID".into(),
        )));
    }
    // Taken: of two results at once, one applies.
    if awaiting.take(&tid).is_none() {
        return reported_already();
    }
    let result = match &pir.result {
        FinalResult::Success { .. } => InstallResult::Success,
        FinalResult::Error {
            bpp_command_id,
            error_reason,
        } => InstallResult::Failure {
            bpp_command_id: *bpp_command_id,
            error_reason: *error_reason,
        },
    };
    let event = Event::Session {
        eid: delivered.euicc.eid,
        event: DeviceEvent::InstallResult(result),
    };
    let reported = crate::notify::compose::DeviceResult {
        installation_result: raw.to_vec(),
        final_result: pir.final_result_raw.to_vec(),
    };
    // Without smdpOid (OPTIONAL after v2.2): the transactionId already names the session.
    let without_oid = if pir.smdp_oid.is_none() {
        " (the result has no smdpOid)"
    } else {
        ""
    };
    let mut outcome = match commit_reported(ctx, &delivered.order, event, Some(&reported)) {
        Ok(_) => Outcome::acknowledged(Some(match result {
            InstallResult::Success => format!("installed{without_oid}"),
            InstallResult::Failure {
                bpp_command_id,
                error_reason,
            } => {
                format!("installation failed: bppCommandId {bpp_command_id}, errorReason {error_reason}{without_oid}")
            }
        })),
        Err(failure) => Outcome::acknowledged(Some(format!("not applied: {}", failure.message))),
    };
    outcome.eid = Some(delivered.euicc.eid);
    note(outcome)
}

/// An other notification (enable, disable, delete, §3.5): its eUICC's chain and signature
/// verified, repeats ignored, then the order's local state follows (the local points).
fn other_notification(ctx: &Context<'_>, n: &OtherSignedNotification<'_>) -> Outcome {
    let verified =
        match ctx
            .es9
            .chains
            .verify(n.euicc_certificate, n.eum_certificate, None, ctx.now())
        {
            Ok(v) => v,
            Err(e) => return Outcome::acknowledged(Some(format!("ignored: {e}"))),
        };
    if !verified.certificate.verifies(n.tbs_raw, n.signature) {
        return Outcome::acknowledged(Some(
            "ignored: euiccNotificationSignature does not verify".into(),
        ));
    }
    let Some(eid) = eid_from_bytes(&verified.eid) else {
        return Outcome::acknowledged(Some("ignored: the eUICC certificate names no EID".into()));
    };
    let operation = match n.metadata.event {
        1 => LocalOperation::Enable,
        2 => LocalOperation::Disable,
        3 => LocalOperation::Delete,
        _ => {
            return Outcome::acknowledged(Some(
                "an install notification: the installation result already told".into(),
            ));
        }
    };
    let Some(iccid) = n.metadata.iccid else {
        return Outcome::acknowledged(Some("ignored: the notification names no ICCID".into()));
    };
    let outcome = |note: String| {
        let mut o = Outcome::acknowledged(Some(note));
        o.iccid = Some(iccid);
        o.eid = Some(eid);
        o
    };
    if !ctx.es9.first_time(verified.eid, n.metadata.seq) {
        return outcome(format!(
            "ignored: notification {} of this eUICC was handled already",
            n.metadata.seq
        ));
    }
    let world = ctx.world;
    let Some(profile) = world.store.get(iccid.key()) else {
        return outcome("ignored: the ICCID is not in this SM-DP+'s inventory".into());
    };
    let owner = profile.owner.clone();
    let app = &ctx.es9.app;
    let now = app.clock.now();
    let event = Event::Device {
        eid,
        event: DeviceEvent::Local(operation),
    };
    let result = app.commit(world, iccid.key(), |p| {
        crate::profile::machine::transition(p, &event, world.scenario.rules(), now)
    });
    let mut o = match result {
        Ok(_) => outcome(format!(
            "{} on the eUICC",
            DeviceEvent::Local(operation).name()
        )),
        Err(e) => outcome(format!("not applied: {e}")),
    };
    o.owner = Some(owner);
    o
}

/// CancelSession: the eUICC's signed cancellation of the session, and what its reason makes of
/// the order (§3.1.3.1 steps 4-7: postponed and timeout leave it; the others end it in Error).
pub(super) fn cancel_session(ctx: &Context<'_>) -> Outcome {
    let tid = match ctx.transaction_id() {
        Ok(tid) => tid,
        Err(f) => return Outcome::failed(f),
    };
    let sessions = &ctx.es9.sessions;
    let current = |w: &std::sync::Arc<crate::app::World>| ctx.es9.app.is_current(w);
    if let Some(session) = sessions.get(&tid, current) {
        let result = cancel_inner(
            ctx,
            tid,
            session.euicc.as_ref(),
            session.order.as_ref(),
            || {
                sessions.end(&tid);
                true
            },
        )
        .map(|()| Map::new());
        return Outcome::of(result).of_session(
            session.euicc.as_ref().map(|e| e.eid),
            session.order.as_ref(),
        );
    }
    // After GetBoundProfilePackage (§3.1.3.1: a metadata mismatch, an error while loading the
    // package, an End User who says no then): the session waits for its installation result,
    // and a cancellation takes its place.
    if let Some(delivered) = ctx.world.awaiting.get(&tid) {
        // Taken once verified, before its reason applies: of two cancellations (or a result and
        // a cancellation) at once, one applies.
        let result = cancel_inner(
            ctx,
            tid,
            Some(&delivered.euicc),
            Some(&delivered.order),
            || ctx.world.awaiting.take(&tid).is_some(),
        )
        .map(|()| Map::new());
        return Outcome::of(result).of_session(Some(delivered.euicc.eid), Some(&delivered.order));
    }
    Outcome::failed(unknown_session("no session in progress"))
}

/// Verifies a CancelSession for the session of `euicc` and `order` (§3.1.3.1 step 5) and applies
/// its reason (steps 6 and 7).
///
/// `claim` ends the session once the cancellation is verified; `false` when another call ended
/// it meanwhile (the cancellation then applies nothing).
fn cancel_inner(
    ctx: &Context<'_>,
    tid: TransactionId,
    euicc: Option<&super::session::EuiccIdentity>,
    order: Option<&super::session::OrderRef>,
    claim: impl FnOnce() -> bool,
) -> Result<(), Failure> {
    let raw = ctx.binary("cancelSessionResponse")?;
    let response =
        CancelSessionResponse::parse(&raw).map_err(|e| malformed("cancelSessionResponse", e))?;
    let (signed, signed_tid, oid, reason, signature) = match response {
        CancelSessionResponse::Ok {
            signed_raw,
            transaction_id,
            smdp_oid,
            reason,
            signature,
        } => (signed_raw, transaction_id, smdp_oid, reason, signature),
        CancelSessionResponse::Error(code) => {
            return Err(Failure::new(
                sgp22::EUICC_VERIFICATION_FAILED,
                format!("the eUICC refused CancelSession (error {code}); nothing is cancelled"),
            ))
        }
    };
    let Some(euicc) = euicc else {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "eUICC signature is invalid: the eUICC of this session never authenticated itself",
        ));
    };
    if !euicc.verifies(signed, signature) {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "eUICC signature is invalid (euiccCancelSessionSignature)",
        ));
    }
    if signed_tid != tid.as_bytes() {
        return Err(unknown_session(
            "euiccCancelSessionSigned names another transactionId",
        ));
    }
    if oid != ctx.es9.smdp_oid() {
        return Err(Failure::new(
            sgp22::SMDP_OID_INVALID,
            "The provided SM-DP+ OID is invalid",
        ));
    }
    let reason = match reason {
        0 => CancelSessionReason::EndUserRejection,
        1 => CancelSessionReason::Postponed,
        2 => CancelSessionReason::Timeout,
        3 => CancelSessionReason::PprNotAllowed,
        4 => CancelSessionReason::MetadataMismatch,
        5 => CancelSessionReason::LoadBppExecutionError,
        // 127 and any value this version does not know.
        _ => CancelSessionReason::Undefined,
    };
    if !claim() {
        return Err(unknown_session("the session ended meanwhile"));
    }
    if let Some(order) = order {
        // An order the SM-DP+ itself ended in this session (attempts, Confirmation Code)
        // is already in Error: nothing more to do.
        let _ = commit(
            ctx,
            order,
            Event::Session {
                eid: euicc.eid,
                event: DeviceEvent::CancelSession(reason),
            },
        );
    }
    Ok(())
}
