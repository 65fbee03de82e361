//! What the JSON APIs besides ES2+ share (the platform API in `platform`, the admin API in
//! `admin`): the one JSON error shape, query parameters, paging.

// Helpers return the finished HTTP answer as their error, which handlers pass straight on; it
// is large, but it is also the last thing a request allocates.
#![allow(clippy::result_large_err)]

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// Default and largest page size of list endpoints.
pub(crate) const DEFAULT_LIMIT: usize = 100;
/// Largest page size.
pub(crate) const MAX_LIMIT: usize = 1000;

/// A JSON body with the status.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

/// The JSON error every API answers with: `{"error", "status", "message"}`, plus the offending
/// query parameter when there is one.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json_response(
        status,
        &crate::exchange::error_body(status.as_u16(), &message.into()),
    )
}

/// A 400 naming the query parameter that is wrong.
pub(crate) fn bad_parameter(name: &str, message: impl std::fmt::Display) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &crate::exchange::error_body_with(
            400,
            &format!("{name}: {message}"),
            "parameter",
            name.into(),
        ),
    )
}

/// Parses `limit` (default [`DEFAULT_LIMIT`], 1 to [`MAX_LIMIT`]).
pub(crate) fn parse_limit(value: Option<&str>) -> Result<usize, Response> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad_parameter(
                    "limit",
                    format!("{v:?} is not a number from 1 to {MAX_LIMIT}"),
                )
            }),
    }
}

/// Parses a `cursor` from a previous page.
pub(crate) fn parse_cursor(value: Option<&str>) -> Result<usize, Response> {
    match value {
        None => Ok(0),
        Some(v) => v
            .strip_prefix('p')
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| {
                bad_parameter(
                    "cursor",
                    format!("{v:?} is not a cursor this server handed out"),
                )
            }),
    }
}

/// The cursor of the page that starts at inventory position `next`.
pub(crate) fn cursor(next: usize) -> String {
    format!("p{next}")
}

/// One path parameter, taken as a `T` (a `String` as it is); its rejection (e.g. `%FF`, or a
/// value that is not a `T`) is a JSON 400 like every other error, naming the parameter.
pub(crate) struct Segment<T = String>(pub T);

/// What a [`Segment`] can hold: its parameter's name in errors, and how it is read.
pub(crate) trait SegmentValue: Sized {
    /// The name a refusal gives.
    const NAME: &'static str;
    /// The value of `text`, or why not.
    fn parse(text: String) -> Result<Self, String>;
}

impl SegmentValue for String {
    const NAME: &'static str = "path";
    fn parse(text: String) -> Result<Self, String> {
        Ok(text)
    }
}

impl<S: Send + Sync, T: SegmentValue> axum::extract::FromRequestParts<S> for Segment<T> {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(text)) => T::parse(text)
                .map(Segment)
                .map_err(|e| bad_parameter(T::NAME, e)),
            Err(e) => Err(bad_parameter("path", e.body_text())),
        }
    }
}

/// A JSON request body read as a `T`; one that is not is a JSON 400 (`body: …`).
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(axum::response::IntoResponse::into_response)?;
        serde_json::from_slice(&body)
            .map(JsonBody)
            .map_err(|e| error(StatusCode::BAD_REQUEST, format!("body: {e}")))
    }
}
