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
    /// Requests per minute.
    pub rate_limit_rpm: Option<i32>,
    /// Requests per day.
    pub rate_limit_rpd: Option<i32>,
    /// Tokens per minute.
    pub rate_limit_tpm: Option<i32>,
    /// Requests in flight.
    pub max_concurrency: Option<i32>,
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
     rate_limit_rps, rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, max_concurrency, features,
     popular, cta, cta_variant, main_feature";

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

/// The unique constraint on `plan.code`.
pub const PLAN_CODE_KEY: &str = "plan_code_key";

/// One plan by code, locked until the transaction ends when `lock`.
pub async fn by_code(
    db: impl PgExecutor<'_>,
    code: &str,
    lock: bool,
) -> Result<Option<PlanRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    sqlx::query_as(&format!(
        "SELECT {PLAN_COLUMNS} FROM plan WHERE code = $1{lock}"
    ))
    .bind(code)
    .fetch_optional(db)
    .await
}

/// A plan's fields as written; in an update each `None` keeps the column, and for the nullable
/// ones `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct PlanWrite<'a> {
    /// Display name.
    pub name: Option<&'a str>,
    /// Monthly price, micro-BRL.
    pub price_brl_micros: Option<i64>,
    /// Annual price, micro-BRL.
    pub annual_price_brl_micros: Option<i64>,
    /// Successful requests per month.
    pub monthly_request_quota: crate::store::orgs::Patch<i64>,
    /// Limits.
    pub limits: crate::store::orgs::LimitsPatch,
    /// Feature list.
    pub features: Option<&'a serde_json::Value>,
    /// Highlighted.
    pub popular: Option<bool>,
}

/// Create a plan with `code` (fields left `None` take the column defaults).
pub async fn insert(
    db: impl PgExecutor<'_>,
    code: &str,
    w: &PlanWrite<'_>,
) -> Result<PlanRow, sqlx::Error> {
    let l = &w.limits;
    sqlx::query_as(&format!(
        "INSERT INTO plan (code, name, price_brl_micros, annual_price_brl_micros, monthly_request_quota,
                           rate_limit_rps, rate_limit_rpm, rate_limit_rpd, rate_limit_tpm, max_concurrency,
                           features, popular)
         VALUES ($1, $2, coalesce($3, 0), coalesce($4, 0), $5, $6, $7, $8, $9, $10,
                 coalesce($11, '[]'::jsonb), coalesce($12, false))
         RETURNING {PLAN_COLUMNS}"
    ))
    .bind(code)
    .bind(w.name.unwrap_or(code))
    .bind(w.price_brl_micros)
    .bind(w.annual_price_brl_micros)
    .bind(w.monthly_request_quota.flatten())
    .bind(l.rps.flatten())
    .bind(l.rpm.flatten())
    .bind(l.rpd.flatten())
    .bind(l.tpm.flatten())
    .bind(l.concurrency.flatten())
    .bind(w.features)
    .bind(w.popular)
    .fetch_one(db)
    .await
}

/// Change a plan; the row after, `None` when no plan has `code`.
pub async fn update(
    db: impl PgExecutor<'_>,
    code: &str,
    w: &PlanWrite<'_>,
) -> Result<Option<PlanRow>, sqlx::Error> {
    let l = &w.limits;
    sqlx::query_as(&format!(
        "UPDATE plan SET name = coalesce($2, name),
                price_brl_micros = coalesce($3, price_brl_micros),
                annual_price_brl_micros = coalesce($4, annual_price_brl_micros),
                monthly_request_quota = CASE WHEN $5 THEN $6 ELSE monthly_request_quota END,
                rate_limit_rps = CASE WHEN $7 THEN $8 ELSE rate_limit_rps END,
                rate_limit_rpm = CASE WHEN $9 THEN $10 ELSE rate_limit_rpm END,
                rate_limit_rpd = CASE WHEN $11 THEN $12 ELSE rate_limit_rpd END,
                rate_limit_tpm = CASE WHEN $13 THEN $14 ELSE rate_limit_tpm END,
                max_concurrency = CASE WHEN $15 THEN $16 ELSE max_concurrency END,
                features = coalesce($17, features),
                popular = coalesce($18, popular)
         WHERE code = $1 RETURNING {PLAN_COLUMNS}"
    ))
    .bind(code)
    .bind(w.name)
    .bind(w.price_brl_micros)
    .bind(w.annual_price_brl_micros)
    .bind(w.monthly_request_quota.is_some())
    .bind(w.monthly_request_quota.flatten())
    .bind(l.rps.is_some())
    .bind(l.rps.flatten())
    .bind(l.rpm.is_some())
    .bind(l.rpm.flatten())
    .bind(l.rpd.is_some())
    .bind(l.rpd.flatten())
    .bind(l.tpm.is_some())
    .bind(l.tpm.flatten())
    .bind(l.concurrency.is_some())
    .bind(l.concurrency.flatten())
    .bind(w.features)
    .bind(w.popular)
    .fetch_optional(db)
    .await
}
