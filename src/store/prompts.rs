//! Tokia's prompt library: `prompt`, its append-only `prompt_version` history, and the usage
//! events of its runs (session ids `prompt-{id}-…`). Every read and write is scoped to an
//! organization.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The unique index on an organization's prompt names.
pub const NAME_KEY: &str = "prompt_org_name_key";

/// One prompt.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PromptRow {
    /// Id.
    pub prompt_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Name, unique in the organization.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// The current body, with `{{var}}` placeholders.
    pub body: String,
    /// Declared variables.
    pub variables: Vec<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// Model used when a run names none.
    pub default_model: Option<String>,
    /// The current version.
    pub version: i32,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// One version of a prompt's body.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PromptVersionRow {
    /// Version number, from 1.
    pub version: i32,
    /// The body then.
    pub body: String,
    /// The variables then.
    pub variables: Vec<String>,
    /// Why it changed.
    pub change_note: Option<String>,
    /// Who made it.
    pub created_by: Option<Uuid>,
    /// When.
    pub created_at: OffsetDateTime,
}

/// The usage events of one run (one session id), summed.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PromptRunRow {
    /// `prompt-{id}-{unix ms}`.
    pub session_id: String,
    /// The model of its newest event.
    pub model: Option<String>,
    /// Events.
    pub request_count: i64,
    /// Summed prompt tokens.
    pub prompt_tokens: i64,
    /// Summed completion tokens.
    pub completion_tokens: i64,
    /// Summed billed BRL micros.
    pub billed_brl_micros: i64,
    /// Summed upstream USD micros.
    pub cost_upstream_usd_micros: i64,
    /// Worst status (the highest).
    pub status: i16,
    /// First event.
    pub started_at: OffsetDateTime,
    /// Last event.
    pub ended_at: OffsetDateTime,
}

/// What a new prompt is made of.
pub struct NewPrompt<'a> {
    /// Owner.
    pub organization_id: Uuid,
    /// Maker.
    pub created_by: Option<Uuid>,
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: Option<&'a str>,
    /// Body.
    pub body: &'a str,
    /// Variables.
    pub variables: &'a [String],
    /// Tags.
    pub tags: &'a [String],
    /// Default model.
    pub default_model: Option<&'a str>,
}

const COLUMNS: &str = "prompt_id, organization_id, name, description, body, variables, tags,
     default_model, version, created_at, updated_at";

/// Insert a prompt at version 1 (its version row is [`insert_version`]'s).
pub async fn insert(db: impl PgExecutor<'_>, p: &NewPrompt<'_>) -> Result<PromptRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO prompt (organization_id, created_by, name, description, body, variables, tags, default_model)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {COLUMNS}"
    ))
    .bind(p.organization_id)
    .bind(p.created_by)
    .bind(p.name)
    .bind(p.description)
    .bind(p.body)
    .bind(p.variables)
    .bind(p.tags)
    .bind(p.default_model)
    .fetch_one(db)
    .await
}

/// Append a version.
pub async fn insert_version(
    db: impl PgExecutor<'_>,
    prompt: Uuid,
    version: i32,
    body: &str,
    variables: &[String],
    change_note: Option<&str>,
    created_by: Option<Uuid>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO prompt_version (prompt_id, version, body, variables, change_note, created_by)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(prompt)
    .bind(version)
    .bind(body)
    .bind(variables)
    .bind(change_note)
    .bind(created_by)
    .execute(db)
    .await?;
    Ok(())
}

/// One of `org`'s prompts.
pub async fn get(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
) -> Result<Option<PromptRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt WHERE prompt_id = $1 AND organization_id = $2"
    ))
    .bind(id)
    .bind(org)
    .fetch_optional(db)
    .await
}

/// One of `org`'s prompts, locked for an update.
pub async fn get_for_update(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
) -> Result<Option<PromptRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt WHERE prompt_id = $1 AND organization_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(org)
    .fetch_optional(db)
    .await
}

/// `org`'s prompts, last changed first.
pub async fn list(pool: &PgPool, org: Uuid) -> Result<Vec<PromptRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM prompt WHERE organization_id = $1
         ORDER BY updated_at DESC, prompt_id"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

/// Names of `org`'s prompts that start with `prefix`.
pub async fn names_with_prefix(
    db: impl PgExecutor<'_>,
    org: Uuid,
    prefix: &str,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT name FROM prompt WHERE organization_id = $1 AND starts_with(name, $2)",
    )
    .bind(org)
    .bind(prefix)
    .fetch_all(db)
    .await
}

/// Replace a prompt's fields (the caller computed them from the locked row).
pub async fn update(db: impl PgExecutor<'_>, p: &PromptRow) -> Result<PromptRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE prompt SET name = $3, description = $4, body = $5, variables = $6, tags = $7,
                default_model = $8, version = $9
         WHERE prompt_id = $1 AND organization_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(p.prompt_id)
    .bind(p.organization_id)
    .bind(&p.name)
    .bind(&p.description)
    .bind(&p.body)
    .bind(&p.variables)
    .bind(&p.tags)
    .bind(&p.default_model)
    .bind(p.version)
    .fetch_one(db)
    .await
}

/// Delete one of `org`'s prompts (its versions go with it); whether it existed.
pub async fn delete(db: impl PgExecutor<'_>, org: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM prompt WHERE prompt_id = $1 AND organization_id = $2")
        .bind(id)
        .bind(org)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// A prompt's versions, newest first.
pub async fn versions(pool: &PgPool, id: Uuid) -> Result<Vec<PromptVersionRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT version, body, variables, change_note, created_by, created_at
         FROM prompt_version WHERE prompt_id = $1 ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(pool)
    .await
}

/// `org`'s usage events whose session id starts with `prefix`, grouped by session id, the
/// newest `limit` sessions first.
pub async fn runs(
    pool: &PgPool,
    org: Uuid,
    prefix: &str,
    limit: i64,
) -> Result<Vec<PromptRunRow>, sqlx::Error> {
    // `prefix` is `prompt-<uuid>-`: no LIKE metacharacters
    sqlx::query_as(
        "SELECT session_id,
                (array_agg(model ORDER BY created_at DESC, usage_event_id DESC))[1] AS model,
                count(*) AS request_count,
                coalesce(sum(prompt_tokens), 0)::int8 AS prompt_tokens,
                coalesce(sum(completion_tokens), 0)::int8 AS completion_tokens,
                coalesce(sum(cost_billed_brl_micros), 0)::int8 AS billed_brl_micros,
                coalesce(sum(cost_upstream_usd_micros), 0)::int8 AS cost_upstream_usd_micros,
                max(status) AS status,
                min(created_at) AS started_at,
                max(created_at) AS ended_at
         FROM usage_event
         WHERE organization_id = $1 AND session_id LIKE 'prompt-%' AND session_id LIKE $2 || '%'
         GROUP BY session_id
         ORDER BY max(created_at) DESC, session_id DESC
         LIMIT $3",
    )
    .bind(org)
    .bind(prefix)
    .bind(limit)
    .fetch_all(pool)
    .await
}
