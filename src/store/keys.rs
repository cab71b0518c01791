//! API keys as their organizations manage them (the gateway's own lookups are in
//! `key_cache`). Every statement is scoped to the caller's organization.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A key with its running totals.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyRow {
    /// Per-organization serial id.
    pub serial_id: i64,
    /// Name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// Status.
    pub status: String,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Requests per day.
    pub rate_limit_rpd: Option<i32>,
    /// Requests so far.
    pub total_requests: i64,
    /// Prompt plus completion tokens so far.
    pub total_tokens: i64,
    /// Spend so far, micro-USD.
    pub total_cost_usd_micros: i64,
    /// Spend cap, micro-USD.
    pub budget_usd_micros: Option<i64>,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

const KEY_COLUMNS: &str = "serial_id, name, prefix, status, rate_limit_rpm, rate_limit_rpd, total_requests,
     total_prompt_tokens + total_completion_tokens AS total_tokens, total_cost_usd_micros, budget_usd_micros, created_at";

/// Columns of a new key.
pub struct NewKeyRow<'a> {
    /// Owner organization.
    pub organization_id: Uuid,
    /// Creator.
    pub created_by: Uuid,
    /// SHA-256 of the plaintext.
    pub key_hash: &'a [u8],
    /// Display prefix.
    pub prefix: &'a str,
    /// Name.
    pub name: &'a str,
    /// Requests per minute.
    pub rpm: Option<i32>,
    /// Requests per day.
    pub rpd: Option<i32>,
    /// Spend cap.
    pub budget_usd_micros: Option<i64>,
}

/// Insert a key; the stored row.
pub async fn insert(db: impl PgExecutor<'_>, k: &NewKeyRow<'_>) -> Result<KeyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_key (organization_id, created_by, key_hash, prefix, name, rate_limit_rpm, rate_limit_rpd, budget_usd_micros)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {KEY_COLUMNS}"
    ))
    .bind(k.organization_id)
    .bind(k.created_by)
    .bind(k.key_hash)
    .bind(k.prefix)
    .bind(k.name)
    .bind(k.rpm)
    .bind(k.rpd)
    .bind(k.budget_usd_micros)
    .fetch_one(db)
    .await
}

/// The organization's keys that are not revoked, newest first.
pub async fn live_of_org(pool: &PgPool, org: Uuid) -> Result<Vec<KeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {KEY_COLUMNS} FROM api_key WHERE organization_id = $1 AND status <> 'revoked' ORDER BY serial_id DESC"
    ))
    .bind(org)
    .fetch_all(pool)
    .await
}

/// Revoke a key of the organization unless revoked already; whether one was.
pub async fn revoke(db: impl PgExecutor<'_>, org: Uuid, serial: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_key SET status = 'revoked', revoked_at = now()
         WHERE serial_id = $1 AND organization_id = $2 AND status <> 'revoked'",
    )
    .bind(serial)
    .bind(org)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A status change: when, and the status it replaced.
#[derive(Debug, sqlx::FromRow)]
pub struct StatusChange {
    /// When the row changed.
    pub updated_at: time::OffsetDateTime,
    /// The status before.
    pub before: String,
}

/// Set a key's status in one statement (`revoked_at` kept while revoked, cleared otherwise; the
/// row locked between reading the old status and writing the new); `None` when the
/// organization has no such key.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    org: Uuid,
    serial: i64,
    status: &str,
) -> Result<Option<StatusChange>, sqlx::Error> {
    sqlx::query_as(
        "WITH old AS (
             SELECT api_key_id, status FROM api_key
             WHERE organization_id = $1 AND serial_id = $2 AND deleted_at IS NULL FOR UPDATE)
         UPDATE api_key k SET status = $3,
                revoked_at = CASE WHEN $3 = 'revoked' THEN coalesce(k.revoked_at, now()) END
         FROM old WHERE k.api_key_id = old.api_key_id
         RETURNING k.updated_at, old.status AS before",
    )
    .bind(org)
    .bind(serial)
    .bind(status)
    .fetch_optional(db)
    .await
}

