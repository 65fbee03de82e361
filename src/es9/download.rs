//! GetBoundProfilePackage (SGP.22 §5.6.2, §3.1.3.2 steps 6-11): the eUICC's one-time key and
//! signature checked, the Confirmation Code checked (§3.1.3.2 step 7), the profile bound to the
//! eUICC and delivered: key agreement, session keys, and the Bound Profile Package; on a
//! download retry with the earlier otPK.EUICC.ECKA, the earlier package with a new signature.

use serde_json::{Map, Value};

use super::authentication::commit;
use super::{answer_fields, error_code_name};
use std::sync::Arc;

use super::session::{
    BindingKeys, Delivered, EuiccIdentity, OrderRef, Session, Stage, TransactionId,
};
use super::{b64, malformed, unknown_session, Context, Failure, Outcome, HOST_ID};
use crate::ids::Eid;
use crate::profile::machine::{DeviceEvent, Event};
use crate::profile::Profile;
use crate::scenario::PackageProtection;
use crate::sgp22;
use smdpp_rsp::bpp::{self, Binding};
use smdpp_rsp::crypto::{
    self, derive_session_keys, hash_confirmation_code, OneTimeKey, SessionKeys,
};
use smdpp_rsp::es10b::{EuiccSigned2, PrepareDownloadResponse};
use smdpp_rsp::tlv;

/// GetBoundProfilePackage.
pub(super) fn get_bound_profile_package(ctx: &Context<'_>) -> Outcome {
    let tid = match ctx.transaction_id() {
        Ok(tid) => tid,
        Err(f) => return Outcome::failed(f),
    };
    let current = |w: &std::sync::Arc<crate::app::World>| ctx.es9.app.is_current(w);
    let session = match ctx.es9.sessions.claim(&tid, Stage::Authenticated, current) {
        None => return Outcome::failed(unknown_session("no session in progress")),
        Some(Err(stage)) => {
            let known = ctx.es9.sessions.get(&tid, current);
            let eid = known.as_ref().and_then(|s| s.euicc.as_ref().map(|e| e.eid));
            return Outcome::failed(unknown_session(if stage == Stage::Busy {
                "another call of this session is in progress"
            } else {
                "AuthenticateClient has not succeeded in this session"
            }))
            .of_session(eid, known.and_then(|s| s.order).as_ref());
        }
        Some(Ok(session)) => session,
    };
    let order = session.order.clone();
    let eid = session.euicc.as_ref().map(|e| e.eid);
    let result = bind(ctx, tid, &session);
    if result.is_err() {
        // §3.1.3.2 step 8: "If any verification in step 6 or 7 failed, the SM-DP+ SHALL return
        // an error status to the LPAd and the procedure SHALL be stopped"; the LPA may retry
        // with a new session.
        ctx.es9.sessions.end(&tid);
    }
    Outcome::of(result).of_session(eid, order.as_ref())
}

/// GetBoundProfilePackage's steps in the order that decides which status code a bad request
/// gets: the eUICC's answer to PrepareDownload verified (§3.1.3.2 step 6), the Confirmation Code
/// (step 7), the binding keys, the order bound and Downloaded, then the package built and the
/// session handed to the world to await its installation result.
fn bind(
    ctx: &Context<'_>,
    tid: TransactionId,
    session: &Session,
) -> Result<Map<String, Value>, Failure> {
    let (Some(euicc), Some(order), Some(signature2)) =
        (&session.euicc, &session.order, &session.smdp_signature2)
    else {
        return Err(unknown_session("the session has no authenticated order"));
    };
    let raw = ctx.binary("prepareDownloadResponse")?;
    let (signed2, euicc_otpk) = verify_signed2(&raw, tid, euicc, signature2)?;
    let profile = ctx
        .world
        .store
        .get(order.key)
        .ok_or_else(|| unknown_session("the order of this session is gone"))?;
    if let Some(stored) = profile.confirmation_code_hash.as_deref() {
        check_confirmation_code(ctx, tid, order, euicc.eid, stored, signed2.hash_cc)?;
    }
    let keys = binding_keys(ctx, session, euicc, &profile, euicc_otpk)?;
    // Bound to the eUICC and Downloaded (point 3), or the order ends (expiry).
    if let Some(failure) = commit(
        ctx,
        order,
        Event::Session {
            eid: euicc.eid,
            event: DeviceEvent::BoundProfilePackage,
        },
    )? {
        return Err(failure);
    }
    let package = ctx.es9.package_for(ctx.world, &profile);
    let bound = bpp::build(
        &Binding {
            transaction_id: tid.as_bytes(),
            host_id: HOST_ID,
            smdp_otpk: &keys.smdp_otpk,
            euicc_otpk_tlv: signed2.euicc_otpk.raw,
            keys: &keys.keys,
            signer: ctx.es9.pair(session.brainpool).dp_pb_key,
        },
        &session.metadata,
        &package,
        keys.ppk.as_ref(),
    );
    // The session ends; its installation result is awaited by the world.
    ctx.es9.sessions.end(&tid);
    ctx.world.awaiting.insert(
        tid,
        Delivered {
            euicc: euicc.clone(),
            order: order.clone(),
            binding: Some(keys),
        },
    );
    let mut fields = answer_fields(tid);
    fields.insert("boundProfilePackage".into(), b64(&bound));
    Ok(fields)
}

