//! What the gateway's funds accounts load (`crate::funds`): an organization's prepaid balance,
//! a key's unspent budget, and what is left of an organization's monthly request quota. Each is
//! `None` when there is no such limit.

use sqlx::PgPool;
use uuid::Uuid;

/// Successful requests of an organization this UTC month: what a plan's quota counts (read
/// from the daily rollup). `$1` is the organization.
pub const MONTH_USED_SQL: &str = "SELECT coalesce(sum(successful), 0)::int8 FROM usage_daily
     WHERE organization_id = $1 AND day >= date_trunc('month', now() AT TIME ZONE 'UTC')::date";

/// The organization's prepaid balance, micro-BRL (`None`: postpaid or absent).
pub async fn org_balance(pool: &PgPool, org: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar("SELECT balance_brl_micros FROM organization WHERE organization_id = $1")
        .bind(org)
        .fetch_optional(pool)
        .await
        .map(Option::flatten)
}

/// What is left of the key's USD budget, micro-USD (`None`: no budget or absent).
pub async fn key_budget_left(pool: &PgPool, key: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT budget_usd_micros - total_cost_usd_micros FROM api_key WHERE api_key_id = $1",
    )
    .bind(key)
    .fetch_optional(pool)
    .await
    .map(Option::flatten)
}

/// What is left of the organization's plan quota this month (`None`: no quota).
pub async fn quota_left(pool: &PgPool, org: Uuid) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(&format!(
        "SELECT p.monthly_request_quota - ({MONTH_USED_SQL})
         FROM organization o JOIN plan p ON p.plan_id = o.plan_id
         WHERE o.organization_id = $1"
    ))
    .bind(org)
    .fetch_optional(pool)
    .await
    .map(Option::flatten)
}
