//! Optional credentials: HTTP basic auth and/or a bearer token for everything but the
//! public status page, `/healthz` and badges of public sites. The middleware marks each
//! request with whether it carried a valid credential; badge handlers use the mark to
//! decide about non-public sites.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;

use super::server::WebState;

/// Whether the request carried a valid credential (always true without auth configured).
#[derive(Debug, Clone, Copy)]
pub struct Authenticated(pub bool);

/// Paths anyone may read; badge handlers decide per site.
fn is_public(path: &str) -> bool {
    path == "/status"
        || path.starts_with("/status/")
        || path == "/healthz"
        || path.starts_with("/badge/")
}

/// Compares without stopping at the first difference, so response time does not tell how
/// much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether `headers` hold a credential the settings accept.
pub fn valid(state: &WebState, headers: &HeaderMap) -> bool {
    let args = &state.args;
    if !args.auth_enabled() {
        return true;
    }
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, credential) = value.split_once(' ').unwrap_or((value, ""));
    let credential = credential.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return args
            .bearer_token
            .as_ref()
            .is_some_and(|t| same(t.as_bytes(), credential.as_bytes()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Some((user, password)) = &args.basic_auth else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(credential) else {
            return false;
        };
        let expected = format!("{user}:{password}");
        return same(expected.as_bytes(), &decoded);
    }
    false
}

/// The middleware: refuses unauthenticated requests to internal paths with 401.
pub async fn require(
    State(state): State<Arc<WebState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let ok = valid(&state, request.headers());
    if !ok && !is_public(request.uri().path()) {
        return challenge(&state);
    }
    request.extensions_mut().insert(Authenticated(ok));
    next.run(request).await
}

/// A 401 asking for the configured kind of credential.
pub fn challenge(state: &WebState) -> Response {
    let scheme = if state.args.basic_auth.is_some() {
        "Basic realm=\"sitewatch\", charset=\"UTF-8\""
    } else {
        "Bearer realm=\"sitewatch\""
    };
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, scheme)],
        "authentication required\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_is_exact() {
        assert!(same(b"secret", b"secret"));
        assert!(!same(b"secret", b"secreT"));
        assert!(!same(b"secret", b"secret2"));
        assert!(!same(b"", b"x"));
    }
}
