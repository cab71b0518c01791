//! The audit log: one row per change.

use sqlx::PgExecutor;
use uuid::Uuid;

/// Record `action` on `target` by `user` in `org`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Option<Uuid>,
    action: &str,
    target: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO audit_log (organization_id, user_id, action, target) VALUES ($1, $2, $3, $4)",
    )
    .bind(org)
    .bind(user)
    .bind(action)
    .bind(target)
    .execute(db)
    .await?;
    Ok(())
}

/// One audit entry.
#[derive(Debug, sqlx::FromRow)]
pub struct AuditRow {
    /// Sequence number.
    pub audit_log_id: i64,
    /// Organization.
    pub organization_id: Option<Uuid>,
    /// The user who acted (`None`: the operator or the system).
    pub user_id: Option<Uuid>,
    /// What was done (`api_key.create`, ...).
    pub action: String,
    /// What it was done to.
    pub target: Option<String>,
    /// When.
    pub created_at: time::OffsetDateTime,
}

/// Entries, newest first, filtered by organization and action when given.
pub async fn list(
    db: impl PgExecutor<'_>,
    org: Option<Uuid>,
    action: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<AuditRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT audit_log_id, organization_id, user_id, action, target, created_at FROM audit_log
         WHERE ($1::uuid IS NULL OR organization_id = $1) AND ($2::text IS NULL OR action = $2)
         ORDER BY audit_log_id DESC LIMIT $3 OFFSET $4",
    )
    .bind(org)
    .bind(action)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await
}
