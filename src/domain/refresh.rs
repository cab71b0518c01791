//! Rotating refresh tokens, one rule for every contract that has them (PyTake's user
//! sessions, bradax's key tokens): tokens are stored as SHA-256 of their text in families (one
//! login or one `auth/token` each); exchanging a token gives a successor, and the token stays
//! valid until a successor is first used (an old client that lost the answer keeps working);
//! a spent token presented again revokes the whole family.

use uuid::Uuid;

use super::accounts::token_hash;
use super::error::{DomainError, Unauthorized};
use crate::store::refresh_tokens as db;
pub use crate::store::refresh_tokens::{Owner, RefreshRow};

/// Exchange the refresh token `token` of `audience` (its JWT already verified by the caller):
/// the row it names, its predecessors now spent. A spent token revokes its family
/// ([`Unauthorized::Reused`]); an unknown, revoked or expired one is [`Unauthorized::BadToken`].
pub async fn exchange(
    pool: &sqlx::PgPool,
    audience: &str,
    token: &str,
) -> Result<RefreshRow, DomainError> {
    let hash = token_hash(token);
    let mut tx = pool.begin().await?;
    let Some(row) = db::use_token(&mut *tx, audience, &hash).await? else {
        drop(tx);
        if let Some(family) = db::spent_family(pool, audience, &hash).await? {
            db::revoke_family(pool, family).await?;
            tracing::warn!(%family, audience, "refresh token reuse; family revoked");
            return Err(Unauthorized::Reused.into());
        }
        return Err(Unauthorized::BadToken.into());
    };
    if let Some(parent) = row.parent_id {
        db::spend_predecessors(&mut *tx, row.rotating_refresh_token_id, parent).await?;
    }
    tx.commit().await?;
    Ok(row)
}

/// Store a new refresh token of `family` (after `parent`) for `owner`.
pub async fn store(
    pool: &sqlx::PgPool,
    family: Uuid,
    parent: Option<Uuid>,
    owner: Owner<'_>,
    org: Uuid,
    token: &str,
    ttl: std::time::Duration,
) -> Result<(), DomainError> {
    db::insert(
        pool,
        family,
        parent,
        owner,
        org,
        &token_hash(token),
        ttl.as_secs() as f64,
    )
    .await?;
    Ok(())
}

/// Revoke a family (the caller found it no longer valid).
pub async fn revoke_family(pool: &sqlx::PgPool, family: Uuid) -> Result<(), DomainError> {
    db::revoke_family(pool, family).await?;
    Ok(())
}
