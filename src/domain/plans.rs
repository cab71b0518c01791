//! Plans: what a platform sells (price per cycle, monthly request quota, features), and an
//! organization's billing state on its plan.

use sqlx::PgPool;
use uuid::Uuid;

use super::error::{DomainError, Entity};
use super::orgs::Cycle;
use crate::store::plans as db;

pub use db::PlanRow as Plan;

/// Every plan, in display order.
pub async fn list(pool: &PgPool) -> Result<Vec<Plan>, DomainError> {
    Ok(db::list(pool).await?)
}

/// The organization's plan, if any.
pub async fn of_org(pool: &PgPool, org: Uuid) -> Result<Option<Plan>, DomainError> {
    Ok(db::of_org(pool, org).await?)
}

/// An organization's billing state.
#[derive(Debug)]
pub struct Billing {
    /// Plan code (`None`: no plan).
    pub plan: Option<String>,
    /// Billing cycle.
    pub cycle: Cycle,
    /// When the next period starts.
    pub next_billing: time::OffsetDateTime,
    /// Price of one period, micro-BRL.
    pub amount_brl_micros: i64,
    /// This month's successful requests (what the quota counts).
    pub used: i64,
    /// The plan's monthly quota (`None`: unlimited).
    pub quota: Option<i64>,
    /// When the month's count starts again.
    pub resets_at: time::OffsetDateTime,
}