/// A key as the operator sees it (never the plaintext).
#[derive(Debug, sqlx::FromRow)]
pub struct OperatorKeyRow {
    /// Id.
    pub api_key_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Creator, if a user.
    pub created_by: Option<Uuid>,
    /// Display prefix.
    pub prefix: String,
    /// Name.
    pub name: String,
    /// Status.
    pub status: String,
    /// Requests per second.
    pub rate_limit_rps: Option<i32>,
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Requests per day.
    pub rate_limit_rpd: Option<i32>,
    /// Tokens per minute.
    pub rate_limit_tpm: Option<i32>,
    /// Requests at once.
    pub max_concurrency: Option<i32>,
    /// Spend cap, micro-USD.
    pub budget_usd_micros: Option<i64>,
    /// Models it may use (empty = all).
    pub allowed_models: Vec<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// Expiry.
    pub expires_at: Option<time::OffsetDateTime>,
    /// Created.
    pub created_at: time::OffsetDateTime,
}

const OPERATOR_COLUMNS: &str =
    "api_key_id, organization_id, created_by, prefix, name, status, rate_limit_rps,
     rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, max_concurrency, budget_usd_micros,
     allowed_models, scopes, expires_at, created_at";

/// Columns of a key the operator creates.
pub struct OperatorKey<'a> {
    /// Owner.
    pub organization_id: Uuid,
    /// User it belongs to, if any.
    pub user_id: Option<Uuid>,
    /// SHA-256 of the plaintext.
    pub key_hash: &'a [u8],
    /// Display prefix.
    pub prefix: &'a str,
    /// Name.
    pub name: &'a str,
    /// Requests per second.
    pub rps: Option<i32>,
    /// Requests per minute.
    pub rpm: Option<i32>,
    /// Requests per day.
    pub rpd: Option<i32>,
    /// Tokens per minute.
    pub tpm: Option<i32>,
    /// Requests at once.
    pub concurrency: Option<i32>,
    /// Spend cap, micro-USD.
    pub budget_usd_micros: Option<i64>,
    /// Models it may use (empty = all).
    pub models: &'a [String],
    /// Scopes.
    pub scopes: &'a [String],
    /// Expiry.
    pub expires_at: Option<time::OffsetDateTime>,
}

/// Insert an operator key; the stored row.
pub async fn insert_operator(
    db: impl PgExecutor<'_>,
    k: &OperatorKey<'_>,
) -> Result<OperatorKeyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_key (organization_id, created_by, key_hash, prefix, name, rate_limit_rps, rate_limit_rpm,
                              rate_limit_rpd, rate_limit_tpm, max_concurrency, budget_usd_micros, allowed_models,
                              scopes, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING {OPERATOR_COLUMNS}"
    ))
    .bind(k.organization_id)
    .bind(k.user_id)
    .bind(k.key_hash)
    .bind(k.prefix)
    .bind(k.name)
    .bind(k.rps)
    .bind(k.rpm)
    .bind(k.rpd)
    .bind(k.tpm)
    .bind(k.concurrency)
    .bind(k.budget_usd_micros)
    .bind(k.models)
    .bind(k.scopes)
    .bind(k.expires_at)
    .fetch_one(db)
    .await
}

/// Revoke any key by id unless revoked already; its row when it was revoked now.
pub async fn revoke_by_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Option<OperatorKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE api_key SET status = 'revoked', revoked_at = now()
         WHERE api_key_id = $1 AND status <> 'revoked' RETURNING {OPERATOR_COLUMNS}"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

