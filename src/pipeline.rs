//! The call pipeline every protocol engine goes through, so that a protocol is its routes, its
//! functions and its refusals, and nothing else (ES2+, ES9+, and the SM-DS's ES11 and ES12,
//! whose functions each name their protocol):
//!
//! 1. [`judge_head`]: the request head, POST only, `Content-Type` and `X-Admin-Protocol` as the
//!    scenario's strictness switches require (SGP.22 §6.5.1, the same rules for every
//!    function of the JSON binding);
//! 2. the protocol's engine runs the function;
//! 3. [`Record`]: the answer encoded with the SGP.22 response header
//!    ([`crate::sgp22::response_json`], §6.5.1.2), then one journal entry, the metrics by `(protocol, function, outcome)` and the
//!    conformance grades where the protocol grades its clients.
//!
//! A protocol plugs in by naming its functions ([`ProtocolFunction`]) and implementing
//! [`crate::exchange::Engine`] with these pieces.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;

use crate::app::{App, World};
use crate::caller::Peer;
use crate::clock::es2_timestamp_shared;
use crate::conformance::grade::Grade;
use crate::exchange::{Answer, Head, HttpRefusal, CLIENT_CLOSED_REQUEST};
use crate::fault::FaultAction;
use crate::journal::{BodyText, Disconnect, JournalEntry, Protocol};
use crate::metrics::StatusLabel;
use crate::sgp22::{response_json, ExecutionStatus, ResponseHeader, StatusCode};

/// A function of a protocol, as the pipeline needs it: which protocol, and its name on the
/// wire (the journal's `function`, the metrics' `function` label).
pub(crate) trait ProtocolFunction: Copy + fmt::Display + Send + Sync + 'static {
    /// The interface the function belongs to.
    const PROTOCOL: Protocol;
    /// The section of SGP.22 that defines the protocol's JSON binding (cited in refusals).
    const BINDING: &'static str;
    /// The function's name (`DownloadOrder`, `InitiateAuthentication`, …).
    fn name(self) -> &'static str;
    /// The interface of this call, for a listener that serves several (the SM-DS: ES11 and
    /// ES12).
    fn protocol(self) -> Protocol {
        Self::PROTOCOL
    }
    /// The section of the binding this call came on (a protocol with several: ES9+).
    fn binding(self) -> &'static str {
        Self::BINDING
    }
    /// The media type its requests declare (`Content-Type`).
    fn media_type(self) -> &'static str {
        "application/json"
    }
}

/// The refusal a request head earns under the world's settings: 405 for anything but POST,
/// 415 for a body that is not declared of the binding's media type (JSON, or ES9+ ASN.1) and 400 for a missing or malformed
/// `X-Admin-Protocol`, each only where the scenario's strictness switch asks for it.
/// `strict` is the protocol's own refusal under strict conformance (ES2+ grades its clients'
/// heads), checked after the method.
pub(crate) fn judge_head<F: ProtocolFunction>(
    world: &World,
    function: F,
    head: &Head<'_>,
    strict: impl FnOnce() -> Option<(u16, String)>,
) -> Result<(), HttpRefusal> {
    let binding = function.binding();
    if head.method != "POST" {
        let mut refusal =
            HttpRefusal::new(405, format!("{function} is called with POST ({binding})"));
        refusal.allow = Some("POST");
        return Err(refusal);
    }
    let settings = world.scenario.settings();
    if settings.conformance_strict {
        if let Some((status, message)) = strict() {
            return Err(HttpRefusal::new(status, message));
        }
    }
    let media_type = function.media_type();
    if settings.require_json_content_type && !crate::sgp22::is_media(head.content_type, media_type)
    {
        return Err(HttpRefusal::new(
            415,
            format!("Content-Type must be {media_type} ({binding})"),
        ));
    }
    if settings.require_admin_protocol_header {
        match head.admin_protocol {
            Some(v) if v.starts_with("gsma/rsp/v") => {}
            Some(v) => {
                return Err(HttpRefusal::new(
                    400,
                    format!("X-Admin-Protocol {v:?} does not have the form gsma/rsp/vX.Y.Z ({binding})"),
                ))
            }
            None => {
                return Err(HttpRefusal::new(
                    400,
                    format!("the X-Admin-Protocol header is missing ({binding}), e.g. X-Admin-Protocol: gsma/rsp/v2.5.0"),
                ))
            }
        }
    }
    Ok(())
}

/// What the journal, the metrics and the conformance report learn about one call while it is
/// handled, whichever protocol it came on; written once, by [`Record::write`].
pub(crate) struct Record<F> {
    pub(crate) function: F,
    pub(crate) certificate_subject: Option<Arc<str>>,
    pub(crate) source_ip: Arc<str>,
    pub(crate) request: Option<Bytes>,
    pub(crate) response: Option<Bytes>,
    /// The operator: the caller (ES2+), or the owner of the order (ES9+).
    pub(crate) operator: Option<Arc<str>>,
    pub(crate) call_id: Option<String>,
    /// The ICCID the call is about: named in the request, allocated by it, or the session's.
    pub(crate) iccid: Option<String>,
    pub(crate) status: Option<ExecutionStatus>,
    pub(crate) code: Option<StatusCode>,
    pub(crate) fault_name: Option<String>,
    pub(crate) fault: Option<FaultAction>,
    /// Conformance grades (ES2+ grades its operator clients; ES9+ none).
    pub(crate) grades: Vec<Grade>,
    /// The client went away before its request was complete.
    pub(crate) disconnected: bool,
}

