//! Tokia's prompt library (issue 14 item 9), Bearer `sk-tokia-…`, everything scoped to the
//! key's organization. The YAML gives no response schemas; the shapes (also in the README):
//!
//! - a prompt: `{id, name, description, body, variables, tags, default_model, version,
//!   created_at, updated_at}`; `GET|POST /v1/me/prompts` → `{prompts: [prompt…]}` / 201 prompt;
//!   `GET|PATCH /v1/me/prompts/{id}` → prompt; `DELETE` → `{id, deleted: true}`;
//!   `POST …/clone` → 201 prompt;
//! - `GET …/versions` → `{prompt_id, versions: [{version, body, variables, change_note,
//!   created_at}]}`, newest first;
//! - `GET …/runs?limit=1..100 (20)` → `{prompt_id, runs: [{session_id, model, request_count,
//!   prompt_tokens, completion_tokens, total_billed_brl, cost_upstream_usd, status,
//!   started_at, ended_at}]}`, newest first;
//! - `POST …/run` → the gateway's chat completion plus `session_id`, `prompt_id` and
//!   `prompt_version` (header `x-tokia-session-id` too); a gateway refusal (402
//!   `saldo_insuficiente`, 429, …) keeps its status and body.
//!
//! Errors: 400 `invalid_body` / `invalid_parameter` / `missing_variables`, 401
//! `invalid_api_key` (a run's `api_key` not live or of another organization), 404
//! `prompt_not_found` (unknown or another organization's), 409 `prompt_name_taken`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::lang;
use super::wire::{Caller, Query, TokiaError, brl};
use crate::admin::openapi::Api;
use crate::admin::{AdminState, rfc3339};
use crate::domain::money::Micros;
use crate::domain::prompts::{self, NewPrompt, Patch, Prompt, RunInput};
use crate::domain::templates::RunOutcome;
use crate::domain::{Conflict, DomainError};

/// The prompt routes.
pub fn api() -> Api<AdminState> {
    Api::new("tokia")
        .route(
            "GET",
            "/v1/me/prompts",
            "Lista prompts salvos do user",
            true,
            lang(get, list),
        )
        .route(
            "POST",
            "/v1/me/prompts",
            "Cria novo prompt (versão 1)",
            true,
            lang(post, create),
        )
        .route(
            "GET",
            "/v1/me/prompts/{id}",
            "Detalhe do prompt",
            true,
            lang(get, detail),
        )
        .route(
            "PATCH",
            "/v1/me/prompts/{id}",
            "Atualiza prompt (cria nova versão se body mudou)",
            true,
            lang(patch, update),
        )
        .route(
            "DELETE",
            "/v1/me/prompts/{id}",
            "Remove prompt (cascata em prompt_versions)",
            true,
            lang(delete, remove),
        )
        .route(
            "GET",
            "/v1/me/prompts/{id}/versions",
            "Histórico de versões do prompt (append-only)",
            true,
            lang(get, versions),
        )
        .route(
            "POST",
            "/v1/me/prompts/{id}/clone",
            "Clona prompt existente",
            true,
            lang(post, clone),
        )
        .route(
            "GET",
            "/v1/me/prompts/{id}/runs",
            "Histórico de runs do prompt (reusa Sessions)",
            true,
            lang(get, runs),
        )
        .route(
            "POST",
            "/v1/me/prompts/{id}/run",
            "Renderiza variáveis + executa via /v1/chat/completions",
            true,
            lang(post, run),
        )
}

/// A domain error in Tokia's shape, with the prompt routes' own codes.
fn error(e: DomainError) -> TokiaError {
    match e {
        DomainError::NotFound(_) => TokiaError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "prompt_not_found",
            "Prompt não encontrado",
            "Prompt not found",
        ),
        DomainError::Conflict(Conflict::SlugTaken) => TokiaError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "prompt_name_taken",
            "Já existe um prompt com esse nome",
            "A prompt with this name already exists",
        ),
        e => e.into(),
    }
}

