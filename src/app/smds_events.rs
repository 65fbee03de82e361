//! The SM-DP+'s side of ES12 and the SM-DS's calls to its root (SGP.22 §3.6.1, §3.6.3, §5.9):
//! at the mock's own SM-DS, Event Registration and Deletion go straight to the world's Event
//! Records, as an ES12 call of the SM-DP+ (its DPtls OID the caller) would; at an external
//! SM-DS (behaviour `es12`) they are real ES12 calls; cascades to `smds.root` are ES15 calls
//! of the SM-DS; elsewhere they are simulated. Every one is journaled and counted as an ES12
//! call. The claims here keep two calls from registering one event over the network at once
//! (`es2/event_registration.rs` makes those registrations ahead of their order's commit).

use std::sync::Arc;

use serde_json::json;
use tracing::{info, warn};

use super::{App, SmdsRoute, World};
use crate::es12_client::Es12Outcome;
use crate::journal::{BodyText, JournalEntry, Protocol};
use crate::metrics::{Counters, StatusLabel};
use crate::profile::Profile;
use crate::sgp22::SmdsFunction;
use crate::sgp22::StatusCode;
use crate::store::events::{EventRecord, Forwarded};

/// One call's claim on an Event Registration it makes ahead of its order's commit.
#[derive(Debug)]
pub(crate) struct Claim {
    token: u64,
    /// The cascade to the root it made, for the mock's own SM-DS.
    forwarded: Option<Forwarded>,
}

/// Why a cascade to the root did not succeed: the code of Table 54 or 56, and a message.
pub(crate) type CascadeError = (StatusCode, String);

/// The cascade's `what` at `root`: done, or Tables 54 and 56's answer (`8.9 / 4.2` when the
/// root answered an error, `8.9 / 5.1` when it gave no answer).
fn cascaded(what: &str, root: &str, outcome: Es12Outcome) -> Result<(), CascadeError> {
    match outcome {
        Es12Outcome::Done => Ok(()),
        Es12Outcome::Failed(code, message) => Err((
            crate::sgp22::SMDS_EXECUTION_ERROR,
            format!(
                "The cascade SM-DS {what} has failed. Root SM-DS {root} has raised an error: {}{message}",
                code.map(|c| format!("{c} ")).unwrap_or_default()
            ),
        )),
        Es12Outcome::Unreachable(why) => Err((
            crate::sgp22::SMDS_INACCESSIBLE,
            format!("The cascade SM-DS {what} has failed. Root SM-DS {root} was unavailable: {why}"),
        )),
    }
}

/// A cascade when the mock's SM-DS does not run.
fn not_running() -> CascadeError {
    (
        crate::sgp22::SMDS_INACCESSIBLE,
        "the mock's SM-DS does not run".into(),
    )
}

/// The source address the journal shows for the SM-DP+'s calls to its own SM-DS.
const IN_PROCESS: &str = "in-process";
/// The source address the journal shows for the mock's calls to an external SM-DS.
const OUTBOUND: &str = "outbound";
/// The caller of the SM-DP+'s ES12 calls, as the journal names it.
pub(crate) const SMDP: &str = "the mock's SM-DP+";
/// The caller of the SM-DS's ES15 calls to its root (cascading), as the journal names it.
pub(crate) const SMDS: &str = "the mock's SM-DS";

impl App {
    /// Event Registration for `profile` (ConfirmOrder or ReleaseProfile released it): at the
    /// mock's own SM-DS, its record; elsewhere, simulated.
    pub(super) fn register_event(
        &self,
        world: &World,
        profile: &Profile,
        address: &str,
        event_id: &str,
    ) {
        Counters::bump(&self.counters.smds_events_registered);
        let route = self.smds_route(world, address);
        let (SmdsRoute::Own(smds), Some(eid)) = (route, profile.eid) else {
            // Registered over ES12 by ConfirmOrder or ReleaseProfile already, or simulated.
            if let SmdsRoute::Simulated(_) = route {
                info!(smds = %address, %event_id, iccid = %profile.iccid, "ES12 RegisterEvent (simulated)");
            }
            return;
        };
        let rsp_server_address = self.activation_address(world);
        let body = json!({
            "eid": eid.to_string(),
            "rspServerAddress": rsp_server_address,
            "eventId": event_id,
            "forwardingIndicator": true,
        });
        // Cascaded to the root SM-DS before the commit (ConfirmOrder, ReleaseProfile), when the
        // mock's SM-DS has one.
        let forwarded = self.take_forwarded(eid, event_id);
        let result = world.events.register(EventRecord {
            eid,
            event_id: Arc::from(event_id),
            rsp_server_address: Arc::from(rsp_server_address.as_str()),
            owner: smds.caller.clone(),
            seq: 0,
            forwarded: forwarded.clone(),
        });
        let code = match result {
            Ok(_) => {
                info!(smds = %address, %event_id, iccid = %profile.iccid, "ES12 RegisterEvent (the mock's SM-DS)");
                None
            }
            // ConfirmOrder checked the registration under the profile's lock; only a race with
            // another registration filling the EID's records gets here (the README's behaviour
            // table): the order stands without its event.
            Err(e) => {
                warn!(smds = %address, %event_id, error = %e, "ES12 RegisterEvent refused by the mock's SM-DS: the order has no event");
                if let Some(f) = forwarded {
                    self.cascade_delete_later(f, eid);
                }
                Some(match e {
                    crate::store::events::RegisterError::Duplicate(_) => {
                        crate::sgp22::EVENT_ALREADY_IN_USE
                    }
                    _ => crate::sgp22::EXECUTION_ERROR,
                })
            }
        };
        let caller = format!("the mock's SM-DP+ ({})", smds.caller);
        self.journal_es12(IN_PROCESS, "RegisterEvent", &caller, &body, code);
    }

