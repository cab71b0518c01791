//! bradax's wire: its error shape `{error, message, details[{code, message}], request_id,
//! timestamp}` ([`BxError`]), the JSON body and query extractors that reject in it, and the
//! [`Caller`] extractor (a bradax access token whose key is still active).

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use uuid::Uuid;

use crate::admin::extract::bearer;
use crate::admin::{AdminState, rfc3339};
use crate::domain::DomainError;
pub use crate::domain::bradax::{Scope, Scopes, Tier};
use crate::domain::error::Unauthorized;

/// bradax's error: a status and `{error, message, details, request_id, timestamp}`.
#[derive(Debug)]
pub struct BxError {
    /// HTTP status.
    pub status: StatusCode,
    /// `error`: a snake_case category (`authentication_failed`, `validation_error`, ...).
    pub error: &'static str,
    /// `message`: for a person.
    pub message: String,
    /// `details`: `(code, message)` pairs, codes in SCREAMING_SNAKE_CASE.
    pub details: Vec<(String, String)>,
    /// `X-RateLimit-*` and `Retry-After` headers to send.
    pub headers: Vec<(&'static str, HeaderValue)>,
}

impl BxError {
    /// An error of `status` with one detail.
    pub fn new(
        status: StatusCode,
        error: &'static str,
        message: impl Into<String>,
        code: &str,
        detail: impl Into<String>,
    ) -> Self {
        BxError {
            status,
            error,
            message: message.into(),
            details: vec![(code.to_string(), detail.into())],
            headers: Vec::new(),
        }
    }

    /// 400 `validation_error` (`INVALID_FIELD`).
    pub fn invalid(detail: impl Into<String>) -> Self {
        let d = detail.into();
        BxError::new(
            StatusCode::BAD_REQUEST,
            "validation_error",
            "the request is invalid",
            "INVALID_FIELD",
            d,
        )
    }

    /// 401 `authentication_failed` (`TOKEN_INVALID`).
    pub fn unauthorized() -> Self {
        BxError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "invalid or expired token",
            "TOKEN_INVALID",
            "the bearer token is missing, invalid, expired, or its key is no longer active",
        )
    }

    /// 403 `insufficient_scope` for `scope`.
    pub fn missing_scope(scope: Scope) -> Self {
        BxError::new(
            StatusCode::FORBIDDEN,
            "insufficient_scope",
            format!("the token lacks the scope {}", scope.as_str()),
            "SCOPE_REQUIRED",
            format!("this operation needs the scope {}", scope.as_str()),
        )
    }

    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        let w = what.into();
        BxError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{w} not found"),
            "NOT_FOUND",
            format!("no {w} with that name or id in this project"),
        )
    }

    /// 429 `rate_limit_exceeded` in the contract's words, with `X-RateLimit-Limit/Remaining/
    /// Reset/Window` and `Retry-After`.
    pub fn rate_limited(d: &crate::limits::Decision) -> Self {
        use crate::limits::Kind;
        let unit = match d.kind {
            Kind::Rps => "requisições por segundo",
            Kind::Rpd => "requisições por dia",
            Kind::Tpm => "tokens por minuto",
            Kind::Concurrency => "requisições simultâneas",
            _ => "requisições por minuto",
        };
        let mut e = BxError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            format!("Limite de {} {unit} excedido", d.limit),
            "RATE_LIMIT_EXCEEDED",
            format!("Tente novamente em {} segundos", d.retry_after),
        );
        e.headers = vec![
            ("x-ratelimit-limit", HeaderValue::from(d.limit)),
            ("x-ratelimit-remaining", HeaderValue::from(d.remaining)),
            ("x-ratelimit-reset", HeaderValue::from(d.reset)),
            ("x-ratelimit-window", HeaderValue::from(d.window_secs)),
            ("retry-after", HeaderValue::from(d.retry_after)),
        ];
        e
    }

    /// Add one more detail.
    pub fn detail(mut self, code: &str, message: impl Into<String>) -> Self {
        self.details.push((code.to_string(), message.into()));
        self
    }
}

