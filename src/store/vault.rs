//! The secrets vault's rows: `vault_secret` (metadata plus the sealed value and sealed data
//! key; no plaintext column) and `vault_secret_use` (every use, for the statistics). Every read
//! and write is scoped to an organization. Sealed bytes are only ever read by
//! [`get_sealed`] / [`sealed_older_than`], whose row redacts them from `Debug`.

use sqlx::{PgExecutor, PgPool};
use time::OffsetDateTime;
use uuid::Uuid;

/// The unique index on (organization, environment, name).
pub const NAME_KEY: &str = "vault_secret_org_env_name_key";

/// A secret's metadata (never its value).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SecretRow {
    /// Id.
    pub secret_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Name (the contract's `key`).
    pub name: String,
    /// `development`, `staging` or `production`.
    pub environment: String,
    /// What it is for.
    pub service: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// `active` or `inactive`.
    pub status: String,
    /// The master key version sealing its data key.
    pub master_version: i32,
    /// Maker.
    pub created_by: Option<Uuid>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
    /// Last rotated.
    pub last_rotated_at: Option<OffsetDateTime>,
}

/// A secret's sealed material.
#[derive(Clone, sqlx::FromRow)]
pub struct SealedRow {
    /// Id.
    pub secret_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// `active` or `inactive`.
    pub status: String,
    /// nonce || AES-256-GCM(value) under the data key.
    pub value_sealed: Vec<u8>,
    /// The data key sealed by the master key.
    pub data_key_sealed: Vec<u8>,
    /// Which master key version.
    pub master_version: i32,
}

impl std::fmt::Debug for SealedRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedRow")
            .field("secret_id", &self.secret_id)
            .field("organization_id", &self.organization_id)
            .field("status", &self.status)
            .field("master_version", &self.master_version)
            .finish_non_exhaustive()
    }
}

/// A new secret, already sealed.
pub struct NewSecret<'a> {
    /// Id (chosen before sealing: it is in the AAD).
    pub secret_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// Maker.
    pub created_by: Option<Uuid>,
    /// Name.
    pub name: &'a str,
    /// Environment.
    pub environment: &'a str,
    /// Service.
    pub service: Option<&'a str>,
    /// Description.
    pub description: Option<&'a str>,
    /// Sealed value.
    pub value_sealed: &'a [u8],
    /// Sealed data key.
    pub data_key_sealed: &'a [u8],
    /// Master key version.
    pub master_version: i32,
}

/// A metadata change: `None` keeps a field; `Some(None)` clears a nullable one.
pub struct MetaChange<'a> {
    /// New name.
    pub name: Option<&'a str>,
    /// New environment.
    pub environment: Option<&'a str>,
    /// New service.
    pub service: Option<Option<&'a str>>,
    /// New description.
    pub description: Option<Option<&'a str>>,
}

/// One secret's use statistics.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UsageRow {
    /// The secret.
    pub secret_id: Uuid,
    /// Uses recorded.
    pub total: i64,
    /// Of which succeeded.
    pub succeeded: i64,
    /// The newest use.
    pub last_used_at: Option<OffsetDateTime>,
}

const COLUMNS: &str = "secret_id, organization_id, name, environment, service, description, status,
     master_version, created_by, created_at, updated_at, last_rotated_at";

/// Insert a secret.
pub async fn insert(db: impl PgExecutor<'_>, s: &NewSecret<'_>) -> Result<SecretRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO vault_secret (secret_id, organization_id, created_by, name, environment, service,
             description, value_sealed, data_key_sealed, master_version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {COLUMNS}"
    ))
    .bind(s.secret_id)
    .bind(s.organization_id)
    .bind(s.created_by)
    .bind(s.name)
    .bind(s.environment)
    .bind(s.service)
    .bind(s.description)
    .bind(s.value_sealed)
    .bind(s.data_key_sealed)
    .bind(s.master_version)
    .fetch_one(db)
    .await
}

/// One secret's metadata.
pub async fn get(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
) -> Result<Option<SecretRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vault_secret WHERE organization_id = $1 AND secret_id = $2"
    ))
    .bind(org)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// One secret's sealed material; `lock` takes a row lock (inside a transaction).
pub async fn get_sealed(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
    lock: bool,
) -> Result<Option<SealedRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT secret_id, organization_id, status, value_sealed, data_key_sealed, master_version
         FROM vault_secret WHERE organization_id = $1 AND secret_id = $2{lock}"
    ))
    .bind(org)
    .bind(id)
    .fetch_optional(db)
    .await
}

/// An organization's secrets, by environment and name, optionally filtered.
pub async fn list(
    pool: &PgPool,
    org: Uuid,
    environment: Option<&str>,
    service: Option<&str>,
) -> Result<Vec<SecretRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM vault_secret
         WHERE organization_id = $1 AND ($2::text IS NULL OR environment = $2)
           AND ($3::text IS NULL OR service = $3)
         ORDER BY environment, name"
    ))
    .bind(org)
    .bind(environment)
    .bind(service)
    .fetch_all(pool)
    .await
}

