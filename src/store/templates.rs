//! Prompt templates: the built-in ones (no organization) and each organization's own.

use sqlx::PgPool;
use uuid::Uuid;

/// One template.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TemplateRow {
    /// Id.
    pub template_id: i64,
    /// Owner; `None` for built-ins.
    pub organization_id: Option<Uuid>,
    /// Slug.
    pub slug: String,
    /// Name.
    pub name: String,
    /// Category.
    pub category: String,
    /// Description.
    pub description: String,
    /// Model used when the caller names none.
    pub default_model: String,
    /// System message text (may be empty).
    pub system_prompt: String,
    /// User message text.
    pub user_prompt: String,
    /// Request parameters merged into a run (a JSON object).
    pub parameters: serde_json::Value,
    /// Declared variables (a JSON array of `{name, required?, default?}`).
    pub variables: serde_json::Value,
    /// Successful runs.
    pub runs: i64,
}

const COLUMNS: &str =
    "template_id, organization_id, slug, name, category, description, default_model,
     system_prompt, user_prompt, parameters, variables, runs";

/// A built-in template or one of `org`'s.
pub async fn visible(
    pool: &PgPool,
    id: i64,
    org: Option<Uuid>,
) -> Result<Option<TemplateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM template
         WHERE template_id = $1 AND (organization_id IS NULL OR organization_id = $2)"
    ))
    .bind(id)
    .bind(org)
    .fetch_optional(pool)
    .await
}

/// The built-ins, then `org`'s own.
pub async fn list_visible(
    pool: &PgPool,
    org: Option<Uuid>,
) -> Result<Vec<TemplateRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM template
         WHERE organization_id IS NULL OR organization_id = $1 ORDER BY organization_id NULLS FIRST, template_id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

/// Count one successful run.
pub async fn count_run(pool: &PgPool, id: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE template SET runs = runs + 1 WHERE template_id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}
