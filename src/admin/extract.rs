//! Extractors shared by the surfaces: the logged-in person from a Bearer JWT.

use axum::http::request::Parts;

use super::AdminState;
pub use crate::domain::accounts::AuthUser;
use crate::domain::{DomainError, Unauthorized};

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get("authorization")?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl AuthUser {
    /// Authenticate a request. Each surface wraps this in an extractor whose rejection is its
    /// own error shape.
    pub async fn from_parts(parts: &Parts, state: &AdminState) -> Result<Self, DomainError> {
        let token = bearer(parts).ok_or(DomainError::Unauthorized(Unauthorized::BadToken))?;
        crate::domain::accounts::authenticate(&state.pool, &state.jwt, token).await
    }
}

/// The client's address as the gateway saw it (`x-catraca-client-ip`, which the gateway sets
/// and never takes from the client). `None` for a call made to the admin listener directly.
pub fn client_ip(headers: &axum::http::HeaderMap) -> Option<std::net::IpAddr> {
    headers
        .get(crate::gateway::CLIENT_IP)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
