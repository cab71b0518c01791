//! PyTake's sessions: refresh-token families with rotation grace, and the platform
//! administrator flag. Named statements only; the rules live in `domain::pytake`.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

/// A PyTake refresh token at the moment it is exchanged.
#[derive(Debug, sqlx::FromRow)]
pub struct PyRefreshRow {
    /// This token's id (its successors' parent).
    pub pytake_refresh_token_id: Uuid,
    /// The token it succeeded (`None`: the first of its family).
    pub parent_id: Option<Uuid>,
    /// Refresh family (one login).
    pub family_id: Uuid,
    /// User.
    pub user_id: Uuid,
    /// Organization the session acts in.
    pub organization_id: Uuid,
}

/// What `me` renders of a user.
#[derive(Debug, sqlx::FromRow)]
pub struct PyUserRow {
    /// Id.
    pub user_id: Uuid,
    /// Email as registered.
    pub email: String,
    /// Display name.
    pub name: String,
    /// Platform administrator.
    pub super_admin: bool,
    /// Registration time.
    pub created_at: time::OffsetDateTime,
}

/// Store a refresh token of `family` (after `parent`), valid for `ttl_secs`.
pub async fn insert_refresh(
    db: impl PgExecutor<'_>,
    family: Uuid,
    parent: Option<Uuid>,
    user: Uuid,
    org: Uuid,
    token_hash: &[u8],
    ttl_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO pytake_refresh_token
             (family_id, parent_id, user_id, organization_id, token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + $6 * interval '1 second')",
    )
    .bind(family)
    .bind(parent)
    .bind(user)
    .bind(org)
    .bind(token_hash)
    .bind(ttl_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Exchange a usable token (not spent, revoked or expired): its first use is recorded, and it
/// stays usable until a successor is used.
pub async fn use_refresh(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<PyRefreshRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE pytake_refresh_token SET used_at = coalesce(used_at, now())
         WHERE token_hash = $1 AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING pytake_refresh_token_id, parent_id, family_id, user_id, organization_id",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// A successor `used` of `parent` was used: the parent and the successor's other siblings are
/// spent (presenting them again is reuse).
pub async fn spend_predecessors(
    db: impl PgExecutor<'_>,
    used: Uuid,
    parent: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pytake_refresh_token SET spent_at = now()
         WHERE spent_at IS NULL
           AND (pytake_refresh_token_id = $2 OR (parent_id = $2 AND pytake_refresh_token_id <> $1))",
    )
    .bind(used)
    .bind(parent)
    .execute(db)
    .await?;
    Ok(())
}

/// The family of a spent token, if the token is one.
pub async fn spent_family(
    db: impl PgExecutor<'_>,
    token_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT family_id FROM pytake_refresh_token WHERE token_hash = $1 AND spent_at IS NOT NULL",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Revoke every live token of a family.
pub async fn revoke_family(db: impl PgExecutor<'_>, family: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pytake_refresh_token SET revoked_at = now()
         WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .execute(db)
    .await?;
    Ok(())
}

/// Revoke the family of a token of `user` (logout); false when `user` has no such token.
pub async fn revoke_family_of(
    db: impl PgExecutor<'_>,
    user: Uuid,
    token_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE pytake_refresh_token SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM pytake_refresh_token
                            WHERE token_hash = $2 AND user_id = $1)
           AND revoked_at IS NULL",
    )
    .bind(user)
    .bind(token_hash)
    .execute(db)
    .await?;
    Ok(n.rows_affected() > 0)
}

/// Revoke every PyTake refresh token of a user (password reset).
pub async fn revoke_user(db: impl PgExecutor<'_>, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE pytake_refresh_token SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user)
    .execute(db)
    .await?;
    Ok(())
}

/// A user who is not disabled.
pub async fn user(pool: &PgPool, user: Uuid) -> Result<Option<PyUserRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT user_id, email, name, super_admin, created_at FROM app_user
         WHERE user_id = $1 AND disabled_at IS NULL",
    )
    .bind(user)
    .fetch_optional(pool)
    .await
}

/// Make a user a platform administrator.
pub async fn set_super_admin(db: impl PgExecutor<'_>, user: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE app_user SET super_admin = true WHERE user_id = $1")
        .bind(user)
        .execute(db)
        .await?;
    Ok(())
}
