//! PyTake's flow automations: `POST /api/v1/flow-automations`, `POST …/{id}/start`,
//! `GET …/{id}/stats`. Parse → `domain::automations` → render. The jobs run in the admin
//! app's runner (`domain::automations::Runner`).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use uuid::Uuid;

use super::wire::{Body, Caller, PyError};
use crate::admin::{AdminState, rfc3339};
use crate::domain::automations::{self, Automation};
use crate::domain::{DomainError, Entity};

type Answer = Result<Response, PyError>;

/// The `FlowAutomation` (the contract names no fields; these are documented in the README).
fn automation(a: &Automation) -> Value {
    let config: Value = serde_json::from_str(&a.config).unwrap_or_else(|_| json!({}));
    json!({
        "id": a.id,
        "flow_id": a.flow_id,
        "contacts": a.contacts,
        "config": config,
        "status": a.status,
        "organization_id": a.organization_id,
        "created_at": rfc3339(a.created_at),
        "started_at": a.started_at.map(rfc3339),
        "finished_at": a.finished_at.map(rfc3339),
    })
}

fn id(raw: &str) -> Result<Uuid, PyError> {
    Uuid::parse_str(raw).map_err(|_| DomainError::NotFound(Entity::Automation).into())
}

#[derive(Deserialize)]
pub struct CreateReq {
    flow_id: Uuid,
    contacts: Vec<Uuid>,
    config: Option<Box<RawValue>>,
}

/// `POST /api/v1/flow-automations`: 201 `FlowAutomation` (org_admin).
pub async fn create(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Body(r): Body<CreateReq>,
) -> Answer {
    let a =
        automations::create(&s.pool, &actor, r.flow_id, r.contacts, r.config.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(automation(&a))).into_response())
}

/// `POST /api/v1/flow-automations/{id}/start`: `{status: "started"}`; 409 the second time.
pub async fn start(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let a = automations::start(&s.pool, &actor, id(&raw)?).await?;
    Ok(
        Json(json!({"status": "started", "id": a.id, "started_at": a.started_at.map(rfc3339)}))
            .into_response(),
    )
}

/// `GET /api/v1/flow-automations/{id}/stats`: counts per job status, messages, durations.
pub async fn stats(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let st = automations::stats(&s.pool, &actor, id(&raw)?).await?;
    let a = &st.automation;
    let j = &st.jobs;
    let elapsed_ms = a.started_at.map(|s| {
        let end = a.finished_at.unwrap_or_else(time::OffsetDateTime::now_utc);
        i64::try_from((end - s).whole_milliseconds()).unwrap_or(i64::MAX)
    });
    Ok(Json(json!({
        "automation_id": a.id,
        "flow_id": a.flow_id,
        "status": a.status,
        "total_contacts": j.total,
        "pending": j.pending,
        "running": j.running,
        "done": j.done,
        "failed": j.failed,
        "messages_sent": j.messages_sent,
        "ai_calls": j.ai_calls,
        "started_at": a.started_at.map(rfc3339),
        "finished_at": a.finished_at.map(rfc3339),
        "elapsed_ms": elapsed_ms,
        "duration_ms": {"avg": j.avg_ms, "p50": j.p50_ms, "max": j.max_ms},
        "failures": st.failures.iter().map(|(c, r)| json!({"contact_id": c, "reason": r})).collect::<Vec<_>>(),
    }))
    .into_response())
}

/// The flow-automation routes.
pub fn routes() -> crate::admin::openapi::Api<AdminState> {
    use axum::routing::{get, post};
    crate::admin::openapi::Api::new("pytake")
        .route(
            "POST",
            "/api/v1/flow-automations",
            "Create an automation of a flow for contacts (org_admin; 201 FlowAutomation)",
            true,
            post(create),
        )
        .route(
            "POST",
            "/api/v1/flow-automations/{id}/start",
            "Start an automation: its jobs run in the background (409 when started before)",
            true,
            post(start),
        )
        .route(
            "GET",
            "/api/v1/flow-automations/{id}/stats",
            "An automation's job counts (pending/running/done/failed), messages and durations",
            true,
            get(stats),
        )
}