impl IntoResponse for BxError {
    fn into_response(self) -> Response {
        let details: Vec<_> = self
            .details
            .iter()
            .map(|(c, m)| json!({"code": c, "message": m}))
            .collect();
        let body = json!({
            "error": self.error,
            "message": self.message,
            "details": details,
            "request_id": Uuid::new_v4(),
            "timestamp": rfc3339(time::OffsetDateTime::now_utc()),
        });
        let mut r = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        for (name, v) in self.headers {
            r.headers_mut().insert(name, v);
        }
        r
    }
}

impl From<DomainError> for BxError {
    fn from(e: DomainError) -> Self {
        use StatusCode as S;
        match e {
            DomainError::Invalid { .. } | DomainError::MissingVariables(_) => {
                BxError::invalid(e.to_string())
            }
            DomainError::NotFound(what) => BxError::not_found(what.as_str()),
            DomainError::Forbidden("student_tier") => BxError::new(
                S::FORBIDDEN,
                "forbidden",
                "a student project cannot do this",
                "STUDENT_TIER",
                "the student tier has no deploy_graph and a model allow-list",
            ),
            DomainError::Forbidden("scope") => BxError::new(
                S::FORBIDDEN,
                "insufficient_scope",
                "the key or token does not hold the scopes asked for",
                "SCOPE_NOT_GRANTED",
                "ask only for scopes the key holds",
            ),
            DomainError::Forbidden(what) => BxError::new(
                S::FORBIDDEN,
                "forbidden",
                "this project may not do this",
                "FORBIDDEN",
                format!("forbidden: {what}"),
            ),
            DomainError::Conflict(c) => BxError::new(
                S::CONFLICT,
                "conflict",
                c.to_string(),
                "CONFLICT",
                c.to_string(),
            ),
            DomainError::Unauthorized(Unauthorized::BadCredentials) => BxError::new(
                S::UNAUTHORIZED,
                "authentication_failed",
                "invalid project or API key",
                "INVALID_CREDENTIALS",
                "the API key is unknown, inactive, or not a key of this project",
            ),
            DomainError::Unauthorized(Unauthorized::Reused) => BxError::new(
                S::UNAUTHORIZED,
                "authentication_failed",
                "refresh token reuse detected",
                "REFRESH_TOKEN_REUSED",
                "every token of this family was revoked; request a new token",
            ),
            DomainError::Unauthorized(_) => BxError::unauthorized(),
            DomainError::Throttled { retry_after_secs } => {
                let mut b = BxError::new(
                    S::TOO_MANY_REQUESTS,
                    "rate_limit_exceeded",
                    "too many requests",
                    "RATE_LIMIT_EXCEEDED",
                    format!("retry in {retry_after_secs} seconds"),
                );
                b.headers
                    .push(("retry-after", HeaderValue::from(retry_after_secs)));
                b
            }
            DomainError::NotConfigured(what) => BxError::new(
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                format!("{what} is not configured on this server"),
                "NOT_CONFIGURED",
                format!("{what} is not configured"),
            ),
            DomainError::Unavailable => BxError::new(
                S::SERVICE_UNAVAILABLE,
                "service_unavailable",
                "the database is unavailable; retry shortly",
                "DATABASE_UNAVAILABLE",
                "retry shortly",
            ),
            DomainError::Internal => BxError::new(
                S::INTERNAL_SERVER_ERROR,
                "internal_error",
                "internal error",
                "INTERNAL",
                "internal error",
            ),
        }
    }
}

/// JSON body rejected in bradax's shape (400 `validation_error`).
pub struct Body<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> axum::extract::FromRequest<S> for Body<T> {
    type Rejection = BxError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, BxError> {
        crate::surfaces::kit::json(req, state)
            .await
            .map(Body)
            .map_err(|e| BxError::invalid(e.0))
    }
}

/// Query string rejected in bradax's shape (400 `validation_error`).
pub struct Query<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = BxError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, BxError> {
        crate::surfaces::kit::query(parts, state)
            .await
            .map(Query)
            .map_err(|e| BxError::invalid(e.0))
    }
}

