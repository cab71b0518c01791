//! PyTake's flows: `GET|POST /api/v1/flows`, `GET|PUT|DELETE /api/v1/flows/{id}`. Parse →
//! `domain::flows` → render.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::contacts::Query;
use super::wire::{Body, Caller, PyError};
use crate::admin::{AdminState, rfc3339};
use crate::domain::flows::{self, Changes, Flow, FlowEdge, FlowNode};
use crate::domain::{DomainError, Entity};

type Answer = Result<Response, PyError>;

/// PyTake's `Flow`.
fn flow(f: &Flow) -> Value {
    json!({
        "id": f.id,
        "name": f.name,
        "description": f.description,
        "status": f.status.as_str(),
        "nodes": f.nodes,
        "edges": f.edges,
        "organization_id": f.organization_id,
        "created_at": rfc3339(f.created_at),
        "updated_at": rfc3339(f.updated_at),
    })
}

/// A path id: text that is not a UUID names no flow (404, as another organization's id).
fn id(raw: &str) -> Result<Uuid, PyError> {
    Uuid::parse_str(raw).map_err(|_| DomainError::NotFound(Entity::Flow).into())
}

#[derive(Deserialize)]
pub struct Page {
    limit: Option<i64>,
    offset: Option<i64>,
}

/// `GET /api/v1/flows?limit=&offset=`: `Array<Flow>`, newest first.
pub async fn list(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Query(p): Query<Page>,
) -> Answer {
    let list = flows::list(&s.pool, &actor, p.limit, p.offset).await?;
    Ok(Json(list.iter().map(flow).collect::<Vec<_>>()).into_response())
}

#[derive(Deserialize)]
pub struct CreateReq {
    name: String,
    description: Option<String>,
    status: Option<String>,
    nodes: Option<Vec<FlowNode>>,
    edges: Option<Vec<FlowEdge>>,
}

/// `POST /api/v1/flows`: 201 `Flow`.
pub async fn create(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Body(r): Body<CreateReq>,
) -> Answer {
    let f = flows::create(
        &s.pool,
        &actor,
        Changes {
            name: Some(r.name),
            description: r.description,
            status: r.status,
            nodes: r.nodes,
            edges: r.edges,
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(flow(&f))).into_response())
}

/// `GET /api/v1/flows/{id}`.
pub async fn get(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let id = id(&raw)?;
    Ok(Json(flow(&flows::get(&s.pool, &actor, id).await?)).into_response())
}

#[derive(Deserialize)]
pub struct UpdateReq {
    name: Option<String>,
    description: Option<String>,
    status: Option<String>,
    nodes: Option<Vec<FlowNode>>,
    edges: Option<Vec<FlowEdge>>,
}

/// `PUT /api/v1/flows/{id}`: fields not sent are kept.
pub async fn update(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Path(raw): Path<String>,
    Body(r): Body<UpdateReq>,
) -> Answer {
    let id = id(&raw)?;
    let f = flows::update(
        &s.pool,
        &actor,
        id,
        Changes {
            name: r.name,
            description: r.description,
            status: r.status,
            nodes: r.nodes,
            edges: r.edges,
        },
    )
    .await?;
    Ok(Json(flow(&f)).into_response())
}

/// `DELETE /api/v1/flows/{id}`: 204.
pub async fn delete(
    State(s): State<AdminState>,
    Caller(actor): Caller,
    Path(raw): Path<String>,
) -> Answer {
    let id = id(&raw)?;
    flows::delete(&s.pool, &actor, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The flows routes.
pub fn routes() -> crate::admin::openapi::Api<AdminState> {
    use axum::routing::{delete as del, get as g, post, put};
    crate::admin::openapi::Api::new("pytake")
        .route(
            "GET",
            "/api/v1/flows",
            "List the organization's flows",
            true,
            g(list),
        )
        .route(
            "POST",
            "/api/v1/flows",
            "Create a flow (org_admin; edges must name existing nodes)",
            true,
            post(create),
        )
        .route("GET", "/api/v1/flows/{id}", "One flow", true, g(get))
        .route(
            "PUT",
            "/api/v1/flows/{id}",
            "Change a flow (org_admin; fields not sent are kept)",
            true,
            put(update),
        )
        .route(
            "DELETE",
            "/api/v1/flows/{id}",
            "Delete a flow (org_admin)",
            true,
            del(delete),
        )
}