    /// Event Deletion for `profile` (its order ended, §3.6.3): at the mock's own SM-DS, its
    /// record goes; elsewhere, simulated.
    pub(super) fn delete_event(
        &self,
        world: &World,
        profile: &Profile,
        address: &str,
        event_id: &str,
    ) {
        Counters::bump(&self.counters.smds_events_deleted);
        let route = self.smds_route(world, address);
        let (SmdsRoute::Own(smds), Some(eid)) = (route, profile.eid) else {
            match (route, profile.eid) {
                (SmdsRoute::Es12, Some(eid)) => self.delete_at_external(address, eid, event_id),
                _ => {
                    info!(smds = %address, %event_id, iccid = %profile.iccid, "ES12 DeleteEvent (simulated)")
                }
            }
            return;
        };
        let body = json!({ "eid": eid.to_string(), "eventId": event_id });
        let code = match world.events.delete(eid, &smds.caller, event_id) {
            Some(record) => {
                info!(smds = %address, %event_id, iccid = %profile.iccid, "ES12 DeleteEvent (the mock's SM-DS)");
                // The order has ended: the root's copy goes without waiting.
                if let Some(f) = record.forwarded {
                    self.cascade_delete_later(f, eid);
                }
                None
            }
            // Registered in an earlier world (a reset since), or never: the SM-DS says so.
            None => Some(crate::sgp22::EVENT_UNKNOWN),
        };
        let caller = format!("the mock's SM-DP+ ({})", smds.caller);
        self.journal_es12(IN_PROCESS, "DeleteEvent", &caller, &body, code);
    }

    /// Registration cascading (§3.6.1.2, §5.9.1): the event of `eid` registered at the root
    /// SM-DS under an EventID of the mock's SM-DS (EventID2), naming it as where to retrieve
    /// it; Table 54's code and message when the root cannot be reached or refuses. Waits for
    /// the root: never call it under a lock.
    pub(crate) fn cascade_register(
        &self,
        root: &str,
        eid: crate::ids::Eid,
    ) -> Result<Forwarded, CascadeError> {
        let Some(smds) = self.smds() else {
            return Err(not_running());
        };
        let event_id2 = crate::ids::hex(&smdpp_rsp::crypto::random::<16>()).to_ascii_uppercase();
        let body = json!({
            "eid": eid.to_string(),
            "rspServerAddress": smds.address,
            "eventId": event_id2,
            // §3.6.1.2: the Alternative SM-DS's own registration is not forwarded further.
            "forwardingIndicator": false,
        });
        let outcome = smds
            .cascade
            .call(root, SmdsFunction::RegisterEvent, body.clone());
        self.journal_outcome(SMDS, root, "RegisterEvent", &body, &outcome);
        let forwarded = Forwarded {
            root: Arc::from(root),
            event_id: Arc::from(event_id2.as_str()),
        };
        if let Es12Outcome::Unreachable(_) = outcome {
            // No answer is not no registration (a timeout): deleted in case it was stored.
            self.cascade_delete_later(forwarded.clone(), eid);
        }
        cascaded("registration", root, outcome).map(|()| forwarded)
    }

    /// Deletion cascading (§5.9.2): the root's copy of a record of `eid`; one the root no
    /// longer has is no failure ("the SM-DS SHALL ignore this error case and continue");
    /// otherwise Table 56's code and message. Waits for the root.
    pub(crate) fn cascade_delete(
        &self,
        forwarded: &Forwarded,
        eid: crate::ids::Eid,
    ) -> Result<(), CascadeError> {
        let Some(smds) = self.smds() else {
            return Err(not_running());
        };
        let body = json!({ "eid": eid.to_string(), "eventId": &*forwarded.event_id });
        let root = &forwarded.root;
        let outcome = smds
            .cascade
            .call(root, SmdsFunction::DeleteEvent, body.clone());
        self.journal_outcome(SMDS, root, "DeleteEvent", &body, &outcome);
        match outcome {
            Es12Outcome::Failed(Some(code), _) if code == crate::sgp22::EVENT_UNKNOWN => Ok(()),
            other => cascaded("deletion", root, other),
        }
    }

