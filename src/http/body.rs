//! Reading a request body within the listener's size limit and deadline: every way it can fail
//! is an [`HttpRefusal`] the engine answers and records.
//!
//! A body is read to its end even when the answer will be a refusal. Over HTTP/2, answering a
//! stream whose request is still arriving makes hyper reset it (`RST_STREAM`), and clients such
//! as curl then report "Stream error in the HTTP/2 framing layer" instead of the answer. So a
//! refused request's body is drained (read and dropped) first, up to [`DRAIN_LIMIT`] bytes
//! within the deadline; only a client that sends more than that, or too slowly, has its stream
//! reset.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use http_body_util::BodyExt;

use super::Limits;
use crate::exchange::{HttpRefusal, CLIENT_CLOSED_REQUEST};

/// Most bytes read and dropped from a body that will not be used, so that its answer arrives
/// (see the module doc). Reading them costs time, not memory.
pub(crate) const DRAIN_LIMIT: usize = 1024 * 1024;

/// What became of a body after reading it.
pub(crate) enum Read {
    /// All of it, within the limit.
    Whole(Bytes),
    /// More than the limit: the first `limit` bytes are kept, the rest (up to [`DRAIN_LIMIT`])
    /// was drained.
    TooLarge,
    /// It did not end within the deadline.
    TimedOut,
    /// The connection ended before the body did.
    Disconnected,
    /// The body could not be read (a protocol error).
    Unreadable(String),
}

/// Reads the whole body, keeping up to `keep` bytes and draining the rest up to
/// [`DRAIN_LIMIT`], within the header-read deadline.
pub(crate) async fn collect<B>(body: B, keep: usize, limits: &Limits) -> Read
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let reading = async {
        let mut body = std::pin::pin!(body);
        let mut kept: Vec<u8> = Vec::new();
        let mut total = 0usize;
        loop {
            match body.frame().await {
                None => {
                    return if total > keep {
                        Read::TooLarge
                    } else {
                        Read::Whole(Bytes::from(kept))
                    }
                }
                Some(Err(e)) => {
                    let e: axum::BoxError = e.into();
                    return if client_went_away(e.as_ref()) {
                        Read::Disconnected
                    } else {
                        Read::Unreadable(e.to_string())
                    };
                }
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue; // trailers
                    };
                    total = total.saturating_add(data.len());
                    if total <= keep {
                        kept.extend_from_slice(&data);
                    } else {
                        kept = Vec::new();
                        if total > DRAIN_LIMIT.max(keep) {
                            return Read::TooLarge;
                        }
                    }
                }
            }
        }
    };
    match tokio::time::timeout(limits.header_read_timeout, reading).await {
        Ok(read) => read,
        Err(_) => Read::TimedOut,
    }
}

/// The whole body, or why not: too large (413), too slow (408, and the connection is closed),
/// the client went away (499), or unreadable (400).
pub(crate) async fn read<B>(
    body: B,
    headers: &HeaderMap,
    limits: &Limits,
) -> Result<Bytes, HttpRefusal>
where
    B: axum::body::HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    let limit = limits.max_body_bytes;
    let too_large = || {
        HttpRefusal::new(
            413,
            format!("the request body is larger than {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // A body declared too large is refused without keeping any of it, but still drained.
    let keep = if declared.is_some_and(|n| n > limit as u64) {
        0
    } else {
        limit
    };
    let read = collect(body, keep, limits).await;
    if keep == 0 && !matches!(read, Read::Disconnected) {
        // Declared too large: the answer does not depend on what arrived.
        return Err(too_large());
    }
    match read {
        Read::Whole(bytes) => Ok(bytes),
        Read::TooLarge => Err(too_large()),
        Read::TimedOut => {
            // The body gets the header-read deadline again: a client that sends a head and
            // then stalls must not hold its connection (and its connection slot) for ever.
            let mut refusal = HttpRefusal::new(
                408,
                format!(
                    "the request body did not arrive within {:?}",
                    limits.header_read_timeout
                ),
            );
            refusal.close = true;
            Err(refusal)
        }
        Read::Disconnected => {
            // The connection ended mid-body: nothing was done, and no answer can be sent.
            let mut refusal = HttpRefusal::new(
                CLIENT_CLOSED_REQUEST,
                "the client disconnected before its request was complete",
            );
            refusal.disconnected = true;
            Err(refusal)
        }
        Read::Unreadable(e) => Err(HttpRefusal::new(
            400,
            format!("the request body could not be read: {e}"),
        )),
    }
}

/// Whether a body error means the connection ended (rather than a malformed body).
fn client_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() || h.is_canceled() || h.is_closed() {
                return true;
            }
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) {
                return true;
            }
        }
        cause = e.source();
    }
    false
}
