//! Routing on a listener that serves one protocol engine ([`Engine`]) and, beside it, an axum
//! router for everything else (the platform API, unknown paths). This file knows HTTP, not the
//! protocol: it asks the engine which function a path calls and whether the head lets the body
//! be read, reads the body within the limits ([`super::body`]), hands the engine a [`Call`],
//! and sends its [`Answer`], after a fault's delay or not at all.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use tower_service::Service;

use super::{body, CloseConnection, Limits};
use crate::caller::Peer;
use crate::exchange::{Answer, Call, Engine, Head};

/// The `X-Admin-Protocol` header name (SGP.22 §6.2), parsed once.
const ADMIN_PROTOCOL_HEADER: HeaderName =
    HeaderName::from_static(crate::sgp22::ADMIN_PROTOCOL_HEADER);

/// The service of one listener: `engine`'s functions, and `fallback` for every other path.
pub(crate) struct EngineService<E> {
    engine: Arc<E>,
    fallback: axum::Router,
    limits: Limits,
}

impl<E> Clone for EngineService<E> {
    fn clone(&self) -> Self {
        EngineService {
            engine: self.engine.clone(),
            fallback: self.fallback.clone(),
            limits: self.limits.clone(),
        }
    }
}

impl<E: Engine> EngineService<E> {
    /// Routes to `engine`, then `fallback` (whose handlers find the [`Peer`] in the request's
    /// extensions), with the listener's `limits`.
    pub(crate) fn new(engine: Arc<E>, fallback: axum::Router, limits: Limits) -> Self {
        EngineService {
            engine,
            fallback,
            limits,
        }
    }

    /// Answers one request that arrived from `peer`.
    pub(crate) async fn call<B>(
        &self,
        request: axum::http::Request<B>,
        peer: &Arc<Peer>,
    ) -> Response
    where
        B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let Some(function) = self.engine.route(request.uri().path()) else {
            return self.fall_back(request, peer).await;
        };
        let started = Instant::now();
        let (parts, incoming) = request.into_parts();
        let text = |name: &HeaderName| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let head = Head {
            method: parts.method.as_str(),
            content_type: text(&header::CONTENT_TYPE),
            admin_protocol: text(&ADMIN_PROTOCOL_HEADER),
        };
        let mut departure = Departure {
            engine: &*self.engine,
            function,
            peer,
            started,
            recorded: None,
            armed: true,
        };
        let (admitted, admission) = self.engine.admit(function, &head);
        let (body, refusal) = match admission {
            Err(refusal) => {
                // Refused on its head, but the body is read all the same (see `body`), and
                // kept for the engine to grade when it is within the limit.
                let read = body::collect(incoming, self.limits.max_body_bytes, &self.limits);
                match read.await {
                    body::Read::Whole(bytes) => (Some(bytes), Some(refusal)),
                    _ => (None, Some(refusal)),
                }
            }
            Ok(()) => match body::read(incoming, &parts.headers, &self.limits).await {
                Ok(bytes) => (Some(bytes), None),
                Err(refusal) => (None, Some(refusal)),
            },
        };
        let exchange = self.engine.call(Call {
            function,
            admitted,
            peer,
            body,
            refusal,
            started,
        });
        // Recorded first: a fault's delay may outlast the client, and the call has happened.
        departure.recorded = Some(exchange.recorded);
        let response = answer(
            exchange.answer,
            &exchange.announce,
            parts.method == Method::HEAD,
        );
        if let Some(delay) = exchange.delay {
            tokio::time::sleep(delay).await;
        }
        departure.armed = false;
        if exchange.drop_connection {
            let mut dropped = StatusCode::INTERNAL_SERVER_ERROR.into_response();
            dropped.extensions_mut().insert(CloseConnection);
            return dropped;
        }
        response
    }

    /// Any other path: the fallback router, whose answers announce the protocol as well. Its
    /// routes take no body, but it is read (up to the limit, the rest drained) before the
    /// answer, as for every answer (see `body`).
    async fn fall_back<B>(&self, request: axum::http::Request<B>, peer: &Arc<Peer>) -> Response
    where
        B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let (mut parts, incoming) = request.into_parts();
        let body = match body::collect(incoming, self.limits.max_body_bytes, &self.limits).await {
            body::Read::Whole(bytes) => Body::from(bytes),
            _ => Body::empty(),
        };
        parts.extensions.insert(peer.clone());
        let request = axum::http::Request::from_parts(parts, body);
        let mut response = match self.fallback.clone().call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        if !response.headers().contains_key(&ADMIN_PROTOCOL_HEADER) {
            announce(&mut response, &self.engine.announce());
        }
        response
    }
}

/// An engine's answer as an HTTP response.
fn answer(answer: Answer, announced: &str, head_only: bool) -> Response {
    // A HEAD answer has no body (hyper's HTTP/2 server would send one anyway), only the
    // length a GET would have had.
    let length = answer.body.len();
    let media_type = answer.media_type;
    let body = if head_only {
        Body::empty()
    } else {
        Body::from(answer.body)
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    // An answer without a body (204: ES9+ HandleNotification) has no media type (§6.2).
    if status != StatusCode::NO_CONTENT {
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    }
    if head_only {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    }
    if let Some(allow) = answer.allow {
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if let Some(seconds) = answer.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if answer.close {
        headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    announce(&mut response, announced);
    response
}

fn announce(response: &mut Response, announced: &str) {
    // The usual value needs no validation or copy.
    let value = if announced == crate::sgp22::ADMIN_PROTOCOL {
        Ok(HeaderValue::from_static(crate::sgp22::ADMIN_PROTOCOL))
    } else {
        HeaderValue::from_str(announced)
    };
    if let Ok(value) = value {
        response.headers_mut().insert(ADMIN_PROTOCOL_HEADER, value);
    }
}

/// Tells the engine about a call whose client went away: hyper drops the request's future when
/// the connection closes, and this guard's drop is the only sign of it.
struct Departure<'a, E: Engine> {
    engine: &'a E,
    function: E::Function,
    peer: &'a Peer,
    started: Instant,
    /// `None` until the call is recorded; then its journal entry.
    recorded: Option<u64>,
    armed: bool,
}

impl<E: Engine> Drop for Departure<'_, E> {
    fn drop(&mut self) {
        if self.armed {
            self.engine.abandoned(
                self.function,
                self.peer,
                self.recorded,
                self.started.elapsed(),
            );
        }
    }
}
