//! Graphs (`graph`, `graph_version`) and their executions (`graph_execution`). Every
//! statement is scoped to an organization.

use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

/// A graph as a run reads it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct GraphRow {
    /// Id.
    pub graph_id: Uuid,
    /// Revision (version `1.<revision>.0`).
    pub revision: i32,
    /// The checked definition, JSON text.
    pub definition: String,
}

/// Create graph `name` at revision 0 unless the organization has it; its id when created.
pub async fn create(
    tx: &mut PgConnection,
    org: Uuid,
    name: &str,
    format: &str,
    source: &str,
    definition: &str,
) -> Result<Option<Uuid>, sqlx::Error> {
    let id: Option<Uuid> = sqlx::query_scalar(
        "INSERT INTO graph (organization_id, name, format, source, definition)
         VALUES ($1, $2, $3, $4, $5::jsonb)
         ON CONFLICT (organization_id, name) DO NOTHING
         RETURNING graph_id",
    )
    .bind(org)
    .bind(name)
    .bind(format)
    .bind(source)
    .bind(definition)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = id {
        sqlx::query(
            "INSERT INTO graph_version (graph_id, revision, format, source, definition)
             VALUES ($1, 0, $2, $3, $4::jsonb)",
        )
        .bind(id)
        .bind(format)
        .bind(source)
        .bind(definition)
        .execute(&mut *tx)
        .await?;
    }
    Ok(id)
}

/// The organization's graph `name`, locked for the transaction.
pub async fn lock(
    tx: &mut PgConnection,
    org: Uuid,
    name: &str,
) -> Result<Option<GraphRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT graph_id, revision, definition::text AS definition FROM graph
          WHERE organization_id = $1 AND name = $2 FOR UPDATE",
    )
    .bind(org)
    .bind(name)
    .fetch_optional(&mut *tx)
    .await
}

/// A new revision of a (locked) graph; the revision number.
pub async fn revise(
    tx: &mut PgConnection,
    graph: Uuid,
    format: &str,
    source: &str,
    definition: &str,
) -> Result<i32, sqlx::Error> {
    let revision: i32 = sqlx::query_scalar(
        "UPDATE graph SET revision = revision + 1, format = $2, source = $3,
                definition = $4::jsonb, updated_at = now()
          WHERE graph_id = $1 RETURNING revision",
    )
    .bind(graph)
    .bind(format)
    .bind(source)
    .bind(definition)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO graph_version (graph_id, revision, format, source, definition)
         VALUES ($1, $2, $3, $4, $5::jsonb)",
    )
    .bind(graph)
    .bind(revision)
    .bind(format)
    .bind(source)
    .bind(definition)
    .execute(&mut *tx)
    .await?;
    Ok(revision)
}

/// The organization's graph with this id.
pub async fn by_id(pool: &PgPool, org: Uuid, id: Uuid) -> Result<Option<GraphRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT graph_id, revision, definition::text AS definition FROM graph
          WHERE organization_id = $1 AND graph_id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The organization's graph with this name.
pub async fn by_name(
    pool: &PgPool,
    org: Uuid,
    name: &str,
) -> Result<Option<GraphRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT graph_id, revision, definition::text AS definition FROM graph
          WHERE organization_id = $1 AND name = $2",
    )
    .bind(org)
    .bind(name)
    .fetch_optional(pool)
    .await
}

/// Record a run as started; its id.
pub async fn start_execution(
    pool: &PgPool,
    graph: Uuid,
    org: Uuid,
    key: Option<Uuid>,
    revision: i32,
    inputs: &str,
) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO graph_execution (graph_id, organization_id, api_key_id, revision, inputs)
         VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING graph_execution_id",
    )
    .bind(graph)
    .bind(org)
    .bind(key)
    .bind(revision)
    .bind(inputs)
    .fetch_one(pool)
    .await
}

/// Record a run's end.
pub async fn finish_execution(
    pool: &PgPool,
    execution: Uuid,
    status: &str,
    outputs: &str,
    usage: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE graph_execution SET status = $2, outputs = $3::jsonb, usage = $4::jsonb,
                error = $5, finished_at = now()
          WHERE graph_execution_id = $1",
    )
    .bind(execution)
    .bind(status)
    .bind(outputs)
    .bind(usage)
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())
}