fn bad_body(e: impl std::fmt::Display) -> TokiaError {
    TokiaError::new(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        "invalid_body",
        format!("Corpo inválido ({e})"),
        format!("Invalid body ({e})"),
    )
}

/// A JSON body; NUL anywhere is a 400.
fn body<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, TokiaError> {
    if crate::surfaces::kit::has_nul_escape(b) || b.contains(&0) {
        return Err(bad_body("NUL"));
    }
    serde_json::from_slice(b).map_err(bad_body)
}

fn prompt_id(raw: &str) -> Result<Uuid, TokiaError> {
    Uuid::parse_str(raw).map_err(|_| DomainError::invalid("id", "a UUID").into())
}

/// Present (possibly `null`) versus absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A prompt.
fn prompt(p: &Prompt) -> Value {
    json!({
        "id": p.prompt_id,
        "name": p.name,
        "description": p.description,
        "body": p.body,
        "variables": p.variables,
        "tags": p.tags,
        "default_model": p.default_model,
        "version": p.version,
        "created_at": rfc3339(p.created_at),
        "updated_at": rfc3339(p.updated_at),
    })
}

type Answer = Result<Json<Value>, TokiaError>;

/// `GET /v1/me/prompts`.
async fn list(State(s): State<AdminState>, Caller(k): Caller) -> Answer {
    let all = prompts::list(&s.pool, k.organization_id)
        .await
        .map_err(error)?;
    Ok(Json(
        json!({"prompts": all.iter().map(prompt).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
struct CreateReq {
    name: String,
    body: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    variables: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default)]
    default_model: Option<String>,
}

/// `POST /v1/me/prompts`.
async fn create(
    State(s): State<AdminState>,
    Caller(k): Caller,
    b: Bytes,
) -> Result<(StatusCode, Json<Value>), TokiaError> {
    let r: CreateReq = body(&b)?;
    let p = prompts::create(
        &s.pool,
        &k,
        NewPrompt {
            name: r.name,
            body: r.body,
            description: r.description,
            variables: r.variables,
            tags: r.tags,
            default_model: r.default_model,
        },
    )
    .await
    .map_err(error)?;
    Ok((StatusCode::CREATED, Json(prompt(&p))))
}

/// `GET /v1/me/prompts/{id}`.
async fn detail(State(s): State<AdminState>, Caller(k): Caller, Path(id): Path<String>) -> Answer {
    let id = prompt_id(&id)?;
    let p = prompts::get(&s.pool, k.organization_id, id)
        .await
        .map_err(error)?;
    Ok(Json(prompt(&p)))
}

#[derive(Deserialize)]
struct PatchReq {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    description: Option<Option<String>>,
    #[serde(default)]
    variables: Option<Vec<String>>,
    #[serde(default)]
    tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    default_model: Option<Option<String>>,
    #[serde(default)]
    change_note: Option<String>,
}

/// `PATCH /v1/me/prompts/{id}`.
async fn update(
    State(s): State<AdminState>,
    Caller(k): Caller,
    Path(id): Path<String>,
    b: Bytes,
) -> Answer {
    let id = prompt_id(&id)?;
    let r: PatchReq = if b.is_empty() {
        body(b"{}")?
    } else {
        body(&b)?
    };
    let p = prompts::update(
        &s.pool,
        &k,
        id,
        Patch {
            name: r.name,
            body: r.body,
            description: r.description,
            variables: r.variables,
            tags: r.tags,
            default_model: r.default_model,
            change_note: r.change_note,
        },
    )
    .await
    .map_err(error)?;
    Ok(Json(prompt(&p)))
}

/// `DELETE /v1/me/prompts/{id}`.
async fn remove(State(s): State<AdminState>, Caller(k): Caller, Path(id): Path<String>) -> Answer {
    let id = prompt_id(&id)?;
    prompts::delete(&s.pool, &k, id).await.map_err(error)?;
    Ok(Json(json!({"id": id, "deleted": true})))
}

/// `GET /v1/me/prompts/{id}/versions`.
async fn versions(
    State(s): State<AdminState>,
    Caller(k): Caller,
    Path(id): Path<String>,
) -> Answer {
    let id = prompt_id(&id)?;
    let vs = prompts::versions(&s.pool, k.organization_id, id)
        .await
        .map_err(error)?;
    Ok(Json(json!({
        "prompt_id": id,
        "versions": vs.iter().map(|v| json!({
            "version": v.version,
            "body": v.body,
            "variables": v.variables,
            "change_note": v.change_note,
            "created_at": rfc3339(v.created_at),
        })).collect::<Vec<_>>(),
    })))
}

/// `POST /v1/me/prompts/{id}/clone`.
async fn clone(
    State(s): State<AdminState>,
    Caller(k): Caller,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), TokiaError> {
    let id = prompt_id(&id)?;
    let p = prompts::clone(&s.pool, &k, id).await.map_err(error)?;
    Ok((StatusCode::CREATED, Json(prompt(&p))))
}

#[derive(Deserialize)]
struct RunsQ {
    limit: Option<String>,
}

/// `GET /v1/me/prompts/{id}/runs`.
async fn runs(
    State(s): State<AdminState>,
    Caller(k): Caller,
    Path(id): Path<String>,
    Query(q): Query<RunsQ>,
) -> Answer {
    let limit = match q.limit.as_deref() {
        None => prompts::RUNS_LIMIT.0,
        Some(l) => l
            .parse()
            .map_err(|_| TokiaError::from(DomainError::invalid("limit", "an integer")))?,
    };
    let id = prompt_id(&id)?;
    let rs = prompts::runs(&s.pool, k.organization_id, id, limit)
        .await
        .map_err(error)?;
    Ok(Json(json!({
        "prompt_id": id,
        "runs": rs.iter().map(|r| json!({
            "session_id": r.session_id,
            "model": r.model,
            "request_count": r.request_count,
            "prompt_tokens": r.prompt_tokens,
            "completion_tokens": r.completion_tokens,
            "total_billed_brl": brl(Micros(r.billed_brl_micros)),
            "cost_upstream_usd": brl(Micros(r.cost_upstream_usd_micros)),
            "status": r.status,
            "started_at": rfc3339(r.started_at),
            "ended_at": rfc3339(r.ended_at),
        })).collect::<Vec<_>>(),
    })))
}

fn default_max_tokens() -> i64 {
    1024
}

fn default_temperature() -> f64 {
    0.7
}

#[derive(Deserialize)]
struct RunReq {
    api_key: String,
    #[serde(default)]
    values: Map<String, Value>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default = "default_max_tokens")]
    max_tokens: i64,
    #[serde(default = "default_temperature")]
    temperature: f64,
}

/// `POST /v1/me/prompts/{id}/run`.
async fn run(
    State(s): State<AdminState>,
    Caller(k): Caller,
    Path(id): Path<String>,
    b: Bytes,
) -> Result<Response, TokiaError> {
    let id = prompt_id(&id)?;
    let r: RunReq = body(&b)?;
    let out = prompts::run(
        &s.pool,
        &s.http,
        s.gateway_url.as_deref(),
        k.organization_id,
        id,
        RunInput {
            values: r.values,
            model: r.model,
            api_key: r.api_key,
            max_tokens: r.max_tokens,
            temperature: r.temperature,
        },
    )
    .await
    .map_err(error)?;
    let mut resp = match out.outcome {
        // the gateway's verdict (402, 429, ...) reaches the caller with its status
        RunOutcome::Refused(status, body) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            (code, Json(body)).into_response()
        }
        RunOutcome::Done(mut body) => {
            if let Some(o) = body.as_object_mut() {
                o.insert("session_id".into(), json!(out.session_id));
                o.insert("prompt_id".into(), json!(id));
                o.insert("prompt_version".into(), json!(out.version));
            }
            Json(body).into_response()
        }
    };
    if let Ok(v) = HeaderValue::from_str(&out.session_id) {
        resp.headers_mut().insert("x-tokia-session-id", v);
    }
    Ok(resp)
}
