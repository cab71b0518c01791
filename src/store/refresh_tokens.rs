//! Rotating refresh tokens of every contract that has them (PyTake's users, bradax's keys):
//! one table (`rotating_refresh_token`, migration 0036), families with rotation grace. Named statements
//! only; the rule lives in `domain::refresh`.

use sqlx::PgExecutor;
use uuid::Uuid;

/// A refresh token at the moment it is exchanged.
#[derive(Debug, sqlx::FromRow)]
pub struct RefreshRow {
    /// This token's id (its successors' parent).
    pub rotating_refresh_token_id: Uuid,
    /// The token it succeeded (`None`: the first of its family).
    pub parent_id: Option<Uuid>,
    /// Refresh family (one login, one `auth/token`).
    pub family_id: Uuid,
    /// `pytake` or `bradax`.
    pub audience: String,
    /// The user (PyTake).
    pub user_id: Option<Uuid>,
    /// The API key (bradax).
    pub api_key_id: Option<Uuid>,
    /// Organization the session acts in.
    pub organization_id: Uuid,
    /// Scopes granted to the family (bradax).
    pub scopes: Vec<String>,
}

/// Who a new refresh token belongs to.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    /// A PyTake user.
    User(Uuid),
    /// A bradax key, with the scopes granted.
    Key(Uuid, &'a [String]),
}

/// Store a refresh token of `family` (after `parent`), valid for `ttl_secs`.
pub async fn insert(
    db: impl PgExecutor<'_>,
    family: Uuid,
    parent: Option<Uuid>,
    owner: Owner<'_>,
    org: Uuid,
    token_hash: &[u8],
    ttl_secs: f64,
) -> Result<(), sqlx::Error> {
    let (audience, user, key, scopes): (&str, Option<Uuid>, Option<Uuid>, &[String]) = match owner {
        Owner::User(u) => ("pytake", Some(u), None, &[]),
        Owner::Key(k, s) => ("bradax", None, Some(k), s),
    };
    sqlx::query(
        "INSERT INTO rotating_refresh_token
             (family_id, parent_id, audience, user_id, api_key_id, scopes, organization_id,
              token_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + $9 * interval '1 second')",
    )
    .bind(family)
    .bind(parent)
    .bind(audience)
    .bind(user)
    .bind(key)
    .bind(scopes)
    .bind(org)
    .bind(token_hash)
    .bind(ttl_secs)
    .execute(db)
    .await?;
    Ok(())
}

/// Exchange a usable token of `audience` (not spent, revoked or expired): its first use is
/// recorded, and it stays usable until a successor is used.
pub async fn use_token(
    db: impl PgExecutor<'_>,
    audience: &str,
    token_hash: &[u8],
) -> Result<Option<RefreshRow>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE rotating_refresh_token SET used_at = coalesce(used_at, now())
         WHERE token_hash = $1 AND audience = $2
           AND spent_at IS NULL AND revoked_at IS NULL AND expires_at > now()
         RETURNING rotating_refresh_token_id, parent_id, family_id, audience, user_id, api_key_id,
                   organization_id, scopes",
    )
    .bind(token_hash)
    .bind(audience)
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
        "UPDATE rotating_refresh_token SET spent_at = now()
         WHERE spent_at IS NULL
           AND (rotating_refresh_token_id = $2 OR (parent_id = $2 AND rotating_refresh_token_id <> $1))",
    )
    .bind(used)
    .bind(parent)
    .execute(db)
    .await?;
    Ok(())
}

/// The family of a spent token of `audience`, if the token is one.
pub async fn spent_family(
    db: impl PgExecutor<'_>,
    audience: &str,
    token_hash: &[u8],
) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT family_id FROM rotating_refresh_token
         WHERE token_hash = $1 AND audience = $2 AND spent_at IS NOT NULL",
    )
    .bind(token_hash)
    .bind(audience)
    .fetch_optional(db)
    .await
}

/// Revoke every live token of a family.
pub async fn revoke_family(db: impl PgExecutor<'_>, family: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE rotating_refresh_token SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
    )
    .bind(family)
    .execute(db)
    .await?;
    Ok(())
}
