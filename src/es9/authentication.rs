//! InitiateAuthentication (SGP.22 §5.6.1, §3.1.2 steps 6-9) and AuthenticateClient (§5.6.3,
//! §3.1.2 step 16, §3.1.3 steps 3-6): the SM-DP+ and the eUICC authenticate each other, and the
//! eUICC is matched to the order an operator placed through ES2+.

use std::sync::Arc;

use serde_json::{Map, Value};

use super::session::{
    BindingKeys, EuiccIdentity, OrderRef, Session, Stage, TooManyFromAddress, TransactionId,
};
use super::{
    answer_fields, b64, error_code_name, malformed, unknown_session, Context, Failure, Outcome,
};
use crate::ids::{Eid, MatchingId};
use crate::profile::machine::{transition, DeviceEvent, DownloadFailure, Effect, Event, Refusal};
use crate::profile::{OrderMatchingId, Profile, ProfileState};
use crate::sgp22;
use crate::store::UpdateError;
use smdpp_rsp::cert::ChainError;
use smdpp_rsp::crypto;
use smdpp_rsp::es10b::{
    eid_from_bytes, AuthenticateServerResponse, CtxParams1, EuiccInfo1, EuiccInfo2, EuiccSigned1,
    NotificationConfiguration, ProfileMetadata, ServerSigned1, SmdpSigned2, SVN,
};
use smdpp_rsp::tlv;

/// InitiateAuthentication: checks the SVN, the address and the CIs, starts a session and
/// answers `serverSigned1` signed with SK.DPauth.
pub(super) fn initiate(ctx: &Context<'_>) -> Outcome {
    match initiate_inner(ctx) {
        Ok(fields) => Outcome::success(fields),
        Err(NotStarted::Failed(failure)) => Outcome::failed(failure),
        // No status code of SGP.22 says "try later": HTTP 503 (the README's behaviour table),
        // the detail in the journal.
        Err(NotStarted::TooMany(busy)) => Outcome::unavailable(
            format!(
                "this client address has {} ES9+ sessions between InitiateAuthentication and AuthenticateClient, the most it may have (--es9-sessions-per-address): authenticate or let them expire",
                busy.in_progress
            ),
            RETRY_AFTER_SECONDS,
        ),
    }
}

/// Why InitiateAuthentication started no session.
enum NotStarted {
    /// Refused with a status code.
    Failed(Failure),
    /// The client's address has its share of sessions in progress.
    TooMany(TooManyFromAddress),
}

impl From<Failure> for NotStarted {
    fn from(failure: Failure) -> Self {
        NotStarted::Failed(failure)
    }
}

fn initiate_inner(ctx: &Context<'_>) -> Result<Map<String, Value>, NotStarted> {
    let credentials = &ctx.es9.credentials;
    let pair_ci = |brainpool: bool| ctx.es9.pair(brainpool).dp_auth.authority_key_id.clone();
    let (nist_ci, brainpool_ci) = (
        pair_ci(false),
        credentials.brainpool.as_ref().and_then(|_| pair_ci(true)),
    );
    let negotiated = negotiate(
        ctx.body,
        &Server {
            role: &ES9_SERVER,
            address: &ctx.es9.config.address,
            accepted: &ctx.es9.config.accepted_addresses,
            cis: &credentials.cis,
            auth_cis: [nist_ci.as_deref(), brainpool_ci.as_deref()],
        },
    )?;
    let pair = ctx.es9.pair(negotiated.brainpool);
    let tid = TransactionId::random();
    let (server_challenge, fields) =
        negotiated.server_signed1(tid, pair.dp_auth_key, &pair.dp_auth.der);
    ctx.es9
        .sessions
        .start(
            tid,
            Session::initiated(
                ctx.world,
                ctx.es9.app.clock.mark(),
                ctx.source,
                negotiated,
                server_challenge,
            ),
            |w| ctx.es9.app.is_current(w),
        )
        .map_err(NotStarted::TooMany)?;
    Ok(fields)
}