    /// [`App::cascade_delete`] without waiting: for a record whose order has ended, or that
    /// could not be stored after its cascade. The outcome is journaled when it comes.
    pub(crate) fn cascade_delete_later(&self, forwarded: Forwarded, eid: crate::ids::Eid) {
        let Some(smds) = self.smds() else {
            return;
        };
        let body = json!({ "eid": eid.to_string(), "eventId": &*forwarded.event_id });
        let app = self.clone();
        let sent = body.clone();
        let root = forwarded.root.clone();
        smds.cascade.send_then(
            &forwarded.root,
            SmdsFunction::DeleteEvent,
            body,
            move |outcome| {
                app.journal_outcome(SMDS, &root, "DeleteEvent", &sent, &outcome);
            },
        );
    }

    /// Claims the Event Registration of this EID and EventID for one call, which makes it over
    /// the network ahead of its order's commit: its token, or `None` when another call holds it.
    pub(crate) fn claim_registration(&self, eid: crate::ids::Eid, event_id: &str) -> Option<u64> {
        let mut claims = self.registering.lock().unwrap_or_else(|e| e.into_inner());
        let key = (eid, event_id.to_owned());
        if claims.contains_key(&key) {
            return None;
        }
        let token = self
            .claim_tokens
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        claims.insert(
            key,
            Claim {
                token,
                forwarded: None,
            },
        );
        Some(token)
    }

    /// Records the cascade the claim `token` made, for the record the commit then stores.
    pub(crate) fn claimed_cascade(
        &self,
        eid: crate::ids::Eid,
        event_id: &str,
        token: u64,
        forwarded: Forwarded,
    ) {
        let mut claims = self.registering.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(claim) = claims
            .get_mut(&(eid, event_id.to_owned()))
            .filter(|c| c.token == token)
        {
            claim.forwarded = Some(forwarded);
        }
    }

