//! The admin API's optional bearer token (`--admin-token`): every route but the open ones needs
//! it, compared in constant time.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;

use crate::api::error;

/// Routes that answer without the bearer token: liveness and readiness (container health
/// checks), the API description, and the dashboard's static files, which hold no data (the
/// page asks for the token).
const OPEN_ROUTES: [&str; 7] = [
    "/health",
    "/ready",
    "/openapi.json",
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

/// What the admin API accepts from browsers: the defences against web pages the developer
/// happens to have open.
#[derive(Debug, Clone, Default)]
pub(crate) struct BrowserPolicy {
    /// Host names (besides IP addresses and `localhost`) the admin API may be called by, e.g.
    /// a compose service name.
    pub(crate) allowed_hosts: Arc<Vec<String>>,
}

/// Refuses what only a web page of another site would send:
///
/// - a `Host` that is neither an IP address, `localhost`, nor an allowed name: a DNS-rebinding
///   page reaches the admin port under a name of its own, and could read the answers (403);
/// - on a state-changing request, an `Origin` other than the admin API's own: any page may
///   send a cross-site POST, though it cannot read the answer (403);
/// - on a state-changing request with a body, a body type other than JSON (or YAML for a
///   scenario): the types a page can send without the browser asking first (415).
pub(super) async fn browser_guard(
    State(policy): State<BrowserPolicy>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text(header::HOST).unwrap_or("");
    if !host_allowed(host, &policy.allowed_hosts) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "Host {host:?} is not this admin API's: call it by an IP address or localhost, or allow the name with --admin-allowed-host (SMDPP_ADMIN_ALLOWED_HOSTS)"
            ),
        );
    }
    let changes_state = !matches!(
        *request.method(),
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if changes_state {
        if let Some(origin) = text(header::ORIGIN) {
            let own = [format!("http://{host}"), format!("https://{host}")];
            if !own.iter().any(|o| o.eq_ignore_ascii_case(origin)) {
                return error(
                    StatusCode::FORBIDDEN,
                    format!(
                        "requests from the web page at {origin} may not change this mock's state"
                    ),
                );
            }
        }
        if let Some(content_type) = text(header::CONTENT_TYPE) {
            let essence = content_type.split(';').next().unwrap_or("").trim();
            let yaml_allowed = request.uri().path() == "/admin/scenario";
            let json = essence.eq_ignore_ascii_case("application/json");
            let yaml = ["application/yaml", "application/x-yaml", "text/yaml"]
                .iter()
                .any(|y| essence.eq_ignore_ascii_case(y));
            if !(json || yaml_allowed && yaml) {
                return error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "Content-Type {essence:?}: state-changing admin requests take application/json{}",
                        if yaml_allowed { " or application/yaml" } else { "" }
                    ),
                );
            }
        }
    }
    next.run(request).await
}

/// Whether `host` (a `Host` header, with or without port) names this API: an IP address
/// literal (a rebinding page cannot make a browser send one of ours), `localhost`, or an
/// allowed name.
fn host_allowed(host: &str, allowed: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        // [::1]:8080
        Some(rest) => {
            return rest
                .split(']')
                .next()
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
        }
        None => host.rsplit_once(':').map_or(host, |(name, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                name
            } else {
                host
            }
        }),
    };
    name.parse::<std::net::IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::host_allowed;

    #[test]
    fn hosts() {
        let allowed = ["smdpp".to_string()];
        for ok in [
            "127.0.0.1:8080",
            "localhost:8080",
            "LOCALHOST",
            "[::1]:8080",
            "10.1.2.3",
            "smdpp:8080",
        ] {
            assert!(host_allowed(ok, &allowed), "{ok}");
        }
        for refused in [
            "evil.example:8080",
            "evil.example",
            "",
            "127.0.0.1.evil.example:80",
            "[evil]:80",
        ] {
            assert!(!host_allowed(refused, &allowed), "{refused}");
        }
    }
}