/// The server of a common mutual authentication (§3.1.2): the SM-DP+ (ES9+) or the SM-DS
/// (ES11, §5.8.1: "identical to ES9+.InitiateAuthentication where the SM-DS plays the role of
/// SM-DP+"). They differ in the certificate they sign with and in their status codes.
pub(crate) struct Role {
    /// `SM-DP+` or `SM-DS`.
    pub(crate) name: &'static str,
    /// The authentication certificate's name.
    pub(crate) certificate: &'static str,
    /// `smdpAddress` not this server's (8.8.1 / 8.9.1, `3.8`).
    pub(crate) address_refused: sgp22::StatusCode,
    /// No CI of the eUICC's signing list trusted (8.8.2 / 8.9.2, `3.1`).
    pub(crate) security_unsupported: sgp22::StatusCode,
    /// The eUICC's SVN not supported (8.8.3 / 8.9.3, `3.1`).
    pub(crate) svn_unsupported: sgp22::StatusCode,
    /// No authentication certificate under a CI the eUICC verifies with (8.8.4 / 8.9.4, `3.7`).
    pub(crate) certificate_unavailable: sgp22::StatusCode,
}

/// The SM-DP+'s InitiateAuthentication (Table 37).
pub(crate) const ES9_SERVER: Role = Role {
    name: "SM-DP+",
    certificate: "CERT.DPauth.ECDSA",
    address_refused: sgp22::SMDP_ADDRESS_REFUSED,
    security_unsupported: sgp22::SECURITY_CONFIGURATION_UNSUPPORTED,
    svn_unsupported: sgp22::SVN_UNSUPPORTED,
    certificate_unavailable: sgp22::SMDP_CERTIFICATE_UNAVAILABLE,
};

/// The SM-DS's ES11 InitiateAuthentication (Table 48a).
pub(crate) const ES11_SERVER: Role = Role {
    name: "SM-DS",
    certificate: "CERT.DSauth.ECDSA",
    address_refused: sgp22::SMDS_ADDRESS_REFUSED,
    security_unsupported: sgp22::SMDS_SECURITY_CONFIGURATION_UNSUPPORTED,
    svn_unsupported: sgp22::SMDS_SVN_UNSUPPORTED,
    certificate_unavailable: sgp22::SMDS_CERTIFICATE_UNAVAILABLE,
};

/// One server answering InitiateAuthentication.
pub(crate) struct Server<'a> {
    pub(crate) role: &'static Role,
    /// Its address, for messages.
    pub(crate) address: &'a str,
    /// Every address the LPA may name it by.
    pub(crate) accepted: &'a [String],
    /// The CIs it trusts for eUICC signatures.
    pub(crate) cis: &'a [smdpp_rsp::cert::Certificate],
    /// The CIs (their key identifiers) of its authentication certificates: NIST P-256, then
    /// brainpoolP256r1.
    pub(crate) auth_cis: [Option<&'a [u8]>; 2],
}

/// What InitiateAuthentication settled before the session starts.
pub(crate) struct Negotiated {
    /// The address the LPA sent, echoed in `serverSigned1`.
    pub(crate) address: String,
    pub(crate) challenge: [u8; 16],
    pub(crate) svn: [u8; 3],
    /// `euiccCiPKIdToBeUsed`.
    pub(crate) ci: Vec<u8>,
    /// The authentication certificate of the brainpoolP256r1 hierarchy (else NIST P-256).
    pub(crate) brainpool: bool,
}

