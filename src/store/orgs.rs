//! Organizations (SabIA teams), memberships and plan changes. The rules that must hold under
//! concurrency (a team keeps an owner, a plan change reports the plan it replaced) hold by
//! locking the organization's row inside one transaction.

use sqlx::{PgExecutor, Postgres, Transaction};
use uuid::Uuid;

/// Lock an organization's row until the transaction ends: membership and plan changes of one
/// organization then happen one after the other. Whether it exists.
pub async fn lock(tx: &mut Transaction<'_, Postgres>, org: Uuid) -> Result<bool, sqlx::Error> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM organization WHERE organization_id = $1 FOR UPDATE")
            .bind(org)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(found.is_some())
}

/// A member's role, if a member.
pub async fn role_of(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT role FROM membership WHERE organization_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .fetch_optional(db)
        .await
}

/// Owners of the organization other than `user`.
pub async fn other_owners(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT count(*) FROM membership WHERE organization_id = $1 AND role = 'owner' AND user_id <> $2",
    )
    .bind(org)
    .bind(user)
    .fetch_one(db)
    .await
}

/// Remove a membership; whether there was one.
pub async fn delete_membership(
    db: impl PgExecutor<'_>,
    org: Uuid,
    user: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM membership WHERE organization_id = $1 AND user_id = $2")
        .bind(org)
        .bind(user)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// The code of the organization's current plan (`None`: none set).
pub async fn plan_code(db: impl PgExecutor<'_>, org: Uuid) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT p.code FROM organization o LEFT JOIN plan p USING (plan_id) WHERE o.organization_id = $1",
    )
    .bind(org)
    .fetch_one(db)
    .await
}

/// A plan's id by code (case-insensitive).
pub async fn plan_id(db: impl PgExecutor<'_>, code: &str) -> Result<Option<Uuid>, sqlx::Error> {
    sqlx::query_scalar("SELECT plan_id FROM plan WHERE code = lower($1)")
        .bind(code)
        .fetch_optional(db)
        .await
}

/// Put the organization on `plan` with `cycle` from now; when the new period started.
pub async fn set_plan(
    db: impl PgExecutor<'_>,
    org: Uuid,
    plan: Uuid,
    cycle: &str,
) -> Result<time::OffsetDateTime, sqlx::Error> {
    sqlx::query_scalar(
        "UPDATE organization SET plan_id = $2, billing_cycle = $3, plan_started_at = now()
         WHERE organization_id = $1 RETURNING plan_started_at",
    )
    .bind(org)
    .bind(plan)
    .bind(cycle)
    .fetch_one(db)
    .await
}
