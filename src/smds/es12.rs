//! ES12 (SGP.22 §5.9, JSON binding §6.5.2.13-14): an SM-DP+ registers and deletes Event
//! Records. The caller is the OID (subjectAltName registeredID) of its TLS client certificate
//! (§5.9.1: "the function caller identity ... received in the TLS Certificate"): EventIDs are
//! unique per caller, and a caller deletes only its own records.

use std::sync::Arc;

use serde_json::{Map, Value};
use tracing::info;

use super::{Record, Smds};
use crate::app::World;
use crate::caller::Peer;
use crate::es9::{text, Failure, Outcome};
use crate::ids::Eid;
use crate::metrics::Counters;
use crate::sgp22;
use crate::store::events::{self, EventRecord, RegisterError};

/// ES12.RegisterEvent (§5.9.1): stores the record with its caller; `8.9.5 / 3.3` for an
/// EventID the caller already used.
pub(super) fn register(
    smds: &Smds,
    world: &Arc<World>,
    body: &Map<String, Value>,
    peer: &Peer,
    record: &mut Record,
) -> Outcome {
    Outcome::of(register_inner(smds, world, body, peer, record).map(|()| Map::new()))
}

fn register_inner(
    smds: &Smds,
    world: &World,
    body: &Map<String, Value>,
    peer: &Peer,
    record: &mut Record,
) -> Result<(), Failure> {
    let owner = caller(peer, body, record)?;
    let eid = eid(body)?;
    let address = text(body, "rspServerAddress")?;
    crate::ids::check_server_address(address).map_err(|e| {
        Failure::new(sgp22::FORMAT_INVALID, e.to_string()).about("rspServerAddress")
    })?;
    let event_id = event_id(body)?;
    // Mandatory (Table 53); a root SM-DS ignores its value (§5.9.1).
    let forwarding = match body.get("forwardingIndicator") {
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(Failure::new(
                sgp22::FORMAT_INVALID,
                "forwardingIndicator must be a boolean",
            )
            .about("forwardingIndicator"))
        }
        None => {
            return Err(Failure::new(
                sgp22::MANDATORY_ELEMENT_MISSING,
                "forwardingIndicator is missing",
            )
            .about("forwardingIndicator"))
        }
    };
    // Refused here before anything is cascaded: a duplicate, no room.
    world
        .events
        .check(eid, &owner, event_id)
        .map_err(register_failure)?;
    let forwarded = match (forwarding, world.scenario.smds_root()) {
        (true, Some(root)) => Some(
            smds.app
                .cascade_register(root, eid)
                .map_err(|(code, message)| Failure::new(code, message))?,
        ),
        _ => None,
    };
    let result = world.events.register(EventRecord {
        eid,
        event_id: Arc::from(event_id),
        rsp_server_address: Arc::from(address),
        owner: Arc::from(owner.as_str()),
        seq: 0,
        forwarded: forwarded.clone(),
    });
    let registered = match result {
        Ok(r) => r,
        Err(e) => {
            // Another registration took the room meanwhile: the root's copy goes again.
            if let Some(f) = forwarded {
                smds.app.cascade_delete_later(f, eid);
            }
            return Err(register_failure(e));
        }
    };
    Counters::bump(&smds.app.counters.smds_events_registered);
    info!(%eid, event_id = %crate::journal::cut(&registered.event_id, 64), caller = %owner, "ES12 RegisterEvent");
    Ok(())
}

/// ES12.DeleteEvent (§5.9.2): deletes the record of this caller, EID and EventID; `8.9.5 / 3.9`
/// when there is none (another caller's record is none of this one's).
pub(super) fn delete(
    smds: &Smds,
    world: &Arc<World>,
    body: &Map<String, Value>,
    peer: &Peer,
    record: &mut Record,
) -> Outcome {
    Outcome::of(delete_inner(smds, world, body, peer, record))
}