/// InitiateAuthentication's checks (§5.6.1, §5.8.1, §3.1.2 steps 7-8), in the order that picks
/// the status code: the request's fields, the SVN, the address, the CI the eUICC signs under
/// (the first of its list the server trusts, §2.6.7.1), and the server's certificate (under
/// the first CI of the eUICC's verification list it has one for).
pub(crate) fn negotiate(
    body: &Map<String, Value>,
    server: &Server<'_>,
) -> Result<Negotiated, Failure> {
    let role = server.role;
    let address = super::text(body, "smdpAddress")?;
    let challenge = super::binary(body, "euiccChallenge")?;
    let info1_raw = super::binary(body, "euiccInfo1")?;
    let challenge: [u8; 16] = challenge
        .try_into()
        .map_err(|_| malformed("euiccChallenge", "not 16 bytes"))?;
    let info1 = EuiccInfo1::parse(&info1_raw).map_err(|e| malformed("euiccInfo1", e))?;
    // The SVN must be supported; this server implements v2 (2.x.y).
    if info1.svn[0] != SVN[0] {
        return Err(Failure::new(
            role.svn_unsupported,
            format!(
                "the eUICC's Specification Version Number {}.{}.{} is not supported (this {} implements SGP.22 v2)",
                info1.svn[0], info1.svn[1], info1.svn[2], role.name
            ),
        ));
    }
    if !sgp22::address_accepted(address, server.accepted) {
        return Err(Failure::new(
            role.address_refused,
            format!(
                "Invalid {} Address {:?}: this {} is {}",
                role.name,
                crate::journal::cut(address, 100),
                role.name,
                server.address
            ),
        )
        .about("smdpAddress"));
    }
    let ci = info1
        .ci_for_signing
        .iter()
        .find(|id| {
            server
                .cis
                .iter()
                .any(|c| c.subject_key_id.as_deref() == Some(**id))
        })
        .ok_or_else(|| {
            Failure::new(
                role.security_unsupported,
                format!(
                    "None of the proposed Public Key Identifiers is supported by the {}",
                    role.name
                ),
            )
        })?
        .to_vec();
    let [nist_ci, brainpool_ci] = server.auth_cis;
    let brainpool = info1
        .ci_for_verification
        .iter()
        .find_map(|id| {
            if nist_ci == Some(*id) {
                Some(false)
            } else if brainpool_ci == Some(*id) {
                Some(true)
            } else {
                None
            }
        })
        .ok_or_else(|| {
            Failure::new(
                role.certificate_unavailable,
                format!(
                    "The {} has no {} signed by one of the GSMA CI Public Keys supported by the eUICC",
                    role.name, role.certificate
                ),
            )
        })?;
    Ok(Negotiated {
        address: address.to_owned(),
        challenge,
        svn: info1.svn,
        ci,
        brainpool,
    })
}

impl Negotiated {
    /// `serverSigned1` for session `tid` signed with `key`, whose certificate is `certificate`:
    /// the serverChallenge drawn, and the answer's fields (§5.6.1, Table 36: the data objects
    /// with their tags).
    pub(crate) fn server_signed1(
        &self,
        tid: TransactionId,
        key: &crypto::SigningKey,
        certificate: &[u8],
    ) -> ([u8; 16], Map<String, Value>) {
        let server_challenge: [u8; 16] = crypto::random();
        let signed = ServerSigned1::encode(
            tid.as_bytes(),
            &self.challenge,
            &self.address,
            &server_challenge,
        );
        let signature = key.sign(&signed);
        let mut fields = answer_fields(tid);
        fields.insert("serverSigned1".into(), b64(&signed));
        fields.insert(
            "serverSignature1".into(),
            b64(&tlv::encode(0x5F37, &signature)),
        );
        fields.insert(
            "euiccCiPKIdToBeUsed".into(),
            b64(&tlv::encode(0x04, &self.ci)),
        );
        fields.insert("serverCertificate".into(), b64(certificate));
        (server_challenge, fields)
    }
}

/// The `Retry-After` of an InitiateAuthentication refused for too many sessions: a client's
/// sessions free their places as they authenticate, within seconds.
pub(crate) const RETRY_AFTER_SECONDS: u32 = 10;