/// The first instant of next month, UTC: when monthly quotas start again.
pub fn next_month(now: time::OffsetDateTime) -> time::OffsetDateTime {
    let now = now.to_offset(time::UtcOffset::UTC);
    let (y, m) = match now.month() {
        time::Month::December => (now.year() + 1, time::Month::January),
        m => (now.year(), m.next()),
    };
    time::Date::from_calendar_date(y, m, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(now)
}

/// The organization's billing state.
pub async fn billing(pool: &PgPool, org: Uuid) -> Result<Billing, DomainError> {
    let b = db::billing(pool, org)
        .await?
        .ok_or(DomainError::NotFound(Entity::Organization))?;
    let cycle = Cycle::parse(&b.billing_cycle).unwrap_or(Cycle::Monthly);
    let used = crate::store::usage::month_successful(pool, org).await?;
    let amount = match cycle {
        Cycle::Annual => b.annual_price_brl_micros,
        Cycle::Monthly => b.price_brl_micros,
    }
    .unwrap_or(0);
    Ok(Billing {
        plan: b.code,
        cycle,
        next_billing: b.plan_started_at + cycle.period(),
        amount_brl_micros: amount,
        used,
        quota: b.monthly_request_quota,
        resets_at: next_month(time::OffsetDateTime::now_utc()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_month_rolls_over_the_year() {
        let dec = time::macros::datetime!(2026-12-31 23:59:59 UTC);
        assert_eq!(
            next_month(dec),
            time::macros::datetime!(2027-01-01 0:00 UTC)
        );
        let feb = time::macros::datetime!(2026-02-10 12:00 UTC);
        assert_eq!(
            next_month(feb),
            time::macros::datetime!(2026-03-01 0:00 UTC)
        );
    }
}

pub use crate::store::orgs::{LimitsPatch, Patch};

/// One line of a plan's feature list, as the plan cards show it: included or not.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(untagged)]
pub enum Feature {
    /// `{"text", "included"}`.
    Line {
        /// What the line says.
        text: String,
        /// Whether the plan has it.
        included: bool,
    },
    /// A bare string: an included feature.
    Text(String),
}

impl Feature {
    fn parts(&self) -> (&str, bool) {
        match self {
            Feature::Line { text, included } => (text, *included),
            Feature::Text(t) => (t, true),
        }
    }
}

/// A plan's fields as the operator writes them; `None` keeps a field (on create: its default).
#[derive(Debug, Default)]
pub struct PlanInput {
    /// Display name, 1 to 100 characters.
    pub name: Option<String>,
    /// Monthly price, micro-BRL, not negative.
    pub price_brl_micros: Option<i64>,
    /// Annual price, micro-BRL, not negative.
    pub annual_price_brl_micros: Option<i64>,
    /// Successful requests per month; `Some(None)`: unlimited.
    pub monthly_request_quota: Patch<i64>,
    /// Limits; `Some(None)`: none.
    pub limits: LimitsPatch,
    /// Up to 50 features of up to 200 characters.
    pub features: Option<Vec<Feature>>,
    /// Highlighted.
    pub popular: Option<bool>,
}

fn valid_code(code: &str) -> bool {
    (1..=40).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn check(p: &PlanInput) -> Result<Option<serde_json::Value>, DomainError> {
    if p.name
        .as_deref()
        .is_some_and(|n| n.trim().is_empty() || n.len() > 100)
    {
        return Err(DomainError::invalid("name", "1 to 100 characters"));
    }
    if p.price_brl_micros.is_some_and(|v| v < 0) {
        return Err(DomainError::invalid("price_brl", "not negative"));
    }
    if p.annual_price_brl_micros.is_some_and(|v| v < 0) {
        return Err(DomainError::invalid("annual_price_brl", "not negative"));
    }
    if p.monthly_request_quota.flatten().is_some_and(|v| v < 0) {
        return Err(DomainError::invalid(
            "monthly_request_quota",
            "not negative, or null for unlimited",
        ));
    }
    super::orgs::check_limits(&p.limits)?;
    match &p.features {
        Some(f)
            if f.len() > 50
                || f.iter()
                    .any(|x| x.parts().0.is_empty() || x.parts().0.len() > 200) =>
        {
            Err(DomainError::invalid(
                "features",
                "at most 50, each 1 to 200 characters",
            ))
        }
        // stored as the seeded plans are: [{"text", "included"}]
        Some(f) => Ok(Some(serde_json::Value::Array(
            f.iter()
                .map(|x| {
                    let (text, included) = x.parts();
                    serde_json::json!({"text": text, "included": included})
                })
                .collect(),
        ))),
        None => Ok(None),
    }
}

fn write<'a>(p: &'a PlanInput, features: Option<&'a serde_json::Value>) -> db::PlanWrite<'a> {
    db::PlanWrite {
        name: p.name.as_deref().map(str::trim),
        price_brl_micros: p.price_brl_micros,
        annual_price_brl_micros: p.annual_price_brl_micros,
        monthly_request_quota: p.monthly_request_quota,
        limits: p.limits,
        features,
        popular: p.popular,
    }
}

fn plan_json(p: &Plan) -> serde_json::Value {
    serde_json::json!({
        "code": p.code, "name": p.name, "price_brl_micros": p.price_brl_micros,
        "annual_price_brl_micros": p.annual_price_brl_micros,
        "monthly_request_quota": p.monthly_request_quota, "rps": p.rate_limit_rps,
        "rpm": p.rate_limit_rpm, "rpd": p.rate_limit_rpd, "tpm": p.rate_limit_tpm,
        "concurrency": p.max_concurrency, "features": p.features, "popular": p.popular,
    })
}

/// Create a plan (code: 1 to 40 of `a-z 0-9 - _`), audited.
pub async fn create(pool: &PgPool, code: &str, p: PlanInput) -> Result<Plan, DomainError> {
    if !valid_code(code) {
        return Err(DomainError::invalid(
            "code",
            "1 to 40 lowercase letters, digits, '-' or '_'",
        ));
    }
    let features = check(&p)?;
    let mut tx = pool.begin().await?;
    let row = match db::insert(&mut *tx, code, &write(&p, features.as_ref())).await {
        Ok(r) => r,
        Err(sqlx::Error::Database(e)) if e.constraint() == Some(db::PLAN_CODE_KEY) => {
            return Err(super::error::Conflict::CodeTaken.into());
        }
        Err(e) => return Err(e.into()),
    };
    crate::store::audit::insert_change(
        &mut *tx,
        None,
        None,
        "plan.create",
        Some(code),
        None,
        Some(&plan_json(&row)),
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// Change a plan, audited with before and after; every organization on it gets the new
/// limits and quota at once (the database triggers notify the gateways).
pub async fn update(pool: &PgPool, code: &str, p: PlanInput) -> Result<Plan, DomainError> {
    let features = check(&p)?;
    let mut tx = pool.begin().await?;
    let before = db::by_code(&mut *tx, code, true)
        .await?
        .ok_or(DomainError::NotFound(Entity::Plan))?;
    let after = db::update(&mut *tx, code, &write(&p, features.as_ref()))
        .await?
        .ok_or(DomainError::NotFound(Entity::Plan))?;
    crate::store::audit::insert_change(
        &mut *tx,
        None,
        None,
        "plan.update",
        Some(code),
        Some(&plan_json(&before)),
        Some(&plan_json(&after)),
    )
    .await?;
    tx.commit().await?;
    Ok(after)
}

/// One plan by code.
pub async fn get(pool: &PgPool, code: &str) -> Result<Plan, DomainError> {
    db::by_code(pool, code, false)
        .await?
        .ok_or(DomainError::NotFound(Entity::Plan))
}
