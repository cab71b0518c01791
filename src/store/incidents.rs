//! Incidents: what the operator declares on the status page (migrations/0023).

use sqlx::PgPool;
use uuid::Uuid;

/// One incident.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IncidentRow {
    /// Id.
    pub incident_id: Uuid,
    /// Headline.
    pub title: String,
    /// `minor`, `major`, `critical` or `maintenance`.
    pub severity: String,
    /// Text for customers.
    pub message: String,
    /// Opened.
    pub created_at: time::OffsetDateTime,
    /// Resolved; `None` while active.
    pub resolved_at: Option<time::OffsetDateTime>,
}

/// Open an incident.
pub async fn create(
    pool: &PgPool,
    title: &str,
    severity: &str,
    message: &str,
) -> Result<IncidentRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO incident (title, severity, message) VALUES ($1, $2, $3)
         RETURNING incident_id, title, severity, message, created_at, resolved_at",
    )
    .bind(title)
    .bind(severity)
    .bind(message)
    .fetch_one(pool)
    .await
}

/// Resolve an incident (a resolved one keeps its first resolution time); `None` if unknown.
pub async fn resolve(pool: &PgPool, id: Uuid) -> Result<Option<IncidentRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE incident SET resolved_at = coalesce(resolved_at, now()) WHERE incident_id = $1
         RETURNING incident_id, title, severity, message, created_at, resolved_at",
    )
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The unresolved incidents, newest first.
pub async fn active(pool: &PgPool) -> Result<Vec<IncidentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT incident_id, title, severity, message, created_at, resolved_at
         FROM incident WHERE resolved_at IS NULL ORDER BY created_at DESC, incident_id",
    )
    .fetch_all(pool)
    .await
}

/// Milliseconds a `SELECT 1` takes.
pub async fn ping(pool: &PgPool) -> Result<(), sqlx::Error> {
    sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(pool)
        .await
        .map(|_| ())
}