/// AuthenticateClient: verifies the eUICC (certificates, signature, challenge), finds its
/// order, counts the download attempt, and answers the Profile Metadata and `smdpSigned2`
/// signed with SK.DPpb.
pub(super) fn authenticate_client(ctx: &Context<'_>) -> Outcome {
    let tid = match ctx.transaction_id() {
        Ok(tid) => tid,
        Err(f) => return Outcome::failed(f),
    };
    let mut session = match ctx
        .es9
        .sessions
        .claim(&tid, Stage::Initiated, |w| ctx.es9.app.is_current(w))
    {
        None => return Outcome::failed(unknown_session("no session in progress")),
        Some(Err(_)) => {
            return Outcome::failed(unknown_session(
                "AuthenticateClient was already called in this session",
            ))
        }
        Some(Ok(session)) => session,
    };
    let result = authenticate_inner(ctx, tid, &mut session);
    let order = session.order.clone();
    let eid = session.euicc.as_ref().map(|e| e.eid);
    if result.is_ok() {
        ctx.es9.sessions.update(tid, session);
    } else {
        // §3.1.3 step 3: "the SM-DP+ SHALL return a relevant error status and the procedure
        // SHALL be stopped": the session ends, so a CancelSession that follows (lpac sends
        // one after every failure) names an unknown transactionId and changes nothing.
        ctx.es9.sessions.end(&tid);
    }
    Outcome::of(result).of_session(eid, order.as_ref())
}

/// AuthenticateClient's steps in the order that decides which status code a bad request gets:
/// the eUICC proven (§5.6.3), its order found (§3.1.3 step 6), the attempt counted and the
/// order's validity and state checked (steps 3-5), room for the profile (Annex F), then
/// `smdpSigned2` signed for the download.
fn authenticate_inner(
    ctx: &Context<'_>,
    tid: TransactionId,
    session: &mut Session,
) -> Result<Map<String, Value>, Failure> {
    let raw = ctx.binary("authenticateServerResponse")?;
    let proven = verify_euicc(&ctx.es9.chains, ctx.now(), tid, session, &raw)?;
    let (eid, info2, signature1) = (proven.identity.eid, proven.info2, proven.signature1);
    // Authenticated: the journal and the answer name the eUICC even if the order checks fail.
    session.euicc = Some(proven.identity);
    let ctx_params = CtxParams1::parse(proven.ctx_params1)
        .map_err(|e| malformed("authenticateServerResponse", e))?;
    let profile = find_order(ctx, eid, ctx_params.matching_id)?;
    let order = order_of(&profile);
    session.order = Some(order.clone());
    // The download attempt (§3.1.3 step 3), the order's validity and state (steps 4-5).
    let package_len = ctx.es9.package_len(ctx.world, &profile) as u64;
    count_attempt(ctx, session, &order, eid)?;
    refuse_without_room(ctx, &order, eid, &info2, package_len)?;
    let cc_required = ctx
        .world
        .store
        .get(order.key)
        .is_some_and(|p| p.confirmation_code_hash.is_some());
    let metadata = profile_metadata(ctx, &profile);
    let earlier = earlier_binding(ctx, &order, eid);
    let smdp_signed2 = SmdpSigned2::encode(
        tid.as_bytes(),
        cc_required,
        earlier.as_ref().map(|b| &b.euicc_otpk[..]),
    );
    let pair = ctx.es9.pair(session.brainpool);
    let signature2 = pair
        .dp_pb_key
        .sign_parts(&[&smdp_signed2, &tlv::encode(0x5F37, &signature1)]);
    session.stage = Stage::Authenticated;
    session.smdp_signature2 = Some(signature2);
    session.metadata = metadata.clone();
    session.earlier = earlier;
    let mut fields = answer_fields(tid);
    fields.insert("profileMetadata".into(), b64(&metadata));
    fields.insert("smdpSigned2".into(), b64(&smdp_signed2));
    fields.insert(
        "smdpSignature2".into(),
        b64(&tlv::encode(0x5F37, &signature2)),
    );
    fields.insert("smdpCertificate".into(), b64(&pair.dp_pb.der));
    Ok(fields)
}

/// What AuthenticateClient learns from an eUICC whose response checked out.
pub(crate) struct Proven<'a> {
    /// The eUICC, as the session will name it.
    pub(crate) identity: EuiccIdentity,
    /// What the eligibility check reads.
    pub(crate) info2: EuiccInfo2,
    /// `ctxParams1` as received: parsed only once the session names the eUICC, so that a
    /// malformed one is journaled with its EID.
    pub(crate) ctx_params1: &'a [u8],
    /// `euiccSignature1`, which `smdpSignature2` covers.
    pub(crate) signature1: [u8; 64],
}