fn delete_inner(
    smds: &Smds,
    world: &World,
    body: &Map<String, Value>,
    peer: &Peer,
    record: &mut Record,
) -> Result<Map<String, Value>, Failure> {
    let owner = caller(peer, body, record)?;
    let eid = eid(body)?;
    let event_id = event_id(body)?;
    let unknown = || {
        Failure::new(
            sgp22::EVENT_UNKNOWN,
            "The targeted Event Record doesn't exist (for this caller, EID and EventID)",
        )
        .about("eventId")
    };
    let record = world
        .events
        .find(eid, &owner, event_id)
        .ok_or_else(unknown)?;
    if let Some(f) = &record.forwarded {
        smds.app
            .cascade_delete(f, eid)
            .map_err(|(code, message)| Failure::new(code, message))?;
    }
    // A deletion of the same record meanwhile (while the root was called) took it; one
    // registered again under its key since is not this one.
    if !world.events.delete_exact(&record) {
        return Err(unknown());
    }
    Counters::bump(&smds.app.counters.smds_events_deleted);
    info!(%eid, event_id = %crate::journal::cut(event_id, 64), caller = %owner, "ES12 DeleteEvent");
    Ok(Map::new())
}

/// The caller: the OID of its TLS client certificate. The request header (§6.5.1.3, present
/// on ES12 unlike ES9+ and ES11) is checked and its functionCallIdentifier journaled.
fn caller(peer: &Peer, body: &Map<String, Value>, record: &mut Record) -> Result<String, Failure> {
    let header = body.get("header").and_then(Value::as_object);
    let member = |name: &str| header.and_then(|h| h.get(name)).and_then(Value::as_str);
    record.call_id = member("functionCallIdentifier")
        .map(|id| crate::journal::cut(id, crate::journal::IDENTIFIER_LIMIT));
    for name in ["functionRequesterIdentifier", "functionCallIdentifier"] {
        if member(name).is_none() {
            return Err(Failure::new(
                sgp22::MANDATORY_ELEMENT_MISSING,
                format!(
                    "header.{name} is missing: ES12 requests carry the request header (§6.5.1.3)"
                ),
            )
            .about("header"));
        }
    }
    let Some(certificate) = &peer.certificate else {
        return Err(Failure::new(
            sgp22::REQUESTER_UNKNOWN,
            "ES12 is called over mutual TLS (§5.9): this connection presented no client certificate",
        ));
    };
    match &certificate.registered_id {
        Some(oid) if oid.len() <= events::MAX_OWNER => Ok(oid.clone()),
        _ => Err(Failure::new(
            sgp22::REQUESTER_UNKNOWN,
            format!(
                "the client certificate ({}) names no SM-DP+ or SM-DS OID (subjectAltName registeredID), which identifies an ES12 caller (§5.9.1)",
                crate::journal::cut(&certificate.subject, 200)
            ),
        )),
    }
}

/// The `eid` member.
fn eid(body: &Map<String, Value>) -> Result<Eid, Failure> {
    text(body, "eid")?
        .parse()
        .map_err(|e: crate::ids::FormatError| {
            Failure::new(sgp22::FORMAT_INVALID, e.to_string()).about("eid")
        })
}

/// The `eventId` member, within its bound.
fn event_id(body: &Map<String, Value>) -> Result<&str, Failure> {
    let id = text(body, "eventId")?;
    events::check_length("eventId", id, events::MAX_EVENT_ID)
        .map_err(|e| Failure::new(sgp22::FORMAT_INVALID, e.to_string()).about("eventId"))?;
    Ok(id)
}

/// The answer to a record the registry would not store.
fn register_failure(error: RegisterError) -> Failure {
    match error {
        RegisterError::Duplicate(_) => {
            Failure::new(sgp22::EVENT_ALREADY_IN_USE, error.to_string()).about("eventId")
        }
        RegisterError::Length { field, .. } => {
            Failure::new(sgp22::FORMAT_INVALID, error.to_string()).about(field)
        }
        RegisterError::EidFull(_) | RegisterError::Full(_) => {
            Failure::new(sgp22::EXECUTION_ERROR, error.to_string())
        }
    }
}