/// Change metadata; `None` when there is no such secret in `org`.
pub async fn update_meta(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
    c: &MetaChange<'_>,
) -> Result<Option<SecretRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE vault_secret SET
             name = COALESCE($3, name),
             environment = COALESCE($4, environment),
             service = CASE WHEN $5 THEN $6 ELSE service END,
             description = CASE WHEN $7 THEN $8 ELSE description END
         WHERE organization_id = $1 AND secret_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(org)
    .bind(id)
    .bind(c.name)
    .bind(c.environment)
    .bind(c.service.is_some())
    .bind(c.service.flatten())
    .bind(c.description.is_some())
    .bind(c.description.flatten())
    .fetch_optional(db)
    .await
}

/// Replace the sealed material; `rotated` also sets `last_rotated_at` to now.
pub async fn replace_sealed(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
    value_sealed: &[u8],
    data_key_sealed: &[u8],
    master_version: i32,
    rotated: bool,
) -> Result<Option<SecretRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE vault_secret SET value_sealed = $3, data_key_sealed = $4, master_version = $5,
             last_rotated_at = CASE WHEN $6 THEN now() ELSE last_rotated_at END
         WHERE organization_id = $1 AND secret_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(org)
    .bind(id)
    .bind(value_sealed)
    .bind(data_key_sealed)
    .bind(master_version)
    .bind(rotated)
    .fetch_optional(db)
    .await
}

/// Set `active` / `inactive`.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
    status: &str,
) -> Result<Option<SecretRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE vault_secret SET status = $3 WHERE organization_id = $1 AND secret_id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(org)
    .bind(id)
    .bind(status)
    .fetch_optional(db)
    .await
}

/// Delete (its uses go with it); whether it existed.
pub async fn delete(db: impl PgExecutor<'_>, org: Uuid, id: Uuid) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("DELETE FROM vault_secret WHERE organization_id = $1 AND secret_id = $2")
        .bind(org)
        .bind(id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Secrets (any organization) whose data key is sealed under a version below `version`.
pub async fn sealed_older_than(
    pool: &PgPool,
    version: i32,
    limit: i64,
) -> Result<Vec<SealedRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT secret_id, organization_id, status, value_sealed, data_key_sealed, master_version
         FROM vault_secret WHERE master_version < $1 ORDER BY secret_id LIMIT $2",
    )
    .bind(version)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// Replace only the sealed data key (a re-wrap), if it is still sealed under `was`.
pub async fn rewrap(
    db: impl PgExecutor<'_>,
    id: Uuid,
    was: i32,
    data_key_sealed: &[u8],
    master_version: i32,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE vault_secret SET data_key_sealed = $3, master_version = $4
         WHERE secret_id = $1 AND master_version = $2",
    )
    .bind(id)
    .bind(was)
    .bind(data_key_sealed)
    .bind(master_version)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Record one use of `org`'s secret `id`; `false` when there is no such secret in `org`.
pub async fn insert_use(
    db: impl PgExecutor<'_>,
    org: Uuid,
    id: Uuid,
    success: bool,
    purpose: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO vault_secret_use (secret_id, organization_id, success, purpose)
         SELECT secret_id, organization_id, $3, $4 FROM vault_secret
         WHERE organization_id = $1 AND secret_id = $2",
    )
    .bind(org)
    .bind(id)
    .bind(success)
    .bind(purpose)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// One secret's statistics (zeros when never used).
pub async fn usage(pool: &PgPool, org: Uuid, id: Uuid) -> Result<UsageRow, sqlx::Error> {
    sqlx::query_as(
        "SELECT $2::uuid AS secret_id, count(*) AS total,
                count(*) FILTER (WHERE success) AS succeeded, max(used_at) AS last_used_at
         FROM vault_secret_use WHERE organization_id = $1 AND secret_id = $2",
    )
    .bind(org)
    .bind(id)
    .fetch_one(pool)
    .await
}

/// Every secret of `org` with its statistics (never-used ones with zeros), by name.
pub async fn usage_by_org(pool: &PgPool, org: Uuid) -> Result<Vec<UsageRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT s.secret_id, count(u.use_id) AS total,
                count(u.use_id) FILTER (WHERE u.success) AS succeeded,
                max(u.used_at) AS last_used_at
         FROM vault_secret s LEFT JOIN vault_secret_use u ON u.secret_id = s.secret_id
         WHERE s.organization_id = $1
         GROUP BY s.secret_id, s.environment, s.name ORDER BY s.environment, s.name",
    )
    .bind(org)
    .fetch_all(pool)
    .await
}