/// The eUICC's half of the mutual authentication (§5.6.3, §3.1.3 step 3): its certificate chain
/// under the session's CI, its signature over `euiccSigned1`, and what it signed (this session's
/// transactionId, address, serverChallenge and SVN). The checks run in this order because the
/// first that fails picks the status code.
pub(crate) fn verify_euicc<'a>(
    chains: &super::EuiccChains,
    now: Option<i64>,
    tid: TransactionId,
    session: &Session,
    raw: &'a [u8],
) -> Result<Proven<'a>, Failure> {
    let SignedResponse {
        signed1,
        signature,
        euicc_cert,
        eum_cert,
    } = signed_response(raw)?;
    if signed1.transaction_id != tid.as_bytes() {
        return Err(unknown_session("euiccSigned1 names another transactionId"));
    }
    let verified = chains
        .verify(euicc_cert, eum_cert, Some(&session.ci), now)
        .map_err(chain_failure)?;
    if !verified.certificate.verifies(signed1.raw, signature) {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "eUICC signature is invalid or serverChallenge is invalid (euiccSignature1)",
        ));
    }
    // The eUICC signed the address it was given in serverSigned1 (§5.7.13); another one is not
    // this session's.
    if signed1.server_address != session.smdp_address.as_bytes() {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "euiccSigned1 names another server address than this session's",
        ));
    }
    if signed1.server_challenge != session.server_challenge {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "eUICC signature is invalid or serverChallenge is invalid (serverChallenge)",
        ));
    }
    let info2 = EuiccInfo2::parse(signed1.euicc_info2)
        .map_err(|e| malformed("authenticateServerResponse", e))?;
    if info2.svn != session.svn {
        return Err(Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "the SVN of euiccInfo2 differs from the one of euiccInfo1 (§5.6.3)",
        ));
    }
    let eid = eid_from_bytes(&verified.eid).ok_or_else(|| {
        Failure::new(
            sgp22::EUICC_CERTIFICATE_INVALID,
            "the eUICC certificate's serialNumber is not an EID",
        )
    })?;
    let signature1: [u8; 64] = signature.try_into().map_err(|_| {
        Failure::new(
            sgp22::EUICC_VERIFICATION_FAILED,
            "euiccSignature1 is not 64 bytes",
        )
    })?;
    Ok(Proven {
        identity: EuiccIdentity {
            eid,
            eid_bytes: verified.eid,
            public_key: verified.certificate.public_key.clone(),
            curve: verified.certificate.curve,
        },
        info2,
        ctx_params1: signed1.ctx_params1,
        signature1,
    })
}

/// An `authenticateResponseOk` (§5.7.13), in the parts AuthenticateClient checks.
struct SignedResponse<'a> {
    signed1: EuiccSigned1<'a>,
    /// `euiccSignature1`.
    signature: &'a [u8],
    euicc_cert: &'a [u8],
    eum_cert: &'a [u8],
}

/// The eUICC's response to AuthenticateServer: an `authenticateResponseOk` in its parts; an
/// `authenticateResponseError` is refused.
fn signed_response(raw: &[u8]) -> Result<SignedResponse<'_>, Failure> {
    let response = AuthenticateServerResponse::parse(raw)
        .map_err(|e| malformed("authenticateServerResponse", e))?;
    match response {
        AuthenticateServerResponse::Ok {
            euicc_signed1,
            signature,
            euicc_certificate,
            eum_certificate,
        } => Ok(SignedResponse {
            signed1: euicc_signed1,
            signature,
            euicc_cert: euicc_certificate,
            eum_cert: eum_certificate,
        }),
        AuthenticateServerResponse::Error { code, .. } => {
            // SGP.22 v2.2 has no code for an eUICC that refused the server; it is the eUICC's
            // verification that failed.
            Err(Failure::new(
                sgp22::EUICC_VERIFICATION_FAILED,
                format!(
                    "the eUICC refused the server in AuthenticateServer: {}",
                    error_code_name(AUTHENTICATE_ERROR_CODES, code)
                ),
            ))
        }
    }
}