/// The caller of a bradax route: a Bearer access token (audience `bradax`, kind `access`,
/// not expired) whose key is still an active key of an enabled project. Any other bearer
/// (a PyTake token, a refresh token, a plain API key) is a 401.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The project (organization) every query is scoped to.
    pub org_id: Uuid,
    /// The project's slug (the contract's `project_id`).
    pub project: String,
    /// The key the token was minted from.
    pub key_id: Uuid,
    /// Scopes granted to the token.
    pub scopes: Scopes,
    /// The project's tier now.
    pub tier: Tier,
    /// The raw bearer token, to forward to the gateway (metered calls as this caller).
    pub token: String,
    /// SHA-256 of the key (its limiter scope).
    pub key_hash: [u8; 32],
}

impl Caller {
    /// Count this call against the key's request limits: for calls that never reach the
    /// gateway (which counts its own), so each call is counted once. See [`admit`].
    pub async fn admit(&self, state: &AdminState) -> Result<(), BxError> {
        admit(state, &self.key_hash).await
    }

    /// `Ok` when the token holds `scope` (and, for `deploy_graph`, the project is not a
    /// student's); else 403 in bradax's shape.
    pub fn require(&self, scope: Scope) -> Result<(), BxError> {
        if scope == Scope::DeployGraph && self.tier == Tier::Student {
            return Err(DomainError::Forbidden("student_tier").into());
        }
        if self.scopes.contains(scope) {
            Ok(())
        } else {
            Err(BxError::missing_scope(scope))
        }
    }

    /// `Ok` when the token holds any of `scopes`.
    pub fn require_any(&self, scopes: &[Scope]) -> Result<(), BxError> {
        match scopes.first() {
            Some(first) if !self.scopes.any(scopes) => Err(BxError::missing_scope(*first)),
            _ => Ok(()),
        }
    }
}

impl FromRequestParts<AdminState> for Caller {
    type Rejection = BxError;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, BxError> {
        let token = bearer(parts).ok_or_else(BxError::unauthorized)?;
        let p = crate::domain::bradax::authenticate(&state.pool, &state.jwt, token).await?;
        Ok(Caller {
            org_id: p.org_id,
            project: p.project,
            key_id: p.key_id,
            scopes: p.scopes,
            tier: p.tier,
            token: token.to_string(),
            key_hash: p.key_hash,
        })
    }
}

/// Count a call against the token's key's (and project's) request limits, as the gateway
/// counts its own requests, so a key's limits bind every call made with its tokens: calls that
/// reach the gateway (embeddings, llm nodes) are counted there, the others (a query with a
/// given vector, an upsert of vectors, a deploy, metrics, a graph of template nodes) here.
/// Admission only: the slot is settled at once (`concurrency` is the gateway's). Without the
/// gateway in this process (`catraca admin` alone) nothing is counted here.
async fn admit(state: &AdminState, key_hash: &[u8; 32]) -> Result<(), BxError> {
    use crate::limits::{Kind, Scope as LimitScope, ScopeId};
    let Some(gate) = &state.gate else {
        return Ok(());
    };
    let Some(keys) = gate.db_keys.as_deref() else {
        return Ok(());
    };
    let key = match keys.lookup(key_hash).await {
        Ok(Some(k)) if !k.disabled => k,
        Ok(_) => return Err(BxError::unauthorized()),
        Err(_) => return Err(DomainError::NotConfigured("the key store").into()),
    };
    let scopes = [
        Some(LimitScope {
            id: ScopeId::Key(*key_hash),
            limits: key.limits,
        }),
        key.organization_id.map(|org| LimitScope {
            id: ScopeId::Org(org),
            limits: key.org_limits,
        }),
    ];
    let request_id = Uuid::new_v4().to_string();
    let Some((d, ticket)) = gate.limiter.check(scopes, 0, &request_id).await else {
        return Ok(());
    };
    if let Some(t) = ticket {
        gate.limiter.settle(t, Some(0));
    }
    if d.allowed {
        return Ok(());
    }
    if d.kind == Kind::Unavailable {
        return Err(BxError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the rate limiter is unavailable",
            "LIMITER_UNAVAILABLE",
            format!("retry in {} seconds", d.retry_after),
        ));
    }
    Err(BxError::rate_limited(&d))
}

/// Now, as bradax's `timestamp`.
pub fn now() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}
