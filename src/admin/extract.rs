//! Extractors shared by the surfaces: the logged-in person from a Bearer JWT.

use axum::http::request::Parts;
use uuid::Uuid;

use super::AdminState;
use super::auth::AuthError;

/// A person with a valid access token who is still a member of the token's organization.
#[derive(Debug, Clone)]
pub struct AuthUser {
    /// User.
    pub user_id: Uuid,
    /// Organization every query of this request is scoped to.
    pub organization_id: Uuid,
    /// Role in that organization.
    pub role: String,
}

impl AuthUser {
    /// Owners and admins manage keys, members and plans.
    pub fn is_admin(&self) -> bool {
        self.role == "owner" || self.role == "admin"
    }
}

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
    pub async fn from_parts(parts: &Parts, state: &AdminState) -> Result<Self, AuthError> {
        let token = bearer(parts).ok_or(AuthError::BadToken)?;
        let claims = state.jwt.verify(token)?;
        // membership is checked on every request: removal takes effect before the token expires
        let role: Option<String> = sqlx::query_scalar(
            "SELECT role FROM membership WHERE user_id = $1 AND organization_id = $2",
        )
        .bind(claims.sub)
        .bind(claims.org)
        .fetch_optional(&state.pool)
        .await?;
        let role = role.ok_or(AuthError::BadToken)?;
        Ok(AuthUser {
            user_id: claims.sub,
            organization_id: claims.org,
            role,
        })
    }
}