/// Give a live key a new hash and prefix (rotation); its row when it exists and is not revoked.
pub async fn rehash(
    db: impl PgExecutor<'_>,
    id: Uuid,
    key_hash: &[u8],
    prefix: &str,
) -> Result<Option<OperatorKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE api_key SET key_hash = $2, prefix = $3
         WHERE api_key_id = $1 AND status <> 'revoked' AND deleted_at IS NULL RETURNING {OPERATOR_COLUMNS}"
    ))
    .bind(id)
    .bind(key_hash)
    .bind(prefix)
    .fetch_optional(db)
    .await
}

/// The display prefix of a key (its format for a rotation).
pub async fn prefix_of(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT prefix FROM api_key WHERE api_key_id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// An organization's keys, newest first (revoked ones too).
pub async fn of_org(
    db: impl PgExecutor<'_>,
    org: Uuid,
) -> Result<Vec<OperatorKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {OPERATOR_COLUMNS} FROM api_key WHERE organization_id = $1 AND deleted_at IS NULL
         ORDER BY created_at DESC, api_key_id"
    ))
    .bind(org)
    .fetch_all(db)
    .await
}

/// A key as a team's dashboard lists it.
#[derive(Debug, sqlx::FromRow)]
pub struct TeamKeyRow {
    /// Per-organization serial id.
    pub serial_id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: String,
    /// Created.
    pub created_at: time::OffsetDateTime,
    /// Last request.
    pub last_used_at: Option<time::OffsetDateTime>,
    /// Display prefix.
    pub prefix: String,
}

const TEAM_KEY_COLUMNS: &str =
    "serial_id, name, description, status, created_at, last_used_at, prefix";

/// The team's keys (deleted ones hidden), oldest first.
pub async fn of_team(db: impl PgExecutor<'_>, org: Uuid) -> Result<Vec<TeamKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TEAM_KEY_COLUMNS} FROM api_key WHERE organization_id = $1 AND deleted_at IS NULL ORDER BY serial_id"
    ))
    .bind(org)
    .fetch_all(db)
    .await
}

/// Columns of a new team key.
pub struct NewTeamKey<'a> {
    /// Owner organization.
    pub organization_id: Uuid,
    /// Creator.
    pub created_by: Uuid,
    /// SHA-256 of the plaintext.
    pub key_hash: &'a [u8],
    /// Display prefix.
    pub prefix: &'a str,
    /// Name.
    pub name: &'a str,
    /// Description.
    pub description: Option<&'a str>,
}

/// Insert a team key; the stored row.
pub async fn insert_team_key(
    db: impl PgExecutor<'_>,
    k: &NewTeamKey<'_>,
) -> Result<TeamKeyRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO api_key (organization_id, created_by, key_hash, prefix, name, description)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {TEAM_KEY_COLUMNS}"
    ))
    .bind(k.organization_id)
    .bind(k.created_by)
    .bind(k.key_hash)
    .bind(k.prefix)
    .bind(k.name)
    .bind(k.description)
    .fetch_one(db)
    .await
}

/// A team key, locked until the transaction ends (to record what a change replaced).
pub async fn lock_team_key(
    db: impl PgExecutor<'_>,
    org: Uuid,
    serial: i64,
) -> Result<Option<TeamKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {TEAM_KEY_COLUMNS} FROM api_key
         WHERE organization_id = $1 AND serial_id = $2 AND deleted_at IS NULL FOR UPDATE"
    ))
    .bind(org)
    .bind(serial)
    .fetch_optional(db)
    .await
}

/// Rename or describe a team key (`None` keeps a field); the row, `None` when absent.
pub async fn update_team_key(
    db: impl PgExecutor<'_>,
    org: Uuid,
    serial: i64,
    name: Option<&str>,
    description: Option<&str>,
) -> Result<Option<TeamKeyRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE api_key SET name = coalesce($3, name), description = coalesce($4, description)
         WHERE organization_id = $1 AND serial_id = $2 AND deleted_at IS NULL RETURNING {TEAM_KEY_COLUMNS}"
    ))
    .bind(org)
    .bind(serial)
    .bind(name)
    .bind(description)
    .fetch_optional(db)
    .await
}

