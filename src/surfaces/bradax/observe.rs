//! bradax's observability: `metrics` (the project's real usage, from its usage events) and
//! `health` (database, vault canary, providers' breakers, vector store).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::wire::{self, BxError, Caller, Query, Scope};
use crate::admin::AdminState;
use crate::domain::bradax::{self, Check};
use crate::domain::money::Micros;

type Answer = Result<Response, BxError>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsQ {
    #[serde(default)]
    project_id: Option<String>,
    #[serde(default)]
    start_time: Option<String>,
    #[serde(default)]
    end_time: Option<String>,
}

fn time_param(
    field: &'static str,
    v: Option<&str>,
) -> Result<Option<time::OffsetDateTime>, BxError> {
    v.map(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(
            |_| BxError::invalid(format!("{field}: an RFC 3339 time (2025-07-25T15:45:00Z)")),
        )
    })
    .transpose()
}

/// `{"metrics": [{name, type, value, labels{project, model}, timestamp}]}`: per model,
/// `llm_requests_total`, `llm_errors_total`, `llm_prompt_tokens_total`,
/// `llm_completion_tokens_total`, `llm_tokens_total` and `llm_cost_usd_total` (upstream cost
/// at catalog price). Another project's `project_id` is a 403.
pub async fn metrics(
    State(s): State<AdminState>,
    caller: Caller,
    Query(q): Query<MetricsQ>,
) -> Answer {
    caller.require(Scope::ReadMetrics)?;
    caller.admit(&s).await?;
    if q.project_id.as_deref().is_some_and(|p| p != caller.project) {
        return Err(BxError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the token is not for this project",
            "PROJECT_MISMATCH",
            "a token reads only its own project's metrics",
        ));
    }
    let from = time_param("start_time", q.start_time.as_deref())?;
    let to = time_param("end_time", q.end_time.as_deref())?;
    let rows = bradax::usage(&s.pool, caller.org_id, from, to).await?;
    let ts = wire::now();
    let mut out = Vec::with_capacity(rows.len() * 6);
    for r in &rows {
        let labels = json!({"project": caller.project, "model": r.model});
        let metric = |name: &str, value: Value| json!({"name": name, "type": "counter", "value": value, "labels": labels, "timestamp": ts});
        out.push(metric("llm_requests_total", r.requests.into()));
        out.push(metric("llm_errors_total", r.errors.into()));
        out.push(metric("llm_prompt_tokens_total", r.prompt_tokens.into()));
        out.push(metric(
            "llm_completion_tokens_total",
            r.completion_tokens.into(),
        ));
        out.push(metric(
            "llm_tokens_total",
            (r.prompt_tokens + r.completion_tokens).into(),
        ));
        out.push(metric(
            "llm_cost_usd_total",
            Micros(r.cost_usd_micros).json_number(),
        ));
    }
    Ok(Json(json!({"metrics": out})).into_response())
}

/// `{status, checks{database, vault, llm_providers, vector_db}, timestamp}`: 200 when healthy
/// or degraded, 503 when unhealthy. Public (no token), as a load balancer asks it.
pub async fn health(State(s): State<AdminState>) -> Response {
    let providers: Vec<String> = s
        .config
        .with(|c| c.providers.iter().map(|p| p.name.clone()).collect());
    let h = bradax::health(&s.pool, s.secrets.as_deref(), &providers).await;
    let status = h.status();
    let code = if status == Check::Unhealthy {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (
        code,
        Json(json!({
            "status": status.as_str(),
            "checks": {
                "database": h.database.as_str(),
                "vault": h.vault.as_str(),
                "llm_providers": h.llm_providers.as_str(),
                "vector_db": h.vector_db.as_str(),
            },
            "timestamp": wire::now(),
        })),
    )
        .into_response()
}
