//! The active model catalog as the dashboards list it (kept by `catalog::sync`).

use sqlx::PgPool;

/// One active model.
#[derive(Debug, sqlx::FromRow)]
pub struct ModelRow {
    /// Catalog name.
    pub name: String,
    /// Category (`chat`, `embedding`, ...).
    pub category: String,
    /// Owner shown to customers.
    pub owned_by: String,
    /// Input price, micro-USD per million tokens.
    pub input_usd_micros_per_1m: Option<i64>,
    /// Output price, micro-USD per million tokens.
    pub output_usd_micros_per_1m: Option<i64>,
    /// Context window, tokens.
    pub context_window: Option<i32>,
}

/// Every active model by name.
pub async fn active(pool: &PgPool) -> Result<Vec<ModelRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT name, category, owned_by, input_usd_micros_per_1m, output_usd_micros_per_1m, context_window
         FROM model WHERE active ORDER BY name",
    )
    .fetch_all(pool)
    .await
}