/// Delete a key as a tombstone: revoked, hidden from every list, its usage keeping its name.
/// Whether there was one.
pub async fn tombstone(
    db: impl PgExecutor<'_>,
    org: Uuid,
    serial: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_key SET status = 'revoked', revoked_at = coalesce(revoked_at, now()), deleted_at = now()
         WHERE organization_id = $1 AND serial_id = $2 AND deleted_at IS NULL",
    )
    .bind(org)
    .bind(serial)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The organization's active keys.
pub async fn active_count(db: impl PgExecutor<'_>, org: Uuid) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM api_key WHERE organization_id = $1 AND status = 'active'",
    )
    .bind(org)
    .fetch_one(db)
    .await
}

/// Who an API key belongs to, and whether it may be used (the checks are the domain's).
#[derive(Debug, sqlx::FromRow)]
pub struct OwnerRow {
    /// Key id.
    pub api_key_id: Uuid,
    /// Owner organization.
    pub organization_id: Uuid,
    /// The user it was made for or by, if any.
    pub created_by: Option<Uuid>,
    /// `active`, `disabled` or `revoked`.
    pub status: String,
    /// Expiry.
    pub expires_at: Option<time::OffsetDateTime>,
    /// Set on a deleted key (a tombstone).
    pub deleted_at: Option<time::OffsetDateTime>,
    /// Whether the organization is disabled.
    pub org_disabled: bool,
}

/// The key whose SHA-256 is `hash`, with its organization's state.
pub async fn owner_by_hash(pool: &PgPool, hash: &[u8]) -> Result<Option<OwnerRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT k.api_key_id, k.organization_id, k.created_by, k.status, k.expires_at,
                k.deleted_at, o.disabled_at IS NOT NULL AS org_disabled
         FROM api_key k JOIN organization o ON o.organization_id = k.organization_id
         WHERE k.key_hash = $1",
    )
    .bind(hash)
    .fetch_optional(pool)
    .await
}

/// One key of an organization with its usage over a window of UTC days.
#[derive(Debug, sqlx::FromRow)]
pub struct KeyUsageRow {
    /// Key id.
    pub api_key_id: Uuid,
    /// Name.
    pub name: String,
    /// Display prefix.
    pub prefix: String,
    /// `active`, `disabled` or `revoked` (a deleted key shows as revoked).
    pub status: String,
    /// Created.
    pub created_at: time::OffsetDateTime,
    /// Revoked.
    pub revoked_at: Option<time::OffsetDateTime>,
    /// Requests in the window.
    pub requests: i64,
    /// Input tokens in the window.
    pub prompt_tokens: i64,
    /// Output tokens in the window.
    pub completion_tokens: i64,
    /// Billed in the window, micro-BRL.
    pub billed_brl_micros: i64,
    /// Upstream cost in the window, micro-USD.
    pub cost_usd_micros: i64,
    /// Latest request in the window.
    pub last_request_at: Option<time::OffsetDateTime>,
    /// Up to three models, most billed first.
    pub top_models: Vec<String>,
}

