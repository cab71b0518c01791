//! Plans a platform sells: their prices (micro-BRL), quota and what the dashboards show.

use sqlx::PgExecutor;
use uuid::Uuid;

/// A plan as the contracts show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PlanRow {
    /// Code (`sandbox`, `pro`, ...).
    pub code: String,
    /// Display name.
    pub name: String,
    /// Monthly price, micro-BRL.
    pub price_brl_micros: i64,
    /// Annual price, micro-BRL.
    pub annual_price_brl_micros: i64,
    /// Successful requests per month (`None`: unlimited).
    pub monthly_request_quota: Option<i64>,
    /// Requests per second (`None`: unlimited).
    pub rate_limit_rps: Option<i32>,
    /// Feature list (JSON array of strings).
    pub features: serde_json::Value,
    /// Highlighted.
    pub popular: bool,
    /// Call-to-action text.
    pub cta: String,
    /// Call-to-action style.
    pub cta_variant: String,
    /// The feature named first.
    pub main_feature: String,
}

const PLAN_COLUMNS: &str =
    "code, name, price_brl_micros, annual_price_brl_micros, monthly_request_quota,
     rate_limit_rps, features, popular, cta, cta_variant, main_feature";

/// Every plan, in display order.
pub async fn list(db: impl PgExecutor<'_>) -> Result<Vec<PlanRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plan ORDER BY sort_order, code"
    ))
    .fetch_all(db)
    .await
}

/// The organization's plan, if it has one.
pub async fn of_org(db: impl PgExecutor<'_>, org: Uuid) -> Result<Option<PlanRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plan
         WHERE plan_id = (SELECT plan_id FROM organization WHERE organization_id = $1)"
    ))
    .bind(org)
    .fetch_optional(db)
    .await
}

/// An organization's billing state: its plan and cycle.
#[derive(Debug, sqlx::FromRow)]
pub struct BillingRow {
    /// Plan code (`None`: no plan).
    pub code: Option<String>,
    /// `monthly` or `annual`.
    pub billing_cycle: String,
    /// Start of the current period.
    pub plan_started_at: time::OffsetDateTime,
    /// Monthly price, micro-BRL.
    pub price_brl_micros: Option<i64>,
    /// Annual price, micro-BRL.
    pub annual_price_brl_micros: Option<i64>,
    /// Successful requests per month.
    pub monthly_request_quota: Option<i64>,
}

/// The organization's billing state, if it exists.
pub async fn billing(
    db: impl PgExecutor<'_>,
    org: Uuid,
) -> Result<Option<BillingRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT p.code, o.billing_cycle, o.plan_started_at, p.price_brl_micros,
                p.annual_price_brl_micros, p.monthly_request_quota
         FROM organization o LEFT JOIN plan p USING (plan_id) WHERE o.organization_id = $1",
    )
    .bind(org)
    .fetch_optional(db)
    .await
}