    /// Whether the claim of this EID and EventID is still `token`'s.
    pub(crate) fn holds_claim(&self, eid: crate::ids::Eid, event_id: &str, token: u64) -> bool {
        self.registering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(eid, event_id.to_owned()))
            .is_some_and(|c| c.token == token)
    }

    /// Ends the claim `token`, if it still holds.
    pub(crate) fn release_claim(&self, eid: crate::ids::Eid, event_id: &str, token: u64) {
        let mut claims = self.registering.lock().unwrap_or_else(|e| e.into_inner());
        let key = (eid, event_id.to_owned());
        if claims.get(&key).is_some_and(|c| c.token == token) {
            claims.remove(&key);
        }
    }

    /// The cascade of the claim of this EID and EventID, whose order has just committed its
    /// registration: the claim ends ([`App::register_event`]).
    fn take_forwarded(&self, eid: crate::ids::Eid, event_id: &str) -> Option<Forwarded> {
        self.registering
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(eid, event_id.to_owned()))
            .and_then(|c| c.forwarded)
    }

    /// Registers the scenario's `smds.events` at the mock's own SM-DS in `world` (at start,
    /// and in every new world); those already there (restored from the state file) stay.
    pub(crate) fn register_preset_events(&self, world: &World) {
        let Some(smds) = self.smds() else {
            return;
        };
        let default_address = self.activation_address(world);
        for preset in world.scenario.preset_events() {
            let record = EventRecord {
                eid: preset.eid,
                event_id: Arc::from(preset.event_id.as_str()),
                rsp_server_address: Arc::from(
                    preset
                        .rsp_server_address
                        .as_deref()
                        .unwrap_or(&default_address),
                ),
                owner: smds.caller.clone(),
                seq: 0,
                forwarded: None,
            };
            if let Err(e) = world.events.register(record) {
                if !matches!(e, crate::store::events::RegisterError::Duplicate(_)) {
                    warn!(eid = %preset.eid, event_id = %preset.event_id, error = %e, "smds.events: not registered");
                }
            }
        }
    }

    /// Event Registration at the external SM-DS `address` over ES12 (behaviour `es12`), for
    /// ConfirmOrder or ReleaseProfile to wait on: the SM-DS's outcome.
    pub(crate) fn register_at_external(
        &self,
        world: &World,
        address: &str,
        eid: crate::ids::Eid,
        event_id: &str,
    ) -> Es12Outcome {
        let body = json!({
            "eid": eid.to_string(),
            "rspServerAddress": self.activation_address(world),
            "eventId": event_id,
            // §3.6.1: "For Profile download event registrations, the SM-DP+ SHALL set the
            // ForwardingIndicator to true."
            "forwardingIndicator": true,
        });
        let outcome = match self.es12.get() {
            Some(client) => client.call(address, SmdsFunction::RegisterEvent, body.clone()),
            None => Es12Outcome::Unreachable(
                "the SM-DP+ has no ES12 client: ES9+ (whose DPtls it presents) does not run".into(),
            ),
        };
        self.journal_outcome(SMDP, address, "RegisterEvent", &body, &outcome);
        outcome
    }

    /// Event Deletion at the external SM-DS `address` over ES12, waited for: undoing a
    /// registration made ahead of a commit that failed, before the call answers (a retry then
    /// finds the SM-DS as before).
    pub(crate) fn delete_at_external_now(
        &self,
        address: &str,
        eid: crate::ids::Eid,
        event_id: &str,
    ) {
        let body = json!({ "eid": eid.to_string(), "eventId": event_id });
        let outcome = match self.es12.get() {
            Some(client) => client.call(address, SmdsFunction::DeleteEvent, body.clone()),
            None => Es12Outcome::Unreachable("the SM-DP+ has no ES12 client".into()),
        };
        self.journal_outcome(SMDP, address, "DeleteEvent", &body, &outcome);
    }

    /// Event Deletion at the external SM-DS `address` over ES12, sent without waiting: the
    /// order has ended whatever the SM-DS answers (the README's behaviour table).
    pub(crate) fn delete_at_external(&self, address: &str, eid: crate::ids::Eid, event_id: &str) {
        let body = json!({ "eid": eid.to_string(), "eventId": event_id });
        let Some(client) = self.es12.get() else {
            let outcome = Es12Outcome::Unreachable("the SM-DP+ has no ES12 client".into());
            self.journal_outcome(SMDP, address, "DeleteEvent", &body, &outcome);
            return;
        };
        let app = self.clone();
        let address_owned = address.to_owned();
        let sent = body.clone();
        client.send_then(address, SmdsFunction::DeleteEvent, body, move |outcome| {
            if outcome != Es12Outcome::Done {
                warn!(smds = %address_owned, ?outcome, "ES12 DeleteEvent at an external SM-DS did not succeed; the event stays there");
            }
            app.journal_outcome(SMDP, &address_owned, "DeleteEvent", &sent, &outcome);
        });
    }

    /// Journals and counts an ES12 call `from` the mock's SM-DP+ or SM-DS ([`SMDP`],
    /// [`SMDS`]) to the external SM-DS `address`, with its outcome.
    pub(crate) fn journal_outcome(
        &self,
        from: &str,
        address: &str,
        function: &'static str,
        body: &serde_json::Value,
        outcome: &Es12Outcome,
    ) {
        let code = match outcome {
            Es12Outcome::Done => None,
            Es12Outcome::Failed(code, _) => {
                Some(code.unwrap_or(crate::sgp22::SMDS_EXECUTION_ERROR))
            }
            Es12Outcome::Unreachable(_) => Some(crate::sgp22::SMDS_INACCESSIBLE),
        };
        let callee = format!("{from} to the SM-DS {address}");
        self.journal_es12(OUTBOUND, function, &callee, body, code);
    }

    /// Journals and counts an ES12 call of the SM-DP+ (to its own SM-DS: `in-process`; to
    /// another: `outbound`), as the SM-DS listener does for an external caller's.
    fn journal_es12(
        &self,
        source: &str,
        function: &'static str,
        caller: &str,
        body: &serde_json::Value,
        code: Option<StatusCode>,
    ) {
        let status = match code {
            None => "Executed-Success",
            Some(_) => "Failed",
        };
        let response = match code {
            None => json!({ "header": { "functionExecutionStatus": { "status": status } } }),
            Some(c) => json!({ "header": { "functionExecutionStatus": { "status": status,
                "statusCodeData": { "subjectCode": c.subject, "reasonCode": c.reason } } } }),
        };
        self.metrics.request(
            Protocol::Es12,
            function,
            StatusLabel::Execution(status),
            code,
        );
        self.journal.record(JournalEntry {
            seq: 0,
            protocol: Protocol::Es12,
            time: crate::clock::es2_timestamp_shared(self.clock.now()),
            operator: None,
            certificate_subject: Some(Arc::from(caller)),
            source_ip: Arc::from(source),
            function,
            function_call_identifier: None,
            iccid: None,
            http_status: 200,
            status: Some(status),
            status_code: code.map(|c| c.to_string()),
            fault: None,
            request: BodyText::new(body.to_string().as_bytes()),
            response: BodyText::new(response.to_string().as_bytes()),
            elapsed_us: 0,
            client_disconnected: None,
        });
    }
}
