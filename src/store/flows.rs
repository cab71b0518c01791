//! PyTake's flows (`pytake_flow`): nodes and edges are jsonb arrays, passed and read as JSON
//! text (the domain checks them). Every read and write is scoped to an organization.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// One flow.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FlowRow {
    /// Id.
    pub flow_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// `draft`, `active` or `archived`.
    pub status: String,
    /// Nodes, JSON array text.
    pub nodes: String,
    /// Edges, JSON array text.
    pub edges: String,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

const COLUMNS: &str = "flow_id, organization_id, name, description, status, nodes::text AS nodes,
     edges::text AS edges, created_at, updated_at";

/// What a flow is made of, for an insert or an update.
#[derive(Debug, Clone, Copy)]
pub struct FlowFields<'a> {
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Status.
    pub status: &'a str,
    /// Nodes, JSON array text.
    pub nodes: &'a str,
    /// Edges, JSON array text.
    pub edges: &'a str,
}

/// Insert a flow.
pub async fn insert<'e>(
    ex: impl PgExecutor<'e>,
    org: Uuid,
    created_by: Uuid,
    f: FlowFields<'_>,
) -> Result<FlowRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO pytake_flow (organization_id, created_by, name, description, status, nodes, edges)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)
         RETURNING {COLUMNS}"
    ))
    .bind(org)
    .bind(created_by)
    .bind(f.name)
    .bind(f.description)
    .bind(f.status)
    .bind(f.nodes)
    .bind(f.edges)
    .fetch_one(ex)
    .await
}

/// A page of the organization's flows, newest first.
pub async fn list(
    pool: &PgPool,
    org: Uuid,
    limit: i64,
    offset: i64,
) -> Result<Vec<FlowRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pytake_flow WHERE organization_id = $1
          ORDER BY created_at DESC, flow_id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(org)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}

/// One flow of the organization (locked for the transaction when `lock`).
pub async fn get<'e>(
    ex: impl PgExecutor<'e>,
    org: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<FlowRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM pytake_flow WHERE organization_id = $1 AND flow_id = $2{lock}"
    ))
    .bind(org)
    .bind(id)
    .fetch_optional(ex)
    .await
}

/// Replace a flow's fields.
pub async fn update<'e>(
    ex: impl PgExecutor<'e>,
    org: Uuid,
    id: Uuid,
    f: FlowFields<'_>,
) -> Result<Option<FlowRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE pytake_flow
            SET name = $3, description = $4, status = $5, nodes = $6::jsonb, edges = $7::jsonb,
                updated_at = now()
          WHERE organization_id = $1 AND flow_id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(org)
    .bind(id)
    .bind(f.name)
    .bind(f.description)
    .bind(f.status)
    .bind(f.nodes)
    .bind(f.edges)
    .fetch_optional(ex)
    .await
}

/// Delete a flow; whether there was one.
pub async fn delete<'e>(ex: impl PgExecutor<'e>, org: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM pytake_flow WHERE organization_id = $1 AND flow_id = $2")
        .bind(org)
        .bind(id)
        .execute(ex)
        .await?;
    Ok(r.rows_affected() == 1)
}
