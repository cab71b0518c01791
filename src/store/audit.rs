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
