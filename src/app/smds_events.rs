//! The SM-DP+'s side of ES12 when the SM-DS is the mock's own (SGP.22 §3.6.1, §3.6.3): Event
//! Registration and Deletion go straight to the world's Event Records, as an ES12 call of the
//! SM-DP+ (its DPtls OID the caller) would, and are journaled and counted as ES12 calls. At
//! any other SM-DS address they are simulated (the scenario's `smds.addresses`).

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
use crate::store::events::EventRecord;

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
        let (SmdsRoute::Own(smds), Some(eid)) = (self.smds_route(world, address), profile.eid)
        else {
            // Registered over ES12 by ConfirmOrder or ReleaseProfile already, or simulated.
            if let SmdsRoute::Simulated(_) = self.smds_route(world, address) {
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
        let result = world.events.register(EventRecord {
            eid,
            event_id: Arc::from(event_id),
            rsp_server_address: Arc::from(rsp_server_address.as_str()),
            owner: smds.caller.clone(),
            seq: 0,
            forwarded: None,
        });
        match &result {
            Ok(_) => {
                info!(smds = %address, %event_id, iccid = %profile.iccid, "ES12 RegisterEvent (the mock's SM-DS)")
            }
            // ConfirmOrder checked the registration under the profile's lock; only a race with
            // another caller filling the EID's records gets here.
            Err(e) => {
                warn!(smds = %address, %event_id, error = %e, "ES12 RegisterEvent refused by the mock's SM-DS")
            }
        }
        let code = result.err().map(|_| crate::sgp22::SMDS_EXECUTION_ERROR);
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
            Some(_) => {
                info!(smds = %address, %event_id, iccid = %profile.iccid, "ES12 DeleteEvent (the mock's SM-DS)");
                None
            }
            // Registered in an earlier world (a reset since), or never: the SM-DS says so.
            None => Some(crate::sgp22::EVENT_UNKNOWN),
        };
        let caller = format!("the mock's SM-DP+ ({})", smds.caller);
        self.journal_es12(IN_PROCESS, "DeleteEvent", &caller, &body, code);
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

    /// Event Deletion at the external SM-DS `address` over ES12, sent without waiting: the
    /// order has ended whatever the SM-DS answers (the README's behaviour table).
    fn delete_at_external(&self, address: &str, eid: crate::ids::Eid, event_id: &str) {
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
