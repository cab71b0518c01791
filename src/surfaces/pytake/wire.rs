//! PyTake's wire: its error shape (`{detail, status_code, error_code}`), extractors that
//! reject in it (a body that does not match the schema is a 422, as FastAPI/Pydantic answer;
//! a value that breaks a rule is a 400), and the JSON of a user.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::admin::extract::bearer;
use crate::admin::{AdminState, rfc3339};
use crate::domain::pytake::{Actor, Me};
use crate::domain::{Conflict, DomainError, Unauthorized};

/// PyTake's error: status plus `{"detail", "status_code", "error_code"}`.
#[derive(Debug)]
pub struct PyError {
    status: StatusCode,
    detail: String,
    error_code: &'static str,
    retry_after: Option<u64>,
}

impl PyError {
    /// An error of `status`.
    pub fn new(status: StatusCode, error_code: &'static str, detail: impl Into<String>) -> Self {
        PyError {
            status,
            detail: detail.into(),
            error_code,
            retry_after: None,
        }
    }

    /// 400 `bad_request`: a value that breaks a rule.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        PyError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 401 `invalid_token`.
    pub fn unauthorized() -> Self {
        PyError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            Unauthorized::BadToken.to_string(),
        )
    }
}

impl IntoResponse for PyError {
    fn into_response(self) -> Response {
        let body = json!({
            "detail": self.detail,
            "status_code": self.status.as_u16(),
            "error_code": self.error_code,
        });
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

impl From<DomainError> for PyError {
    fn from(e: DomainError) -> Self {
        use StatusCode as S;
        match e {
            DomainError::Invalid { .. } => PyError::bad_request(e.to_string()),
            DomainError::NotFound(what) => PyError::new(
                S::NOT_FOUND,
                "not_found",
                format!("{} not found", what.as_str()),
            ),
            DomainError::Forbidden(_) => PyError::new(
                S::FORBIDDEN,
                "forbidden",
                "your role does not allow this in this organization",
            ),
            DomainError::Conflict(Conflict::EmailTaken) => {
                PyError::new(S::BAD_REQUEST, "email_already_registered", e.to_string())
            }
            DomainError::Conflict(_) => PyError::new(S::CONFLICT, "conflict", e.to_string()),
            DomainError::Unauthorized(Unauthorized::BadCredentials) => {
                PyError::new(S::UNAUTHORIZED, "invalid_credentials", e.to_string())
            }
            DomainError::Unauthorized(Unauthorized::Reused) => {
                PyError::new(S::UNAUTHORIZED, "refresh_token_reused", e.to_string())
            }
            DomainError::Unauthorized(_) => PyError::unauthorized(),
            DomainError::MissingVariables(m) => PyError::bad_request(m),
            DomainError::Throttled { retry_after_secs } => PyError {
                retry_after: Some(retry_after_secs),
                ..PyError::new(S::TOO_MANY_REQUESTS, "too_many_requests", e.to_string())
            },
            DomainError::NotConfigured(what) => PyError::new(
                S::SERVICE_UNAVAILABLE,
                "not_configured",
                format!("{what} is not configured on this server"),
            ),
            DomainError::Unavailable => PyError::new(
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the database is unavailable; retry shortly",
            ),
            DomainError::Internal => {
                PyError::new(S::INTERNAL_SERVER_ERROR, "internal_error", "internal error")
            }
        }
    }
}

/// JSON body: a body that is not JSON of the route's schema (missing or wrongly typed fields)
/// is a 422 `validation_error`; hostile input (a NUL character, an oversized body) a 400.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = PyError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, PyError> {
        crate::surfaces::kit::json(req, state)
            .await
            .map(Body)
            .map_err(|e| {
                if e.0.contains("NUL") || e.0.contains("larger than") {
                    PyError::bad_request(e.0)
                } else {
                    PyError::new(StatusCode::UNPROCESSABLE_ENTITY, "validation_error", e.0)
                }
            })
    }
}

/// The caller: a Bearer access token, in the organization of `X-Organization-Id` when sent
/// (any organization for a `super_admin`, only their own for anyone else).
pub struct Caller(pub Actor);

impl FromRequestParts<AdminState> for Caller {
    type Rejection = PyError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, PyError> {
        let token = bearer(parts).ok_or_else(PyError::unauthorized)?;
        let x_org = match parts.headers.get("x-organization-id") {
            None => None,
            Some(v) => Some(
                v.to_str()
                    .ok()
                    .and_then(|s| Uuid::parse_str(s.trim()).ok())
                    .ok_or_else(|| PyError::bad_request("X-Organization-Id: must be a UUID"))?,
            ),
        };
        Ok(Caller(
            crate::domain::pytake::authenticate(&state.pool, &state.jwt, token, x_org).await?,
        ))
    }
}

/// PyTake's `user`.
pub fn user(m: &Me) -> Value {
    json!({
        "id": m.user_id,
        "email": m.email,
        "name": m.name,
        "role": m.role.as_str(),
        "organization_id": m.organization_id,
        "is_active": true,
        "created_at": rfc3339(m.created_at),
    })
}