/// The session's reference to the order of `profile`.
fn order_of(profile: &Profile) -> OrderRef {
    OrderRef {
        key: profile.iccid.key(),
        iccid: profile.iccid,
        order_seq: profile.order_seq,
        owner: profile.owner.clone(),
        profile_type: profile.profile_type.clone(),
    }
}

/// Counts the download attempt on the order (§3.1.3 step 3) and checks its validity and state
/// (steps 4-5): the state machine may refuse it or end the order (expiry, too many attempts).
fn count_attempt(
    ctx: &Context<'_>,
    session: &mut Session,
    order: &OrderRef,
    eid: Eid,
) -> Result<(), Failure> {
    let event = Event::Device {
        eid,
        event: DeviceEvent::Authenticated,
    };
    match commit(ctx, order, event) {
        Ok(None) => Ok(()),
        Ok(Some(failure)) => Err(failure),
        Err(failure) => {
            if failure.code == sgp22::EID_REFUSED {
                // Another eUICC's order: nothing this session does may touch it.
                session.order = None;
            }
            Err(failure)
        }
    }
}

/// Eligibility (Annex F): room for the profile, as `euiccInfo2` declares it. An eUICC without
/// room is an eligibility failure on the order, and the session ends with insufficient memory.
fn refuse_without_room(
    ctx: &Context<'_>,
    order: &OrderRef,
    eid: Eid,
    info2: &EuiccInfo2,
    package_len: u64,
) -> Result<(), Failure> {
    let no_room = info2.additional_profile == Some(false)
        || info2.free_nvm.is_some_and(|free| free < package_len);
    if !no_room {
        return Ok(());
    }
    let _ = commit(
        ctx,
        order,
        Event::Session {
            eid,
            event: DeviceEvent::EligibilityFailure,
        },
    );
    Err(Failure::new(
        sgp22::EUICC_INSUFFICIENT_MEMORY,
        format!("eUICC does not have sufficient space for this Profile ({package_len} bytes)"),
    ))
}

/// The Profile Metadata AuthenticateClient answers (§5.6.3): the order's names, and the three
/// notification events (install, enable, disable) to this SM-DP+.
fn profile_metadata(ctx: &Context<'_>, profile: &Profile) -> Vec<u8> {
    ProfileMetadata {
        iccid: profile.iccid,
        // UTF8String (SIZE(0..32)) and (SIZE(0..64)) (Annex H): cut on a character boundary.
        service_provider: profile.owner.chars().take(32).collect(),
        profile_name: profile.profile_type.chars().take(64).collect(),
        profile_class: 2,
        notifications: [1u8, 2, 3]
            .into_iter()
            .map(|event| NotificationConfiguration {
                event,
                address: ctx.es9.config.address.clone(),
            })
            .collect(),
    }
    .encode()
}

/// A download retry (§3.1.3 step 5): the order is bound to this eUICC by an earlier package
/// that never got its installation result; its otPK.EUICC.ECKA goes out as bppEuiccOtpk, so
/// an eUICC that kept the pair answers with it and the package can be reused.
fn earlier_binding(ctx: &Context<'_>, order: &OrderRef, eid: Eid) -> Option<Arc<BindingKeys>> {
    ctx.world
        .awaiting
        .latest_for(order.key)
        .filter(|d| d.euicc.eid == eid && d.order.order_seq == order.order_seq)
        .and_then(|d| d.binding)
}

/// `AuthenticateErrorCode` (§5.7.13).
const AUTHENTICATE_ERROR_CODES: &[(u64, &str)] = &[
    (1, "invalidCertificate"),
    (2, "invalidSignature"),
    (3, "unsupportedCurve"),
    (4, "noSessionContext"),
    (5, "invalidOid"),
    (6, "euiccChallengeMismatch"),
    (7, "ciPKUnknown"),
    (127, "undefinedError"),
];

