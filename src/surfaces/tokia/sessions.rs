//! Tokia's sessions (#14 item 8): `GET /v1/me/sessions` and `GET /v1/me/sessions/{id}` group
//! the caller organization's usage events by the `x-tokia-session-id` the gateway stored.
//! `days` (1–90, default 30) and `limit` (1–500, default 100) are refused out of range, never
//! clamped; an id that is not 1–80 printable ASCII characters is a 400, one the organization
//! has no event of a 404 `session_not_found`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::read;
use super::wire::{self, Caller, Query, TokiaError};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::DomainError;
use crate::domain::money::Micros;
use crate::domain::sessions::{self, Session};
use crate::domain::usage::Days;

/// The session routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "GET",
            "/v1/me/sessions",
            "Lista sessions (agrupa usage_events por session_id)",
            true,
            read(list),
        )
        .route(
            "GET",
            "/v1/me/sessions/{id}",
            "Detalhe de 1 session (eventos cronológicos)",
            true,
            read(detail),
        )
}

#[derive(Deserialize)]
pub struct ListQ {
    days: Option<String>,
    limit: Option<String>,
}

fn int(v: Option<&str>, field: &'static str, default: i64) -> Result<i64, TokiaError> {
    match v {
        None => Ok(default),
        Some(s) => s
            .parse()
            .map_err(|_| DomainError::invalid(field, "an integer").into()),
    }
}

fn not_found() -> TokiaError {
    TokiaError::new(
        StatusCode::NOT_FOUND,
        "invalid_request_error",
        "session_not_found",
        "Sessão não encontrada",
        "Session not found",
    )
}

fn session(s: &Session) -> Value {
    json!({
        "session_id": s.session_id,
        "request_count": s.request_count,
        "total_billed_brl": wire::brl(Micros(s.billed_brl_micros)),
        "total_prompt_tokens": s.prompt_tokens,
        "total_completion_tokens": s.completion_tokens,
        "total_tokens": s.prompt_tokens + s.completion_tokens,
        "models": s.models,
        "first_request_at": rfc3339(s.first_request_at),
        "last_request_at": rfc3339(s.last_request_at),
        "duration_ms": s.duration_ms(),
    })
}

/// `GET /v1/me/sessions`: `{days, count, sessions}`, newest last request first.
pub async fn list(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Query(q): Query<ListQ>,
) -> Result<Json<Value>, TokiaError> {
    let days = Days::between(int(q.days.as_deref(), "days", 30)?, 1, sessions::MAX_DAYS)?;
    let limit = sessions::limit(int(q.limit.as_deref(), "limit", sessions::DEFAULT_LIMIT)?)?;
    let list = sessions::list(&s.pool, c.organization_id, days, limit).await?;
    Ok(Json(json!({
        "days": days.get(),
        "count": list.len(),
        "sessions": list.iter().map(session).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/me/sessions/{id}`: the session's totals and events, oldest first.
pub async fn detail(
    State(s): State<AdminState>,
    Caller(c): Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, TokiaError> {
    let Some((t, events)) = sessions::get(&s.pool, c.organization_id, &id).await? else {
        return Err(not_found());
    };
    let mut v = session(&t);
    if let Value::Object(m) = &mut v {
        m.insert(
            "events".into(),
            events
                .iter()
                .map(|e| {
                    json!({
                        "id": crate::domain::usage::event_uuid(e.usage_event_id),
                        "model_id": e.model,
                        "api_key_id": e.api_key_id,
                        "prompt_tokens": e.prompt_tokens,
                        "completion_tokens": e.completion_tokens,
                        "cost_billed_brl": wire::brl(Micros(e.cost_billed_brl_micros.unwrap_or(0))),
                        "cost_upstream_usd": wire::brl(Micros(e.cost_upstream_usd_micros.unwrap_or(0))),
                        "created_at": rfc3339(e.created_at),
                    })
                })
                .collect(),
        );
    }
    Ok(Json(v))
}
