//! MaxAI's wire: its error shape (`{"error", "details"}`), extractors that reject in it, and
//! the JSON of each answer.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::admin::extract::{AuthUser, bearer};
use crate::admin::{AdminState, rfc3339};
use crate::domain::accounts::Profile;
use crate::domain::keys::KeyView;
use crate::domain::money::Micros;
use crate::domain::usage::{Bucket, ModelMetric, Recent};
use crate::domain::{Conflict, DomainError, Unauthorized};

/// MaxAI's error: status plus `{"error", "details"}`.
#[derive(Debug)]
pub struct MaxError {
    status: StatusCode,
    error: &'static str,
    details: Option<String>,
    retry_after: Option<u64>,
}

impl MaxError {
    /// 400 `validation_error`.
    pub fn bad_request(details: impl Into<String>) -> Self {
        MaxError {
            status: StatusCode::BAD_REQUEST,
            error: "validation_error",
            details: Some(details.into()),
            retry_after: None,
        }
    }

    fn new(status: StatusCode, error: &'static str, details: Option<String>) -> Self {
        MaxError {
            status,
            error,
            details,
            retry_after: None,
        }
    }
}

impl IntoResponse for MaxError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.error});
        if let Some(d) = self.details {
            body["details"] = Value::String(d);
        }
        let mut r = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            r.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, s.into());
        }
        r
    }
}

impl From<DomainError> for MaxError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { .. } => MaxError::bad_request(e.to_string()),
            DomainError::NotFound(_) => MaxError::new(StatusCode::NOT_FOUND, "not_found", None),
            DomainError::Forbidden(_) => MaxError::new(StatusCode::FORBIDDEN, "forbidden", None),
            DomainError::Conflict(Conflict::EmailTaken) => MaxError::bad_request(e.to_string()),
            DomainError::Conflict(_) => {
                MaxError::new(StatusCode::CONFLICT, "conflict", Some(e.to_string()))
            }
            DomainError::Unauthorized(Unauthorized::BadCredentials) => {
                MaxError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", None)
            }
            DomainError::Unauthorized(u) => MaxError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                Some(u.to_string()),
            ),
            DomainError::MissingVariables(m) => {
                MaxError::new(StatusCode::BAD_REQUEST, "missing_variable", Some(m))
            }
            DomainError::Throttled { retry_after_secs } => MaxError {
                retry_after: Some(retry_after_secs),
                ..MaxError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "too_many_requests",
                    Some(e.to_string()),
                )
            },
            DomainError::NotConfigured(what) => MaxError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_configured",
                Some(format!("{what} is not configured on this server")),
            ),
            DomainError::Unavailable => MaxError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_unavailable",
                Some("the database is unavailable; retry shortly".into()),
            ),
            DomainError::Internal => {
                MaxError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", None)
            }
        }
    }
}

/// A logged-in customer (the MaxAI name for a user and their organization).
pub struct Customer(pub AuthUser);

impl FromRequestParts<AdminState> for Customer {
    type Rejection = MaxError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, MaxError> {
        Ok(Customer(AuthUser::from_parts(parts, state).await?))
    }
}

/// The caller, when a valid token is present (templates list personal ones then).
pub struct MaybeCustomer(pub Option<AuthUser>);

impl FromRequestParts<AdminState> for MaybeCustomer {
    type Rejection = MaxError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, MaxError> {
        if bearer(parts).is_none() {
            return Ok(MaybeCustomer(None));
        }
        Ok(MaybeCustomer(Some(
            AuthUser::from_parts(parts, state).await?,
        )))
    }
}

/// JSON body with MaxAI's 400 on anything malformed.
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = MaxError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, MaxError> {
        crate::surfaces::kit::json(req, state)
            .await
            .map(Body)
            .map_err(|e| MaxError::bad_request(e.0))
    }
}

