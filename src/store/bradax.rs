//! bradax's projects and keys as its token routes read them. Named statements only; the rules
//! live in `domain::bradax`.

use sqlx::PgExecutor;
use uuid::Uuid;

/// An active key of an enabled project.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    /// Key.
    pub api_key_id: Uuid,
    /// Project.
    pub organization_id: Uuid,
    /// Project slug (`project_id`).
    pub slug: String,
    /// `full` or `student`.
    pub tier: Option<String>,
    /// Scopes the key holds.
    pub scopes: Vec<String>,
    /// SHA-256 of the key.
    pub key_hash: Vec<u8>,
}

impl KeyRow {
    /// The project's tier (a project without one is full).
    pub fn tier(&self) -> crate::domain::bradax::Tier {
        self.tier
            .as_deref()
            .and_then(crate::domain::bradax::Tier::parse)
            .unwrap_or(crate::domain::bradax::Tier::Full)
    }
}

const ACTIVE: &str = "SELECT k.api_key_id, k.organization_id, o.slug, o.tier, k.scopes, k.key_hash
     FROM api_key k JOIN organization o USING (organization_id)
     WHERE k.status = 'active' AND k.deleted_at IS NULL
       AND (k.expires_at IS NULL OR k.expires_at > now())
       AND o.kind = 'project' AND o.disabled_at IS NULL AND o.slug IS NOT NULL";

/// The active project key with this hash.
pub async fn active_key_by_hash(
    db: impl PgExecutor<'_>,
    hash: &[u8],
) -> Result<Option<KeyRow>, sqlx::Error> {
    sqlx::query_as(&format!("{ACTIVE} AND k.key_hash = $1"))
        .bind(hash)
        .fetch_optional(db)
        .await
}

/// The active project key with this id.
pub async fn active_key(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<KeyRow>, sqlx::Error> {
    sqlx::query_as(&format!("{ACTIVE} AND k.api_key_id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// One model's use by a project over a window.
#[derive(Debug, sqlx::FromRow)]
pub struct ModelUsage {
    /// Public model name.
    pub model: String,
    /// Requests.
    pub requests: i64,
    /// Requests that did not succeed (status outside 2xx/3xx).
    pub errors: i64,
    /// Input tokens.
    pub prompt_tokens: i64,
    /// Output tokens.
    pub completion_tokens: i64,
    /// Upstream cost, micro-USD.
    pub cost_usd_micros: i64,
}

/// A project's usage events in `[from, to)`, by model (the events' tenant-and-time index).
pub async fn usage_by_model(
    db: impl PgExecutor<'_>,
    org: Uuid,
    from: time::OffsetDateTime,
    to: time::OffsetDateTime,
) -> Result<Vec<ModelUsage>, sqlx::Error> {
    sqlx::query_as(
        "SELECT model, count(*) AS requests,
                count(*) FILTER (WHERE status NOT BETWEEN 200 AND 399) AS errors,
                coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens,
                coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens,
                coalesce(sum(cost_upstream_usd_micros), 0)::int8 AS cost_usd_micros
         FROM usage_event
         WHERE organization_id = $1 AND created_at >= $2 AND created_at < $3
           AND model IS NOT NULL
         GROUP BY model ORDER BY model",
    )
    .bind(org)
    .bind(from)
    .bind(to)
    .fetch_all(db)
    .await
}
