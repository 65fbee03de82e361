//! Reading a request body whole, within the listener's size limit and deadline: every way it
//! can fail is a [`HttpRefusal`] the engine answers and records.

use axum::body::Bytes;
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, Limited};

use super::Limits;
use crate::exchange::{HttpRefusal, CLIENT_CLOSED_REQUEST};

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
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    // The body gets the header-read deadline again: a client that sends a head and then stalls
    // must not hold its connection (and its connection slot) for ever.
    let reading = Limited::new(body, limit).collect();
    let Ok(read) = tokio::time::timeout(limits.header_read_timeout, reading).await else {
        let mut refusal = HttpRefusal::new(
            408,
            format!(
                "the request body did not arrive within {:?}",
                limits.header_read_timeout
            ),
        );
        refusal.close = true;
        return Err(refusal);
    };
    match read {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) if client_went_away(e.as_ref()) => {
            // The connection ended mid-body: nothing was done, and no answer can be sent.
            let mut refusal = HttpRefusal::new(
                CLIENT_CLOSED_REQUEST,
                "the client disconnected before its request was complete",
            );
            refusal.disconnected = true;
            Err(refusal)
        }
        Err(e) => Err(HttpRefusal::new(
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