/// The organization's keys (revoked ones too; deleted ones only when they have usage in the
/// window) with their usage over the last `days` UTC days (today and the `days - 1` before),
/// most billed first; only `key` when given. Read from the per-key daily rollup
/// (`usage_key_daily`, migration 0030): at most days × keys × models rows, however many
/// requests.
pub async fn usage_by_key(
    pool: &PgPool,
    org: Uuid,
    days: i32,
    key: Option<Uuid>,
) -> Result<Vec<KeyUsageRow>, sqlx::Error> {
    sqlx::query_as(
        "WITH per_model AS (
             SELECT d.api_key_id, d.model, sum(d.requests)::int8 AS requests,
                    sum(d.prompt_tokens)::int8 AS prompt_tokens,
                    sum(d.completion_tokens)::int8 AS completion_tokens,
                    sum(d.cost_billed_brl_micros)::int8 AS billed,
                    sum(d.cost_usd_micros)::int8 AS usd,
                    max(d.last_request_at) AS last_at
             FROM usage_key_daily d
             WHERE d.organization_id = $1
               AND d.day > (now() AT TIME ZONE 'UTC')::date - $2
               AND ($3::uuid IS NULL OR d.api_key_id = $3)
             GROUP BY d.api_key_id, d.model),
         per_key AS (
             SELECT api_key_id, sum(requests)::int8 AS requests,
                    sum(prompt_tokens)::int8 AS prompt_tokens,
                    sum(completion_tokens)::int8 AS completion_tokens,
                    sum(billed)::int8 AS billed, sum(usd)::int8 AS usd, max(last_at) AS last_at,
                    -- model '' is the rollups' stand-in for none
                    (array_agg(model ORDER BY billed DESC, model) FILTER (WHERE model <> ''))[1:3] AS top_models
             FROM per_model GROUP BY api_key_id)
         SELECT k.api_key_id, k.name, k.prefix, k.status, k.created_at, k.revoked_at,
                coalesce(p.requests, 0)::int8 AS requests,
                coalesce(p.prompt_tokens, 0)::int8 AS prompt_tokens,
                coalesce(p.completion_tokens, 0)::int8 AS completion_tokens,
                coalesce(p.billed, 0)::int8 AS billed_brl_micros,
                coalesce(p.usd, 0)::int8 AS cost_usd_micros,
                p.last_at AS last_request_at,
                coalesce(p.top_models, '{}') AS top_models
         FROM api_key k LEFT JOIN per_key p ON p.api_key_id = k.api_key_id
         WHERE k.organization_id = $1 AND ($3::uuid IS NULL OR k.api_key_id = $3)
           AND (k.deleted_at IS NULL OR p.api_key_id IS NOT NULL)
         ORDER BY billed_brl_micros DESC, requests DESC, k.created_at, k.api_key_id",
    )
    .bind(org)
    .bind(days)
    .bind(key)
    .fetch_all(pool)
    .await
}

/// Whether the organization has a key with this id that is not deleted.
pub async fn exists_in_org(pool: &PgPool, org: Uuid, key: Uuid) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM api_key
                        WHERE organization_id = $1 AND api_key_id = $2 AND deleted_at IS NULL)",
    )
    .bind(org)
    .bind(key)
    .fetch_one(pool)
    .await
}

/// What a bulk revocation changed.
#[derive(Debug, sqlx::FromRow)]
pub struct BulkRevokeRow {
    /// The keys revoked now.
    pub revoked: Vec<Uuid>,
    /// Keys matched that were not active (revoked, disabled, expired by status, or deleted).
    pub already_inactive: i64,
}

/// Revoke `org`'s active keys: all of them (`all`), or those among `ids` (ids of other
/// organizations and unknown ids match nothing). One statement; the key trigger NOTIFYs every
/// gateway node of each revoked key in this transaction.
pub async fn bulk_revoke(
    db: impl PgExecutor<'_>,
    org: Uuid,
    all: bool,
    ids: &[Uuid],
) -> Result<BulkRevokeRow, sqlx::Error> {
    sqlx::query_as(
        "WITH target AS (
             SELECT api_key_id, status, deleted_at FROM api_key
             WHERE organization_id = $1 AND ($2 OR api_key_id = ANY($3))
             FOR UPDATE),
         done AS (
             UPDATE api_key k SET status = 'revoked', revoked_at = now()
             FROM target t
             WHERE k.api_key_id = t.api_key_id AND t.status = 'active' AND t.deleted_at IS NULL
             RETURNING k.api_key_id)
         SELECT COALESCE((SELECT array_agg(api_key_id ORDER BY api_key_id) FROM done), '{}') AS revoked,
                (SELECT count(*) FROM target) - (SELECT count(*) FROM done) AS already_inactive",
    )
    .bind(org)
    .bind(all)
    .bind(ids)
    .fetch_one(db)
    .await
}
