//! The admin API's optional bearer token (`--admin-token`): every route but the open ones needs
//! it, compared in constant time.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::api::error;

/// Routes that answer without the bearer token: liveness (container health checks) and the
/// dashboard's static files, which hold no data (the page asks for the token).
const OPEN_ROUTES: [&str; 5] = [
    "/health",
    "/",
    "/admin/dashboard",
    "/admin/dashboard/app.js",
    "/admin/dashboard/style.css",
];

/// Compares in time independent of where the strings differ, so the token cannot be guessed
/// byte by byte from answer times.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(super) async fn require_token(
    State(token): State<Option<Arc<str>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = token else {
        return next.run(request).await;
    };
    if OPEN_ROUTES.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if same_secret(p.trim().as_bytes(), token.as_bytes()) => next.run(request).await,
        _ => {
            let mut refusal = error(
                StatusCode::UNAUTHORIZED,
                "this admin API needs Authorization: Bearer <token> (the --admin-token / SMDPP_ADMIN_TOKEN of the instance)",
            );
            refusal.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"smdpp-mock admin\""),
            );
            refusal
        }
    }
}