fn chain_failure(error: ChainError) -> Failure {
    let code = match &error {
        ChainError::UnknownCi => sgp22::CI_UNKNOWN,
        ChainError::Eum(_) => sgp22::EUM_CERTIFICATE_INVALID,
        ChainError::EumExpired => sgp22::EUM_CERTIFICATE_EXPIRED,
        ChainError::Euicc(_) => sgp22::EUICC_CERTIFICATE_INVALID,
        ChainError::EuiccExpired => sgp22::EUICC_CERTIFICATE_EXPIRED,
    };
    Failure::new(code, error.to_string())
}

/// The order of this eUICC (§5.6.3, §3.1.3 step 6): by MatchingID (an Activation Code token or
/// an SM-DS EventID), or, without one, the order linked to the EID (the Default SM-DP+ case).
fn find_order(ctx: &Context<'_>, eid: Eid, matching_id: Option<&[u8]>) -> Result<Profile, Failure> {
    let refused = |why: String| Failure::new(sgp22::MATCHING_ID_REFUSED, why);
    let store = &ctx.world.store;
    match matching_id.filter(|m| !m.is_empty()) {
        Some(bytes) => {
            let text = std::str::from_utf8(bytes)
                .map_err(|_| refused("the MatchingID is not UTF-8".into()))?;
            let shown = crate::journal::cut(text, 64);
            let id: MatchingId = text.parse().map_err(|_| {
                refused(format!("MatchingID {shown:?} is refused: no order has it"))
            })?;
            let profile = store
                .find_by_matching_id(&id)
                .and_then(|key| store.get(key))
                .ok_or_else(|| {
                    refused(format!("MatchingID {shown:?} is refused: no order has it"))
                })?;
            if profile.eid.is_some_and(|e| e != eid) {
                return Err(Failure::new(
                    sgp22::EID_REFUSED,
                    format!("EID doesn't match the expected value: the order of MatchingID {shown} is for another eUICC"),
                ));
            }
            Ok(profile)
        }
        None => {
            // No MatchingID, or an empty one: an order linked to this EID (with an empty
            // MatchingID, only an order whose MatchingID is empty, §3.1.2).
            // The store's EID index: no pass over the inventory.
            let empty_only = matching_id.is_some();
            let found = store
                .linked_to(eid, |p| {
                    matches!(p.state, ProfileState::Released | ProfileState::Downloaded)
                        && (!empty_only || p.matching_id == Some(OrderMatchingId::Empty))
                })
                .into_iter()
                .next();
            found.ok_or_else(|| {
                refused(format!(
                    "no MatchingID was given and no released order is linked to EID {eid}"
                ))
            })
        }
    }
}

/// Commits `event` on the session's order; the `Failed` answer it earns when the state machine
/// refused it or ended the order (expiry, too many attempts), else `None`.
pub(super) fn commit(
    ctx: &Context<'_>,
    order: &OrderRef,
    event: Event,
) -> Result<Option<Failure>, Failure> {
    commit_reported(ctx, order, event, None)
}

/// [`commit`], for the installation result a real eUICC reported (point 4 carries it).
pub(super) fn commit_reported(
    ctx: &Context<'_>,
    order: &OrderRef,
    event: Event,
    reported: Option<&crate::notify::compose::DeviceResult>,
) -> Result<Option<Failure>, Failure> {
    let app = &ctx.es9.app;
    let now = app.clock.now();
    let rules = ctx.world.scenario.rules();
    let mut ended = None;
    let result = app.commit_reported(ctx.world, order.key, reported, |p| {
        if p.order_seq != order.order_seq {
            return Err(None);
        }
        let step = transition(p, &event, rules, now).map_err(Some)?;
        ended = step.effects.iter().find_map(|e| match e {
            Effect::Notify {
                outcome: Err(failure),
                ..
            } => Some(*failure),
            _ => None,
        });
        Ok(step)
    });
    match result {
        Ok(_) => Ok(ended.and_then(ended_failure)),
        Err(UpdateError::Refused(None)) | Err(UpdateError::UnknownIccid) => Err(unknown_session(
            "the order of this session was cancelled meanwhile",
        )),
        Err(UpdateError::Refused(Some(refusal))) => Err(refusal_failure(&refusal)),
        Err(UpdateError::MatchingIdInUse(_)) => Err(Failure::new(
            sgp22::EXECUTION_ERROR,
            "the order could not be updated",
        )),
    }
}