/// Query string with MaxAI's 400 on a malformed value.
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = MaxError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, MaxError> {
        crate::surfaces::kit::query(parts, state)
            .await
            .map(Query)
            .map_err(|e| MaxError::bad_request(e.0))
    }
}

/// An integer path id (`key_id`, `template_id`), else MaxAI's 400.
pub fn path_id(raw: &str, field: &str) -> Result<i64, MaxError> {
    raw.parse()
        .map_err(|_| MaxError::bad_request(format!("{field}: must be an integer")))
}

/// Now, as MaxAI prints times.
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// USD micro-units as the JSON number MaxAI expects.
pub fn usd(m: i64) -> Value {
    Micros(m).json_number()
}

/// `customer` of the contract.
pub fn customer(p: &Profile) -> Value {
    json!({
        "id": p.user_id,
        "organization_id": p.organization_id,
        "email": p.email,
        "name": p.name,
        "company": p.company,
        "phone": p.phone,
        "created_at": rfc3339(p.created_at),
    })
}

/// An API key (never the plaintext).
pub fn key(k: &KeyView) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "key_prefix": k.prefix,
        "status": k.status,
        "rate_limit_rpm": k.rpm.unwrap_or(0),
        "rate_limit_rpd": k.rpd.unwrap_or(0),
        "total_requests": k.total_requests,
        "total_tokens": k.total_tokens,
        "total_cost": k.total_cost.json_number(),
        "budget": k.budget.map_or(Value::Null, Micros::json_number),
        "budget_used": k.total_cost.json_number(),
        "created_at": rfc3339(k.created_at),
    })
}

/// A day or model bucket of usage stats.
pub fn bucket(b: &Bucket, key: &str) -> Value {
    json!({
        key: b.key,
        "requests": b.requests,
        "tokens_in": b.prompt_tokens,
        "tokens_out": b.completion_tokens,
        "total_tokens": b.prompt_tokens + b.completion_tokens,
        "cost": usd(b.cost_usd_micros),
    })
}

/// One usage log line.
pub fn log_line(r: Recent) -> Value {
    json!({
        "request_id": r.request_id,
        "timestamp": rfc3339(r.created_at),
        "key_name": r.key_name,
        "key_prefix": r.key_prefix,
        "endpoint": r.route,
        "model": r.model,
        "status": r.status,
        "error": r.error,
        "tokens_in": r.prompt_tokens,
        "tokens_out": r.completion_tokens,
        "total_tokens": r.prompt_tokens + r.completion_tokens,
        "cost": usd(r.cost_usd_micros.unwrap_or(0)),
        "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms,
        "stream": r.stream,
    })
}

/// A model's metrics. Rates and per-1k costs are ratios for display, so floats are right here.
pub fn metric(m: &ModelMetric) -> Value {
    let total = m.tokens_in + m.tokens_out;
    let cost = m.cost_usd_micros as f64 / 1_000_000.0;
    json!({
        "model": m.model,
        "requests": m.requests,
        "success": m.success,
        "errors": m.errors,
        "success_rate": if m.requests > 0 { m.success as f64 / m.requests as f64 } else { 0.0 },
        "tokens_in": m.tokens_in,
        "tokens_out": m.tokens_out,
        "total_tokens": total,
        "total_cost": usd(m.cost_usd_micros),
        "cost_per_1k_tokens": if total > 0 { cost * 1000.0 / total as f64 } else { 0.0 },
        "avg_latency_ms": m.avg_latency_ms,
    })
}

/// A template.
pub fn template(t: &crate::domain::templates::Template) -> Value {
    json!({
        "id": t.template_id,
        "slug": t.slug,
        "name": t.name,
        "category": t.category,
        "description": t.description,
        "default_model": t.default_model,
        "system_prompt": t.system_prompt,
        "user_prompt": t.user_prompt,
        "parameters": t.parameters,
        "variables": t.variables,
        "is_builtin": t.organization_id.is_none(),
        "runs": t.runs,
    })
}
