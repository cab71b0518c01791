//! The model catalog customers see.

use sqlx::PgPool;

use super::error::DomainError;
pub use crate::store::models::ModelRow as Model;

/// Every active model by name.
pub async fn active(pool: &PgPool) -> Result<Vec<Model>, DomainError> {
    Ok(crate::store::models::active(pool).await?)
}