/// The ES9+ answer to an order the state machine ended.
fn ended_failure(failure: DownloadFailure) -> Option<Failure> {
    Some(match failure {
        DownloadFailure::OrderExpired => {
            Failure::new(sgp22::ORDER_EXPIRED, "The Download order has expired")
        }
        DownloadFailure::DownloadAttemptsExceeded => Failure::new(
            sgp22::DOWNLOAD_RETRIES_EXCEEDED,
            "The maximum number of retries for the Profile download order has been exceeded",
        ),
        DownloadFailure::ConfirmationCodeRefused => Failure::new(
            sgp22::CONFIRMATION_CODE_REFUSED,
            "Confirmation Code is refused",
        ),
        DownloadFailure::ConfirmationCodeAttemptsExceeded => Failure::new(
            sgp22::CONFIRMATION_CODE_RETRIES_EXCEEDED,
            "The maximum number of retries for the Confirmation Code has been exceeded",
        ),
        DownloadFailure::NotEligible => Failure::new(
            sgp22::NO_ELIGIBLE_PROFILE,
            "No eligible Profile for this eUICC/Device",
        ),
        // The session ends without another answer for these.
        _ => return None,
    })
}

/// The ES9+ answer to a transition the state machine refused.
fn refusal_failure(refusal: &Refusal) -> Failure {
    match refusal {
        Refusal::NotReleased { state } => Failure::new(
            sgp22::PROFILE_NOT_RELEASED,
            format!("Profile has not yet been released (the order is {state})"),
        ),
        Refusal::EidMismatch { .. } => {
            Failure::new(sgp22::EID_REFUSED, "EID doesn't match the expected value")
        }
        other => Failure::new(
            sgp22::PROFILE_NOT_RELEASED,
            format!("the order cannot be downloaded: {other}"),
        ),
    }
}

impl super::Es9 {
    /// The profile package of `profile`: the scenario's file for its type, or the synthetic one.
    /// The length of [`Es9::package_for`]'s package, without making it.
    pub(super) fn package_len(&self, world: &crate::app::World, profile: &Profile) -> usize {
        match world
            .scenario
            .profile_type(&profile.profile_type)
            .and_then(|t| t.package.as_ref())
        {
            Some(package) => package.bytes().len(),
            None => smdpp_rsp::profile_package::synthetic_len(
                &profile.iccid,
                &subscription(world, profile),
                smdpp_rsp::profile_package::DEFAULT_FILLER,
            ),
        }
    }

    pub(super) fn package_for(&self, world: &crate::app::World, profile: &Profile) -> Arc<[u8]> {
        match world
            .scenario
            .profile_type(&profile.profile_type)
            .and_then(|t| t.package.as_ref())
        {
            // Personalised: the header and EF.ICCID name the ordered ICCID.
            Some(package) => Arc::from(package.for_order(&profile.iccid)),
            None => Arc::from(smdpp_rsp::profile_package::synthetic(
                &profile.iccid,
                &subscription(world, profile),
                smdpp_rsp::profile_package::DEFAULT_FILLER,
            )),
        }
    }
}

/// The subscription a generated package of `profile` carries, by its type's rule (the
/// default rule for a type the scenario no longer has).
fn subscription(
    world: &crate::app::World,
    profile: &Profile,
) -> smdpp_rsp::profile_package::Subscription {
    world
        .scenario
        .profile_type(&profile.profile_type)
        .map(|t| t.subscription.for_iccid(&profile.iccid))
        .unwrap_or_else(|| {
            smdpp_rsp::profile_package::SubscriptionRule::default().for_iccid(&profile.iccid)
        })
}