impl<F: ProtocolFunction> Record<F> {
    /// The record of a call to `function` by `peer`, with the grades its head earned.
    pub(crate) fn new(function: F, peer: &Peer, grades: Vec<Grade>) -> Self {
        Record {
            function,
            certificate_subject: peer.certificate.as_ref().map(|c| c.subject.clone()),
            source_ip: peer.source_ip.clone(),
            request: None,
            response: None,
            operator: None,
            call_id: None,
            iccid: None,
            status: None,
            code: None,
            fault_name: None,
            fault: None,
            grades,
            disconnected: false,
        }
    }

    /// Answers an HTTP-level refusal with the JSON error.
    pub(crate) fn refusal(&mut self, refusal: HttpRefusal) -> Answer {
        let answer = refusal.answer();
        self.response = Some(answer.body.clone());
        self.disconnected |= refusal.disconnected;
        answer
    }

    /// Answers HTTP 200 with `header` and, unless it failed, `fields`: the one place a
    /// function's outcome becomes its JSON answer and its journal status.
    pub(crate) fn answer<T: Serialize>(
        &mut self,
        header: &ResponseHeader,
        fields: Option<&T>,
    ) -> Answer {
        let status = &header.function_execution_status;
        self.status = Some(status.status);
        self.code = status.status_code_data.as_ref().map(|d| StatusCode {
            subject: d.subject_code,
            reason: d.reason_code,
        });
        let body = Bytes::from(response_json(header, fields));
        self.response = Some(body.clone());
        Answer::json(200, body)
    }

    /// Answers `answer`, already encoded by the protocol's own binding (ES9+ ASN.1), with the
    /// execution status and code it carries; `journal` is what the journal shows of it.
    pub(crate) fn encoded(
        &mut self,
        status: ExecutionStatus,
        code: Option<StatusCode>,
        answer: Answer,
        journal: Bytes,
    ) -> Answer {
        self.status = Some(status);
        self.code = code;
        self.response = Some(journal);
        answer
    }

    /// The call's answer never leaves (a fault rule closes the connection): journaled as
    /// unanswered.
    pub(crate) fn unanswered(&mut self) {
        self.status = None;
        self.code = None;
        self.response = None;
    }

    /// Journals the call (its answer had `http_status`), counts it and records its grades;
    /// the journal sequence number.
    pub(crate) fn write(self, app: &App, http_status: u16, elapsed: Duration) -> u64 {
        let request = BodyText::new(self.request.as_deref().unwrap_or_default());
        let response = BodyText::new(self.response.as_deref().unwrap_or_default());
        let label = match self.status {
            Some(status) => StatusLabel::Execution(status.as_str()),
            None => StatusLabel::Http(http_status),
        };
        app.metrics.request(
            self.function.protocol(),
            self.function.name(),
            label,
            self.code,
        );
        // Conformance keeps an excerpt only with a failure; don't build one for every call.
        let excerpt = if self.grades.iter().any(|g| !g.passed) {
            request.to_string_lossy_prefix(300)
        } else {
            String::new()
        };
        let time = es2_timestamp_shared(app.clock.now());
        let seq = app.journal.record(JournalEntry {
            seq: 0,
            protocol: self.function.protocol(),
            time: time.clone(),
            operator: self.operator.clone(),
            certificate_subject: self.certificate_subject,
            source_ip: self.source_ip,
            function: self.function.name(),
            function_call_identifier: self.call_id,
            iccid: self.iccid,
            http_status,
            status: self.status.map(ExecutionStatus::as_str),
            status_code: self.code.map(|c| c.to_string()),
            fault: self.fault_name,
            request,
            response,
            elapsed_us: elapsed.as_micros() as u64,
            client_disconnected: self.disconnected.then_some(Disconnect::RequestIncomplete),
        });
        if !self.grades.is_empty() {
            app.conformance.record(
                &self.grades,
                &crate::conformance::Context {
                    time,
                    operator: self.operator,
                    excerpt,
                    journal_seq: Some(seq),
                },
            );
        }
        seq
    }
}

/// A call hyper dropped before its answer left: the journal entry of a call that was carried
/// out (`recorded`, its answer held back by a fault delay) is marked `answerNotSent`; a call
/// dropped while its body was still arriving changed nothing and is journaled as
/// `requestIncomplete`.
pub(crate) fn abandoned<F: ProtocolFunction>(
    app: &App,
    function: F,
    peer: &Peer,
    recorded: Option<u64>,
    elapsed: Duration,
) {
    match recorded {
        Some(seq) => app.journal.annotate(seq, |e| {
            e.client_disconnected = Some(Disconnect::AnswerNotSent);
        }),
        None => {
            let mut record = Record::new(function, peer, Vec::new());
            record.disconnected = true;
            record.write(app, CLIENT_CLOSED_REQUEST, elapsed);
        }
    }
}
