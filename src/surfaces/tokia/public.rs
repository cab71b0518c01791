//! Tokia's public routes (#14 item 10), no key: `GET /v1/healthz`, `GET /v1/healthz/db`
//! (`{ok, latency_ms, timestamp}`, 503 with `ok: false` when Postgres does not answer
//! `SELECT 1` within 2 s), `GET /v1/incidents/active` (the operator's unresolved incidents
//! and those opened while a provider's circuit breaker is open, newest first) and
//! `GET /v1/upstream-health` (uptime and latency per provider, from the hourly rollup).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::read;
use super::wire::{Query, TokiaError};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::{incidents, upstream_health};

/// The public routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route("GET", "/v1/healthz", "Health check", false, read(healthz))
        .route(
            "GET",
            "/v1/healthz/db",
            "Health check isolado do Postgres (SELECT 1)",
            false,
            read(healthz_db),
        )
        .route(
            "GET",
            "/v1/incidents/active",
            "Incidents ativos (status page)",
            false,
            read(incidents_active),
        )
        .route(
            "GET",
            "/v1/upstream-health",
            "Saúde dos upstreams IA (públic)",
            false,
            read(upstream_health),
        )
}

#[derive(serde::Deserialize)]
pub struct HealthQ {
    days: Option<String>,
}

/// `GET /v1/upstream-health?days=1..90`: `{period_days, providers: [{provider, attempts,
/// failures, uptime_pct, latency_p50_ms, latency_p95_ms}]}` from the hourly rollup.
pub async fn upstream_health(
    State(s): State<AdminState>,
    Query(q): Query<HealthQ>,
) -> Result<Json<Value>, TokiaError> {
    let period = upstream_health::Period::parse(q.days.as_deref())?;
    let list = upstream_health::report(&s.pool, period).await?;
    Ok(Json(json!({
        "period_days": period.days(),
        "providers": list.iter().map(|p| json!({
            "provider": p.provider,
            "attempts": p.attempts,
            "failures": p.failures,
            "uptime_pct": p.uptime_basis_points.map(|bp| crate::domain::money::Micros(bp * 10_000).json_number()),
            "latency_p50_ms": p.p50_ms,
            "latency_p95_ms": p.p95_ms,
        })).collect::<Vec<_>>(),
    })))
}

/// `GET /v1/healthz`: the admin app answers.
pub async fn healthz(State(s): State<AdminState>) -> Json<Value> {
    Json(json!({
        "ok": true,
        "status": "ok",
        "uptime_s": s.started.elapsed().as_secs(),
        "timestamp": rfc3339(time::OffsetDateTime::now_utc()),
    }))
}

/// `GET /v1/healthz/db`: `SELECT 1` within 2 s, else 503 with `ok: false`.
pub async fn healthz_db(State(s): State<AdminState>) -> Response {
    let (ok, took) = incidents::db_health(&s.pool).await;
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "ok": ok,
        "latency_ms": took.as_millis() as u64,
        "timestamp": rfc3339(time::OffsetDateTime::now_utc()),
    });
    (status, Json(body)).into_response()
}

/// `GET /v1/incidents/active`: `{incidents: [...], count}`.
pub async fn incidents_active(State(s): State<AdminState>) -> Result<Json<Value>, TokiaError> {
    let list = incidents::active(&s.pool).await?;
    Ok(Json(json!({
        "count": list.len(),
        "incidents": list.iter().map(|i| json!({
            "id": i.incident_id,
            "title": i.title,
            "severity": i.severity,
            "message": i.message,
            "source": i.source,
            "provider": i.provider,
            "created_at": rfc3339(i.created_at),
        })).collect::<Vec<_>>(),
    })))
}
