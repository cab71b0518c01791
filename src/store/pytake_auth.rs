//! PyTake's sessions (its refresh-token families are [`super::refresh_tokens`], shared with
//! bradax) and the platform administrator flag. Named statements only; the rules live in
//! `domain::pytake`.

use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

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

/// Revoke the family of a token of `user` (logout); false when `user` has no such token.
pub async fn revoke_family_of(
    db: impl PgExecutor<'_>,
    user: Uuid,
    token_hash: &[u8],
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE rotating_refresh_token SET revoked_at = now()
         WHERE family_id = (SELECT family_id FROM rotating_refresh_token
                            WHERE token_hash = $2 AND user_id = $1 AND audience = 'pytake')
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
        "UPDATE rotating_refresh_token SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL",
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
