//! The audit log as the operator reads it.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::DomainError;
use super::usage::Page;
pub use crate::store::audit::AuditRow as Entry;

/// Entries, newest first, by organization and action when given.
pub async fn list(
    pool: &PgPool,
    org: Option<Uuid>,
    action: Option<&str>,
    page: Page,
) -> Result<Vec<Entry>, DomainError> {
    if action.is_some_and(|a| a.is_empty() || a.len() > 100) {
        return Err(DomainError::invalid("action", "1 to 100 characters"));
    }
    Ok(crate::store::audit::list(
        pool,
        org,
        action,
        page.per_page,
        (page.page - 1) * page.per_page,
    )
    .await?)
}
