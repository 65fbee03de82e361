//! ES11 (SGP.22 §5.8, JSON binding §6.5.2.11-12): the LPA authenticates with the SM-DS as
//! with an SM-DP+ (§3.1.2, CERT.DSauth.ECDSA in place of CERT.DPauth.ECDSA) and retrieves the
//! Event Records of its eUICC (§3.6.2).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::Smds;
use crate::app::World;
use crate::caller::Peer;
use crate::es9::authentication::{
    negotiate, verify_euicc, Server, ES11_SERVER, RETRY_AFTER_SECONDS,
};
use crate::es9::session::{Session, Stage, TransactionId};
use crate::es9::{answer_fields, binary, malformed, transaction_id, unknown_session};
use crate::es9::{Failure, Outcome};
use crate::sgp22;
use crate::store::events::EventRecord;
use smdpp_rsp::es10b::CtxParams1;

/// ES11.InitiateAuthentication (§5.8.1): ES9+'s checks with the SM-DS's codes (Table 48a),
/// `serverSigned1` signed with SK.DSauth.ECDSA.
pub(super) fn initiate(
    smds: &Smds,
    world: &Arc<World>,
    body: &Map<String, Value>,
    peer: &Peer,
) -> Outcome {
    let credentials = &smds.credentials;
    let brainpool_ci = credentials
        .brainpool
        .as_ref()
        .and_then(|(cert, _)| cert.authority_key_id.as_deref());
    let negotiated = match negotiate(
        body,
        &Server {
            role: &ES11_SERVER,
            address: &smds.config.address,
            accepted: &smds.config.accepted_addresses,
            cis: &credentials.cis,
            auth_cis: [
                credentials.ds_auth.authority_key_id.as_deref(),
                brainpool_ci,
            ],
        },
    ) {
        Ok(n) => n,
        Err(failure) => return Outcome::failed(failure),
    };
    let (certificate, key) = match credentials
        .brainpool
        .as_ref()
        .filter(|_| negotiated.brainpool)
    {
        Some((cert, key)) => (cert, key),
        None => (&credentials.ds_auth, &credentials.ds_auth_key),
    };
    let tid = TransactionId::random();
    let (server_challenge, fields) = negotiated.server_signed1(tid, key, &certificate.der);
    let started = smds.sessions.start(
        tid,
        Session::initiated(
            world,
            smds.app.clock.mark(),
            peer.remote.ip(),
            negotiated,
            server_challenge,
        ),
        |w| smds.app.is_current(w),
    );
    match started {
        Ok(()) => Outcome::success(fields),
        Err(busy) => Outcome::unavailable(
            format!(
                "this client address has {} ES11 sessions between InitiateAuthentication and AuthenticateClient, the most it may have: authenticate or let them expire",
                busy.in_progress
            ),
            RETRY_AFTER_SECONDS,
        ),
    }
}

/// ES11.AuthenticateClient (§5.8.2): the eUICC verified as on ES9+ (Table 52's codes), then
/// its Event Records: all of them, in the order they were registered, or the one named by the
/// MatchingID of `ctxParams1` (`8.9.5 / 3.9` when there is none). The session ends either way.
pub(super) fn authenticate_client(
    smds: &Smds,
    world: &Arc<World>,
    body: &Map<String, Value>,
) -> Outcome {
    let tid = match transaction_id(body) {
        Ok(tid) => tid,
        Err(f) => return Outcome::failed(f),
    };
    let session = match smds
        .sessions
        .claim(&tid, Stage::Initiated, |w| smds.app.is_current(w))
    {
        None => return Outcome::failed(unknown_session("no session in progress")),
        Some(Err(_)) => {
            return Outcome::failed(unknown_session(
                "AuthenticateClient was already called in this session",
            ))
        }
        Some(Ok(session)) => session,
    };
    // ES11 ends with AuthenticateClient: the session goes whatever the answer.
    smds.sessions.end(&tid);
    let result = events_of(smds, world, tid, &session, body);
    let eid = result.as_ref().ok().map(|(eid, _)| *eid);
    let mut outcome = Outcome::of(result.map(|(_, fields)| fields));
    outcome.eid = eid;
    outcome
}

fn events_of(
    smds: &Smds,
    world: &World,
    tid: TransactionId,
    session: &Session,
    body: &Map<String, Value>,
) -> Result<(crate::ids::Eid, Map<String, Value>), Failure> {
    let raw = binary(body, "authenticateServerResponse")?;
    let proven = verify_euicc(&smds.chains, smds.now(), tid, session, &raw)?;
    let eid = proven.identity.eid;
    let ctx_params = CtxParams1::parse(proven.ctx_params1)
        .map_err(|e| malformed("authenticateServerResponse", e))?;
    let records = world.events.of_eid(eid);
    let chosen: Vec<&EventRecord> = match ctx_params.matching_id.filter(|m| !m.is_empty()) {
        // No MatchingID, or an empty one: every event of the EID; the list may be empty.
        None => records.iter().collect(),
        // An EventID: that event of the EID. At an Alternative SM-DS the device holds the
        // EventID it registered at the root (EventID2); the answer names the SM-DP+'s.
        Some(id) => {
            let found = records.iter().find(|r| {
                r.event_id.as_bytes() == id
                    || r.forwarded
                        .as_ref()
                        .is_some_and(|f| f.event_id.as_bytes() == id)
            });
            match found {
                Some(record) => vec![record],
                None => {
                    return Err(Failure::new(
                        sgp22::EVENT_UNKNOWN,
                        format!(
                            "No Event identified by the Event ID {:?} for the EID exists",
                            crate::journal::cut(&String::from_utf8_lossy(id), 64)
                        ),
                    ))
                }
            }
        }
    };
    let entries: Vec<Value> = chosen
        .iter()
        .map(|r| json!({ "eventId": &*r.event_id, "rspServerAddress": &*r.rsp_server_address }))
        .collect();
    let mut fields = answer_fields(tid);
    fields.insert("eventEntries".into(), Value::Array(entries));
    Ok((eid, fields))
}
