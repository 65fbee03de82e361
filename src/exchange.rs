//! The contract between the HTTP layer and a protocol engine, in plain types: the HTTP layer
//! routes a request to an [`Engine`] function, reads the body within its limits and hands over
//! a [`Call`]; the engine decides everything else and returns an [`Exchange`]: the answer, the
//! journal entry it made, and what a fault rule asks of the transport (a delay, a dropped
//! connection). ES2+ is one engine (`es2`); ES9+ plugs in the same way.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::caller::Peer;

/// A protocol served on an HTTP listener.
pub(crate) trait Engine: Send + Sync + 'static {
    /// The functions of the protocol.
    type Function: Copy + Send + Sync + 'static;

    /// What [`Engine::admit`] settled that the call must keep (the state it was judged in).
    type Admitted: Send;

    /// The function a request path calls, if any.
    fn route(&self, path: &str) -> Option<Self::Function>;

    /// Whether a request with this head may go on to have its body read; otherwise the refusal,
    /// which is then passed to [`Engine::call`] to be answered and recorded. Either way, what
    /// the head was judged in goes with the call.
    fn admit(
        &self,
        function: Self::Function,
        head: &Head<'_>,
    ) -> (Self::Admitted, Result<(), HttpRefusal>);

    /// Answers one call and records it.
    fn call(&self, call: Call<'_, Self::Function, Self::Admitted>) -> Exchange;

    /// Records that the client of a call went away: while its request was still arriving
    /// (`recorded` is `None`: nothing was done), or after the call was carried out and recorded
    /// but before its answer could be sent.
    fn abandoned(
        &self,
        function: Self::Function,
        peer: &Peer,
        recorded: Option<u64>,
        elapsed: Duration,
    );

    /// The `X-Admin-Protocol` every answer of the listener carries (SGP.22 §6.2).
    fn announce(&self) -> Arc<str>;
}

/// What the engine may look at before the body is read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    /// The HTTP method.
    pub method: &'a str,
    /// `Content-Type`, when present and readable.
    pub content_type: Option<&'a str>,
    /// `X-Admin-Protocol`, when present and readable.
    pub admin_protocol: Option<&'a str>,
}

/// The HTTP status journaled for a call whose client went away before it could be answered
/// (nginx's "client closed request").
pub(crate) const CLIENT_CLOSED_REQUEST: u16 = 499;

/// An HTTP-level refusal (4xx), before the engine's own processing of the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HttpRefusal {
    /// The HTTP status.
    pub status: u16,
    /// What the client is told.
    pub message: String,
    /// The `Allow` header (for 405).
    pub allow: Option<&'static str>,
    /// The `Retry-After` header, in seconds (for 503).
    pub retry_after: Option<u32>,
    /// Close the connection after answering (a client that stalls in its body).
    pub close: bool,
    /// The client went away mid-body: nobody will read the answer.
    pub disconnected: bool,
}

impl HttpRefusal {
    /// A refusal with `status` and `message`.
    pub(crate) fn new(status: u16, message: impl Into<String>) -> Self {
        HttpRefusal {
            status,
            message: message.into(),
            allow: None,
            retry_after: None,
            close: false,
            disconnected: false,
        }
    }

    /// The answer: [`error_body`] with the status and message, and the refusal's headers.
    pub(crate) fn answer(&self) -> Answer {
        Answer {
            status: self.status,
            body: Bytes::from(error_body(self.status, &self.message).to_string()),
            media_type: JSON,
            allow: self.allow,
            retry_after: self.retry_after,
            close: self.close,
        }
    }
}

/// One call, as the HTTP layer hands it to the engine.
#[derive(Debug)]
pub(crate) struct Call<'a, F, A> {
    /// The function the path names.
    pub function: F,
    /// What [`Engine::admit`] settled.
    pub admitted: A,
    /// Who sent it.
    pub peer: &'a Peer,
    /// The whole body, when it arrived within the limits (also when the head was refused: the
    /// engine grades the whole request even then).
    pub body: Option<Bytes>,
    /// The refusal the request already earned: from [`Engine::admit`], or from the body limits.
    pub refusal: Option<HttpRefusal>,
    /// When the request arrived.
    pub started: Instant,
}

/// The media type of JSON answers.
const JSON: &str = "application/json";

/// An answer in plain terms: the HTTP layer adds its `Content-Type` (none on a 204).
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Bytes,
    /// Its media type: JSON, or a protocol's own (SGP.22 §6.6's ASN.1).
    pub media_type: &'static str,
    /// The `Allow` header, for 405.
    pub allow: Option<&'static str>,
    /// The `Retry-After` header, in seconds, for 503.
    pub retry_after: Option<u32>,
    /// Send `Connection: close` and close after answering.
    pub close: bool,
}

impl Answer {
    /// A JSON answer with `status`.
    pub(crate) fn json(status: u16, body: Bytes) -> Self {
        Answer::of(status, body, JSON)
    }

    /// An answer with `status` whose body is of `media_type`.
    pub(crate) fn of(status: u16, body: Bytes, media_type: &'static str) -> Self {
        Answer {
            status,
            body,
            media_type,
            allow: None,
            retry_after: None,
            close: false,
        }
    }
}

/// What became of one call.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    /// The answer to send.
    pub answer: Answer,
    /// The `X-Admin-Protocol` of the world the call ran in (SGP.22 §6.2).
    pub announce: Arc<str>,
    /// The journal entry the engine made of the call.
    pub recorded: u64,
    /// Wait this long before answering (a fault rule).
    pub delay: Option<Duration>,
    /// Drop the connection instead of answering (a fault rule).
    pub drop_connection: bool,
}

/// The one JSON error shape of every API: `{"error", "status", "message"}`.
pub(crate) fn error_body(status: u16, message: &str) -> serde_json::Value {
    serde_json::json!({
        "error": reason_phrase(status),
        "status": status,
        "message": message,
    })
}

/// [`error_body`] with `field` added (the offending parameter, diagnostics…).
pub(crate) fn error_body_with(
    status: u16,
    message: &str,
    field: &str,
    value: serde_json::Value,
) -> serde_json::Value {
    let mut body = error_body(status, message);
    if let Some(object) = body.as_object_mut() {
        object.insert(field.to_owned(), value);
    }
    body
}

/// The standard reason phrase of `status`, or `error` for a status without one (499).
fn reason_phrase(status: u16) -> &'static str {
    axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("error")
}