/// The eUICC's answer to PrepareDownload (§5.6.2, §3.1.3.2 step 6): a `downloadResponseOk`
/// whose euiccSignature2 verifies under PK.EUICC.ECDSA, for this session's transactionId, and its
/// otPK.EUICC.ECKA as an uncompressed point.
fn verify_signed2<'a>(
    raw: &'a [u8],
    tid: TransactionId,
    euicc: &EuiccIdentity,
    signature2: &[u8; 64],
) -> Result<(EuiccSigned2<'a>, [u8; 65]), Failure> {
    let response =
        PrepareDownloadResponse::parse(raw).map_err(|e| malformed("prepareDownloadResponse", e))?;
    let (signed2, signature) = match response {
        PrepareDownloadResponse::Ok {
            euicc_signed2,
            signature,
        } => (euicc_signed2, signature),
        PrepareDownloadResponse::Error { code, .. } => {
            return Err(Failure::new(
                sgp22::EUICC_VERIFICATION_FAILED,
                format!(
                    "the eUICC refused PrepareDownload: {}",
                    error_code_name(DOWNLOAD_ERROR_CODES, code)
                ),
            ));
        }
    };
    // euiccSignature2 covers euiccSigned2 and smdpSignature2 as a data object (§5.7.5).
    if !euicc.verifies_parts(&[signed2.raw, &tlv::encode(0x5F37, signature2)], signature) {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "eUICC signature is invalid (euiccSignature2)",
        ));
    }
    if signed2.transaction_id != tid.as_bytes() {
        return Err(unknown_session("euiccSigned2 names another transactionId"));
    }
    let euicc_otpk: [u8; 65] = signed2.euicc_otpk.value.try_into().map_err(|_| {
        malformed(
            "prepareDownloadResponse",
            "euiccOtpk is not an uncompressed point (65 bytes)",
        )
    })?;
    Ok((signed2, euicc_otpk))
}

/// The Confirmation Code of an order that has one (§3.1.3.2 step 7): hashCc = SHA-256(SHA-256(CC)
/// ‖ transactionId). A wrong one counts against the order's attempts, which may end it.
fn check_confirmation_code(
    ctx: &Context<'_>,
    tid: TransactionId,
    order: &OrderRef,
    eid: Eid,
    stored: &[u8; 32],
    given: Option<&[u8]>,
) -> Result<(), Failure> {
    let Some(given) = given else {
        return Err(Failure::new(
            sgp22::CONFIRMATION_CODE_MISSING,
            "Confirmation Code is missing",
        ));
    };
    let expected = hash_confirmation_code(stored, tid.as_bytes());
    if crypto::same(given, &expected) {
        return Ok(());
    }
    let ended = commit(
        ctx,
        order,
        Event::Session {
            eid,
            event: DeviceEvent::WrongConfirmationCode,
        },
    )?;
    Err(ended.unwrap_or_else(|| {
        Failure::new(
            sgp22::CONFIRMATION_CODE_REFUSED,
            "Confirmation Code is refused",
        )
    }))
}

/// The keys the package is bound with. A retry whose eUICC answered with the otPK.EUICC.ECKA of
/// the earlier package (§3.1.3.2 step 9, §5.6.2): the package is reused, only
/// InitialiseSecureChannel is signed anew (for this session's transactionId). Otherwise it is
/// bound (again): a new otPK.DP.ECKA and session keys, the key agreement first, so that a point
/// not on the curve changes nothing.
fn binding_keys(
    ctx: &Context<'_>,
    session: &Session,
    euicc: &EuiccIdentity,
    profile: &Profile,
    euicc_otpk: [u8; 65],
) -> Result<Arc<BindingKeys>, Failure> {
    let earlier = session.earlier.as_ref();
    if let Some(earlier) = earlier.filter(|e| e.euicc_otpk == euicc_otpk) {
        return Ok(earlier.clone());
    }
    // The key agreement is on the curve of DPpb, the binding key (the eUICC's otPK too).
    let curve = ctx.es9.pair(session.brainpool).dp_pb.curve;
    let one_time = OneTimeKey::generate_on(curve);
    let smdp_otpk = *one_time.public_key();
    let shs = one_time.agree(&euicc_otpk).ok_or_else(|| {
        malformed(
            "prepareDownloadResponse",
            format!("euiccOtpk is not a point of {curve}"),
        )
    })?;
    let with_ppk = ctx
        .world
        .scenario
        .profile_type(&profile.profile_type)
        .is_some_and(|t| t.protection == PackageProtection::ProfileProtectionKeys);
    Ok(Arc::new(BindingKeys {
        euicc_otpk,
        smdp_otpk,
        keys: derive_session_keys(&shs, HOST_ID, &euicc.eid_bytes),
        // The order's keys stay those of its first binding.
        ppk: with_ppk.then(|| {
            earlier
                .and_then(|e| e.ppk.clone())
                .unwrap_or_else(SessionKeys::random)
        }),
    }))
}

/// `DownloadErrorCode` (§5.7.5).
const DOWNLOAD_ERROR_CODES: &[(u64, &str)] = &[
    (1, "invalidCertificate"),
    (2, "invalidSignature"),
    (3, "unsupportedCurve"),
    (4, "noSessionContext"),
    (5, "invalidTransactionId"),
    (127, "undefinedError"),
];
