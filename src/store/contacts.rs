//! PyTake's contacts (`pytake_contact`): every read and write scoped to an organization.

use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

/// The unique constraint on an organization's WhatsApp ids.
pub const WHATSAPP_KEY: &str = "pytake_contact_org_whatsapp_key";

/// One contact.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ContactRow {
    /// Id.
    pub contact_id: Uuid,
    /// Owner.
    pub organization_id: Uuid,
    /// WhatsApp id (digits), unique in the organization.
    pub whatsapp_id: String,
    /// Name.
    pub name: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Created.
    pub created_at: OffsetDateTime,
    /// Last changed.
    pub updated_at: OffsetDateTime,
}

/// Insert a contact (a taken WhatsApp id fails on [`WHATSAPP_KEY`]).
pub async fn insert<'e>(
    ex: impl sqlx::PgExecutor<'e>,
    org: Uuid,
    whatsapp_id: &str,
    name: Option<&str>,
    email: Option<&str>,
) -> Result<ContactRow, sqlx::Error> {
    sqlx::query_as(
        "INSERT INTO pytake_contact (organization_id, whatsapp_id, name, email)
         VALUES ($1, $2, $3, $4)
         RETURNING contact_id, organization_id, whatsapp_id, name, email, created_at, updated_at",
    )
    .bind(org)
    .bind(whatsapp_id)
    .bind(name)
    .bind(email)
    .fetch_one(ex)
    .await
}

/// A page of the organization's contacts, newest first; `pattern` (an `ILIKE` pattern with
/// `\` as escape) filters on name, email or WhatsApp id.
pub async fn list(
    pool: &PgPool,
    org: Uuid,
    pattern: Option<&str>,
    limit: i64,
    offset: i64,
) -> Result<Vec<ContactRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT contact_id, organization_id, whatsapp_id, name, email, created_at, updated_at
           FROM pytake_contact
          WHERE organization_id = $1
            AND ($2::text IS NULL
                 OR name ILIKE $2 ESCAPE '\\'
                 OR email ILIKE $2 ESCAPE '\\'
                 OR whatsapp_id ILIKE $2 ESCAPE '\\')
          ORDER BY created_at DESC, contact_id DESC
          LIMIT $3 OFFSET $4",
    )
    .bind(org)
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
}
